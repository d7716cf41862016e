//! Exit codes, in one place (docs/contract.md):
//! 0 every check passed · 1 a check failed · 2 invalid input, nothing injected ·
//! 3 aborted (preflight, steady state, abort condition), faults reverted ·
//! 4 a revert failed: the system may still be broken ·
//! 5 inconclusive: the measurements cannot be trusted (the load generator
//! fell behind, or sent less than asked).
//! A suite exits with its worst drill's code, worst first: 4, 3, 2, 5, 1, 0.

use crate::report::model::DrillResult;
use crate::scenario::Diagnostics;

pub const PASS: i32 = 0;
pub const CHECK_FAILED: i32 = 1;
pub const INVALID: i32 = 2;
pub const ABORTED: i32 = 3;
pub const REVERT_FAILED: i32 = 4;
pub const INCONCLUSIVE: i32 = 5;

/// How bad an exit code is (higher is worse): a failed revert, then an
/// abort, then invalid input, then untrustworthy numbers, then a failed check.
fn severity(code: i32) -> u8 {
    match code {
        PASS => 0,
        CHECK_FAILED => 1,
        INCONCLUSIVE => 2,
        INVALID => 3,
        ABORTED => 4,
        REVERT_FAILED => 5,
        _ => 4,
    }
}

/// The worse of two exit codes.
pub fn worst(a: i32, b: i32) -> i32 {
    if severity(b) > severity(a) { b } else { a }
}

/// Errors that end a command before or instead of a drill.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad scenario or targets file: every diagnostic, file:line:col.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
    /// Bad flags or arguments.
    #[error("error: {message}\n  = hint: {hint}")]
    Usage { message: String, hint: String },
    /// Could not do what was asked for a reason outside the input.
    #[error("error: {0}")]
    Failed(String),
    /// `drill cleanup` could not revert everything.
    #[error("error: {0}")]
    RevertFailed(String),
}

impl CliError {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Invalid(_) | CliError::Usage { .. } => INVALID,
            CliError::Failed(_) => ABORTED,
            CliError::RevertFailed(_) => REVERT_FAILED,
        }
    }
}

/// Exit code of a drill (or the worst of a suite's drills).
pub fn for_results(results: &[DrillResult]) -> i32 {
    results.iter().map(DrillResult::exit_code).fold(PASS, worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::{sample_aborted, sample_pass, sample_result};

    /// A suite exits with its worst drill's code, so a failed revert
    /// anywhere (4) is never hidden behind a later pass.
    #[test]
    fn the_worst_drill_decides() {
        assert_eq!(for_results(&[]), 0);
        assert_eq!(for_results(&[sample_pass(), sample_pass()]), 0);
        assert_eq!(
            for_results(&[sample_pass(), sample_result(), sample_pass()]),
            1
        );
        assert_eq!(for_results(&[sample_aborted(), sample_result()]), 3);
        let mut stuck = sample_pass();
        stuck.manual_actions = vec!["scale deploy/istio-ingressgateway back to 2".into()];
        assert_eq!(for_results(&[sample_aborted(), stuck, sample_result()]), 4);
    }

    /// Untrustworthy numbers (5) outrank a failed check (1) but not an
    /// abort (3) or a failed revert (4).
    #[test]
    fn inconclusive_ranks_between_a_failure_and_an_abort() {
        let mut inconclusive = sample_pass();
        inconclusive.verdict = crate::report::model::Verdict::Inconclusive;
        assert_eq!(inconclusive.exit_code(), 5);
        assert_eq!(for_results(&[sample_result(), inconclusive.clone()]), 5);
        assert_eq!(for_results(&[inconclusive.clone(), sample_result()]), 5);
        assert_eq!(for_results(&[inconclusive, sample_aborted()]), 3);
        assert_eq!(worst(5, 4), 4);
    }
}
