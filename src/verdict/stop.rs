//! Why a drill stopped before its end, ordered from mild to grave so that
//! when several things go wrong the worst one decides (`max`), and mapped to
//! the exit code in one place.

use crate::base::exit;

/// A stage's early way out. Every variant carries the sentence the report
/// and the terminal show.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// An abort condition of the scenario fired during the faults.
    AbortCondition(String),
    /// A stop guard breached (or could not be read, fail safe): production
    /// said "enough". Every active fault is reverted.
    Guard(String),
    /// The baseline did not hold: nothing was injected.
    SteadyStateNotMet(String),
    /// An inject (or a one-way database fault) failed.
    FaultFailed(String),
    /// The target, the database or the journal was not ready: nothing was
    /// injected.
    Preflight(String),
    /// Input that could only be judged at run time (a DSN, say): nothing
    /// was injected.
    Invalid(String),
    /// A revert failed: the system may still be broken.
    RevertFailed(String),
}

impl Stop {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Stop::Invalid(_) => exit::INVALID,
            Stop::RevertFailed(_) => exit::REVERT_FAILED,
            _ => exit::ABORTED,
        }
    }

    /// The reason as the report's verdict line gives it.
    pub(crate) fn reason(&self) -> String {
        match self {
            Stop::Interrupted => "interrupted by the user".into(),
            Stop::AbortCondition(s)
            | Stop::Guard(s)
            | Stop::SteadyStateNotMet(s)
            | Stop::FaultFailed(s)
            | Stop::Preflight(s)
            | Stop::Invalid(s)
            | Stop::RevertFailed(s) => s.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_reason_wins_and_maps_to_its_exit_code() {
        let worst = [
            Stop::Interrupted,
            Stop::RevertFailed("revert of `x` failed".into()),
            Stop::AbortCondition("availability".into()),
        ]
        .into_iter()
        .max()
        .unwrap();
        assert_eq!(worst.exit_code(), 4);
        assert_eq!(Stop::Interrupted.exit_code(), 3);
        assert_eq!(Stop::Invalid("dsn".into()).exit_code(), 2);
        assert!(Stop::Preflight(String::new()) > Stop::SteadyStateNotMet(String::new()));
        assert_eq!(Stop::Interrupted.reason(), "interrupted by the user");
    }
}
