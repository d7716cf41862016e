//! The stop guards' facts: each guard's readings and the breach that
//! stopped the drill, turned into guard results and `guard:<name>` checks.

use super::RunFacts;
use crate::measure::Micros;
use crate::observe::guard::Breaching;
use crate::results::guards::{GuardResult, GuardStatus};
use crate::results::{CheckName, CheckResult, CheckStatus, Unit};
use crate::scenario::guard::GuardWatch;

/// One guard's readings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Track {
    pub readings: u64,
    pub failed_reads: u64,
    pub last_error: Option<String>,
}

/// The breach that stopped the drill.
#[derive(Clone, Debug)]
pub(crate) struct Breach {
    /// Index of the guard in the plan.
    pub guard: usize,
    pub breaching: Breaching,
    /// When drill read it (run clock).
    pub seen_at: Micros,
    /// Found by the preflight reading, before any fault.
    pub at_preflight: bool,
    /// The guard's source could not be read (fail safe), rather than breached.
    pub unreachable: bool,
}

/// Everything the guards saw, shared by the watching task, the runner and
/// the assembly.
#[derive(Clone, Debug, Default)]
pub(crate) struct GuardState {
    pub tracks: Vec<Track>,
    pub breach: Option<Breach>,
    /// The first revert request after the breach, or the teardown's start
    /// when nothing was injected at the time.
    pub acted_at: Option<Micros>,
}
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn secs(us: Micros) -> f64 {
    round3(us as f64 / 1e6)
}

/// Each guard's result and its `guard:<name>` check.
pub(crate) fn results(f: &RunFacts) -> (Vec<GuardResult>, Vec<CheckResult>) {
    let guards = &f.plan.guards;
    let state = f.guards.as_ref();
    let mut out = Vec::new();
    let mut checks = Vec::new();
    for (i, g) in guards.iter().enumerate() {
        let track = state
            .and_then(|s| s.tracks.get(i))
            .cloned()
            .unwrap_or_default();
        let breach = state
            .and_then(|s| s.breach.as_ref())
            .filter(|b| b.guard == i);
        let acted = state.and_then(|s| s.acted_at);
        let status = match (state, breach) {
            (None, _) => GuardStatus::NotEvaluated,
            (_, Some(b)) if b.unreachable => GuardStatus::Unreachable,
            (_, Some(_)) => GuardStatus::Breached,
            (Some(_), None) => GuardStatus::Held,
        };
        let limit = match &g.watch {
            GuardWatch::Promql { limit, .. } => Some(limit.value()),
            _ => None,
        };
        let r = GuardResult {
            name: g.name.clone(),
            kind: g.watch.kind().into(),
            condition: g.watch.condition(),
            on_unreachable: if g.stop_on_unreachable {
                "stop"
            } else {
                "continue"
            }
            .into(),
            status,
            readings: track.readings,
            failed_reads: track.failed_reads,
            value: breach.and_then(|b| b.breaching.value),
            limit,
            breach: breach.map(|b| b.breaching.what.clone()),
            at_preflight: breach.is_some_and(|b| b.at_preflight),
            visible_at_s: breach.map(|b| secs(b.breaching.visible_at)),
            visible_at: breach.map(|b| f.clock.wall(b.breaching.visible_at)),
            seen_at_s: breach.map(|b| secs(b.seen_at)),
            first_revert_at_s: breach.and(acted).map(secs),
            time_to_guard_s: breach
                .zip(acted)
                .map(|(b, a)| secs(a.saturating_sub(b.breaching.visible_at))),
            last_error: track.last_error.clone(),
        };
        checks.push(CheckResult {
            name: CheckName::Guard(g.name.clone()),
            status: match status {
                GuardStatus::Held => CheckStatus::Pass,
                GuardStatus::Breached | GuardStatus::Unreachable => CheckStatus::Fail,
                GuardStatus::NotEvaluated => CheckStatus::Skipped,
            },
            measured: r.value,
            threshold: limit,
            // The expression's own unit, which drill cannot know.
            unit: Unit::Unitless,
            message: r.message(),
        });
        out.push(r);
    }
    (out, checks)
}
