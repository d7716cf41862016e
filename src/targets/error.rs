//! What can go wrong at a target, in the words a user acts on: bad settings,
//! an action the target cannot do, a failed preflight, an unreachable system,
//! or a system not in the state the fault expected.

/// Why a target refused or failed a step.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("preflight: {0}")]
    Preflight(String),
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The system is not in the state the fault expected.
    #[error("{0}")]
    Drift(String),
}
