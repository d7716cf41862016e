//! The runner: a drill as stages that each return `Result<_, Stop>`, and one
//! teardown that runs whatever happened. The stages, in order: open the
//! journal, start the target, preflight, open the database, start the load,
//! warm up and judge the baseline, run each fault through its lifecycle,
//! observe recovery. The teardown reverts whatever is still active, stops
//! the load, measures data loss, stops the target, closes the journal only
//! when nothing is outstanding, and assembles the result.

mod agents;
mod alerts;
mod baseline;
mod drill;
mod entry;
mod faults;
pub mod guards;
pub mod signals;
mod stages;
pub mod status;
mod steady;
mod teardown;

use crate::measure::Micros;
use crate::results::DrillResult;
use crate::scenario::Plan;
use crate::targets::TargetDef;
use drill::Drill;
use signals::Interrupt;

pub const BUCKET_US: Micros = 100_000;

pub struct Options {
    pub seed: u64,
    pub quiet: bool,
    /// Earlier runs of this drill, oldest first (for `regression` checks).
    pub history: Vec<crate::history::Record>,
    /// Load generator threads (`--workers`), overriding the scenario's.
    pub workers: Option<usize>,
    /// `--agents N`: the load comes from N local agent processes.
    pub agents: Option<usize>,
    /// The target's vantage points (used without `--agents`).
    pub vantages: Vec<crate::targets::vantage::VantageDef>,
}

/// What the runner hands back: the drill's result, whether it passed,
/// failed, or stopped before anything was injected.
pub struct Finished {
    pub result: DrillResult,
}

/// Runs one drill end to end. Never leaves a fault injected: whatever a
/// stage returns, the teardown reverts what is active before the result is
/// assembled.
pub async fn run(plan: &Plan, def: &TargetDef, opts: &Options, interrupt: Interrupt) -> Finished {
    let mut d = Drill::new(plan, def, opts, interrupt);
    let stopped = d.stages().await.err();
    Finished {
        result: d.teardown(stopped).await,
    }
}
