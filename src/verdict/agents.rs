//! The agents' facts: which agents sent the load from which vantage point,
//! and what each vantage point saw.

use std::sync::{Arc, Mutex};

use super::{RunFacts, impact_of, per_second, phase_summary, round3};
use crate::agent::runner::AgentFacts;
use crate::measure::{Micros, Phase, Recorder, secs};
use crate::results::{AgentResult, VantageFault, VantagePhase, VantageResult};

/// What the agents left for the result.
pub(crate) struct AgentsRun {
    pub facts: Vec<AgentFacts>,
    /// Name, agents (indices into `facts`), recorder.
    pub vantages: Vec<(String, Vec<usize>, Arc<Mutex<Recorder>>)>,
}

/// Why the measurements cannot be trusted when an agent went missing: part
/// of the asked load was never sent (or never reported).
pub(super) fn missing(f: &RunFacts) -> Option<String> {
    let agents = f.agents.as_ref()?;
    let gone: Vec<String> = agents
        .facts
        .iter()
        .filter_map(|a| {
            a.missing_from
                .map(|t| format!("agent {} missing from t+{:.3}s", a.name, secs(t)))
        })
        .collect();
    (!gone.is_empty()).then(|| {
        format!(
            "{} of {} agents' share of the load is missing: {}",
            gone.len(),
            agents.facts.len(),
            gone.join(", ")
        )
    })
}

pub(super) fn join_distrust(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (x, None) | (None, x) => x,
    }
}

/// Each vantage point's figures, computed from its own recorder with the
/// same code as the merged ones.
pub(super) fn vantage_results(f: &RunFacts, end: Micros) -> Vec<VantageResult> {
    let Some(agents) = &f.agents else {
        return Vec::new();
    };
    let slo = f.plan.budget.target;
    agents
        .vantages
        .iter()
        .map(|(name, idx, rec)| {
            let rec = rec.lock().expect("recorder lock");
            let mut phases = std::collections::BTreeMap::new();
            let (mut good, mut all) = (0u64, 0u64);
            for p in Phase::MEASURED {
                if let Some(span) = rec.phase_span(p, end) {
                    let s = phase_summary(&rec, p, (span.0, span.1.min(end).max(span.0)), slo);
                    good += s.good;
                    all += s.requests;
                    phases.insert(
                        p.name().to_string(),
                        VantagePhase {
                            requests: s.requests,
                            availability: s.availability,
                            p50_ms: s.p50_ms,
                            p99_ms: s.p99_ms,
                        },
                    );
                }
            }
            let faults = f
                .faults
                .iter()
                .enumerate()
                .map(|(i, fr)| {
                    let (imp, rto_s, recovery) = impact_of(f, &rec, i, end);
                    VantageFault {
                        name: fr.name.clone(),
                        rto_s,
                        recovery,
                        time_to_impact_s: imp.time_to_impact.map(|t| round3(secs(t))),
                        outage_s: round3(secs(imp.outage)),
                    }
                })
                .collect();
            VantageResult {
                name: name.clone(),
                agents: idx
                    .iter()
                    .map(|&j| agent_result(&agents.facts[j]))
                    .collect(),
                availability: (all > 0).then(|| good as f64 / all as f64),
                phases,
                faults,
                good_ratio: good_ratio(&rec, end),
            }
        })
        .collect()
}

fn agent_result(a: &AgentFacts) -> AgentResult {
    AgentResult {
        name: a.name.clone(),
        clock_offset_ms: round3(a.offset_us as f64 / 1e3),
        clock_bound_ms: round3(a.clock_bound_us as f64 / 1e3),
        missing_from_s: a.missing_from.map(|t| round3(secs(t))),
        missing_reason: a.why.clone(),
    }
}

/// Good ratio per run-clock second, as the merged timeline computes it.
fn good_ratio(rec: &Recorder, end: Micros) -> Vec<Option<f64>> {
    per_second(rec, end)
        .into_iter()
        .map(|(good, all)| (all > 0).then(|| round3(good as f64 / all as f64)))
        .collect()
}
