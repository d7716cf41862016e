//! `drill lab serve`: one process of the built-in lab (started by the
//! supervisor, not by people).

use crate::base::error::CliError;
use crate::targets::lab::serve::{self, ProcessSpec};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LabCommand {
    /// Serve one lab component described by a JSON spec.
    Serve {
        #[arg(long)]
        spec: String,
    },
}

pub(super) fn run(a: Args) -> Result<i32, CliError> {
    let LabCommand::Serve { spec } = a.command;
    let spec: ProcessSpec = serde_json::from_str(&spec).map_err(|e| {
        CliError::usage(
            format!("bad lab spec: {e}"),
            "this command is started by drill itself",
        )
    })?;
    // One worker thread: a lab component is small, and the machine is shared
    // with the load generator.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    rt.block_on(serve::run(spec))
        .map_err(|e| CliError::Failed(format!("lab component: {e}")))?;
    Ok(0)
}
