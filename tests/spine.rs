//! End to end: the real `drill` binary run as a user would, against the
//! built-in lab (real local processes) and a plain `http` target. Each test
//! asserts something a user or CI job would notice: exit codes, verdicts,
//! RTO against the lab's health-check settings, files written, faults
//! reverted on every way out, and no lab process outliving its run.
//!
//! Drills measure time on a shared machine, so the ones that run traffic
//! hold `common::LOCK`; the scenarios (fixtures/spine/) are a few seconds
//! long.

mod common;

use std::time::Duration;

use common::{
    Sandbox, Service, fixture_arg, free_port, journal_entries, lab_lock, lab_processes, run_id_of,
    wait_until,
};
use serde_json::Value;

/// The `fast-lab` target's health checking (fixtures/spine/targets.toml).
const INTERVAL_S: f64 = 0.2;
const UNHEALTHY_THRESHOLD: f64 = 3.0;
const RESTART_DELAY_S: f64 = 3.0;

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn check<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {:#}", results["checks"]))
}

fn check_names(results: &Value) -> Vec<String> {
    results["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("check name").to_string())
        .collect()
}

/// Runs the ingress-delete scenario on `target`, watching the lab processes
/// appear while it runs; returns the outcome and the run id.
fn run_ingress_delete(sb: &Sandbox, target: &str) -> (common::Outcome, String) {
    let targets = fixture_arg("targets.toml");
    let report = sb.report_arg();
    let scenario = fixture_arg("ingress-delete.toml");
    let mut run = sb.spawn(&[
        "--targets",
        &targets,
        "run",
        "--target",
        target,
        "--quiet",
        "--report-dir",
        &report,
        &scenario,
    ]);
    let run_id = sb.wait_for_run_id(&mut run);
    wait_until(Duration::from_secs(20), "the lab's processes", || {
        run.assert_running("before its lab started");
        lab_processes(&run_id).len() >= 5
    });
    let out = run.wait(common::RUN_LIMIT);
    (out, run_id)
}

#[test]
fn rto_matches_health_check_settings() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (out, run_id) = run_ingress_delete(&sb, "fast-lab");
    assert_eq!(out.code, Some(0), "{out}");

    let r = sb.results();
    assert_eq!(r["schema"], "drill.results/v1");
    assert_eq!(r["verdict"], "pass", "{out}");
    assert_eq!(r["run_id"], run_id.as_str());
    assert_eq!(r["target"], "fast-lab");

    let faults = r["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 1, "{faults:#?}");
    let f = &faults[0];
    assert_eq!(f["name"], "kill-primary-ingress");
    assert_eq!(f["recovery"], "recovered", "{f:#}");
    // The designed failover time is (F−1)·I … F·I; allow the stated
    // resolution either side and one more check interval of slack.
    let res = num(&r["recovery"]["resolution_s"], "recovery.resolution_s");
    assert!(res > 0.0 && res <= 0.1, "resolution {res}");
    let rto = num(&f["rto_s"], "rto_s");
    let lo = (UNHEALTHY_THRESHOLD - 1.0) * INTERVAL_S - res;
    let hi = UNHEALTHY_THRESHOLD * INTERVAL_S + res + INTERVAL_S;
    assert!(
        (lo..=hi).contains(&rto),
        "RTO {rto}s is outside the failover the health checks imply [{lo:.2}, {hi:.2}]s\n{f:#}"
    );
    let tti = num(&f["time_to_impact_s"], "time_to_impact_s");
    assert!((0.0..0.5).contains(&tti), "time to impact {tti}s");
    assert_eq!(f["ended"], "healed", "{f:#}");
    let healed_after =
        num(&f["reverted_at_s"], "reverted_at_s") - num(&f["injected_at_s"], "injected_at_s");
    assert!(
        (RESTART_DELAY_S - 1.0..=RESTART_DELAY_S + 1.0).contains(&healed_after),
        "the gateway came back {healed_after}s after the delete; restart delay is {RESTART_DELAY_S}s"
    );

    for name in ["junit.xml", "report.md", "timeline.svg"] {
        assert!(sb.report_dir().join(name).is_file(), "{name} missing");
    }
    let junit = sb.junit();
    let names = check_names(&r);
    assert_eq!(
        junit.names(),
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        "one testcase per check"
    );
    for want in [
        "steady-state",
        "faults-reverted",
        "rto:kill-primary-ingress",
    ] {
        assert!(names.iter().any(|n| n == want), "no `{want}` in {names:?}");
    }
    assert!(
        junit.cases.iter().all(|c| c.failure.is_none()),
        "{junit:#?}"
    );

    assert_eq!(
        lab_processes(&run_id),
        Vec::<u32>::new(),
        "lab processes of run {run_id} outlived it"
    );
}

#[test]
fn failover_disabled_fails_rto_check() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (out, run_id) = run_ingress_delete(&sb, "no-failover");
    assert_eq!(out.code, Some(1), "{out}");

    let r = sb.results();
    assert_eq!(r["verdict"], "fail", "{out}");
    let rto = check(&r, "rto:kill-primary-ingress");
    assert_eq!(rto["status"], "fail", "{rto:#}");
    assert!(rto["measured"].is_null(), "{rto:#}");
    assert!(r["faults"][0]["rto_s"].is_null(), "{:#}", r["faults"]);
    assert_eq!(check(&r, "steady-state")["status"], "pass");

    let junit = sb.junit();
    let failed = junit
        .cases
        .iter()
        .find(|c| c.name == "rto:kill-primary-ingress")
        .expect("rto testcase");
    let msg = failed.failure.as_deref().expect("rto testcase failed");
    assert!(msg.contains("rto"), "failure message: {msg}");
    assert!(out.stdout.contains("verdict: FAIL"), "{out}");

    assert_eq!(lab_processes(&run_id), Vec::<u32>::new());
}

#[test]
fn preflight_failure_aborts_with_nothing_injected() {
    let sb = Sandbox::new();
    let port = free_port();
    let targets = sb.http_targets("svc", &format!("http://127.0.0.1:{port}"));
    let out = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        "--target",
        "svc",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("http-command.toml"),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    assert_eq!(r["verdict"], "aborted");
    let reason = r["reason"].as_str().expect("reason");
    assert!(reason.contains("preflight"), "reason: {reason}");
    assert!(!sb.path("injected").exists(), "the fault was injected");
    assert_eq!(r["faults"].as_array().map(Vec::len), Some(0));
    assert!(sb.open_journals().is_empty(), "journal left open");
}

#[test]
fn broken_baseline_aborts_with_nothing_injected() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("broken-baseline.toml"),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    assert_eq!(r["verdict"], "aborted");
    let reason = r["reason"].as_str().expect("reason");
    assert!(reason.contains("steady state"), "reason: {reason}");
    assert_eq!(check(&r, "steady-state")["status"], "fail");
    assert!(!sb.path("injected").exists(), "the fault was injected");
    assert_eq!(r["faults"].as_array().map(Vec::len), Some(0));
    assert!(sb.open_journals().is_empty(), "journal left open");
    let done = sb.done_journals();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        !journal_entries(&done[0])
            .iter()
            .any(|e| e["type"] == "inject"),
        "the journal records an inject"
    );
    assert_eq!(lab_processes(&run_id_of(&done[0])), Vec::<u32>::new());
}

/// `drill validate FILE` and `drill run FILE` on a bad scenario: exit 2,
/// `FILE:LINE:COL` at the offending line, a hint, and nothing touched.
fn rejects_malformed(rel: &str, line_has: &str, col_at: &str) {
    let sb = Sandbox::new();
    let path = sb.copy_fixture(rel);
    let file = path.file_name().unwrap().to_str().unwrap().to_string();
    let src = std::fs::read_to_string(&path).unwrap();
    let (line_no, line) = src
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(line_has))
        .unwrap_or_else(|| panic!("`{line_has}` not in {rel}"));
    let col = line.find(col_at).expect("column marker") + 1;
    let location = format!("{file}:{}:{col}", line_no + 1);

    let report = sb.report_arg();
    for args in [
        vec!["validate", file.as_str()],
        vec!["run", "--quiet", "--report-dir", &report, file.as_str()],
    ] {
        let out = sb.run(&args);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(
            out.stderr.contains(&location),
            "stderr does not point at {location}\n{out}"
        );
        assert!(out.stderr.contains("hint:"), "no hint\n{out}");
    }
    assert!(!sb.path("injected").exists(), "a fault was injected");
    assert!(!sb.report_dir().exists(), "a report was written");
    assert!(
        sb.open_journals().is_empty() && sb.done_journals().is_empty(),
        "a journal was written"
    );
}

#[test]
fn malformed_toml_syntax_exits_2_at_the_line() {
    rejects_malformed("bad/syntax.toml", "rate = = 50", "= 50");
}

#[test]
fn malformed_unknown_key_exits_2_at_the_line() {
    rejects_malformed("bad/unknown-key.toml", "colour", "colour");
}

#[test]
fn malformed_duration_exits_2_at_the_line() {
    rejects_malformed("bad/bad-duration.toml", "\"5x\"", "\"5x\"");
}

#[test]
fn malformed_unknown_component_exits_2_at_the_line() {
    rejects_malformed(
        "bad/unknown-component.toml",
        "ingres-gateway",
        "\"ingres-gateway\"",
    );
}

#[test]
fn unknown_target_exits_2_listing_targets() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "--targets",
        &fixture_arg("targets.toml"),
        "run",
        "--target",
        "nosuch",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        "ingress-failover",
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("nosuch"), "{out}");
    let hint = out
        .stderr
        .lines()
        .find(|l| l.contains("hint:"))
        .unwrap_or_else(|| panic!("no hint\n{out}"));
    for t in ["lab", "fast-lab", "no-failover"] {
        assert!(hint.contains(t), "hint does not list `{t}`: {hint}");
    }
    assert!(!sb.report_dir().exists());
    assert!(sb.open_journals().is_empty() && sb.done_journals().is_empty());
}

#[test]
fn ctrl_c_mid_fault_reverts() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let mut run = sb.spawn(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("command-fault.toml"),
    ]);
    let run_id = sb.wait_for_run_id(&mut run);
    let broken = sb.path("broken");
    wait_until(Duration::from_secs(30), "the fault to be injected", || {
        run.assert_running("before the fault was injected");
        broken.exists()
    });
    assert!(
        !lab_processes(&run_id).is_empty(),
        "no lab processes found for run {run_id} mid-fault"
    );
    run.signal(libc::SIGINT);
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.code, Some(3), "{out}");
    assert!(!broken.exists(), "Ctrl-C left the fault injected");
    let r = sb.results();
    assert_eq!(r["verdict"], "aborted");
    assert_eq!(r["run_id"], run_id.as_str());
    let reason = r["reason"].as_str().expect("reason");
    assert!(reason.contains("interrupt"), "reason: {reason}");
    assert_eq!(r["faults"][0]["ended"], "reverted", "{:#}", r["faults"]);
    assert!(sb.open_journals().is_empty(), "journal left open");
    assert_eq!(lab_processes(&run_id), Vec::<u32>::new());
}

#[test]
fn kill_9_then_cleanup_restores() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let mut run = sb.spawn(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("command-fault.toml"),
    ]);
    let run_id = sb.wait_for_run_id(&mut run);
    let broken = sb.path("broken");
    wait_until(Duration::from_secs(30), "the fault to be injected", || {
        run.assert_running("before the fault was injected");
        broken.exists()
    });
    assert!(
        !lab_processes(&run_id).is_empty(),
        "no lab processes mid-fault"
    );
    run.signal(libc::SIGKILL);
    let out = run.wait(Duration::from_secs(10));
    assert_eq!(out.code, None, "{out}");

    assert!(broken.exists(), "nothing should have reverted a killed run");
    let open = sb.open_journals();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(run_id_of(&open[0]), run_id);
    let entries = journal_entries(&open[0]);
    assert!(
        entries.iter().any(|e| e["type"] == "inject"),
        "{entries:#?}"
    );
    assert!(
        !entries.iter().any(|e| e["type"] == "reverted"),
        "{entries:#?}"
    );
    // Lab processes notice their supervisor is gone and exit.
    wait_until(
        Duration::from_secs(3),
        "the lab processes to exit after their supervisor died",
        || lab_processes(&run_id).is_empty(),
    );

    let out = sb.run(&["cleanup"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains(&run_id), "{out}");
    assert!(!broken.exists(), "cleanup did not revert the fault\n{out}");
    assert!(sb.open_journals().is_empty(), "journal still open");
    let done = sb.done_journals();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(run_id_of(&done[0]), run_id);

    let again = sb.run(&["cleanup"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("nothing to clean up"), "{again}");
}

#[test]
fn plan_touches_nothing() {
    let sb = Sandbox::new();
    let out = sb.run(&["plan", &fixture_arg("command-fault.toml")]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("touch broken"), "{out}");
    assert!(out.stdout.contains("rm broken"), "{out}");
    assert!(out.stdout.contains("nothing was touched"), "{out}");
    assert!(!sb.path("broken").exists(), "plan ran the inject command");
    assert!(!sb.journal_dir().exists(), "plan wrote a journal");
}

#[test]
fn http_target_with_command_fault() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let svc = Service::start();
    let targets = sb.http_targets("svc", &svc.url());
    let out = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        "--target",
        "svc",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("http-command.toml"),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    assert_eq!(r["verdict"], "pass", "{out}");
    assert_eq!(r["target"], "svc");
    assert!(
        r["load"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&svc.url())),
        "{:#}",
        r["load"]
    );
    // 50 req/s on one worker, send-lag bound 1 s: the automatic tick is
    // its 1 ms ceiling, and the report states it.
    assert_eq!(r["load"]["tick_ms"], 1.0, "{:#}", r["load"]);
    let baseline = &r["phases"]["baseline"];
    assert!(
        num(&baseline["good"], "baseline good") > 0.0,
        "{baseline:#}"
    );
    assert!(
        sb.path("injected").exists(),
        "the inject command did not run"
    );
    assert!(
        sb.path("reverted").exists(),
        "the revert command did not run"
    );
    assert!(!sb.path("broken").exists(), "the fault was left in place");
    let f = &r["faults"][0];
    assert_eq!(f["ended"], "reverted", "{f:#}");
    let lasted =
        num(&f["reverted_at_s"], "reverted_at_s") - num(&f["injected_at_s"], "injected_at_s");
    assert!((2.0..4.0).contains(&lasted), "a 2s fault lasted {lasted}s");
    assert!(sb.open_journals().is_empty(), "journal left open");
    assert_eq!(sb.done_journals().len(), 1);
}
