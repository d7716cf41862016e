//! The steady-state hypothesis, judged over the whole baseline before
//! anything is injected.

use crate::measure::{Phase, Recorder};
use crate::results::{CheckName, CheckResult, CheckStatus};
use crate::scenario::Plan;
use crate::scenario::plan::PhaseScope;
use crate::verdict::checks;

/// The steady-state hypothesis: the scenario's baseline checks over the
/// whole baseline, or, without any, availability at the recovery ratio.
/// `writes`: database writes (acknowledged, failed) during the baseline,
/// when the scenario writes to a database.
pub(super) fn steady_state(plan: &Plan, rec: &Recorder, writes: Option<(u64, u64)>) -> CheckResult {
    let baseline: Vec<_> = plan
        .checks
        .iter()
        .filter(|c| c.phase() == Some(PhaseScope::Baseline))
        .collect();
    let min = plan.recovery.ratio;
    let mut results: Vec<CheckResult> = Vec::new();
    if let Some((ok, failed)) = writes {
        // The database must take writes before anything is touched.
        let msg = format!("baseline writes: {ok} acknowledged, {failed} failed");
        results.push(checks::ratio("writes:baseline", ok, ok + failed, min, msg));
    }
    if plan.load.is_some() && baseline.is_empty() {
        let st = rec.phase(Phase::Baseline);
        let v = st.availability().unwrap_or(0.0) * 100.0;
        let msg = format!(
            "baseline availability {v:.2}% {} {:.2}%",
            if v >= min * 100.0 { "≥" } else { "<" },
            min * 100.0
        );
        results.push(checks::ratio(
            CheckName::Availability("baseline".into()),
            st.good,
            st.total(),
            min,
            msg,
        ));
    } else if plan.load.is_some() {
        results.extend(baseline.iter().flat_map(|c| {
            let m = checks::Measured {
                rec,
                faults: &[],
                budget_pct: 0.0,
                rpo: None,
                history: &[],
                resolution_s: 0.0,
            };
            checks::evaluate(c, &m)
        }));
    }
    let failed: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.status == CheckStatus::Fail)
        .collect();
    let message = if failed.is_empty() {
        results
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        failed
            .iter()
            .map(|r| r.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    checks::verdict(CheckName::SteadyState, failed.is_empty(), message)
}
