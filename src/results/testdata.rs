//! Realistic drill results for the renderers' tests and golden files: one
//! failing run (an RTO over its limit, a fault never recovered, a database
//! switchover with lost writes), plus a passing and an aborted variant.

use std::collections::BTreeMap;

use super::*;

const START: &str = "2026-03-14T09:30:00Z";
const RATE: u64 = 100;

/// Wall clock of a run-clock second, as the runner writes it.
fn at(t_s: f64) -> String {
    let ms = (t_s * 1000.0).round() as u64;
    let (m, s, ms) = (30 + ms / 60_000, (ms / 1000) % 60, ms % 1000);
    format!("2026-03-14T09:{m:02}:{s:02}.{ms:03}Z")
}

/// Good ratio, p50 and p99 of second `t` of the failing run: steady, a long
/// dip after the ingress kill (with two seconds where nothing completed),
/// partial failover, recovery, then a second dip at the database switchover
/// that the observation ends before it can count as recovered.
fn failing_second(t: u32) -> Second {
    match t {
        0..=7 => (if t == 3 { 0.99 } else { 1.0 }, Some(2.1), Some(6.4)),
        8 => (0.52, Some(4.0), Some(2000.0)),
        9..=10 => (0.0, Some(1500.0), Some(2000.0)),
        11..=12 => (0.0, None, None),
        13..=48 => {
            let ramp = f64::from(t - 13) / 35.0;
            (
                0.45 + 0.52 * ramp,
                Some(40.0 - 30.0 * ramp),
                Some(900.0 - 700.0 * ramp),
            )
        }
        49..=51 => (1.0, Some(2.3), Some(8.2)),
        52 => (0.7, Some(3.0), Some(2000.0)),
        53..=55 => (0.2, Some(1400.0), Some(2000.0)),
        56 => (0.8, Some(6.0), Some(480.0)),
        _ => (if t == 57 { 0.995 } else { 1.0 }, Some(2.2), Some(11.5)),
    }
}

/// Good ratio, p50 and p99 of one second.
type Second = (f64, Option<f64>, Option<f64>);

fn timeline(second: fn(u32) -> Second) -> Vec<TimelinePoint> {
    (0..60)
        .map(|t| {
            let (ratio, p50, p99) = second(t);
            TimelinePoint {
                t_s: f64::from(t),
                requests: RATE,
                good_ratio: Some(ratio),
                p50_ms: p50.map(|v| (v * 100.0).round() / 100.0),
                p99_ms: p99.map(|v| (v * 10.0).round() / 10.0),
                ..Default::default()
            }
        })
        .collect()
}

/// Requests and good requests in `[start, end)`, from the timeline, so the
/// phase table, the budget and the chart agree.
fn counts(points: &[TimelinePoint], start: f64, end: f64) -> (u64, u64) {
    points
        .iter()
        .filter(|p| p.t_s >= start && p.t_s < end)
        .fold((0, 0), |(all, good), p| {
            let g = (p.good_ratio.unwrap_or(0.0) * p.requests as f64).round() as u64;
            (all + p.requests, good + g)
        })
}

const SLO: f64 = 0.9995;

fn phase(
    points: &[TimelinePoint],
    (start_s, end_s): (f64, f64),
    pct: [f64; 5],
    service_p99_ms: f64,
    causes: &[(&str, u64)],
) -> PhaseSummary {
    let (requests, good) = counts(points, start_s, end_s);
    let bad = requests - good;
    // Attribute the bad requests to causes in the given proportions.
    let weights: u64 = causes.iter().map(|c| c.1).sum();
    let mut bad_by_cause = BTreeMap::new();
    let mut left = bad;
    for (i, (cause, w)) in causes.iter().enumerate() {
        let n = if i + 1 == causes.len() {
            left
        } else {
            bad * w / weights
        };
        left -= n;
        bad_by_cause.insert((*cause).to_string(), n);
    }
    PhaseSummary {
        requests,
        good,
        availability: Some(good as f64 / requests as f64),
        p50_ms: pct[0],
        p90_ms: pct[1],
        p99_ms: pct[2],
        p999_ms: pct[3],
        max_ms: pct[4],
        service_p99_ms,
        bad_by_cause,
        burn_rate: (bad as f64 / requests as f64) / (1.0 - SLO),
        start_s,
        end_s,
    }
}

fn budget(points: &[TimelinePoint]) -> ErrorBudget {
    let (requests, good) = counts(points, 0.0, 60.0);
    let bad = requests - good;
    let period_s = 30.0 * 86_400.0;
    let frac = bad as f64 / requests as f64;
    ErrorBudget {
        slo: SLO,
        period_s,
        requests,
        bad,
        drill_s: 60.0,
        consumed_pct: 100.0 * frac * 60.0 / ((1.0 - SLO) * period_s),
        burn_rate: frac / (1.0 - SLO),
    }
}

fn check(
    name: &str,
    status: CheckStatus,
    measured: Option<f64>,
    threshold: f64,
    unit: Unit,
    message: &str,
) -> CheckResult {
    CheckResult {
        name: name.into(),
        status,
        measured,
        threshold: Some(threshold),
        unit,
        message: message.into(),
    }
}

fn event(t_s: f64, what: &str) -> Event {
    Event {
        t_s,
        at: at(t_s),
        what: what.into(),
    }
}

/// The failing run: `rto 41.2s > 30s` on the ingress kill, the database
/// switchover not recovered before the observation ended.
/// The checks of the failing sample: two RTOs fail, the rest pass.
fn checks(consumed: f64) -> Vec<CheckResult> {
    use CheckStatus::{Fail, Pass};
    vec![
        check(
            "steady-state",
            Pass,
            Some(0.99875),
            0.995,
            Unit::Ratio,
            "baseline availability 99.875% ≥ 99.5%",
        ),
        check(
            "availability:baseline",
            Pass,
            Some(0.99875),
            0.995,
            Unit::Ratio,
            "availability 99.875% ≥ 99.5%",
        ),
        check(
            "latency-p99:baseline",
            Pass,
            Some(6.4),
            50.0,
            Unit::Millis,
            "p99 6.4ms ≤ 50ms",
        ),
        check(
            "rto:kill-primary-ingress",
            Fail,
            Some(41.2),
            30.0,
            Unit::Seconds,
            "rto 41.2s > 30s",
        ),
        check(
            "rto:switchover-database",
            Fail,
            None,
            30.0,
            Unit::Seconds,
            "not recovered by the end of observation (t+60.0s) > 30s",
        ),
        check(
            "rpo:switchover-database",
            Pass,
            Some(0.84),
            1.0,
            Unit::Seconds,
            "rpo 0.84s ≤ 1s",
        ),
        check(
            "error-budget",
            Pass,
            Some((consumed * 1000.0).round() / 1000.0),
            5.0,
            Unit::Percent,
            &format!("error budget consumed {consumed:.2}% ≤ 5%"),
        ),
        check(
            "faults-reverted",
            Pass,
            Some(0.0),
            0.0,
            Unit::Count,
            "all 2 faults reverted",
        ),
    ]
}

/// An ingress kill that recovers late and a switchover that never does.
fn faults() -> Vec<FaultResult> {
    vec![
        FaultResult {
            name: "kill-primary-ingress".into(),
            component: "ingress-gateway".into(),
            region: Some("primary".into()),
            action: "kill".into(),
            injected_at_s: 8.0,
            reverted_at_s: Some(44.0),
            injected_at: at(8.0),
            reverted_at: Some(at(44.0)),
            rto_s: Some(41.2),
            recovery: Recovery::Recovered,
            time_to_impact_s: Some(0.004),
            outage_s: 35.6,
            recovered_at_s: Some(49.2),
            ended: FaultEnd::Healed,
            extra: Observations {
                component_ready_s: Some(43.5),
                ..Observations::default()
            },
        },
        FaultResult {
            name: "switchover-database".into(),
            component: "database".into(),
            region: Some("primary".into()),
            action: "switchover".into(),
            injected_at_s: 52.0,
            reverted_at_s: Some(56.0),
            injected_at: at(52.0),
            reverted_at: Some(at(56.0)),
            rto_s: None,
            recovery: Recovery::NotRecovered,
            time_to_impact_s: Some(0.21),
            outage_s: 4.0,
            recovered_at_s: None,
            ended: FaultEnd::Healed,
            extra: Observations::default(),
        },
    ]
}

fn load() -> LoadSummary {
    LoadSummary {
        method: "GET".into(),
        url: "http://127.0.0.1:18080/productpage".into(),
        rate: RATE as f64,
        achieved_rate: 99.97,
        sent: 6000,
        timeout_s: 2.0,
        keep_alive: true,
        lag_p99_ms: 0.41,
        lag_max_ms: 3.1,
        generator_behind: false,
        workers: 1,
        max_in_flight: 10_000,
        max_send_lag_ms: 5.0,
        tick_ms: 1.0,
        ..Default::default()
    }
}

fn events() -> Vec<Event> {
    vec![
        event(0.0, "baseline started"),
        event(
            8.0,
            "inject kill-primary-ingress: SIGKILL ingress-gateway (primary), pid 4121",
        ),
        event(43.5, "ingress-gateway (primary) ready again"),
        event(44.0, "kill-primary-ingress healed"),
        event(
            49.2,
            "traffic recovered after kill-primary-ingress (rto 41.2 s)",
        ),
        event(52.0, "inject switchover-database: promote db-secondary"),
        event(56.0, "switchover-database done: primary is db-secondary"),
        event(60.0, "observation ended"),
    ]
}

/// Each phase's summary, counted from `points`: the baseline is clean, the
/// fault phase loses requests to refusals, 5xx and timeouts, recovery is
/// slow at the tail.
fn phases(points: &[TimelinePoint]) -> BTreeMap<String, PhaseSummary> {
    let mut phases = BTreeMap::new();
    phases.insert(
        "baseline".to_string(),
        phase(
            points,
            (0.0, 8.0),
            [2.1, 3.4, 6.4, 9.8, 12.1],
            6.1,
            &[("5xx", 1)],
        ),
    );
    phases.insert(
        "fault".to_string(),
        phase(
            points,
            (8.0, 56.0),
            [18.2, 1210.0, 2000.0, 2000.0, 2001.0],
            1890.0,
            &[("refused", 3), ("5xx", 5), ("timeout", 2)],
        ),
    );
    phases.insert(
        "recovery".to_string(),
        phase(
            points,
            (56.0, 60.0),
            [2.3, 4.9, 310.0, 480.0, 512.0],
            301.0,
            &[("5xx", 1)],
        ),
    );
    phases
}

/// Where each phase starts and ends on the run's clock.
fn phase_spans() -> Vec<PhaseSpan> {
    let spans = [
        ("baseline", 0.0, 8.0),
        ("fault", 8.0, 56.0),
        ("recovery", 56.0, 60.0),
    ];
    spans
        .iter()
        .map(|&(phase, start_s, end_s)| PhaseSpan {
            phase: phase.into(),
            start_s,
            end_s,
        })
        .collect()
}

/// The database switchover's data loss: 18 writes lost in two ranges.
fn rpo() -> RpoResult {
    RpoResult {
        acknowledged: 5210,
        lost_writes: 18,
        lost_ranges: vec![(1042, 1057), (1060, 1061)],
        rpo_s: 0.84,
        indeterminate: 3,
        write_rto_s: Some(4.6),
        write_rto_sustained_s: Some(5.1),
        reads: None,
    }
}

/// The settings the run used, as the report lists them.
fn settings() -> BTreeMap<String, String> {
    let settings = [
        ("scenario.file", "scenarios/region-failover.toml"),
        ("target", "lab (lab)"),
        ("load.rate", "100/s"),
        ("load.success", "200|204"),
        ("recovery.window", "1s"),
        ("recovery.ratio", "0.99"),
        ("recovery.hold", "5s"),
        ("slo.availability", "99.95%"),
        ("slo.rto", "30s"),
        ("slo.rpo", "1s"),
    ];
    settings
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn sample_result() -> DrillResult {
    let points = timeline(failing_second);
    let phases = phases(&points);
    let error_budget = budget(&points);
    let consumed = error_budget.consumed_pct;
    DrillResult {
        previous: None,
        schema: SCHEMA.into(),
        // Fixed, so the golden files do not change with each release.
        drill_version: "0.1.0".into(),
        scenario: "region-failover".into(),
        description: "Kill the primary ingress gateway, then switch the database over to \
                      the secondary region; traffic must recover within 30 s and lose at \
                      most 1 s of writes."
            .into(),
        target: "lab".into(),
        target_kind: "lab".into(),
        verdict: Verdict::Fail,
        reason: None,
        run_id: "20260314T093000Z-7f3a".into(),
        started_at: START.into(),
        duration_s: 60.0,
        seed: 5_280_703_954_370_554_100,
        checks: checks(consumed),
        faults: faults(),
        phases,
        error_budget,
        rpo: Some(rpo()),
        load: load(),
        recovery: RecoverySummary {
            window_s: 1.0,
            ratio: 0.99,
            hold_s: 5.0,
            resolution_s: 0.1,
        },
        phase_spans: phase_spans(),
        events: events(),
        settings: settings(),
        timeline: points,
        manual_actions: Vec::new(),
        exit_code: None,
        alerts: Vec::new(),
        probes: Vec::new(),
        monitoring: None,
        vantages: Vec::new(),
        guards: Vec::new(),
    }
}

/// The same drill when failover works: short dips, every check passes.
pub(crate) fn sample_pass() -> DrillResult {
    let mut r = sample_result();
    r.verdict = Verdict::Pass;
    r.timeline = timeline(|t| match t {
        8..=9 => (0.6, Some(3.0), Some(2000.0)),
        52 => (0.9, Some(2.6), Some(140.0)),
        _ => (1.0, Some(2.1), Some(6.4)),
    });
    r.error_budget = budget(&r.timeline);
    for c in &mut r.checks {
        c.status = CheckStatus::Pass;
    }
    r.checks[3] = check(
        "rto:kill-primary-ingress",
        CheckStatus::Pass,
        Some(3.2),
        30.0,
        Unit::Seconds,
        "rto 3.2s ≤ 30s",
    );
    r.checks[4] = check(
        "rto:switchover-database",
        CheckStatus::Pass,
        Some(1.4),
        30.0,
        Unit::Seconds,
        "rto 1.4s ≤ 30s",
    );
    let f = &mut r.faults;
    (f[0].rto_s, f[0].recovered_at_s, f[0].outage_s) = (Some(3.2), Some(11.2), 2.0);
    (f[1].rto_s, f[1].recovered_at_s, f[1].outage_s) = (Some(1.4), Some(53.4), 1.0);
    f[1].recovery = Recovery::Recovered;
    r
}

/// A drill that never reached its faults: steady state was not met.
pub(crate) fn sample_aborted() -> DrillResult {
    let mut r = sample_result();
    r.verdict = Verdict::Aborted;
    r.reason = Some("steady state not met: baseline availability 97.1% < 99.5%".into());
    r.faults.clear();
    r.rpo = None;
    r.phases.retain(|k, _| k == "baseline");
    r.phase_spans.truncate(1);
    r.timeline.truncate(8);
    for p in &mut r.timeline {
        p.good_ratio = Some(if p.t_s < 4.0 { 0.99 } else { 0.95 });
    }
    r.events.truncate(1);
    r.duration_s = 8.0;
    for c in &mut r.checks {
        c.status = CheckStatus::Skipped;
        c.measured = None;
        c.message = "not evaluated: drill aborted".into();
    }
    r.checks[0] = check(
        "steady-state",
        CheckStatus::Fail,
        Some(0.971),
        0.995,
        Unit::Ratio,
        "baseline availability 97.1% < 99.5%",
    );
    r
}

/// Compares `actual` with `fixtures/golden/<name>`, so a change in output is
/// a reviewed diff; `UPDATE_GOLDEN=1` rewrites the file instead.
pub(crate) fn assert_golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b);
        panic!(
            "{name} differs from {} (first at line {}); review and rerun with UPDATE_GOLDEN=1 if intended.\n\
             --- golden\n{}\n+++ actual\n{}",
            path.display(),
            line.map_or("end".into(), |l| (l + 1).to_string()),
            expected.lines().nth(line.unwrap_or(0)).unwrap_or(""),
            actual.lines().nth(line.unwrap_or(0)).unwrap_or(""),
        );
    }
}

/// Writes the sample's reports to `target/sample-report/` to look at (`cargo test -- --ignored`).
#[test]
#[ignore = "writes target/sample-report/ for a person to look at"]
fn write_sample_reports() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sample-report");
    std::fs::create_dir_all(&out).unwrap();
    let r = sample_result();
    std::fs::write(
        out.join("report.md"),
        crate::report::markdown::render(&r, "timeline.svg"),
    )
    .unwrap();
    std::fs::write(out.join("timeline.svg"), crate::report::svg::render(&r)).unwrap();
    std::fs::write(
        out.join("junit.xml"),
        crate::report::junit::render(std::slice::from_ref(&r)),
    )
    .unwrap();
    std::fs::write(out.join("results.json"), crate::report::json::render(&r)).unwrap();
    std::fs::write(
        out.join("pass.svg"),
        crate::report::svg::render(&sample_pass()),
    )
    .unwrap();
    std::fs::write(
        out.join("aborted.svg"),
        crate::report::svg::render(&sample_aborted()),
    )
    .unwrap();
}
