//! `drill cleanup`: revert what crashed or killed runs left outstanding,
//! from their journals. Runs that are still alive are left alone.

use crate::base::error::CliError;
use crate::fault::cleanup::{self, Scope};
use crate::targets::journal;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print what would be reverted; change nothing.
    #[arg(long, conflicts_with = "resolved")]
    pub dry_run: bool,
    /// A person restored this run's outstanding faults by hand: journal
    /// them as resolved and close the run's journal (nothing is reverted).
    #[arg(long, value_name = "RUN_ID")]
    pub resolved: Option<String>,
}

pub(super) fn run(a: Args) -> Result<i32, CliError> {
    if let Some(run_id) = &a.resolved {
        let rt = super::runtime()?;
        let done = rt.block_on(cleanup::mark_resolved(run_id)).map_err(|e| {
            CliError::usage(
                format!("--resolved {run_id}: {e}"),
                "`drill cleanup --dry-run` lists the runs with outstanding faults",
            )
        })?;
        for f in &done.closed {
            println!("run {run_id}: `{f}` marked resolved by hand");
        }
        for l in &done.claims_left {
            eprintln!("warning: run {run_id}: {l}");
        }
        println!("run {run_id}: journal closed");
        return Ok(0);
    }
    let rt = super::runtime()?;
    let out = rt
        .block_on(cleanup::revert_outstanding(Scope::DeadRuns, a.dry_run))
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot use the journals in {}: {e}",
                journal::journal_dir().display()
            ))
        })?;
    for l in &out.lines {
        println!("{l}");
    }
    if out.outstanding == 0 {
        println!("nothing to clean up");
    }
    if out.failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::RevertFailed(format!(
            "some faults could not be reverted:\n  {}\n",
            out.failed.join("\n  ")
        )))
    }
}
