//! Exit codes, in one place (docs/contract.md):
//! 0 every check passed · 1 a check failed · 2 invalid input, nothing injected ·
//! 3 aborted (preflight, steady state, abort condition), faults reverted ·
//! 4 a revert failed: the system may still be broken ·
//! 5 inconclusive: the measurements cannot be trusted (the load generator
//! fell behind, or sent less than asked).
//! A suite exits with its worst drill's code, worst first: 4, 3, 2, 5, 1, 0.

pub(crate) const PASS: i32 = 0;
pub(crate) const CHECK_FAILED: i32 = 1;
pub(crate) const INVALID: i32 = 2;
pub(crate) const ABORTED: i32 = 3;
pub(crate) const REVERT_FAILED: i32 = 4;
pub(crate) const INCONCLUSIVE: i32 = 5;

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
pub(crate) fn worst(a: i32, b: i32) -> i32 {
    if severity(b) > severity(a) { b } else { a }
}
