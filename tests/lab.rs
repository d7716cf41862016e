//! Calibration of the mesh drills against the lab's known settings
//! (fixtures/lab/targets.toml): each measured number must follow from the
//! policy the way it would in production, and breaking one policy setting
//! must make the matching check fail with exit 1 and a message naming it.
//!
//! Settings: health checks 200 ms × 3, restart delay 2 s, push interval
//! 200 ms; recovery window 500 ms, hold 3 s.

mod common;

use common::{Sandbox, lab_lock};
use serde_json::Value;

const INTERVAL_S: f64 = 0.2;
const UNHEALTHY_THRESHOLD: f64 = 3.0;
const RESTART_DELAY_S: f64 = 2.0;
const PUSH_INTERVAL_S: f64 = 0.2;

fn lab_fixture(name: &str) -> String {
    format!("{}/fixtures/lab/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn drill(sb: &Sandbox, scenario: &str, target: &str) -> (Option<i32>, Value, String) {
    let out = sb.run(&[
        "--targets",
        &lab_fixture("targets.toml"),
        "run",
        &lab_fixture(&format!("{scenario}.toml")),
        "--target",
        target,
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
    ]);
    let shown = out.to_string();
    assert!(
        sb.report_dir().join("results.json").is_file(),
        "no results.json\n{shown}"
    );
    (out.code, sb.results(), shown)
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn check<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#}", r["checks"]))
}

fn fault(r: &Value) -> &Value {
    &r["faults"][0]
}

#[test]
fn istiod_down_leaves_traffic_alone_and_config_syncs_within_a_push_interval() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "istiod-down", "mesh");
    assert_eq!(code, Some(0), "{out}");
    let f = fault(&r);
    assert_eq!(
        f["recovery"], "no-impact",
        "the data plane keeps its last config: {f:#}"
    );
    let sync = num(&f["extra"]["config_sync_s"], "config_sync_s");
    // The data plane asks every push interval; the change lands at the first
    // ask after istiod is back (plus its start-up).
    assert!(
        (0.0..=PUSH_INTERVAL_S + 0.3).contains(&sync),
        "config sync {sync}s vs push interval {PUSH_INTERVAL_S}s"
    );
    assert_eq!(
        r["phases"]["fault"]["availability"], 1.0,
        "{:#}",
        r["phases"]["fault"]
    );
}

#[test]
fn istiod_down_with_a_slow_push_fails_the_sync_check() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "istiod-down", "slow-push");
    assert_eq!(code, Some(1), "{out}");
    let c = check(&r, "config-sync:istiod-down");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().starts_with("config sync"),
        "{c:#}"
    );
    assert!(num(&c["measured"], "config sync") > 10.0, "{c:#}");
}

#[test]
fn pod_failure_is_absorbed_by_retries_and_the_pod_returns_after_the_restart_delay() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "pod-failure", "mesh");
    assert_eq!(code, Some(0), "{out}");
    let f = fault(&r);
    assert_eq!(
        f["recovery"], "no-impact",
        "retries on another host absorb the loss: {f:#}"
    );
    let ready = num(&f["extra"]["component_ready_s"], "component_ready_s");
    assert!(
        (RESTART_DELAY_S - 0.2..=RESTART_DELAY_S + 0.8).contains(&ready),
        "ready after {ready}s, restart delay {RESTART_DELAY_S}s"
    );
}

#[test]
fn pod_failure_without_retries_or_outlier_detection_fails() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "pod-failure", "no-retries");
    assert_eq!(code, Some(1), "{out}");
    // Without retries 80% of calls go to the dead instance until it returns:
    // the outage lasts about the restart delay.
    let rto = num(&fault(&r)["rto_s"], "rto_s");
    assert!(
        (RESTART_DELAY_S - 0.5..=RESTART_DELAY_S + 1.0).contains(&rto),
        "rto {rto}s vs restart delay {RESTART_DELAY_S}s"
    );
    let c = check(&r, "rto:kill-productpage");
    assert_eq!(c["status"], "fail");
    assert!(c["message"].as_str().unwrap().starts_with("rto "), "{c:#}");
    assert_eq!(check(&r, "availability:fault")["status"], "fail");
}

#[test]
fn eastwest_loss_hits_only_cross_region_calls_which_retries_absorb() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "eastwest-failover", "mesh");
    assert_eq!(code, Some(0), "{out}");
    let f = fault(&r);
    assert_eq!(f["recovery"], "no-impact", "{f:#}");
    let failed = num(&f["extra"]["cross_region_failed"], "cross_region_failed");
    let calls = num(&f["extra"]["cross_region_calls"], "cross_region_calls");
    // Cross-region calls failed until outlier detection ejected the remote
    // endpoint (5 consecutive failures per caller; two callers in the primary).
    assert!(
        failed >= 5.0 && failed <= calls,
        "cross-region failed {failed} of {calls}"
    );
}

#[test]
fn eastwest_loss_without_retries_fails_availability() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "eastwest-failover", "no-retries");
    assert_eq!(code, Some(1), "{out}");
    let c = check(&r, "availability:fault");
    assert_eq!(c["status"], "fail", "{c:#}");
    // About the cross-region share (20% per hop) fails while the gateway is gone.
    let a = num(&c["measured"], "availability");
    assert_eq!(c["unit"], "ratio", "{c:#}");
    assert!(a < 0.99 && a > 0.40, "availability ratio {a}");
}

#[test]
fn latency_injection_p99_is_bounded_by_per_try_timeout_times_attempts() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "latency-injection", "tight-timeouts");
    assert_eq!(code, Some(0), "{out}");
    let p = &r["phases"]["fault"];
    let p99 = num(&p["p99_ms"], "p99");
    // Per-try 300 ms × 3 attempts = 900 ms, plus a few ms of overhead per
    // attempt: 5% tolerance.
    assert!(
        p99 <= 900.0 * 1.05,
        "p99 {p99}ms > per-try 300ms × 3 attempts (+5%)"
    );
    // The per-try timeout did bite: some calls waited for it.
    assert!(num(&p["max_ms"], "max") >= 300.0, "{p:#}");
}

#[test]
fn latency_injection_with_loose_timeouts_fails_the_p99_check() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "latency-injection", "loose-timeouts");
    assert_eq!(code, Some(1), "{out}");
    let c = check(&r, "latency-p99:fault");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        num(&c["measured"], "p99") >= 1200.0,
        "the full 1.2 s delay reaches users: {c:#}"
    );
    assert!(c["message"].as_str().unwrap().starts_with("p99 "), "{c:#}");
}

#[test]
fn region_outage_rto_follows_the_health_checks() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "region-outage", "mesh");
    assert_eq!(code, Some(0), "{out}");
    let res = num(&r["recovery"]["resolution_s"], "resolution");
    let rto = num(&fault(&r)["rto_s"], "rto_s");
    let (lo, hi) = (
        (UNHEALTHY_THRESHOLD - 1.0) * INTERVAL_S - res,
        UNHEALTHY_THRESHOLD * INTERVAL_S + res + INTERVAL_S,
    );
    assert!(
        (lo..=hi).contains(&rto),
        "rto {rto}s outside [{lo:.2}, {hi:.2}]s"
    );
}

#[test]
fn region_outage_without_failover_fails_the_rto_check() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, r, out) = drill(&sb, "region-outage", "no-failover");
    assert_eq!(code, Some(1), "{out}");
    let c = check(&r, "rto:lose-primary");
    assert_eq!(c["status"], "fail", "{c:#}");
    // Users wait for the region itself: about the 3 s outage.
    let rto = num(&c["measured"], "rto");
    assert!((2.5..=4.5).contains(&rto), "rto {rto}s");
}
