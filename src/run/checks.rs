//! SLO checks: each scenario check becomes one or more `CheckResult`s with
//! the measured value, threshold, unit and a one-line message. Pure.

use hdrhistogram::Histogram;

use crate::measure::recorder::new_histogram;
use crate::measure::{Phase, PhaseStats, Recorder};
use crate::report::model::{CheckResult, CheckStatus, FaultResult, RpoResult};
use crate::scenario::model::{Check, CheckKind, parse_percentile};
use crate::scenario::units::{Quantity, fmt_pct};

/// Counts and latency over the phases a check names (`drill` = all measured).
pub struct Slice {
    pub good: u64,
    pub all: u64,
    pub latency: Histogram<u64>,
}

pub fn slice(rec: &Recorder, phase: &str) -> Slice {
    let phases: Vec<Phase> = match phase {
        "drill" => Phase::MEASURED.to_vec(),
        p => Phase::parse(p).into_iter().collect(),
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

pub fn fmt_secs(s: f64) -> String {
    fmt_value(s, "s")
}

pub fn fmt_ms(ms: f64) -> String {
    fmt_value(ms, "ms")
}

fn result(
    name: String,
    pass: bool,
    measured: Option<f64>,
    threshold: f64,
    unit: &str,
    message: String,
) -> CheckResult {
    CheckResult {
        measured,
        threshold: Some(threshold),
        unit: unit.into(),
        ..verdict(name, pass, message)
    }
}

/// A check with no single measured value (steady-state, faults-reverted).
pub fn verdict(name: impl Into<String>, pass: bool, message: String) -> CheckResult {
    CheckResult {
        name: name.into(),
        status: if pass {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        measured: None,
        threshold: None,
        unit: String::new(),
        message,
    }
}

/// A ratio of good outcomes against a minimum ratio (0..1).
pub fn ratio(name: &str, good: u64, all: u64, min: f64, message: String) -> CheckResult {
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
        "ratio",
        message,
    )
}

/// Evaluates one check. `faults` are the injected faults' results.
pub fn evaluate(
    c: &Check,
    rec: &Recorder,
    faults: &[FaultResult],
    budget_pct: f64,
    rpo: Option<&RpoResult>,
) -> Vec<CheckResult> {
    let kind = *c.kind.get_ref();
    let max_secs = || match c.max.as_ref().map(|q| *q.get_ref()) {
        Some(Quantity::Duration(d)) => d.as_secs_f64(),
        _ => f64::INFINITY,
    };
    let pct = |q: Option<&toml::Spanned<Quantity>>| match q.map(|q| *q.get_ref()) {
        Some(Quantity::Percent(p)) => p.0 * 100.0,
        _ => 0.0,
    };
    match kind {
        CheckKind::ConfigSync | CheckKind::ComponentReady => {
            let max = max_secs();
            let (what, key) = if kind == CheckKind::ConfigSync {
                ("config sync", "config_sync_s")
            } else {
                ("component ready", "component_ready_s")
            };
            faults
                .iter()
                .filter(|f| c.fault.as_ref().is_none_or(|n| *n.get_ref() == f.name))
                .filter(|f| {
                    c.fault.is_some()
                        || f.extra.contains_key(key)
                        || kind == CheckKind::ConfigSync && f.component == "istiod"
                })
                .map(|f| {
                    let name = c
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}:{}", kind.name(), f.name));
                    match f.extra.get(key) {
                        None => result(
                            name,
                            false,
                            None,
                            max,
                            "s",
                            format!(
                                "{what}: not observed within the drill (max {})",
                                fmt_secs(max)
                            ),
                        ),
                        Some(&v) => {
                            let pass = v <= max;
                            result(
                                name,
                                pass,
                                Some(v),
                                max,
                                "s",
                                format!(
                                    "{what} {} {} {}",
                                    fmt_secs(v),
                                    if pass { "≤" } else { ">" },
                                    fmt_secs(max)
                                ),
                            )
                        }
                    }
                })
                .collect()
        }
        CheckKind::Rpo => {
            let name = c.name.clone().unwrap_or_else(|| "rpo".into());
            let max = c.max.as_ref().map(|q| *q.get_ref());
            let Some(r) = rpo else {
                let t = match max {
                    Some(Quantity::Count(n)) => n as f64,
                    _ => max_secs(),
                };
                return vec![result(
                    name,
                    false,
                    None,
                    t,
                    "s",
                    "rpo: not measured (no database fault completed)".into(),
                )];
            };
            match max {
                Some(Quantity::Count(n)) => {
                    let pass = r.lost_writes <= n;
                    let msg = format!(
                        "lost writes {} {} {n} ({} acknowledged, {} indeterminate)",
                        r.lost_writes,
                        if pass { "≤" } else { ">" },
                        r.acknowledged,
                        r.indeterminate
                    );
                    vec![result(
                        name,
                        pass,
                        Some(r.lost_writes as f64),
                        n as f64,
                        "count",
                        msg,
                    )]
                }
                _ => {
                    let max = max_secs();
                    let pass = r.rpo_s <= max;
                    let msg = format!(
                        "rpo {} {} {} ({} lost writes)",
                        fmt_secs(r.rpo_s),
                        if pass { "≤" } else { ">" },
                        fmt_secs(max),
                        r.lost_writes
                    );
                    vec![result(name, pass, Some(r.rpo_s), max, "s", msg)]
                }
            }
        }
        CheckKind::WriteRto => {
            let name = c.name.clone().unwrap_or_else(|| "write-rto".into());
            let max = max_secs();
            match rpo.and_then(|r| r.write_rto_s) {
                Some(v) => {
                    let pass = v <= max;
                    vec![result(
                        name,
                        pass,
                        Some(v),
                        max,
                        "s",
                        format!(
                            "write rto {} {} {}",
                            fmt_secs(v),
                            if pass { "≤" } else { ">" },
                            fmt_secs(max)
                        ),
                    )]
                }
                None => vec![result(
                    name,
                    false,
                    None,
                    max,
                    "s",
                    "write rto: no write succeeded on the new primary before the end".into(),
                )],
            }
        }
        CheckKind::Rto | CheckKind::Outage => {
            let max = max_secs();
            let what = kind.name();
            faults
                .iter()
                .filter(|f| c.fault.as_ref().is_none_or(|n| *n.get_ref() == f.name))
                .map(|f| {
                    let name = c
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{what}:{}", f.name));
                    let measured = if kind == CheckKind::Rto {
                        f.rto_s
                    } else {
                        Some(f.outage_s)
                    };
                    match measured {
                        None => result(
                            name,
                            false,
                            None,
                            max,
                            "s",
                            format!(
                                "{what} not recovered before the observation ended (max {})",
                                fmt_secs(max)
                            ),
                        ),
                        Some(v) => {
                            let pass = v <= max;
                            let shown = if kind == CheckKind::Rto && f.recovery == "no-impact" {
                                "0s (no impact)".to_string()
                            } else {
                                fmt_secs(v)
                            };
                            result(
                                name,
                                pass,
                                Some(v),
                                max,
                                "s",
                                format!(
                                    "{what} {shown} {} {}",
                                    if pass { "≤" } else { ">" },
                                    fmt_secs(max)
                                ),
                            )
                        }
                    }
                })
                .collect()
        }
        CheckKind::Availability => {
            let phase = c.phase.as_ref().map_or("drill", |p| p.get_ref().as_str());
            let min = pct(c.min.as_ref());
            let s = slice(rec, phase);
            let name = c
                .name
                .clone()
                .unwrap_or_else(|| format!("availability:{phase}"));
            if s.all == 0 {
                return vec![result(
                    name,
                    false,
                    None,
                    min / 100.0,
                    "ratio",
                    format!("availability: no requests were due in {phase}"),
                )];
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
            // results.json holds fractions as ratios (report/model.rs).
            vec![result(
                name,
                pass,
                Some(v / 100.0),
                min / 100.0,
                "ratio",
                msg,
            )]
        }
        CheckKind::Latency => {
            let phase = c.phase.as_ref().map_or("drill", |p| p.get_ref().as_str());
            let pname = c
                .percentile
                .as_ref()
                .map_or("p99", |p| p.get_ref().as_str());
            let q = parse_percentile(pname).unwrap_or(0.99);
            let max_ms = max_secs() * 1000.0;
            let s = slice(rec, phase);
            let name = c
                .name
                .clone()
                .unwrap_or_else(|| format!("latency-{pname}:{phase}"));
            if s.latency.is_empty() {
                return vec![result(
                    name,
                    false,
                    None,
                    max_ms,
                    "ms",
                    format!("latency {pname}: no answered requests in {phase}"),
                )];
            }
            let v = s.latency.value_at_quantile(q) as f64 / 1000.0;
            let pass = v <= max_ms;
            vec![result(
                name,
                pass,
                Some(v),
                max_ms,
                "ms",
                format!(
                    "{pname} {} {} {} ({phase})",
                    fmt_ms(v),
                    if pass { "≤" } else { ">" },
                    fmt_ms(max_ms)
                ),
            )]
        }
        CheckKind::ErrorBudget => {
            let max = pct(c.max.as_ref());
            let name = c.name.clone().unwrap_or_else(|| "error-budget".into());
            let pass = budget_pct <= max;
            let msg = format!(
                "error budget consumed {}% {} {}%",
                fmt_pct(budget_pct),
                if pass { "≤" } else { ">" },
                fmt_pct(max)
            );
            vec![result(name, pass, Some(budget_pct), max, "%", msg)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Cause, Outcome, Sample};
    use crate::scenario;

    fn checks(src: &str) -> Vec<Check> {
        let full = format!("description = \"t\"\n[load]\npath = \"/\"\nrate = 10\n{src}");
        let l = scenario::parse(std::path::Path::new("t.toml"), &full).unwrap();
        l.scenario
            .checks
            .into_iter()
            .map(|c| c.into_inner())
            .collect()
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
        assert_eq!(a.unit, "ratio");
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
            name: "f".into(),
            component: "c".into(),
            region: None,
            action: "delete".into(),
            injected_at_s: 1.0,
            reverted_at_s: None,
            injected_at: String::new(),
            reverted_at: None,
            rto_s: Some(41.2),
            recovery: "recovered".into(),
            time_to_impact_s: None,
            outage_s: 0.0,
            recovered_at_s: None,
            ended: "healed".into(),
            extra: Default::default(),
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
}
