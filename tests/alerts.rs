//! The shipped alert rules (rules/drill-alerts.yml) checked by the real
//! `promtool` (Debian's `prometheus` package; ci/test.sh installs it), and
//! drills that measure alerts against real Prometheus and Alertmanager.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn rules(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .join(name)
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs (Debian's prometheus package; ci/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every rule file in rules/ (the `promtool check rules rules/*.yml` an
/// adopter runs): the unit tests live in rules/tests/, so each file here
/// must load as rules.
fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_accepts_every_rule_file_in_rules() {
    let files = rule_files();
    assert!(files.iter().any(|f| f.ends_with("drill-alerts.yml")));
    let mut args = vec!["check".to_string(), "rules".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = promtool(&args);
    assert!(ok, "{text}");
    assert!(text.contains("7 rules found"), "{text}");
}

#[test]
fn gateway_and_istiod_alerts_fire_when_their_series_vanish() {
    // Scaled to 0, pod deleted, target down: each has a promtool case that
    // expects the alert (run by the test below); here, that the cases exist.
    let tests = std::fs::read_to_string(rules("tests/drill-alerts.test.yml")).unwrap();
    for case in [
        "IngressGatewayDown, scaled to 0",
        "IngressGatewayDown, pod deleted",
        "IngressGatewayDown: the primary's gateway stops answering",
        "IstiodDown, scaled to 0",
    ] {
        assert!(tests.contains(case), "no promtool case `{case}`");
    }
    // And the rules say why: a vanished series never reads 0.
    let shipped = std::fs::read_to_string(rules("drill-alerts.yml")).unwrap();
    assert_eq!(shipped.matches("unless on (cluster)").count(), 2);
}

#[test]
fn every_rule_fires_on_its_condition_and_stays_quiet_otherwise() {
    let file = rules("tests/drill-alerts.test.yml");
    let (ok, text) = promtool(&["test", "rules", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    // Each alert has a firing case in the unit tests.
    let tests = std::fs::read_to_string(&file).unwrap();
    for alert in [
        "HighErrorRate",
        "IngressGatewayDown",
        "IstiodDown",
        "HighLatency",
        "CrossClusterConnectivityIssue",
        "CircuitBreakerTriggered",
        "HighConnectionPoolUsage",
    ] {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
    }
}

#[test]
fn drill_failed_regressed_and_overdue_fire_on_what_runs_push() {
    let file = rules("tests/drill-results.test.yml");
    let (ok, text) = promtool(&["test", "rules", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    let tests = std::fs::read_to_string(&file).unwrap();
    for alert in ["DrillFailed", "DrillRegressed", "DrillOverdue"] {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
    }
    // The test can fail: DrillOverdue without its grace fires at 65 min,
    // inside the grace, where the tests expect silence.
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(rules("drill-results.yml"))
        .unwrap()
        .replace(" + drill_schedule_grace_seconds{job=\"drill\"}", "");
    std::fs::write(dir.path().join("drill-results.yml"), broken).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::copy(&file, dir.path().join("tests/drill-results.test.yml")).unwrap();
    let test = dir.path().join("tests/drill-results.test.yml");
    let (ok, text) = promtool(&["test", "rules", test.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("DrillOverdue"), "{text}");
}

#[test]
fn a_rule_watching_a_wrong_metric_fails_its_unit_test() {
    // The unit tests can fail: the same tests against a rule file whose
    // IngressGatewayDown watches a metric nobody exports.
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(rules("drill-alerts.yml"))
        .unwrap()
        .replace(
            "up{app=\"istio-ingressgateway\"}",
            "upp{app=\"istio-ingressgateway\"}",
        );
    std::fs::write(dir.path().join("drill-alerts.yml"), broken).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::copy(
        rules("tests/drill-alerts.test.yml"),
        dir.path().join("tests/drill-alerts.test.yml"),
    )
    .unwrap();
    let test = dir.path().join("tests/drill-alerts.test.yml");
    let (ok, text) = promtool(&["test", "rules", test.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("IngressGatewayDown"), "{text}");
}

// ---------------------------------------------------------------------------
// Drills against real Prometheus and Alertmanager on the lab. Alertmanager is
// started by the test (the lab target's `alertmanager` setting points the
// lab's Prometheus at it), so the drill's silence can be checked through
// Alertmanager's API after the drill has ended, however it ended.

use std::time::{Duration, Instant};

use common::{Sandbox, lab_lock};
use drill::observe::api::Alertmanager;
use serde_json::Value;

/// The lab's shortening of `for` and its intervals (src/targets/lab/monitoring.rs).
const FOR_S: f64 = 60.0 / 20.0; // IngressGatewayDown: for 1m ÷ 20
const SCRAPE_S: f64 = 1.0;
const EVAL_S: f64 = 1.0;
const POLL_S: f64 = 0.25;
/// Prometheus → Alertmanager delivery and the poll's own round trip.
const DELIVERY_S: f64 = 0.25;

/// An Alertmanager the test owns, killed on drop.
struct TestAlertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl TestAlertmanager {
    fn start() -> TestAlertmanager {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("am.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: r\n  group_wait: 1s\nreceivers:\n  - name: r\n",
        )
        .unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager runs (ci/test.sh installs it)");
        let am = TestAlertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while block(am.api().ready()).is_err() {
            assert!(Instant::now() < deadline, "alertmanager did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    fn api(&self) -> Alertmanager {
        Alertmanager::new(&self.url)
    }

    /// States of the silences drill created.
    fn drill_silences(&self) -> Vec<String> {
        block(self.api().silences())
            .unwrap()
            .into_iter()
            .filter(|s| s.2 == "drill")
            .map(|s| s.1)
            .collect()
    }

    fn wait_for_active_silence(&self, run: &mut common::Running) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.drill_silences().iter().any(|s| s == "active") {
            run.assert_running("before its silence was created");
            assert!(Instant::now() < deadline, "no silence within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Fast lab timings; the gateway stays gone 6 s, longer than the lab's
/// `for` of IngressGatewayDown (3 s).
fn targets(sb: &Sandbox, am: &TestAlertmanager) -> String {
    sb.write(
        "targets.toml",
        &format!(
            "[targets.fast]\nkind = \"lab\"\nlab = {{ restart_delay = \"6s\", push_interval = \"200ms\", alertmanager = \"{}\", health = {{ interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 3, healthy_threshold = 2 }} }}\n",
            am.url
        ),
    )
    .display()
    .to_string()
}

fn scenario(sb: &Sandbox, name: &str, top: &str, extra: &str) -> String {
    sb.write(
        &format!("{name}.toml"),
        &format!(
            r#"description = "alerts end to end"
target = "fast"
silence = true
{top}
[load]
path = "/productpage"
rate = 50

[phases]
warmup = "1s"
baseline = "3s"
recovery = "8s"

[recovery]
window = "500ms"
ratio = "99%"
hold = "2s"

[[faults]]
name = "kill-primary-ingress"
component = "ingress-gateway"
region = "primary"
action = "delete"
until = "healed"
timeout = "1m"

[[alerts]]
name = "IngressGatewayDown"
labels = {{ cluster = "primary" }}
fire_within = "10s"
resolve_within = "20s"
{extra}"#
        ),
    )
    .display()
    .to_string()
}

fn run_args(sb: &Sandbox, targets: &str, scenario: &str) -> Vec<String> {
    vec![
        "--targets".into(),
        targets.into(),
        "run".into(),
        scenario.into(),
        "--quiet".into(),
        "--report-dir".into(),
        sb.report_arg(),
    ]
}

fn alert<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["alerts"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["alert"].as_str().unwrap_or("").starts_with(name))
        })
        .unwrap_or_else(|| panic!("no alert {name} in {}", results["alerts"]))
}

#[test]
fn ingress_gateway_down_fires_after_its_for_resolves_and_the_silence_is_expired() {
    let _g = lab_lock();
    let am = TestAlertmanager::start();
    let sb = Sandbox::new();
    let t = targets(&sb, &am);
    let s = scenario(
        &sb,
        "gateway-down",
        "",
        // Over 10 s (ten scrapes): a 2-core CI runner starving Prometheus
        // for a few seconds is not an istiod down.
        "[[probes]]\nname = \"istiod-up\"\nquery = 'sum(max_over_time(up{app=\"istiod\"}[10s]))'\nphase = \"fault\"\nmin = 2\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let a = alert(&r, "IngressGatewayDown");
    let ttd = a["time_to_detect_s"].as_f64().expect("fired");
    let upper = FOR_S + SCRAPE_S + EVAL_S + POLL_S + DELIVERY_S;
    assert!(
        (FOR_S..=upper).contains(&ttd),
        "time to detect {ttd}s outside [{FOR_S}, {upper}]"
    );
    let fault = &r["faults"][0];
    assert!(
        a["resolved_at_s"].as_f64().expect("resolved") > fault["reverted_at_s"].as_f64().unwrap(),
        "resolved only after the gateway was back: {a} {fault}"
    );
    assert_eq!(a["suppressed"], true, "silenced, still seen");
    assert_eq!(r["monitoring"]["silence_expired"], true);
    assert_eq!(r["probes"][0]["min"], 2.0, "{}", r["probes"]);
    // Through Alertmanager's own API: the silence is expired.
    let states = am.drill_silences();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "expired"),
        "{states:?}"
    );
    let junit = std::fs::read_to_string(sb.report_dir().join("junit.xml")).unwrap();
    assert!(junit.contains("alert:IngressGatewayDown"), "{junit}");
    assert!(junit.contains("probe:istiod-up"), "{junit}");
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(md.contains("## What on-call saw"), "{md}");
}

#[test]
fn a_rule_reading_a_missing_metric_fails_the_drill_and_unexpected_alerts_are_listed() {
    let _g = lab_lock();
    let am = TestAlertmanager::start();
    let sb = Sandbox::new();
    let rules = std::fs::read_to_string(rules("drill-alerts.yml"))
        .unwrap()
        .replace(
            "up{app=\"istio-ingressgateway\"}",
            "upp{app=\"istio-ingressgateway\"}",
        )
        + "  - name: extra\n    rules:\n      - alert: GatewayGoneUnexpected\n        expr: sum by (cluster) (up{app=\"istio-ingressgateway\"}) == 0\n        labels:\n          severity: info\n";
    sb.write("wrong.yml", &rules);
    let t = targets(&sb, &am);
    let s = scenario(
        &sb,
        "wrong-metric",
        "alert_rules = \"wrong.yml\"\nunexpected_alerts = \"fail\"",
        "",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    assert_eq!(out.code, Some(1), "{out}");
    let r = sb.results();
    let checks = r["checks"].as_array().unwrap();
    let check = |n: &str| {
        checks
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(n))
            .unwrap_or_else(|| panic!("no check {n}"))
    };
    let c = check("alert:IngressGatewayDown");
    assert_eq!(c["status"], "fail");
    let msg = c["message"].as_str().unwrap();
    assert!(msg.contains("IngressGatewayDown"), "{msg}");
    assert!(
        msg.contains("returned no series") && msg.contains("upp"),
        "{msg}"
    );
    let u = alert(&r, "GatewayGoneUnexpected");
    assert_eq!(u["expected"], false);
    assert_eq!(check("unexpected-alerts")["status"], "fail");
    // A failed check still expires the silence.
    let states = am.drill_silences();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "expired"),
        "{states:?}"
    );
}

#[test]
fn ctrl_c_expires_the_silence() {
    let _g = lab_lock();
    let am = TestAlertmanager::start();
    let sb = Sandbox::new();
    let t = targets(&sb, &am);
    let s = scenario(&sb, "interrupted", "", "");
    let mut run = sb.spawn(&run_args(&sb, &t, &s));
    am.wait_for_active_silence(&mut run);
    run.signal(libc::SIGINT);
    let out = run.wait(Duration::from_secs(60));
    assert_eq!(out.code, Some(3), "{out}");
    let states = am.drill_silences();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "expired"),
        "{states:?}"
    );
}

#[test]
fn kill_9_leaves_the_silence_for_drill_cleanup_which_expires_it() {
    let _g = lab_lock();
    let am = TestAlertmanager::start();
    let sb = Sandbox::new();
    let t = targets(&sb, &am);
    let s = scenario(&sb, "killed", "", "");
    let mut run = sb.spawn(&run_args(&sb, &t, &s));
    am.wait_for_active_silence(&mut run);
    run.signal(libc::SIGKILL);
    let _ = run.wait(Duration::from_secs(30));
    assert_eq!(am.drill_silences(), vec!["active".to_string()]);
    let out = sb.run(&["cleanup"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("silence"), "{out}");
    assert_eq!(am.drill_silences(), vec!["expired".to_string()]);
    assert!(sb.open_journals().is_empty(), "journal closed");
}

#[test]
fn without_prometheus_alert_checks_are_skipped_with_the_reason_never_passed() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = sb.write(
        "targets.toml",
        "[targets.fast]\nkind = \"lab\"\nlab = { restart_delay = \"1s\", push_interval = \"200ms\", health = { interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 3, healthy_threshold = 2 } }\n",
    );
    let s = scenario(&sb, "no-prometheus", "", "");
    let mut cmd = sb.command(&run_args(&sb, t.to_str().unwrap(), &s));
    cmd.env("PATH", "/nonexistent");
    let out = common::Outcome::of(cmd.output().unwrap());
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let c = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("alert:"))
        .expect("an alert check")
        .clone();
    assert_eq!(c["status"], "skipped", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("not installed"),
        "{c}"
    );
    assert!(
        r["monitoring"]["skipped"]
            .as_str()
            .unwrap()
            .contains("prometheus")
    );
}

#[test]
fn a_probe_query_prometheus_rejects_stops_the_drill_before_any_inject() {
    let _g = lab_lock();
    let am = TestAlertmanager::start();
    let sb = Sandbox::new();
    let t = targets(&sb, &am);
    // Well-formed, but rate() of an instant vector: only Prometheus knows.
    let s = scenario(
        &sb,
        "bad-probe",
        "",
        "[[probes]]\nname = \"bad\"\nquery = 'rate(up)'\nmax = 1\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains("probe `bad`") && shown.contains("nothing was injected"),
        "{shown}"
    );
    let r = sb.results();
    assert!(
        r["faults"].as_array().unwrap().is_empty(),
        "{}",
        r["faults"]
    );
    assert!(
        am.drill_silences().is_empty(),
        "no silence before the preflight passed"
    );
    // Badly bracketed: known without contacting anything (exit 2).
    let s = scenario(
        &sb,
        "unbalanced-probe",
        "",
        "[[probes]]\nname = \"bad\"\nquery = 'sum(up'\nmax = 1\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.to_string().contains("unbalanced-probe.toml:"), "{out}");
}

/// Ctrl-C at a terminal goes to the whole foreground process group. The
/// lab's own Prometheus and Alertmanager must outlive it until drill has
/// judged the alert checks and expired the silence in that Alertmanager:
/// the alert that had not fired yet is skipped with the reason (not failed
/// with "answered 503"), the silence is expired, and the report does not
/// send the reader to `drill cleanup` for it.
#[test]
fn ctrl_c_to_the_process_group_skips_the_unfired_alert_and_expires_the_silence() {
    use std::os::unix::process::CommandExt;
    let _g = lab_lock();
    let sb = Sandbox::new();
    // The lab's own Alertmanager this time (no `alertmanager` key).
    let t = sb
        .write(
            "targets.toml",
            "[targets.fast]\nkind = \"lab\"\nlab = { restart_delay = \"6s\", push_interval = \"200ms\", health = { interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 3, healthy_threshold = 2 } }\n",
        )
        .display()
        .to_string();
    let s = scenario(&sb, "group-interrupted", "", "");
    let mut child = sb
        .command(&run_args(&sb, &t, &s))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start drill");
    // Interrupt once the silence is journalled (created before the inject).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "drill ended early");
        assert!(
            Instant::now() < deadline,
            "no silence journalled within 60 s"
        );
        let journalled = sb
            .open_journals()
            .iter()
            .flat_map(|j| common::journal_entries(j))
            .any(|e| e.to_string().contains("silence"));
        if journalled {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // As a terminal's Ctrl-C: SIGINT to every process of the group.
    // SAFETY: kill(2) on the process group this test created.
    let r = unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    assert_eq!(r, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "drill did not stop within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3));
    let r = sb.results();
    let c = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("alert:IngressGatewayDown"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{:#}", r["checks"]));
    assert_eq!(c["status"], "skipped", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("interrupted"),
        "{c:#}"
    );
    assert_eq!(
        r["monitoring"]["silence_expired"], true,
        "{:#}",
        r["monitoring"]
    );
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(!md.contains("run `drill cleanup`"), "{md}");
}
