//! `drill cleanup`: revert what crashed or killed runs left outstanding,
//! from their journals. Runs that are still alive are left alone.

use crate::error::CliError;
use crate::fault::command;
use crate::fault::journal::{self, Entry, Journal, RevertPlan};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print what would be reverted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let open = journal::open_journals().map_err(|e| {
        CliError::Failed(format!(
            "cannot read {}: {e}",
            journal::journal_dir().display()
        ))
    })?;
    let rt = super::runtime()?;
    let mut failed = Vec::new();
    let mut acted = 0;
    for j in open {
        if journal::pid_alive(j.pid) && j.pid != std::process::id() {
            println!(
                "run {} (pid {}) is still running; leaving it alone",
                j.run_id, j.pid
            );
            continue;
        }
        if j.outstanding.is_empty() {
            println!("run {}: nothing outstanding", j.run_id);
        }
        let mut ok_all = true;
        for (id, fault, plan) in &j.outstanding {
            acted += 1;
            let what = describe(plan);
            if a.dry_run {
                println!("run {}: would revert `{fault}`: {what}", j.run_id);
                ok_all = false;
                continue;
            }
            let res: Result<(), String> = match plan {
                RevertPlan::SelfHealing { .. } => Ok(()),
                RevertPlan::Lab { pids, .. } => {
                    // Lab processes die with their run; make sure none lingers.
                    for &pid in pids {
                        if journal::pid_alive(pid) {
                            // SAFETY: kill(2) on a pid recorded as one of the lab's.
                            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        }
                    }
                    Ok(())
                }
                RevertPlan::Command {
                    command,
                    cwd,
                    timeout_s,
                } => rt
                    .block_on(command::run(
                        command,
                        cwd,
                        std::time::Duration::from_secs_f64(*timeout_s),
                        &[
                            ("DRILL_RUN_ID", j.run_id.as_str()),
                            ("DRILL_FAULT", fault.as_str()),
                        ],
                    ))
                    .map_err(|e| e.to_string()),
            };
            let mut jw = Journal::reopen(&j.path).map_err(|e| CliError::Failed(e.to_string()))?;
            match res {
                Ok(()) => {
                    println!("run {}: reverted `{fault}`: {what}", j.run_id);
                    let _ = jw.append(&Entry::Reverted { id: *id });
                }
                Err(e) => {
                    ok_all = false;
                    println!("run {}: FAILED to revert `{fault}`: {e}", j.run_id);
                    let _ = jw.append(&Entry::RevertFailed {
                        id: *id,
                        error: e.clone(),
                    });
                    failed.push(format!(
                        "run {} fault `{fault}`: {e}; do by hand: {what}",
                        j.run_id
                    ));
                }
            }
        }
        if ok_all {
            let jw = Journal::reopen(&j.path).map_err(|e| CliError::Failed(e.to_string()))?;
            let _ = jw.finish(&j.run_id);
        }
    }
    if acted == 0 {
        println!("nothing to clean up");
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::RevertFailed(format!(
            "some faults could not be reverted:\n  {}\n",
            failed.join("\n  ")
        )))
    }
}

fn describe(plan: &RevertPlan) -> String {
    match plan {
        RevertPlan::SelfHealing { what } => format!("heals by itself ({what})"),
        RevertPlan::Lab { instances, .. } => {
            format!("lab {} (ends with its run)", instances.join(", "))
        }
        RevertPlan::Command { command, cwd, .. } => format!("`{command}` in {}", cwd.display()),
    }
}
