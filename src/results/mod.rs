//! The result of one drill: everything the reports show, and exactly what
//! `results.json` holds (`drill.results/v1`, docs/contract.md; JSON Schema in
//! schemas/results.schema.json). Renderers read only this, so they are
//! tested with plain values.
//!
//! Units are named: times end in `_s` or `_ms`; a fraction is a ratio 0..1
//! (`availability`, `good_ratio`, `slo`, `ratio`) except the error budget's
//! consumption, a percentage by the contract, whose names end in `_pct`. A check's
//! `measured` and `threshold` are in its `unit` ([`Unit`]): `ratio`, `s`,
//! `ms`, `%` (error budget, regression), `count`, or none. Fault recoveries
//! ([`Recovery`]) and check names ([`CheckName`]) are closed sets too,
//! written as the same strings as ever (names.rs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base::exit;

pub(crate) mod guards;
mod names;
#[cfg(test)]
pub(crate) mod testdata;

pub(crate) use names::{CheckName, Recovery, Unit};

pub(crate) const SCHEMA: &str = "drill.results/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// The measurements cannot be trusted: the load generator fell behind
    /// its schedule or sent less than asked (exit code 5).
    Inconclusive,
    Aborted,
    Error,
}

impl Verdict {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Aborted => "aborted",
            Verdict::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckStatus {
    Pass,
    Fail,
    /// Not evaluated (the drill aborted before it could be measured).
    Skipped,
}

/// One SLO assertion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckResult {
    /// Stable name, e.g. `rto:kill-primary-ingress`, `availability:baseline`,
    /// `latency-p99:baseline`, `error-budget`, `steady-state`, `faults-reverted`.
    pub name: CheckName,
    pub status: CheckStatus,
    /// Measured value in `unit`; null when it could not be measured
    /// (e.g. not recovered).
    pub measured: Option<f64>,
    pub threshold: Option<f64>,
    /// `ratio` (0..1), `s`, `ms`, `%` (error budget consumed), `count`,
    /// or empty.
    pub unit: Unit,
    /// One line a person reads: `rto 41.2s > 30s`, `availability 99.97% ≥ 99.95%`.
    pub message: String,
}

/// One injected fault and its effect on traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultResult {
    pub name: String,
    pub component: String,
    pub region: Option<String>,
    pub action: String,
    /// Seconds on the run clock.
    pub injected_at_s: f64,
    /// End of the revert step, or when the component healed by itself.
    pub reverted_at_s: Option<f64>,
    pub injected_at: String,
    pub reverted_at: Option<String>,
    /// Null if not recovered; 0 when there was no impact.
    pub rto_s: Option<f64>,
    /// `recovered`, `no-impact`, `not-recovered`.
    pub recovery: Recovery,
    pub time_to_impact_s: Option<f64>,
    pub outage_s: f64,
    /// Run-clock second at which traffic counted as recovered.
    pub recovered_at_s: Option<f64>,
    /// How the fault ended.
    pub ended: FaultEnd,
    /// Target-side observations, e.g. `component_ready_s`.
    #[serde(default)]
    pub extra: Observations,
}

/// How a fault ended. Serialized in kebab case (`revert-failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FaultEnd {
    /// Injected, waiting for its end.
    Pending,
    /// A one-way fault (database switchover/failover) finished.
    Completed,
    /// A one-way fault failed part-way.
    Failed,
    /// The inject step failed and nothing needed reverting.
    InjectFailed,
    /// The inject step failed; what it may have changed was reverted.
    #[serde(rename = "inject-failed, reverted")]
    InjectFailedReverted,
    /// A self-healing fault: the component served again.
    Healed,
    /// A self-healing fault the drill stopped waiting for.
    NotHealed,
    /// A self-healing fault that did not heal within its timeout.
    HealTimeout,
    /// The revert step succeeded.
    Reverted,
    /// The revert found the fault already undone by someone else.
    AlreadyRestored,
    /// The revert step failed: the system may still be broken.
    RevertFailed,
}

impl FaultEnd {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultEnd::Pending => "pending",
            FaultEnd::Completed => "completed",
            FaultEnd::Failed => "failed",
            FaultEnd::InjectFailed => "inject-failed",
            FaultEnd::InjectFailedReverted => "inject-failed, reverted",
            FaultEnd::Healed => "healed",
            FaultEnd::NotHealed => "not-healed",
            FaultEnd::HealTimeout => "heal-timeout",
            FaultEnd::Reverted => "reverted",
            FaultEnd::AlreadyRestored => "already-restored",
            FaultEnd::RevertFailed => "revert-failed",
        }
    }

    /// The target is back as it was (or, one-way, as intended).
    pub(crate) fn restored(self) -> bool {
        matches!(
            self,
            FaultEnd::Reverted
                | FaultEnd::AlreadyRestored
                | FaultEnd::Healed
                | FaultEnd::Completed
                | FaultEnd::InjectFailedReverted
        )
    }
}

impl std::fmt::Display for FaultEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the target itself showed of a fault, beside the traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Observations {
    /// A self-healing fault: inject to the component serving again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_ready_s: Option<f64>,
    /// A `down` or region outage: restore to the instances being ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_after_restore_s: Option<f64>,
    /// A routing change made during the fault: the control plane's return
    /// to every data-plane process serving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sync_s: Option<f64>,
    /// Cross-region calls made during the fault (lab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region_calls: Option<u64>,
    /// Of those, the ones that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region_failed: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PhaseSummary {
    pub requests: u64,
    pub good: u64,
    /// good / requests (0..1); null when no request was due.
    pub availability: Option<f64>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Service time p99 (completion minus actual send).
    pub service_p99_ms: f64,
    pub bad_by_cause: BTreeMap<String, u64>,
    pub burn_rate: f64,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorBudget {
    /// SLO availability target (0..1).
    pub slo: f64,
    pub period_s: f64,
    pub requests: u64,
    pub bad: u64,
    /// Measured drill length (baseline start to observation end).
    pub drill_s: f64,
    pub consumed_pct: f64,
    pub burn_rate: f64,
}

/// Data loss measured by a database fault (issue: database drills).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RpoResult {
    pub acknowledged: u64,
    pub lost_writes: u64,
    /// Inclusive sequence ranges of lost writes.
    pub lost_ranges: Vec<(u64, u64)>,
    pub rpo_s: f64,
    pub indeterminate: u64,
    pub write_rto_s: Option<f64>,
    pub write_rto_sustained_s: Option<f64>,
    /// The optional reader probe (any node), when the scenario asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<ReadProbe>,
}

/// Reads made beside the writes during a database drill.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadProbe {
    pub reads: u64,
    pub ok: u64,
    pub failed: u64,
    /// From the inject to the first good read after the first failed one
    /// (0: no read failed; null: reads never came back).
    pub read_rto_s: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LoadSummary {
    pub method: String,
    pub url: String,
    /// Scheduled rate, requests per second.
    pub rate: f64,
    /// Requests actually sent per second over the measured phases: sends
    /// of requests due there, over the time from the first actual send to
    /// the last (not the scheduled time).
    pub achieved_rate: f64,
    pub sent: u64,
    /// Requests due but never sent because the in-flight limit was reached
    /// (counted as bad, cause `saturated`).
    #[serde(default)]
    pub not_sent: u64,
    /// Generator threads.
    #[serde(default)]
    pub workers: usize,
    /// Effective in-flight limit (the scenario's, capped by open files).
    #[serde(default)]
    pub max_in_flight: usize,
    /// Send-lag p99 bound above which the verdict is `inconclusive`.
    #[serde(default)]
    pub max_send_lag_ms: f64,
    /// The generator's tick: a request waited at most this long for its
    /// wake (part of its send lag).
    #[serde(default)]
    pub tick_ms: f64,
    pub timeout_s: f64,
    pub keep_alive: bool,
    /// Generator lag (actual minus intended send time) of the requests due
    /// in the measured phases.
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// True when the generator, not the target, fell behind (send-lag p99
    /// above `max_send_lag_ms`): its numbers overstate latency.
    pub generator_behind: bool,
    /// True when the achieved rate is more than 1% below the asked one.
    #[serde(default)]
    pub rate_short: bool,
}

impl LoadSummary {
    /// Why the measurements cannot be trusted, if they cannot.
    pub(crate) fn distrust(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.generator_behind {
            why.push(format!(
                "the load generator fell behind: send lag p99 {:.2}ms > {}ms (max_send_lag)",
                self.lag_p99_ms, self.max_send_lag_ms
            ));
        }
        if self.rate_short {
            let mut s = format!(
                "the load generator sent {:.1} req/s of {} asked ({:+.2}%) over the measured phases",
                self.achieved_rate,
                self.rate,
                (self.achieved_rate / self.rate - 1.0) * 100.0
            );
            if self.not_sent > 0 {
                s.push_str(&format!(
                    "; {} requests not sent: in-flight limit {}",
                    self.not_sent, self.max_in_flight
                ));
            }
            why.push(s);
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecoverySummary {
    pub window_s: f64,
    pub ratio: f64,
    pub hold_s: f64,
    /// RTO resolution: the larger of the bucket width and 1/rate.
    pub resolution_s: f64,
}

/// One second of the run for the timeline chart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TimelinePoint {
    pub t_s: f64,
    pub requests: u64,
    /// Null when nothing was due.
    pub good_ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Database writes acknowledged / failed in this second (database drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_ok: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_failed: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PhaseSpan {
    pub phase: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// One line of the fault timeline: what the runner did, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub t_s: f64,
    /// Wall clock, RFC 3339 UTC.
    pub at: String,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DrillResult {
    pub schema: String,
    /// The drill binary that produced this result (Cargo package version).
    #[serde(default)]
    pub drill_version: String,
    pub scenario: String,
    pub description: String,
    /// Target name (`lab`, or a name from the targets file).
    pub target: String,
    pub target_kind: String,
    pub verdict: Verdict,
    /// Why the verdict is `aborted` or `error`.
    pub reason: Option<String>,
    pub run_id: String,
    pub started_at: String,
    pub duration_s: f64,
    /// A string in JSON: seeds use all 64 bits, and JSON readers such as
    /// jq and JavaScript round numbers above 2^53. `--seed` takes it back.
    #[serde(with = "seed_string")]
    pub seed: u64,
    pub checks: Vec<CheckResult>,
    pub faults: Vec<FaultResult>,
    pub phases: BTreeMap<String, PhaseSummary>,
    pub error_budget: ErrorBudget,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rpo: Option<RpoResult>,
    pub load: LoadSummary,
    pub recovery: RecoverySummary,
    pub phase_spans: Vec<PhaseSpan>,
    pub events: Vec<Event>,
    /// Settings worth showing beside the numbers (scenario and target), as
    /// `key → value` strings; never secrets.
    pub settings: BTreeMap<String, String>,
    pub timeline: Vec<TimelinePoint>,
    /// What a person must do by hand (failed reverts); empty when all is well.
    #[serde(default)]
    pub manual_actions: Vec<String>,
    /// The figures of this drill's previous run in the history, for "vs
    /// previous run"; absent without history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousRun>,
    /// Exit code an abort's cause dictates (2 for invalid input found at
    /// preflight, e.g. a bad database DSN); not part of the JSON contract.
    #[serde(skip)]
    pub exit_code: Option<i32>,
    /// Alerts seen in Alertmanager: the expected ones (fired or not) and
    /// every other that fired during the drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertResult>,
    /// Metric probes and what they read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeResult>,
    /// How alerts and probes were observed (or why they were not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringInfo>,
    /// When the load came from agents: each vantage point's own numbers
    /// (the merged ones are everywhere else in this result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<VantageResult>,
    /// Stop guards and what they saw; a breach names the guard, the
    /// breaching value and the time to guard (report/guards.rs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<guards::GuardResult>,
}

/// What the load from one vantage point saw: the same figures as the
/// merged ones, from its agents' requests only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct VantageResult {
    pub name: String,
    pub agents: Vec<AgentResult>,
    /// Good / all over the measured phases (null: nothing was due).
    pub availability: Option<f64>,
    /// Per measured phase: requests, availability, p50/p99 latency.
    pub phases: BTreeMap<String, VantagePhase>,
    /// Per fault: RTO and time to impact as seen from here.
    pub faults: Vec<VantageFault>,
    /// Good ratio per run-clock second (null: nothing due), for the chart.
    pub good_ratio: Vec<Option<f64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgentResult {
    /// `<vantage>/<index>`.
    pub name: String,
    /// Agent clock minus run clock, and the bound on that estimate (half
    /// the shortest hello round trip): phase attribution of a request is
    /// exact unless its due time is within the bound of a phase boundary.
    pub clock_offset_ms: f64,
    pub clock_bound_ms: f64,
    /// Its share of the schedule is missing from this run-clock second on
    /// (null: it sent its whole share).
    pub missing_from_s: Option<f64>,
    /// Why it is missing.
    pub missing_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct VantagePhase {
    pub requests: u64,
    pub availability: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct VantageFault {
    pub name: String,
    /// Null if not recovered (from here); 0 when no impact was seen here.
    pub rto_s: Option<f64>,
    pub recovery: Recovery,
    pub time_to_impact_s: Option<f64>,
    pub outage_s: f64,
}

/// One alert as on-call saw it (run-clock seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlertResult {
    /// `alertname{labels}`: the expected alert as written, or the alert seen.
    pub alert: String,
    pub expected: bool,
    /// The fault whose inject starts time to detect.
    pub fault: Option<String>,
    /// First seen in Alertmanager (firing), run-clock seconds.
    pub fired_at_s: Option<f64>,
    /// Inject → firing.
    pub time_to_detect_s: Option<f64>,
    /// Gone from Alertmanager (resolved) after firing.
    pub resolved_at_s: Option<f64>,
    /// Traffic recovered (RTO) → resolved.
    pub time_to_resolve_s: Option<f64>,
    pub fire_within_s: Option<f64>,
    pub resolve_within_s: Option<f64>,
    /// Silenced (or inhibited) in Alertmanager while firing.
    pub suppressed: bool,
    /// Why an expected alert was not measured or never fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One metric probe's readings over its phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbeResult {
    pub name: String,
    pub query: String,
    pub phase: String,
    /// Evaluations that returned a value.
    pub samples: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub last: Option<f64>,
    pub limit_min: Option<f64>,
    pub limit_max: Option<f64>,
    /// drill's own client-side error ratio over the same phase (0..1).
    pub client_error_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How Prometheus and Alertmanager were read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct MonitoringInfo {
    /// Why alerts and probes were not measured; their checks are skipped.
    pub skipped: Option<String>,
    pub prometheus: Option<String>,
    pub alertmanager: Option<String>,
    pub scrape_interval_s: Option<f64>,
    pub evaluation_interval_s: Option<f64>,
    /// How often drill polls Alertmanager: the resolution of time to detect
    /// and time to resolve.
    pub poll_interval_s: f64,
    /// Each rule's `for` was divided by this (lab); 1 = as written.
    pub for_factor: f64,
    /// The silence drill created for the expected alerts, if any.
    pub silence_id: Option<String>,
    /// Whether that silence was expired at the end.
    pub silence_expired: Option<bool>,
}

/// The previous run of the same drill, as the history kept it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PreviousRun {
    pub run_id: String,
    pub started_at: String,
    pub verdict: String,
    /// RTO per fault name (null: not recovered).
    pub rto_s: BTreeMap<String, Option<f64>>,
    pub availability: Option<f64>,
    pub fault_p99_ms: Option<f64>,
    pub budget_consumed_pct: Option<f64>,
}

impl DrillResult {
    /// Exit code of this result alone (docs/contract.md).
    pub(crate) fn exit_code(&self) -> i32 {
        if !self.manual_actions.is_empty() {
            return exit::REVERT_FAILED;
        }
        if let Some(code) = self.exit_code {
            return code;
        }
        match self.verdict {
            Verdict::Pass => exit::PASS,
            Verdict::Fail => exit::CHECK_FAILED,
            Verdict::Inconclusive => exit::INCONCLUSIVE,
            Verdict::Aborted | Verdict::Error => exit::ABORTED,
        }
    }
}

/// Exit code of a drill, or the worst of a suite's drills.
pub(crate) fn for_results(results: &[DrillResult]) -> i32 {
    results
        .iter()
        .map(DrillResult::exit_code)
        .fold(exit::PASS, exit::worst)
}

/// The seed as a decimal string; reading also takes a number, as
/// `results.json` files written before the seed became a string hold one.
mod seed_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(seed)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seed {
        Text(String),
        Number(u64),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Seed::deserialize(d)? {
            Seed::Number(n) => Ok(n),
            Seed::Text(t) => t.parse().map_err(|_| {
                D::Error::custom(format!("seed `{t}` is not a 64-bit unsigned integer"))
            }),
        }
    }
}

#[cfg(test)]
mod exit_tests {
    use super::testdata::{sample_aborted, sample_pass, sample_result};
    use super::*;

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
        inconclusive.verdict = crate::results::Verdict::Inconclusive;
        assert_eq!(inconclusive.exit_code(), 5);
        assert_eq!(for_results(&[sample_result(), inconclusive.clone()]), 5);
        assert_eq!(for_results(&[inconclusive.clone(), sample_result()]), 5);
        assert_eq!(for_results(&[inconclusive, sample_aborted()]), 3);
        assert_eq!(exit::worst(5, 4), 4);
    }
}
