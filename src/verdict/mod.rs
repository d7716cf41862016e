//! The verdict: from the recorded facts (the recorder's state, the fault
//! timeline, what monitoring, guards and agents saw) and the plan to a
//! `DrillResult`: per-phase numbers, each fault's RTO, checks, error budget,
//! the per-second timeline and the verdict. Pure: no runtime, no IO; the
//! runner hands its facts over in teardown, and tests hand synthetic ones.

pub(crate) mod agents;
pub(crate) mod alerts;
pub(crate) mod checks;
pub(crate) mod event;
pub(crate) mod guards;
pub(crate) mod stop;

use std::collections::BTreeMap;

use crate::base::clock::Clock;
use crate::base::units::{Dur, Percent};
use crate::measure::{Cause, Micros, Phase, Recorder, Rto, budget, fault_impact, secs};
use crate::results::*;
use crate::scenario::Plan;
use crate::scenario::model::CheckKind;
use crate::scenario::plan::FaultPlan;
use crate::targets::TargetDef;

/// Achieved rate below this share of the asked one makes the drill
/// inconclusive: the generator sent less than the schedule asked.
pub(crate) const MIN_RATE_SHARE: f64 = 0.99;

/// One fault as it ran.
#[derive(Clone, Debug)]
pub(crate) struct FaultRun {
    pub name: String,
    pub component: String,
    pub region: Option<String>,
    pub action: String,
    pub injected_at: Micros,
    pub ended_at: Option<Micros>,
    pub ended: FaultEnd,
    pub extra: Observations,
}

impl FaultRun {
    pub(crate) fn new(f: &FaultPlan, at: Micros) -> FaultRun {
        FaultRun {
            name: f.name.clone(),
            component: f.component().unwrap_or("-").to_string(),
            region: f.region().map(str::to_string),
            action: f.action.name().to_string(),
            injected_at: at,
            ended_at: None,
            ended: FaultEnd::Pending,
            extra: Observations::default(),
        }
    }
}

/// Everything the runner knows besides the recorder.
pub(crate) struct RunFacts<'a> {
    pub plan: &'a Plan,
    pub def: &'a TargetDef,
    pub run_id: String,
    pub seed: u64,
    pub clock: Clock,
    pub entry_url: String,
    pub load_start: Micros,
    pub first_inject: Option<Micros>,
    /// End of the observation.
    pub end: Micros,
    pub faults: Vec<FaultRun>,
    pub events: Vec<(Micros, event::Event)>,
    pub steady_state: Option<CheckResult>,
    pub aborted: Option<String>,
    pub manual_actions: Vec<String>,
    /// Data loss measured by a database fault.
    pub rpo: Option<RpoResult>,
    /// An exit code the cause of an abort dictates (2: invalid input).
    pub exit_code: Option<i32>,
    /// The target could not make a routing change, so config sync was not
    /// measured: its checks are skipped, not failed.
    pub config_sync_unmeasurable: bool,
    /// Database writes per run-clock second: (acknowledged, failed).
    pub writes: Option<BTreeMap<u64, (u64, u64)>>,
    /// What Prometheus and Alertmanager showed (scenarios with alerts or probes).
    pub monitoring: Option<alerts::MonitoringOutcome>,
    /// Earlier runs of this drill (for `regression` checks).
    pub history: Vec<crate::history::Record>,
    /// The agents that sent the load, when agents did.
    pub agents: Option<agents::AgentsRun>,
    /// What the stop guards saw (None: they were never read).
    pub guards: Option<guards::GuardState>,
}

impl<'a> RunFacts<'a> {
    pub(crate) fn new(
        plan: &'a Plan,
        def: &'a TargetDef,
        run_id: &str,
        seed: u64,
        clock: Clock,
    ) -> RunFacts<'a> {
        RunFacts {
            plan,
            def,
            run_id: run_id.into(),
            seed,
            clock,
            entry_url: String::new(),
            load_start: 0,
            first_inject: None,
            end: 0,
            faults: Vec::new(),
            events: Vec::new(),
            steady_state: None,
            aborted: None,
            manual_actions: Vec::new(),
            rpo: None,
            exit_code: None,
            config_sync_unmeasurable: false,
            writes: None,
            monitoring: None,
            history: Vec::new(),
            agents: None,
            guards: None,
        }
    }

    pub(crate) fn abort(&mut self, reason: String) {
        if self.aborted.is_none() {
            self.aborted = Some(reason);
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub(crate) fn phase_summary(
    rec: &Recorder,
    p: Phase,
    span: (Micros, Micros),
    slo: f64,
) -> PhaseSummary {
    let st = rec.phase(p);
    let q = |x: f64| {
        if st.latency.is_empty() {
            0.0
        } else {
            ms(st.latency.value_at_quantile(x))
        }
    };
    PhaseSummary {
        requests: st.total(),
        good: st.good,
        availability: st.availability(),
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: if st.latency.is_empty() {
            0.0
        } else {
            ms(st.latency.max())
        },
        service_p99_ms: if st.service.is_empty() {
            0.0
        } else {
            ms(st.service.value_at_quantile(0.99))
        },
        bad_by_cause: Cause::ALL
            .iter()
            .zip(st.bad.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| (c.name().to_string(), *n))
            .collect(),
        burn_rate: round3(budget::burn_rate(st.bad_total(), st.total(), slo)),
        start_s: round3(secs(span.0)),
        end_s: round3(secs(span.1)),
    }
}

/// Events in run-clock order (lab processes report theirs a little late).
fn sorted_events(events: &[(Micros, event::Event)]) -> Vec<(Micros, String)> {
    let mut v: Vec<(Micros, String)> = events.iter().map(|(t, e)| (*t, e.to_string())).collect();
    v.sort_by_key(|(t, _)| *t);
    v
}

pub(crate) fn assemble(f: RunFacts, rec: &mut Recorder) -> DrillResult {
    let plan = f.plan;
    let end = f.end.max(f.load_start);
    let (phases, spans) = phases(rec, end, plan.budget.target);
    let faults = faults(&f, rec, end);
    let error_budget = error_budget(rec, end, plan);
    let mut checks = checks(&f, rec, &faults, error_budget.consumed_pct);
    let (alerts, probes, monitoring) = alerts::measured(&f, rec, &faults, &spans);
    if let Some(mp) = &plan.monitoring {
        let skipped = monitoring.as_ref().and_then(|m| m.skipped.as_deref());
        let interrupted = f.aborted.as_deref() == Some(stop::Stop::Interrupted.reason().as_str());
        checks.extend(checks::alert_checks(
            &alerts,
            &probes,
            mp.unexpected_fail,
            skipped,
            interrupted,
        ));
    }
    let (guards, guard_checks) = guards::results(&f);
    checks.extend(guard_checks);
    let load = load_summary(&f, rec, error_budget.drill_s);
    // A generator that fell behind or sent less than asked makes every
    // figure untrustworthy: its own verdict, below an abort.
    let distrust = agents::join_distrust(load.distrust(), agents::missing(&f));
    let verdict = if f.aborted.is_some() {
        Verdict::Aborted
    } else if distrust.is_some() {
        Verdict::Inconclusive
    } else if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    let crit = plan.recovery;
    DrillResult {
        schema: SCHEMA.into(),
        drill_version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        target: f.def.name().into(),
        target_kind: f.def.kind().into(),
        verdict,
        reason: f.aborted.clone().or(distrust),
        run_id: f.run_id.clone(),
        started_at: f.clock.started_at(),
        duration_s: round3(secs(end)),
        seed: f.seed,
        checks,
        faults,
        phases,
        error_budget,
        rpo: f.rpo.clone(),
        load,
        recovery: RecoverySummary {
            window_s: crit.window_us as f64 / 1e6,
            ratio: crit.ratio,
            hold_s: crit.hold_us as f64 / 1e6,
            resolution_s: round3(resolution_s(rec, plan)),
        },
        phase_spans: spans,
        events: sorted_events(&f.events)
            .into_iter()
            .map(|(t, w)| Event {
                t_s: round3(secs(t)),
                at: f.clock.wall(t),
                what: w,
            })
            .collect(),
        settings: settings(&f),
        timeline: timeline(&f, rec, end),
        manual_actions: f.manual_actions.clone(),
        previous: f.history.last().map(previous_run),
        exit_code: f.exit_code,
        alerts,
        probes,
        monitoring,
        vantages: agents::vantage_results(&f, end),
        guards,
    }
}

/// The last run in the history, for "vs previous run" in the report.
fn previous_run(r: &crate::history::Record) -> PreviousRun {
    PreviousRun {
        run_id: r.run_id.clone(),
        started_at: r.started_at.clone(),
        verdict: r.verdict.clone(),
        rto_s: r.faults.iter().map(|f| (f.name.clone(), f.rto_s)).collect(),
        availability: r.availability,
        fault_p99_ms: r.fault_p99_ms,
        budget_consumed_pct: r.budget_pct,
    }
}

/// RTO resolution: the larger of the bucket width and 1/rate.
fn resolution_s(rec: &Recorder, plan: &Plan) -> f64 {
    let per_request = if plan.rate() > 0.0 {
        1.0 / plan.rate()
    } else {
        0.0
    };
    secs(rec.bucket_us()).max(per_request)
}

/// Per-phase numbers and the phases' spans (warmup is not measured).
fn phases(
    rec: &Recorder,
    end: Micros,
    slo: f64,
) -> (BTreeMap<String, PhaseSummary>, Vec<PhaseSpan>) {
    let mut phases = BTreeMap::new();
    let mut spans = Vec::new();
    for p in Phase::ALL {
        if let Some(span) = rec.phase_span(p, end) {
            let span = (span.0, span.1.min(end).max(span.0));
            spans.push(PhaseSpan {
                phase: p.name().into(),
                start_s: round3(secs(span.0)),
                end_s: round3(secs(span.1)),
            });
            if p != Phase::Warmup {
                phases.insert(p.name().to_string(), phase_summary(rec, p, span, slo));
            }
        }
    }
    (phases, spans)
}

/// Each fault with its impact: RTO, time to impact, outage. A fault's
/// impact ends at the next fault's inject.
fn faults(f: &RunFacts, rec: &Recorder, end: Micros) -> Vec<FaultResult> {
    let mut faults = Vec::new();
    for (i, fr) in f.faults.iter().enumerate() {
        let (imp, rto_s, recovery) = impact_of(f, rec, i, end);
        faults.push(FaultResult {
            name: fr.name.clone(),
            component: fr.component.clone(),
            region: fr.region.clone(),
            action: fr.action.clone(),
            injected_at_s: round3(secs(fr.injected_at)),
            reverted_at_s: fr.ended_at.map(|t| round3(secs(t))),
            injected_at: f.clock.wall(fr.injected_at),
            reverted_at: fr.ended_at.map(|t| f.clock.wall(t)),
            rto_s,
            recovery,
            time_to_impact_s: imp.time_to_impact.map(|t| round3(secs(t))),
            outage_s: round3(secs(imp.outage)),
            recovered_at_s: imp.recovered_at.map(|t| round3(secs(t))),
            ended: fr.ended,
            extra: fr.extra.clone(),
        });
    }
    faults
}

/// Fault `i`'s impact as `rec` saw it, with its RTO in seconds and how it
/// recovered; its impact ends at the next fault's inject. The merged result
/// and every vantage point's are computed by this one function.
pub(super) fn impact_of(
    f: &RunFacts,
    rec: &Recorder,
    i: usize,
    end: Micros,
) -> (crate::measure::FaultImpact, Option<f64>, Recovery) {
    let fr = &f.faults[i];
    let next = f.faults.get(i + 1).map_or(end, |n| n.injected_at);
    let imp = fault_impact(
        rec.buckets(),
        rec.bucket_us(),
        fr.injected_at,
        end,
        next,
        &f.plan.recovery,
    );
    let (rto_s, recovery) = match imp.rto {
        Rto::NoImpact => (Some(0.0), Recovery::NoImpact),
        Rto::Recovered(us) => (Some(round3(secs(us))), Recovery::Recovered),
        Rto::NotRecovered => (None, Recovery::NotRecovered),
    };
    (imp, rto_s, recovery)
}

/// Error budget over the measured phases.
fn error_budget(rec: &Recorder, end: Micros, plan: &Plan) -> ErrorBudget {
    let (slo, period_s) = (plan.budget.target, plan.budget.period_s);
    let (mut bad, mut all) = (0, 0);
    for p in Phase::MEASURED {
        bad += rec.phase(p).bad_total();
        all += rec.phase(p).total();
    }
    let drill_s = rec
        .phase_span(Phase::Baseline, end)
        .map_or(0.0, |(a, _)| secs(end.saturating_sub(a)));
    ErrorBudget {
        slo,
        period_s,
        requests: all,
        bad,
        drill_s: round3(drill_s),
        consumed_pct: budget::budget_consumed_pct(bad, all, drill_s, slo, period_s),
        burn_rate: round3(budget::burn_rate(bad, all, slo)),
    }
}

/// The checks: steady state, the scenario's, faults reverted.
fn checks(f: &RunFacts, rec: &Recorder, faults: &[FaultResult], consumed: f64) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let aborted_before_faults = f.aborted.is_some() && f.faults.is_empty();
    out.push(f.steady_state.clone().unwrap_or_else(|| CheckResult {
        name: CheckName::SteadyState,
        status: CheckStatus::Skipped,
        measured: None,
        threshold: None,
        unit: Unit::Unitless,
        message: "not evaluated: the drill stopped before the baseline ended".into(),
    }));
    let m = checks::Measured {
        rec,
        faults,
        budget_pct: consumed,
        rpo: f.rpo.as_ref(),
        history: &f.history,
        resolution_s: resolution_s(rec, f.plan),
    };
    for c in &f.plan.checks {
        let mut results = checks::evaluate(c, &m);
        if f.config_sync_unmeasurable && c.kind() == CheckKind::ConfigSync {
            for r in &mut results {
                r.status = CheckStatus::Skipped;
                r.message =
                    "config sync: not measurable on this target (needs the lab's control plane)"
                        .into();
            }
        }
        if aborted_before_faults || (f.aborted.is_some() && results.is_empty()) {
            for r in &mut results {
                r.status = CheckStatus::Skipped;
                r.message = format!("not evaluated: drill aborted ({})", r.message);
            }
            if results.is_empty() {
                results.push(CheckResult {
                    name: CheckName::from(c.name.as_deref().unwrap_or(c.kind().name())),
                    status: CheckStatus::Skipped,
                    measured: None,
                    threshold: None,
                    unit: Unit::Unitless,
                    message: "not evaluated: no fault was injected".into(),
                });
            }
        }
        out.extend(results);
    }
    let unreverted: Vec<String> = faults
        .iter()
        .filter(|x| !x.ended.restored())
        .map(|x| format!("{} ({})", x.name, x.ended))
        .collect();
    out.push(checks::verdict(
        CheckName::FaultsReverted,
        unreverted.is_empty() && f.manual_actions.is_empty(),
        if unreverted.is_empty() {
            format!("{} fault(s) reverted or healed", faults.len())
        } else {
            format!("not reverted or healed: {}", unreverted.join(", "))
        },
    ));
    out
}

/// Requests due in each run-clock second from 0 to `end`: (good, all).
/// The timeline and each agent's good ratio both read it.
pub(super) fn per_second(rec: &Recorder, end: Micros) -> Vec<(u64, u64)> {
    let per_sec = (1_000_000 / rec.bucket_us()).max(1) as usize;
    (0..=end / 1_000_000)
        .map(|sec| {
            rec.buckets()
                .iter()
                .skip(sec as usize * per_sec)
                .take(per_sec)
                .fold((0, 0), |(good, all), b| {
                    (good + b.good as u64, all + b.total() as u64)
                })
        })
        .collect()
}

/// One point per second of the run: good ratio, p50/p99, database writes.
fn timeline(f: &RunFacts, rec: &mut Recorder, end: Micros) -> Vec<TimelinePoint> {
    let seconds_lat: BTreeMap<_, _> = rec
        .seconds()
        .finish()
        .into_iter()
        .map(|p| (p.second, p))
        .collect();
    let mut timeline = Vec::new();
    for (sec, (good, total)) in (0..).zip(per_second(rec, end)) {
        let lat = seconds_lat.get(&sec);
        timeline.push(TimelinePoint {
            t_s: sec as f64,
            requests: total,
            good_ratio: (total > 0).then(|| good as f64 / total as f64),
            p50_ms: lat.map(|p| ms(p.p50_us)),
            p99_ms: lat.map(|p| ms(p.p99_us)),
            writes_ok: f.writes.as_ref().map(|w| w.get(&sec).map_or(0, |c| c.0)),
            writes_failed: f.writes.as_ref().map(|w| w.get(&sec).map_or(0, |c| c.1)),
        });
    }
    timeline
}

/// The generator's own numbers: the rate it truly achieved over the
/// measured phases, its send lag against the plan's bound, and what its
/// in-flight limit kept from being sent.
fn load_summary(f: &RunFacts, rec: &Recorder, measured_s: f64) -> LoadSummary {
    let Some(ld) = &f.plan.load else {
        return LoadSummary::default();
    };
    let lag = rec.lag();
    let lag_p99 = if lag.is_empty() {
        0
    } else {
        lag.value_at_quantile(0.99)
    };
    let (sent, span) = rec.sent_in(&Phase::MEASURED);
    let achieved = match span {
        Some((first, last)) if sent >= 2 && last > first => (sent - 1) as f64 / secs(last - first),
        _ => 0.0,
    };
    let not_sent = Phase::MEASURED
        .iter()
        .map(|&p| rec.phase(p).bad[Cause::Saturated as usize])
        .sum();
    let generator = rec.generator();
    LoadSummary {
        method: ld.method.clone(),
        url: format!("{}{}", f.entry_url, ld.path),
        rate: ld.rate,
        achieved_rate: round3(achieved),
        sent: rec.sent(),
        not_sent,
        workers: generator.workers,
        max_in_flight: generator.max_in_flight,
        max_send_lag_ms: ms(ld.max_send_lag_us),
        tick_ms: ms(generator.tick_us),
        timeout_s: ld.timeout.as_secs_f64(),
        keep_alive: ld.keep_alive,
        lag_p99_ms: ms(lag_p99),
        lag_max_ms: if lag.is_empty() { 0.0 } else { ms(lag.max()) },
        generator_behind: lag_p99 > ld.max_send_lag_us,
        // Judged only when the measured phases asked for a rate at all.
        rate_short: ld.rate * measured_s >= 2.0 && achieved < MIN_RATE_SHARE * ld.rate,
    }
}

/// The scenario and target settings the report lists.
fn settings(f: &RunFacts) -> BTreeMap<String, String> {
    let plan = f.plan;
    let dur = |us: Micros| Dur(std::time::Duration::from_micros(us)).to_string();
    let mut s = BTreeMap::new();
    s.insert("scenario.file".into(), plan.path.display().to_string());
    if let Some(ld) = &plan.load {
        s.insert("load.rate".into(), format!("{}/s", ld.rate));
        s.insert("load.timeout".into(), Dur(ld.timeout).to_string());
    }
    if let Some(db) = &plan.database {
        s.insert("database.rate".into(), format!("{}/s", db.rate));
        s.insert(
            "database.write_timeout".into(),
            Dur(db.write_timeout).to_string(),
        );
    }
    s.insert("phases.warmup".into(), plan.phases.warmup.to_string());
    s.insert("phases.baseline".into(), plan.phases.baseline.to_string());
    s.insert("phases.recovery".into(), plan.phases.recovery.to_string());
    s.insert("recovery.window".into(), dur(plan.recovery.window_us));
    s.insert(
        "recovery.ratio".into(),
        Percent(plan.recovery.ratio).to_string(),
    );
    s.insert("recovery.hold".into(), dur(plan.recovery.hold_us));
    for (k, v) in f.def.describe() {
        s.insert(format!("target.{k}"), v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Outcome, Sample};

    const S: u64 = 1_000_000;
    const MS: u64 = 1_000;

    /// 100 req/s for 60 s; warmup 0–5 s, baseline 5–20 s, fault 20–30 s,
    /// recovery 30–60 s; the fault at 20 s makes every request due in
    /// [20.5 s, 23.5 s) refused. Every number below is computed by hand.
    #[test]
    fn a_known_stream_gives_the_known_report() {
        let src = r#"
description = "synthetic"
[load]
path = "/"
rate = 100
[phases]
warmup = "5s"
baseline = "15s"
recovery = "30s"
[[faults]]
name = "f"
component = "ingress-gateway"
region = "primary"
action = "delete"
[[checks]]
kind = "rto"
max = "3s"
[[checks]]
kind = "availability"
phase = "baseline"
min = "99.95%"
[[checks]]
kind = "error-budget"
slo = "99.95%"
period = "30d"
max = "0.2%"
"#;
        let l = crate::scenario::parse(std::path::Path::new("s.toml"), src).unwrap();
        let plan = Plan::resolve(&l);
        let def = TargetDef::Http {
            name: "t".into(),
            url: "http://x".into(),
            database: None,
            monitoring: None,
        };
        let mut rec = Recorder::new(100 * MS, 3 * S);
        rec.mark(Phase::Baseline, 5 * S);
        rec.mark(Phase::Fault, 20 * S);
        rec.mark(Phase::Recovery, 30 * S);
        for i in 0..6000u64 {
            let due = i * 10 * MS;
            let bad = (20_500 * MS..23_500 * MS).contains(&due);
            let (outcome, done) = if bad {
                (Outcome::Bad(Cause::Refused), due + 100)
            } else {
                (Outcome::Good, due + 2 * MS)
            };
            rec.note_sent(due, due);
            rec.record(&Sample {
                due,
                sent: due,
                done,
                outcome,
                has_latency: !bad,
            });
        }
        let mut facts = RunFacts::new(&plan, &def, "run", 7, Clock::start());
        facts.end = 60 * S;
        let mut fr = FaultRun::new(&plan.faults[0], 20 * S);
        fr.ended_at = Some(28 * S);
        fr.ended = FaultEnd::Healed;
        facts.faults = vec![fr];
        facts.steady_state = Some(checks::verdict(CheckName::SteadyState, true, "ok".into()));
        let r = assemble(facts, &mut rec);

        let p = |name: &str| &r.phases[name];
        assert_eq!((p("baseline").requests, p("baseline").good), (1500, 1500));
        assert_eq!((p("fault").requests, p("fault").good), (1000, 700));
        assert_eq!(p("fault").availability, Some(0.7));
        assert_eq!(p("fault").bad_by_cause["refused"], 300);
        assert_eq!((p("recovery").requests, p("recovery").good), (3000, 3000));
        assert!(
            (p("baseline").p50_ms - 2.0).abs() < 0.01,
            "{}",
            p("baseline").p50_ms
        );

        let f = &r.faults[0];
        assert_eq!(
            f.rto_s,
            Some(3.502),
            "recovered when the first good answer came: 23.5 s + 2 ms"
        );
        assert_eq!(f.time_to_impact_s, Some(0.5));
        assert_eq!(f.outage_s, 3.0);
        assert_eq!(r.recovery.resolution_s, 0.1);

        // 300 bad of 5500 over the 55 s drill = 3 s of full outage against
        // 0.05% of 30 days = 1296 s.
        let b = &r.error_budget;
        assert_eq!((b.bad, b.requests, b.drill_s), (300, 5500, 55.0));
        assert!(
            (b.consumed_pct - 3.0 / 1296.0 * 100.0).abs() < 1e-9,
            "{}",
            b.consumed_pct
        );
        // Burn rate = (bad/all) / (1 − A): 0.3 / 0.0005 in the fault phase,
        // (300/5500) / 0.0005 over the drill, nothing in the baseline.
        assert_eq!(p("fault").burn_rate, 600.0);
        assert_eq!(p("baseline").burn_rate, 0.0);
        assert_eq!(b.burn_rate, 109.091);

        let t = |s: usize| r.timeline[s].good_ratio;
        assert_eq!(
            (t(19), t(20), t(21), t(23), t(24)),
            (Some(1.0), Some(0.5), Some(0.0), Some(0.5), Some(1.0))
        );
        assert_eq!(r.timeline[21].requests, 100);

        let check = |n: &str| {
            let n = CheckName::from(n);
            r.checks.iter().find(|c| c.name == n).unwrap()
        };
        assert_eq!(check("rto:f").status, CheckStatus::Fail);
        assert_eq!(check("rto:f").message, "rto 3.50s > 3s");
        assert_eq!(check("availability:baseline").status, CheckStatus::Pass);
        assert_eq!(
            check("error-budget").status,
            CheckStatus::Fail,
            "0.231% > 0.2%"
        );
        assert_eq!(check("faults-reverted").status, CheckStatus::Pass);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.load.achieved_rate, 100.0);
    }

    /// 100 req/s for a 10 s baseline. On time: pass. Every send 60 ms late
    /// (default bound 50 ms): inconclusive. Every 50th request not sent (in-flight
    /// limit): 98 req/s achieved, more than 1% short: inconclusive.
    #[test]
    fn a_late_or_short_generator_makes_the_drill_inconclusive() {
        let src = r#"
description = "synthetic"
[load]
path = "/"
rate = 100
[phases]
warmup = "0s"
baseline = "10s"
"#;
        let l = crate::scenario::parse(std::path::Path::new("s.toml"), src).unwrap();
        let def = TargetDef::Http {
            name: "t".into(),
            url: "http://x".into(),
            database: None,
            monitoring: None,
        };
        let run = |lag: u64, skip_every: u64| {
            let mut rec = Recorder::new(100 * MS, 3 * S);
            rec.mark(Phase::Baseline, 0);
            for i in 0..1000u64 {
                let due = i * 10 * MS;
                let (sent, outcome) = if skip_every > 0 && i % skip_every == 7 {
                    (due, Outcome::Bad(Cause::Saturated))
                } else {
                    rec.note_sent(due, due + lag);
                    (due + lag, Outcome::Good)
                };
                rec.record(&Sample {
                    due,
                    sent,
                    done: sent + MS,
                    outcome,
                    has_latency: outcome == Outcome::Good,
                });
            }
            let plan = Plan::resolve(&l);
            let mut facts = RunFacts::new(&plan, &def, "run", 7, Clock::start());
            facts.end = 10 * S;
            facts.steady_state = Some(checks::verdict(CheckName::SteadyState, true, "ok".into()));
            assemble(facts, &mut rec)
        };
        let on_time = run(100, 0);
        assert_eq!(on_time.verdict, Verdict::Pass, "{:?}", on_time.reason);
        assert_eq!(on_time.load.achieved_rate, 100.0);
        assert_eq!(on_time.load.max_send_lag_ms, 50.0);

        let late = run(60 * MS, 0);
        assert_eq!(late.verdict, Verdict::Inconclusive);
        assert_eq!(late.exit_code(), 5);
        assert!(late.load.generator_behind && !late.load.rate_short);
        assert_eq!(
            late.reason.as_deref(),
            Some("the load generator fell behind: send lag p99 60.03ms > 50ms (max_send_lag)")
        );

        let short = run(100, 50);
        assert_eq!(short.verdict, Verdict::Inconclusive);
        assert_eq!(short.load.not_sent, 20);
        assert!(short.load.rate_short && !short.load.generator_behind);
        assert!(
            (short.load.achieved_rate - 98.0).abs() < 0.1,
            "{}",
            short.load.achieved_rate
        );
        assert_eq!(short.phases["baseline"].bad_by_cause["saturated"], 20);
    }

    /// The bound is the scenario's when set; else 50 ms, lowered to a tenth
    /// of the tightest latency check.
    #[test]
    fn the_send_lag_bound_follows_the_scenario() {
        let bound = |extra: &str| {
            let src = format!("description = \"b\"\n[load]\npath = \"/\"\nrate = 10\n{extra}\n");
            let l = crate::scenario::parse(std::path::Path::new("s.toml"), &src).unwrap();
            Plan::resolve(&l).load.unwrap().max_send_lag_us
        };
        assert_eq!(bound(""), 50 * MS);
        assert_eq!(bound("max_send_lag = \"2ms\""), 2 * MS);
        let checks = "[[checks]]\nkind = \"latency\"\nphase = \"baseline\"\npercentile = \"p99\"\nmax = \"100ms\"";
        assert_eq!(bound(checks), 10 * MS);
    }
}
