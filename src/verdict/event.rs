//! What happened during a drill, in order: the terminal's running log and the
//! report's event list. Typed here, rendered to a sentence once (`Display`).

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    /// The runner's own progress (target start, preflight, phases).
    Progress(String),
    /// The steady-state hypothesis, judged at the end of the baseline.
    SteadyState {
        holds: bool,
        message: String,
    },
    Inject {
        fault: String,
        what: String,
    },
    InjectFailed {
        fault: String,
        error: String,
    },
    /// A step of a one-way fault (fence, promote…), in its own words.
    FaultStep {
        fault: String,
        step: String,
    },
    /// A one-way database fault finished: the standby is the primary.
    Completed {
        fault: String,
    },
    OneWayFailed {
        fault: String,
        error: String,
    },
    Healed {
        fault: String,
    },
    HealTimeout {
        fault: String,
        timeout: String,
    },
    Reverted {
        fault: String,
    },
    /// A revert found its fault already undone by someone else.
    AlreadyRestored {
        fault: String,
        objects: String,
    },
    RevertFailed {
        fault: String,
        error: String,
    },
    ReadyAfterRestore {
        fault: String,
        after_s: f64,
    },
    /// The routing change made while the control plane was down.
    ConfigChange(String),
    ConfigSynced {
        version: u64,
        sync_s: f64,
    },
    Database(String),
    /// Reported by the target (the lab's supervisor).
    Target(String),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Progress(s) | Event::ConfigChange(s) | Event::Database(s) | Event::Target(s) => {
                f.write_str(s)
            }
            Event::SteadyState { holds, message } => write!(
                f,
                "steady state {}: {message}",
                if *holds { "holds" } else { "NOT met" }
            ),
            Event::Inject { fault, what } => write!(f, "inject {fault} ({what})"),
            Event::InjectFailed { fault, error } => write!(f, "inject {fault} FAILED: {error}"),
            Event::FaultStep { fault, step } => write!(f, "{fault}: {step}"),
            Event::Completed { fault } => {
                write!(f, "{fault} completed: the promoted standby is the primary")
            }
            Event::OneWayFailed { fault, error } => write!(f, "{fault} FAILED: {error}"),
            Event::Healed { fault } => write!(f, "{fault} healed: component serving again"),
            Event::HealTimeout { fault, timeout } => {
                write!(f, "{fault} did not heal within {timeout}")
            }
            Event::Reverted { fault } => write!(f, "revert {fault} done"),
            Event::AlreadyRestored { fault, objects } => write!(
                f,
                "WARNING: revert {fault}: already restored by someone else ({objects} found as before the fault); drill changed nothing"
            ),
            Event::RevertFailed { fault, error } => write!(f, "revert {fault} FAILED: {error}"),
            Event::ReadyAfterRestore { fault, after_s } => {
                write!(f, "{fault} ready again {after_s:.3}s after the restore")
            }
            Event::ConfigSynced { version, sync_s } => write!(
                f,
                "data plane applied configuration version {version}: sync {sync_s:.3}s after the control plane returned"
            ),
        }
    }
}
