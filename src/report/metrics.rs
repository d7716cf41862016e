//! A run's results as Prometheus metrics, for a Pushgateway: what a
//! scheduled drill's dashboard and alerts (`DrillFailed`, `DrillRegressed`,
//! `DrillOverdue` in rules/drill-results.yml) read. Pure: the text and the
//! grouping keys; src/observe/push.rs sends them.
//!
//! Two groups per scenario and target, each replaced whole by a PUT (the
//! Pushgateway's advice for batch jobs: a group holds the last run, never a
//! mix of two): `job="drill"` with every figure of the last run, and
//! `job="drill_success"` with the time of the last passing run, pushed only
//! when a run passes, so that a failing run cannot erase it.
//!
//! One more figure is one more `sheet.set(…)` line: the families are made
//! on first use.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::results::{CheckStatus, DrillResult, Verdict};

/// The content type of the text the groups carry (OpenMetrics text, which
/// the Pushgateway's text parser reads: `# EOF` is a comment to it).
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The job of the group with the last run's figures.
pub(crate) const JOB: &str = "drill";
/// The job of the group with the last passing run's time.
pub(crate) const SUCCESS_JOB: &str = "drill_success";

/// How often the drill is scheduled, for `DrillOverdue`: no passing run
/// within `period + grace` of the last one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub period_s: f64,
    pub grace_s: f64,
}

/// One group to PUT: its job, its grouping labels (besides `job`) and the
/// text exposition of its metrics.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Group {
    pub job: &'static str,
    pub labels: Vec<(String, String)>,
    pub body: String,
}

impl Group {
    /// The group's path under the Pushgateway's URL:
    /// `/metrics/job/<job>/scenario/<s>/target/<t>`. A value outside
    /// `[A-Za-z0-9._-]` (or empty) is written in the `@base64` form the
    /// Pushgateway defines, so that a `/` cannot split it.
    pub(crate) fn path(&self) -> String {
        let mut p = format!("/metrics/job/{}", self.job);
        for (k, v) in &self.labels {
            let plain = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if plain {
                p.push_str(&format!("/{k}/{v}"));
            } else {
                use base64::Engine;
                let b = base64::engine::general_purpose::URL_SAFE.encode(v);
                let b = if b.is_empty() { "=".to_string() } else { b };
                p.push_str(&format!("/{k}@base64/{b}"));
            }
        }
        p
    }
}

type Gauges = Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>;

/// Gauges by name, registered on first use: a name set with labels is a
/// family, one set without is a single gauge (written without `{}`).
struct Sheet {
    registry: Registry,
    families: BTreeMap<&'static str, Gauges>,
    single: BTreeMap<&'static str, Gauge<f64, AtomicU64>>,
}

impl Sheet {
    fn new() -> Sheet {
        Sheet {
            registry: Registry::default(),
            families: BTreeMap::new(),
            single: BTreeMap::new(),
        }
    }

    /// `help` without its final full stop: the encoder adds one.
    fn set(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], v: f64) {
        if labels.is_empty() {
            let g = self.single.entry(name).or_insert_with(|| {
                let g = Gauge::<f64, AtomicU64>::default();
                self.registry.register(name, help, g.clone());
                g
            });
            g.set(v);
            return;
        }
        let family = self.families.entry(name).or_insert_with(|| {
            let f = Gauges::default();
            self.registry.register(name, help, f.clone());
            f
        });
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        family.get_or_create(&labels).set(v);
    }

    fn text(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The groups one run pushes. `regressed`: whether this run regressed
/// against its history (None without history: the metric is left out).
pub(crate) fn groups(
    r: &DrillResult,
    regressed: Option<bool>,
    schedule: Option<Schedule>,
) -> Vec<Group> {
    let labels = vec![
        ("scenario".to_string(), r.scenario.clone()),
        ("target".to_string(), r.target.clone()),
    ];
    let mut out = vec![Group {
        job: JOB,
        labels: labels.clone(),
        body: last_run(r, regressed, schedule),
    }];
    if r.verdict == Verdict::Pass {
        let mut s = Sheet::new();
        s.set(
            "drill_last_success_timestamp_seconds",
            "Unix time the last passing run of this scenario on this target ended",
            &[],
            end_time(r),
        );
        out.push(Group {
            job: SUCCESS_JOB,
            labels,
            body: s.text(),
        });
    }
    out
}

fn start_time(r: &DrillResult) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(&r.started_at)
        .ok()
        .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9)
}

fn end_time(r: &DrillResult) -> f64 {
    start_time(r).map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        },
        |t| t + r.duration_s,
    )
}

/// Every figure of the last run.
fn last_run(r: &DrillResult, regressed: Option<bool>, schedule: Option<Schedule>) -> String {
    let mut s = Sheet::new();
    outcome(&mut s, r, regressed);
    timing(&mut s, r);
    checks(&mut s, r);
    faults(&mut s, r);
    guards(&mut s, r);
    availability(&mut s, r);
    alerts(&mut s, r);
    if let Some(sch) = schedule {
        schedule_figures(&mut s, sch);
    }
    s.text()
}

/// How the last run ended: passed or not, its verdict, its exit code, and
/// (when history was compared) whether it regressed.
fn outcome(s: &mut Sheet, r: &DrillResult, regressed: Option<bool>) {
    s.set(
        "drill_run_success",
        "1 when the last run passed every check, else 0",
        &[],
        flag(r.verdict == Verdict::Pass),
    );
    for v in [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Inconclusive,
        Verdict::Aborted,
        Verdict::Error,
    ] {
        s.set(
            "drill_run_verdict",
            "The last run's verdict: 1 for it, 0 for the others",
            &[("verdict", v.name())],
            flag(r.verdict == v),
        );
    }
    s.set(
        "drill_run_exit_code",
        "The last run's exit code (0 pass, 1 check failed, 3 aborted, 4 revert failed, 5 inconclusive)",
        &[],
        f64::from(r.exit_code()),
    );
    if let Some(reg) = regressed {
        s.set(
            "drill_run_regressed",
            "1 when a figure of the last run is worse than the median of the passing runs before it by more than the threshold and its resolution (drill history --check)",
            &[],
            flag(reg),
        );
    }
}

/// When the last run started and ended, and how long it took.
fn timing(s: &mut Sheet, r: &DrillResult) {
    s.set(
        "drill_run_duration_seconds",
        "How long the last run took",
        &[],
        r.duration_s,
    );
    if let Some(t) = start_time(r) {
        s.set(
            "drill_run_start_timestamp_seconds",
            "Unix time the last run started",
            &[],
            t,
        );
    }
    s.set(
        "drill_run_end_timestamp_seconds",
        "Unix time the last run ended",
        &[],
        end_time(r),
    );
}

/// Each stop guard's figures: whether it stopped the run, and how fast
/// drill reacted to its breach.
fn guards(s: &mut Sheet, r: &DrillResult) {
    for g in &r.guards {
        for (name, v) in g.metrics() {
            let help = match name {
                "drill_time_to_guard_seconds" => {
                    "From a stop guard's breach being visible to drill's first revert request, last run"
                }
                _ => {
                    "1 when the stop guard stopped the last run (breached, or its source unreachable)"
                }
            };
            s.set(name, help, &[("guard", g.name.as_str())], v);
        }
    }
}

/// The availability of each phase measured, and the share of the error
/// budget the run consumed.
fn availability(s: &mut Sheet, r: &DrillResult) {
    for (phase, p) in &r.phases {
        if let Some(a) = p.availability {
            s.set(
                "drill_availability_ratio",
                "Good requests / requests due, per phase of the last run",
                &[("phase", phase)],
                a,
            );
        }
    }
    s.set(
        "drill_error_budget_consumed_ratio",
        "Share of the SLO period's error budget the last run consumed",
        &[],
        r.error_budget.consumed_pct / 100.0,
    );
}

/// For each expected alert: whether it fired, and how long after its
/// fault's inject.
fn alerts(s: &mut Sheet, r: &DrillResult) {
    for a in r.alerts.iter().filter(|a| a.expected) {
        let fault = a.fault.as_deref().unwrap_or("");
        let l = [("alert", a.alert.as_str()), ("fault", fault)];
        s.set(
            "drill_alert_detected",
            "1 when the expected alert fired during the last run",
            &l,
            flag(a.time_to_detect_s.is_some()),
        );
        if let Some(t) = a.time_to_detect_s {
            s.set(
                "drill_alert_time_to_detect_seconds",
                "Time from the fault's inject to the expected alert firing, last run",
                &l,
                t,
            );
        }
    }
}

/// How often the drill is scheduled and how late it may be, for the
/// DrillOverdue alert.
fn schedule_figures(s: &mut Sheet, sch: Schedule) {
    s.set(
        "drill_schedule_period_seconds",
        "How often the drill is scheduled to run (DrillOverdue)",
        &[],
        sch.period_s,
    );
    s.set(
        "drill_schedule_grace_seconds",
        "How late a scheduled run may pass before DrillOverdue fires",
        &[],
        sch.grace_s,
    );
}

fn checks(s: &mut Sheet, r: &DrillResult) {
    let mut failed = 0u32;
    for c in &r.checks {
        let v = match c.status {
            CheckStatus::Pass => 1.0,
            CheckStatus::Fail => {
                failed += 1;
                0.0
            }
            CheckStatus::Skipped => continue,
        };
        s.set(
            "drill_check_passed",
            "Per check of the last run (as in junit.xml): 1 passed, 0 failed; skipped checks are left out",
            &[("check", &c.name.to_string())],
            v,
        );
    }
    s.set(
        "drill_checks_failed",
        "How many checks of the last run failed",
        &[],
        f64::from(failed),
    );
}

fn faults(s: &mut Sheet, r: &DrillResult) {
    for f in &r.faults {
        let l = [("fault", f.name.as_str())];
        s.set(
            "drill_fault_recovered",
            "1 when the service recovered from the fault within the observation (RTO known)",
            &l,
            flag(f.rto_s.is_some()),
        );
        if let Some(rto) = f.rto_s {
            s.set(
                "drill_fault_rto_seconds",
                "Recovery time of the fault: inject to the first stretch that held the recovery ratio",
                &l,
                rto,
            );
        }
        if let Some(t) = f.time_to_impact_s {
            s.set(
                "drill_fault_time_to_impact_seconds",
                "Inject to the first bad request's due time",
                &l,
                t,
            );
        }
        s.set(
            "drill_fault_outage_seconds",
            "Total length of bad windows after the inject",
            &l,
            f.outage_s,
        );
    }
    if r.load.rate > 0.0 {
        s.set(
            "drill_rto_resolution_seconds",
            "Resolution of RTO and time to impact in the last run",
            &[],
            r.recovery.resolution_s,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testdata::sample_result;

    fn value(body: &str, series: &str) -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn a_failing_run_pushes_its_figures_and_no_success_time() {
        let r = sample_result();
        assert_eq!(r.verdict, Verdict::Fail);
        let g = groups(&r, Some(true), None);
        assert_eq!(g.len(), 1, "a failing run must not touch the success group");
        let b = &g[0].body;
        assert_eq!(value(b, "drill_run_success"), Some(0.0));
        assert_eq!(value(b, "drill_run_verdict{verdict=\"fail\"}"), Some(1.0));
        assert_eq!(value(b, "drill_run_verdict{verdict=\"pass\"}"), Some(0.0));
        assert_eq!(value(b, "drill_run_exit_code"), Some(1.0));
        assert_eq!(value(b, "drill_run_regressed"), Some(1.0));
        assert_eq!(value(b, "drill_run_duration_seconds"), Some(r.duration_s));
        // Per fault: the recovered one has an RTO, the other says it did not.
        let f0 = &r.faults[0];
        assert_eq!(
            value(
                b,
                &format!("drill_fault_rto_seconds{{fault=\"{}\"}}", f0.name)
            ),
            f0.rto_s
        );
        let f1 = &r.faults[1];
        assert_eq!(
            value(
                b,
                &format!("drill_fault_recovered{{fault=\"{}\"}}", f1.name)
            ),
            Some(0.0)
        );
        assert!(!b.contains(&format!("drill_fault_rto_seconds{{fault=\"{}\"}}", f1.name)));
        assert_eq!(
            value(b, "drill_error_budget_consumed_ratio"),
            Some(r.error_budget.consumed_pct / 100.0)
        );
        let failed = r
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .count();
        assert_eq!(value(b, "drill_checks_failed"), Some(failed as f64));
        assert!(b.contains("# TYPE drill_run_success gauge"), "{b}");
        assert!(!b.contains("drill_schedule_period_seconds"));
    }

    /// A stop guard that stopped the drill is pushed with its time to
    /// guard; one that held reads 0 and has no time.
    #[test]
    fn stop_guards_are_pushed_with_their_time_to_guard() {
        use crate::results::guards::{GuardResult, GuardStatus};
        let mut r = sample_result();
        let guard = |name: &str, status, ttg| GuardResult {
            name: name.into(),
            kind: "alert".into(),
            condition: "x".into(),
            on_unreachable: "stop".into(),
            status,
            readings: 3,
            failed_reads: 0,
            value: None,
            limit: None,
            breach: None,
            at_preflight: false,
            visible_at_s: None,
            visible_at: None,
            seen_at_s: None,
            first_revert_at_s: None,
            time_to_guard_s: ttg,
            last_error: None,
        };
        r.guards = vec![
            guard("checkout-errors", GuardStatus::Breached, Some(0.25)),
            guard("other", GuardStatus::Held, None),
        ];
        let b = &groups(&r, None, None)[0].body;
        assert_eq!(
            value(b, "drill_guard_breached{guard=\"checkout-errors\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(b, "drill_time_to_guard_seconds{guard=\"checkout-errors\"}"),
            Some(0.25)
        );
        assert_eq!(value(b, "drill_guard_breached{guard=\"other\"}"), Some(0.0));
        assert_eq!(
            value(b, "drill_time_to_guard_seconds{guard=\"other\"}"),
            None
        );
    }

    #[test]
    fn a_passing_run_also_replaces_its_last_success_time() {
        let mut r = sample_result();
        r.verdict = Verdict::Pass;
        r.started_at = "2026-12-01T03:00:00Z".into();
        r.duration_s = 60.0;
        let sch = Schedule {
            period_s: 31.0 * 86400.0,
            grace_s: 86400.0,
        };
        let g = groups(&r, None, Some(sch));
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].job, SUCCESS_JOB);
        // 2026-12-01T03:01:00Z
        assert_eq!(
            value(&g[1].body, "drill_last_success_timestamp_seconds"),
            Some(1_796_094_060.0)
        );
        assert_eq!(value(&g[0].body, "drill_run_success"), Some(1.0));
        assert!(!g[0].body.contains("drill_run_regressed"));
        assert_eq!(
            value(&g[0].body, "drill_schedule_period_seconds"),
            Some(31.0 * 86400.0)
        );
    }

    #[test]
    fn grouping_values_that_are_not_plain_are_base64() {
        let g = Group {
            job: JOB,
            labels: vec![
                ("scenario".into(), "ingress-failover".into()),
                ("target".into(), "prod/eu".into()),
                ("x".into(), String::new()),
            ],
            body: String::new(),
        };
        assert_eq!(
            g.path(),
            "/metrics/job/drill/scenario/ingress-failover/target@base64/cHJvZC9ldQ==/x@base64/="
        );
    }
}
