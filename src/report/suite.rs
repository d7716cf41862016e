//! A suite's outcome as one exit code: the worst of its drills', so a
//! failed revert anywhere (4) is never hidden behind a later pass.

use super::model::DrillResult;

/// Exit code of a suite run (DESIGN.md): the highest of its drills' codes,
/// which orders them by severity (4 revert failed > 3 aborted > 1 failed >
/// 0 passed). An empty suite ran nothing and failed nothing: 0.
pub fn worst_exit_code(results: &[DrillResult]) -> i32 {
    results
        .iter()
        .map(DrillResult::exit_code)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::{sample_aborted, sample_pass, sample_result};

    #[test]
    fn the_worst_drill_decides() {
        assert_eq!(worst_exit_code(&[]), 0);
        assert_eq!(worst_exit_code(&[sample_pass(), sample_pass()]), 0);
        assert_eq!(
            worst_exit_code(&[sample_pass(), sample_result(), sample_pass()]),
            1
        );
        assert_eq!(worst_exit_code(&[sample_aborted(), sample_result()]), 3);
        let mut stuck = sample_pass();
        stuck.manual_actions = vec!["scale deploy/istio-ingressgateway back to 2".into()];
        assert_eq!(
            worst_exit_code(&[sample_aborted(), stuck, sample_result()]),
            4
        );
    }
}
