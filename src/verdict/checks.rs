//! SLO checks: each scenario check becomes one or more `CheckResult`s with
//! the measured value, threshold, unit and a one-line message. Pure.

use hdrhistogram::Histogram;

use crate::base::units::fmt_pct;
use crate::history;
use crate::measure::stats::new_histogram;
use crate::measure::{Phase, PhaseStats, Recorder};
use crate::results::{
    AlertResult, CheckName, CheckResult, CheckStatus, FaultResult, ProbeResult, Recovery,
    RpoResult, Unit,
};
use crate::scenario::plan::{CheckPlan, CheckSpec, Followed, PhaseScope, RpoLimit};

/// Counts and latency over the phases a check names (`drill` = all measured).
pub(crate) struct Slice {
    pub good: u64,
    pub all: u64,
    pub latency: Histogram<u64>,
}

pub(crate) fn slice(rec: &Recorder, phase: PhaseScope) -> Slice {
    let phases: Vec<Phase> = match phase {
        PhaseScope::Drill => Phase::MEASURED.to_vec(),
        PhaseScope::Baseline => vec![Phase::Baseline],
        PhaseScope::Fault => vec![Phase::Fault],
        PhaseScope::Recovery => vec![Phase::Recovery],
    };
    let mut s = Slice {
        good: 0,
        all: 0,
        latency: new_histogram(3),
    };
    for p in phases {
        let st: &PhaseStats = rec.phase(p);
        s.good += st.good;
        s.all += st.total();
        let _ = s.latency.add(&st.latency);
    }
    s
}

/// A value with its unit, to a precision that suits its size: `30s`,
/// `41.2s`, `2.98s`; `1000ms`, `12.4ms`.
fn fmt_value(v: f64, unit: &str) -> String {
    if !v.is_finite() || v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.2}{unit}")
    }
}

pub(crate) fn fmt_secs(s: f64) -> String {
    fmt_value(s, "s")
}

pub(crate) fn fmt_ms(ms: f64) -> String {
    fmt_value(ms, "ms")
}

fn result(
    name: CheckName,
    pass: bool,
    measured: Option<f64>,
    threshold: f64,
    unit: Unit,
    message: String,
) -> CheckResult {
    CheckResult {
        measured,
        threshold: Some(threshold),
        unit,
        ..verdict(name, pass, message)
    }
}

/// A check with no single measured value (steady-state, faults-reverted).
pub(crate) fn verdict(name: impl Into<CheckName>, pass: bool, message: String) -> CheckResult {
    CheckResult {
        name: name.into(),
        status: if pass {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        measured: None,
        threshold: None,
        unit: Unit::Unitless,
        message,
    }
}

/// A ratio of good outcomes against a minimum ratio (0..1).
pub(crate) fn ratio(
    name: impl Into<CheckName>,
    good: u64,
    all: u64,
    min: f64,
    message: String,
) -> CheckResult {
    let v = if all > 0 {
        good as f64 / all as f64
    } else {
        0.0
    };
    result(
        name.into(),
        all > 0 && good > 0 && v >= min,
        Some(v),
        min,
        Unit::Ratio,
        message,
    )
}

/// What a check is judged against: the recorder, the faults as they ran,
/// the error budget consumed and the data loss measured.
pub(crate) struct Measured<'a> {
    pub rec: &'a Recorder,
    pub faults: &'a [FaultResult],
    pub budget_pct: f64,
    pub rpo: Option<&'a RpoResult>,
    /// Earlier runs of this drill on this target, oldest first (for
    /// `regression`).
    pub history: &'a [history::Record],
    /// RTO resolution of this run: RTO and time to impact changes within
    /// it are noise, never a regression.
    pub resolution_s: f64,
}

/// Evaluates one check: one function per kind. Per-fault kinds give one
/// result per fault they name (every fault when they name none).
pub(crate) fn evaluate(c: &CheckPlan, m: &Measured) -> Vec<CheckResult> {
    let named = |default: CheckName| c.name.as_deref().map_or(default, CheckName::from);
    match &c.spec {
        CheckSpec::Rto { fault, max_s } => per_fault(fault, m, |f| {
            rto(named(CheckName::Rto(f.name.clone())), f, *max_s)
        }),
        CheckSpec::Outage { fault, max_s } => per_fault(fault, m, |f| {
            outage(named(CheckName::Outage(f.name.clone())), f, *max_s)
        }),
        CheckSpec::ConfigSync { .. } | CheckSpec::ComponentReady { .. } => target_side(c, m),
        CheckSpec::Availability { phase, min_pct } => {
            vec![availability(
                named(CheckName::Availability(phase.name().into())),
                m.rec,
                *phase,
                *min_pct,
            )]
        }
        CheckSpec::Latency {
            phase,
            percentile,
            quantile,
            max_ms,
        } => vec![latency(
            named(CheckName::Latency {
                percentile: percentile.clone(),
                phase: phase.name().into(),
            }),
            m.rec,
            *phase,
            percentile,
            *quantile,
            *max_ms,
        )],
        CheckSpec::ErrorBudget { max_pct } => {
            vec![error_budget(
                named(CheckName::ErrorBudget),
                m.budget_pct,
                *max_pct,
            )]
        }
        CheckSpec::Rpo { max } => vec![rpo(named(CheckName::Rpo), m.rpo, *max)],
        CheckSpec::WriteRto { max_s } => {
            vec![write_rto(named(CheckName::WriteRto), m.rpo, *max_s)]
        }
        CheckSpec::Regression { .. } => regression(c, m),
    }
}

/// One result per fault the check names (every fault when it names none).
fn per_fault(
    fault: &Option<String>,
    m: &Measured,
    judge: impl Fn(&FaultResult) -> CheckResult,
) -> Vec<CheckResult> {
    m.faults
        .iter()
        .filter(|f| fault.as_ref().is_none_or(|n| *n == f.name))
        .map(judge)
        .collect()
}

fn at_most(
    name: CheckName,
    what: &str,
    v: f64,
    shown: String,
    max: f64,
    unit: Unit,
    fmt: fn(f64) -> String,
) -> CheckResult {
    let pass = v <= max;
    let msg = format!(
        "{what} {shown} {} {}",
        if pass { "≤" } else { ">" },
        fmt(max)
    );
    result(name, pass, Some(v), max, unit, msg)
}

fn rto(name: CheckName, f: &FaultResult, max: f64) -> CheckResult {
    match f.rto_s {
        None => result(
            name,
            false,
            None,
            max,
            Unit::Seconds,
            format!(
                "rto not recovered before the observation ended (max {})",
                fmt_secs(max)
            ),
        ),
        Some(v) => {
            let shown = match f.recovery {
                Recovery::NoImpact => "0s (no impact)".to_string(),
                Recovery::Recovered | Recovery::NotRecovered => fmt_secs(v),
            };
            at_most(name, "rto", v, shown, max, Unit::Seconds, fmt_secs)
        }
    }
}

fn outage(name: CheckName, f: &FaultResult, max: f64) -> CheckResult {
    at_most(
        name,
        "outage",
        f.outage_s,
        fmt_secs(f.outage_s),
        max,
        Unit::Seconds,
        fmt_secs,
    )
}

/// Config sync and component readiness: observed on the target, per fault.
fn target_side(c: &CheckPlan, m: &Measured) -> Vec<CheckResult> {
    let (fault, max, config_sync) = match &c.spec {
        CheckSpec::ConfigSync { fault, max_s } => (fault, *max_s, true),
        CheckSpec::ComponentReady { fault, max_s } => (fault, *max_s, false),
        _ => unreachable!("target_side is called for target-side kinds only"),
    };
    let (what, key): (_, fn(&FaultResult) -> Option<f64>) = if config_sync {
        ("config sync", |f| f.extra.config_sync_s)
    } else {
        ("component ready", |f| f.extra.component_ready_s)
    };
    m.faults
        .iter()
        .filter(|f| fault.as_ref().is_none_or(|n| *n == f.name))
        .filter(|f| fault.is_some() || key(f).is_some() || config_sync && f.component == "istiod")
        .map(|f| {
            let name = match &c.name {
                Some(n) => CheckName::from(n.as_str()),
                None if config_sync => CheckName::ConfigSync(f.name.clone()),
                None => CheckName::ComponentReady(f.name.clone()),
            };
            match key(f) {
                None => result(
                    name,
                    false,
                    None,
                    max,
                    Unit::Seconds,
                    format!(
                        "{what}: not observed within the drill (max {})",
                        fmt_secs(max)
                    ),
                ),
                Some(v) => at_most(name, what, v, fmt_secs(v), max, Unit::Seconds, fmt_secs),
            }
        })
        .collect()
}

fn availability(name: CheckName, rec: &Recorder, phase: PhaseScope, min: f64) -> CheckResult {
    let s = slice(rec, phase);
    let phase = phase.name();
    // results.json holds fractions as ratios (report/model.rs); the message
    // speaks in percent.
    if s.all == 0 {
        let msg = format!("availability: no requests were due in {phase}");
        return result(name, false, None, min / 100.0, Unit::Ratio, msg);
    }
    let v = s.good as f64 / s.all as f64 * 100.0;
    let pass = v >= min;
    let msg = format!(
        "availability {}% {} {}% ({phase}: {} bad of {})",
        fmt_pct(v),
        if pass { "≥" } else { "<" },
        fmt_pct(min),
        s.all - s.good,
        s.all
    );
    result(name, pass, Some(v / 100.0), min / 100.0, Unit::Ratio, msg)
}

fn latency(
    name: CheckName,
    rec: &Recorder,
    phase: PhaseScope,
    pname: &str,
    q: f64,
    max_ms: f64,
) -> CheckResult {
    let s = slice(rec, phase);
    let phase = phase.name();
    if s.latency.is_empty() {
        let msg = format!("latency {pname}: no answered requests in {phase}");
        return result(name, false, None, max_ms, Unit::Millis, msg);
    }
    let v = s.latency.value_at_quantile(q) as f64 / 1000.0;
    let mut r = at_most(name, pname, v, fmt_ms(v), max_ms, Unit::Millis, fmt_ms);
    r.message.push_str(&format!(" ({phase})"));
    r
}

fn error_budget(name: CheckName, consumed: f64, max: f64) -> CheckResult {
    let pass = consumed <= max;
    let msg = format!(
        "error budget consumed {}% {} {}%",
        fmt_pct(consumed),
        if pass { "≤" } else { ">" },
        fmt_pct(max)
    );
    result(name, pass, Some(consumed), max, Unit::Percent, msg)
}

fn rpo(name: CheckName, rpo: Option<&RpoResult>, max: RpoLimit) -> CheckResult {
    let Some(r) = rpo else {
        let t = match max {
            RpoLimit::Writes(n) => n as f64,
            RpoLimit::Seconds(s) => s,
        };
        let msg = "rpo: not measured (no database fault completed)".to_string();
        return result(name, false, None, t, Unit::Seconds, msg);
    };
    match max {
        RpoLimit::Writes(n) => {
            let pass = r.lost_writes <= n;
            let msg = format!(
                "lost writes {} {} {n} ({} acknowledged, {} indeterminate)",
                r.lost_writes,
                if pass { "≤" } else { ">" },
                r.acknowledged,
                r.indeterminate
            );
            result(
                name,
                pass,
                Some(r.lost_writes as f64),
                n as f64,
                Unit::Count,
                msg,
            )
        }
        RpoLimit::Seconds(max) => {
            let mut c = at_most(
                name,
                "rpo",
                r.rpo_s,
                fmt_secs(r.rpo_s),
                max,
                Unit::Seconds,
                fmt_secs,
            );
            c.message
                .push_str(&format!(" ({} lost writes)", r.lost_writes));
            c
        }
    }
}

/// This run's figure against the median of the last passing runs in the
/// history: worse by more than the allowed share fails; no earlier passing
/// run means nothing to compare with (skipped, with the reason).
fn regression(c: &CheckPlan, m: &Measured) -> Vec<CheckResult> {
    let CheckSpec::Regression {
        metric,
        fault,
        runs,
        max_increase,
    } = &c.spec
    else {
        unreachable!("regression is called for regression checks only")
    };
    // (figure, this run's value, resolution in the figure's unit)
    let subjects: Vec<(history::Metric, Option<f64>, f64)> = match metric {
        Followed::Rto | Followed::TimeToImpact => m
            .faults
            .iter()
            .filter(|f| fault.as_ref().is_none_or(|n| *n == f.name))
            .map(|f| {
                let name = f.name.clone();
                if *metric == Followed::Rto {
                    (history::Metric::Rto(name), f.rto_s, m.resolution_s)
                } else {
                    let tti = f.time_to_impact_s;
                    (history::Metric::TimeToImpact(name), tti, m.resolution_s)
                }
            })
            .collect(),
        Followed::FaultP99 => {
            let s = slice(m.rec, PhaseScope::Fault);
            let p99 =
                (!s.latency.is_empty()).then(|| s.latency.value_at_quantile(0.99) as f64 / 1000.0);
            let res = p99.map_or(0.0, |v| v * 1e-3);
            vec![(history::Metric::FaultP99, p99, res)]
        }
        Followed::ErrorBudget => vec![(history::Metric::Budget, Some(m.budget_pct), 0.0)],
    };
    subjects
        .into_iter()
        .map(|(hm, current, resolution)| {
            let (label, unit) = (hm.label(), hm.unit());
            let name = c
                .name
                .as_deref()
                .map_or_else(|| CheckName::Regression(label.clone()), CheckName::from);
            let max = max_increase * 100.0;
            let Some(base) = history::baseline(m.history, &hm, *runs) else {
                return CheckResult {
                    status: CheckStatus::Skipped,
                    threshold: Some(max),
                    unit: Unit::Percent,
                    ..verdict(
                        name,
                        true,
                        format!("regression {label}: no earlier passing run in the history to compare with"),
                    )
                };
            };
            let of = format!("the median {:.3}{unit} of the last {} passing run(s)", base.median, base.runs);
            match current {
                None => result(name, false, None, max, Unit::Percent, format!("regression {label}: not measured this run; {of}")),
                Some(v) => {
                    let inc = history::increase(v, base.median) * 100.0;
                    let pass = !history::regressed(v, base.median, *max_increase, resolution);
                    let msg = if pass && inc > max {
                        format!(
                            "{label} {v:.3}{unit} is {inc:+.0}% against {of}, a change within the measurement's resolution ±{resolution:.3}{unit}: not a regression"
                        )
                    } else {
                        format!(
                            "{label} {v:.3}{unit} is {inc:+.0}% against {of} ({} +{}%)",
                            if pass { "≤" } else { ">" },
                            fmt_pct(max)
                        )
                    };
                    result(name, pass, Some(inc), max, Unit::Percent, msg)
                }
            }
        })
        .collect()
}

fn write_rto(name: CheckName, rpo: Option<&RpoResult>, max: f64) -> CheckResult {
    match rpo.and_then(|r| r.write_rto_s) {
        Some(v) => at_most(
            name,
            "write rto",
            v,
            fmt_secs(v),
            max,
            Unit::Seconds,
            fmt_secs,
        ),
        None => result(
            name,
            false,
            None,
            max,
            Unit::Seconds,
            "write rto: no write succeeded on the new primary before the end".into(),
        ),
    }
}

/// The checks of what on-call saw: per expected alert, time to detect
/// (and time to resolve when the scenario bounds it); per probe, its
/// limits; and, when the scenario says so, no unexpected alert. With
/// `skipped`, each is skipped with that reason, never passed.
pub(crate) fn alert_checks(
    alerts: &[AlertResult],
    probes: &[ProbeResult],
    unexpected_fail: bool,
    skipped: Option<&str>,
    interrupted: bool,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for a in alerts.iter().filter(|a| a.expected) {
        out.push(alert_detected(a, skipped, interrupted));
        if let Some(limit) = a.resolve_within_s {
            out.push(alert_resolved(a, limit, skipped, interrupted));
        }
    }
    out.extend(probes.iter().map(|p| match skipped {
        Some(why) => not_measured(CheckName::Probe(p.name.clone()), why),
        None => probe(p),
    }));
    if unexpected_fail {
        out.push(unexpected_alerts(alerts, skipped));
    }
    out
}

/// A check that could not be measured: skipped, saying why.
fn not_measured(name: CheckName, why: &str) -> CheckResult {
    CheckResult {
        status: CheckStatus::Skipped,
        message: format!("not measured: {why}"),
        ..verdict(name, false, String::new())
    }
}

/// `alert:<alert>`: the expected alert fired within `fire_within` of its
/// fault's inject. Interrupted by the user before it fired, it is skipped,
/// never a failure of the monitoring.
fn alert_detected(a: &AlertResult, skipped: Option<&str>, interrupted: bool) -> CheckResult {
    let name = CheckName::Alert(a.alert.clone());
    let within = a.fire_within_s.unwrap_or(f64::INFINITY);
    match (skipped, a.time_to_detect_s) {
        (Some(why), _) => not_measured(name, why),
        (None, None) if interrupted => not_measured(
            name,
            "the drill was interrupted (Ctrl-C) before the alert fired",
        ),
        (None, Some(t)) => at_most(
            name,
            "time to detect",
            t,
            fmt_secs(t),
            within,
            Unit::Seconds,
            fmt_secs,
        ),
        (None, None) => result(
            name,
            false,
            None,
            within,
            Unit::Seconds,
            format!(
                "{} did not fire within the drill ({})",
                a.alert,
                a.note.as_deref().unwrap_or("never fired")
            ),
        ),
    }
}

/// `alert-resolved:<alert>`: the alert resolved within `limit` of the
/// traffic recovering; skipped when it never fired.
fn alert_resolved(
    a: &AlertResult,
    limit: f64,
    skipped: Option<&str>,
    interrupted: bool,
) -> CheckResult {
    let name = CheckName::AlertResolved(a.alert.clone());
    match (skipped, a.time_to_detect_s, a.time_to_resolve_s) {
        (Some(why), _, _) => not_measured(name, why),
        (None, None, _) => not_measured(name, "it never fired"),
        (None, Some(_), None) if interrupted => not_measured(
            name,
            "the drill was interrupted (Ctrl-C) before the alert resolved",
        ),
        (None, Some(_), Some(t)) => at_most(
            name,
            "time to resolve",
            t,
            fmt_secs(t),
            limit,
            Unit::Seconds,
            fmt_secs,
        ),
        (None, Some(_), None) => result(
            name,
            false,
            None,
            limit,
            Unit::Seconds,
            format!("{} still firing at the end of the drill", a.alert),
        ),
    }
}

/// `probe:<probe>`: every reading within the probe's limits, and at least
/// one reading (no value proves nothing).
fn probe(p: &ProbeResult) -> CheckResult {
    let (lo, hi) = (p.min.unwrap_or(f64::NAN), p.max.unwrap_or(f64::NAN));
    let low = p.limit_min.filter(|m| lo.is_nan() || lo < *m);
    let high = p.limit_max.filter(|m| hi.is_nan() || hi > *m);
    let pass = p.samples > 0 && low.is_none() && high.is_none();
    let message = if p.samples == 0 {
        format!("{}: the query returned no value during {}", p.name, p.phase)
    } else {
        format!(
            "{} during {}: {} readings between {lo} and {hi}{}{}",
            p.name,
            p.phase,
            p.samples,
            p.limit_min.map_or(String::new(), |m| format!(
                "; min {} {m}",
                if low.is_none() { "≥" } else { "<" }
            )),
            p.limit_max.map_or(String::new(), |m| format!(
                "; max {} {m}",
                if high.is_none() { "≤" } else { ">" }
            )),
        )
    };
    let mut r = verdict(CheckName::Probe(p.name.clone()), pass, message);
    r.measured = if high.is_some() || p.limit_min.is_none() {
        p.max
    } else {
        p.min
    };
    r.threshold = p.limit_max.or(p.limit_min);
    r
}

/// `unexpected-alerts`: no alert fired that the scenario did not expect;
/// a failure names the ones that did.
fn unexpected_alerts(alerts: &[AlertResult], skipped: Option<&str>) -> CheckResult {
    let name = CheckName::UnexpectedAlerts;
    if let Some(why) = skipped {
        return not_measured(name, why);
    }
    let seen: Vec<&str> = alerts
        .iter()
        .filter(|a| !a.expected)
        .map(|a| a.alert.as_str())
        .collect();
    verdict(
        name,
        seen.is_empty(),
        if seen.is_empty() {
            "no alert fired that the drill did not expect".into()
        } else {
            format!("fired but not expected: {}", seen.join(", "))
        },
    )
}

#[cfg(test)]
mod tests {

    fn probe(samples: u64, max: f64) -> crate::results::ProbeResult {
        crate::results::ProbeResult {
            name: "mesh-5xx".into(),
            query: "q".into(),
            phase: "fault".into(),
            samples,
            min: (samples > 0).then_some(0.0),
            max: (samples > 0).then_some(max),
            last: None,
            limit_min: None,
            limit_max: Some(0.05),
            client_error_ratio: None,
            note: None,
        }
    }

    #[test]
    fn an_alert_the_user_interrupted_before_it_fired_is_skipped_not_failed() {
        let alert = |fired: Option<f64>| crate::results::AlertResult {
            alert: "IngressGatewayDown".into(),
            expected: true,
            fault: Some("kill".into()),
            fired_at_s: fired,
            time_to_detect_s: fired,
            resolved_at_s: None,
            time_to_resolve_s: None,
            fire_within_s: Some(30.0),
            resolve_within_s: Some(30.0),
            suppressed: false,
            note: None,
        };
        let cut = alert_checks(&[alert(None)], &[], false, None, true);
        assert_eq!(cut[0].status, CheckStatus::Skipped, "{cut:?}");
        assert!(cut[0].message.contains("interrupted"), "{}", cut[0].message);
        // Fired, then interrupted before it resolved: detection judged,
        // resolution skipped.
        let half = alert_checks(&[alert(Some(3.0))], &[], false, None, true);
        assert_eq!(half[0].status, CheckStatus::Pass);
        assert_eq!(half[1].status, CheckStatus::Skipped);
        // Not interrupted: never firing is a failure.
        let ran = alert_checks(&[alert(None)], &[], false, None, false);
        assert_eq!(ran[0].status, CheckStatus::Fail);
    }

    #[test]
    fn a_probe_passes_only_with_readings_inside_its_limits_and_skips_say_why() {
        let status = |p| alert_checks(&[], &[p], false, None, false)[0].status;
        assert_eq!(status(probe(10, 0.01)), CheckStatus::Pass);
        assert_eq!(status(probe(10, 0.20)), CheckStatus::Fail);
        assert_eq!(
            status(probe(0, 0.0)),
            CheckStatus::Fail,
            "no value proves nothing"
        );
        let skipped = alert_checks(
            &[],
            &[probe(10, 0.01)],
            true,
            Some("prometheus not installed"),
            false,
        );
        assert!(skipped.iter().all(|c| c.status == CheckStatus::Skipped));
        assert!(skipped[0].message.contains("prometheus not installed"));
        assert_eq!(
            skipped.len(),
            2,
            "the unexpected-alerts check is skipped too"
        );
    }
    use super::*;
    use crate::measure::{Cause, Outcome, Sample};
    use crate::scenario;

    fn checks(src: &str) -> Vec<CheckPlan> {
        let full = format!("description = \"t\"\n[load]\npath = \"/\"\nrate = 10\n{src}");
        let l = scenario::parse(std::path::Path::new("t.toml"), &full).unwrap();
        scenario::Plan::resolve(&l).checks
    }

    fn evaluate(
        c: &CheckPlan,
        rec: &Recorder,
        faults: &[FaultResult],
        budget_pct: f64,
        rpo: Option<&RpoResult>,
    ) -> Vec<CheckResult> {
        super::evaluate(
            c,
            &Measured {
                rec,
                faults,
                budget_pct,
                rpo,
                history: &[],
                resolution_s: 0.1,
            },
        )
    }

    fn recorder() -> Recorder {
        let mut r = Recorder::new(100_000, 2_000_000);
        r.mark(Phase::Baseline, 0);
        // 1000 requests, 3 bad, latencies 1..=1000 ms.
        for i in 0..1000u64 {
            let outcome = if i < 3 {
                Outcome::Bad(Cause::Status5xx)
            } else {
                Outcome::Good
            };
            r.record(&Sample {
                due: i * 1000,
                sent: i * 1000,
                done: i * 1000 + (i + 1) * 1000,
                outcome,
                has_latency: true,
            });
        }
        r
    }

    #[test]
    fn availability_and_latency_against_known_streams() {
        let r = recorder();
        let cs = checks(
            "[[checks]]\nkind = \"availability\"\nphase = \"baseline\"\nmin = \"99.8%\"\n[[checks]]\nkind = \"latency\"\nphase = \"baseline\"\npercentile = \"p99\"\nmax = \"900ms\"\n",
        );
        let a = &evaluate(&cs[0], &r, &[], 0.0, None)[0];
        assert_eq!(a.status, CheckStatus::Fail);
        assert!((a.measured.unwrap() - 0.997).abs() < 1e-9);
        assert_eq!(a.unit, Unit::Ratio);
        assert_eq!(
            a.message,
            "availability 99.7% < 99.8% (baseline: 3 bad of 1000)"
        );
        let l = &evaluate(&cs[1], &r, &[], 0.0, None)[0];
        assert_eq!(l.status, CheckStatus::Fail);
        let p99 = l.measured.unwrap();
        assert!((989.0..=991.0).contains(&p99), "{p99}");
        assert!(l.message.starts_with("p99 990ms > 900ms"), "{}", l.message);
    }

    #[test]
    fn rto_check_reads_like_the_design_says() {
        let cs = checks("[[checks]]\nkind = \"rto\"\nmax = \"30s\"\n");
        let mut f = FaultResult {
            rto_s: Some(41.2),
            ..sample_fault()
        };
        let r = Recorder::new(100_000, 1);
        let c = &evaluate(&cs[0], &r, std::slice::from_ref(&f), 0.0, None)[0];
        assert_eq!(c.message, "rto 41.2s > 30s");
        assert_eq!(c.status, CheckStatus::Fail);
        f.rto_s = None;
        let c = &evaluate(&cs[0], &r, std::slice::from_ref(&f), 0.0, None)[0];
        assert_eq!(c.status, CheckStatus::Fail);
        assert!(c.message.contains("not recovered"));
    }

    /// Six monthly runs: RTO near 3 s, then 4.5 s. The regression check
    /// (max +20% over the median of the last 5 passing runs) passes for
    /// each month until the sixth, and has nothing to compare the first with.
    #[test]
    fn a_regression_check_fails_exactly_when_the_figure_got_worse() {
        let cs = checks(
            "[[faults]]\nname = \"delete-primary-ingress\"\ncomponent = \"ingress-gateway\"\nregion = \"primary\"\naction = \"delete\"\n[[checks]]\nkind = \"regression\"\nmetric = \"rto\"\nruns = 5\nmax = \"20%\"\n",
        );
        let months = crate::history::tests::months();
        let r = Recorder::new(100_000, 1);
        let verdicts: Vec<CheckStatus> = (0..months.len())
            .map(|i| {
                let f = FaultResult {
                    name: "delete-primary-ingress".into(),
                    rto_s: months[i].faults[0].rto_s,
                    ..sample_fault()
                };
                let m = Measured {
                    rec: &r,
                    faults: std::slice::from_ref(&f),
                    budget_pct: 0.0,
                    rpo: None,
                    history: &months[..i],
                    resolution_s: 0.1,
                };
                let c = &super::evaluate(&cs[0], &m)[0];
                assert_eq!(c.name.to_string(), "regression-rto:delete-primary-ingress");
                c.status
            })
            .collect();
        use CheckStatus::*;
        assert_eq!(verdicts, [Skipped, Pass, Pass, Pass, Pass, Fail]);
    }

    fn sample_fault() -> FaultResult {
        FaultResult {
            name: "f".into(),
            component: "c".into(),
            region: None,
            action: "delete".into(),
            injected_at_s: 1.0,
            reverted_at_s: None,
            injected_at: String::new(),
            reverted_at: None,
            rto_s: None,
            recovery: Recovery::Recovered,
            time_to_impact_s: None,
            outage_s: 0.0,
            recovered_at_s: None,
            ended: crate::results::FaultEnd::Healed,
            extra: Default::default(),
        }
    }
}
