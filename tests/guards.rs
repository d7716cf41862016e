//! Stop guards on the lab with its real Prometheus and Alertmanager
//! (Debian's binaries, started by drill as for any alert drill): a guard
//! alert that fires mid-fault and a PromQL guard over the lab's own metrics
//! each stop the drill and revert, with time to guard within one
//! evaluation interval and one poll; a Prometheus that dies mid-drill stops
//! it (fail safe); a guard already breaching at preflight refuses to start.
//! Each ends with nothing injected and the journal closed. And the input
//! errors a guard can have, each refused at its line before anything runs.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Outcome, Sandbox, journal_entries, lab_lock, lab_processes, wait_until};
use serde_json::Value;

/// The lab's rule evaluation interval and drill's Alertmanager poll
/// (src/targets/lab/monitoring.rs, src/observe/watch.rs).
const EVAL_S: f64 = 1.0;
const POLL_S: f64 = 0.25;

fn targets(sb: &Sandbox) -> String {
    sb.write(
        "targets.toml",
        "[targets.fast]\nkind = \"lab\"\nlab = { restart_delay = \"6s\", push_interval = \"200ms\", health = { interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 3, healthy_threshold = 2 } }\n",
    )
    .display()
    .to_string()
}

/// The primary's ingress gateway down for 30 s — far longer than any
/// guard here lets it last — watched by `guard`.
fn scenario(sb: &Sandbox, name: &str, guard: &str) -> String {
    sb.write(
        &format!("{name}.toml"),
        &format!(
            r#"description = "a stop guard ends the drill"
target = "fast"

[load]
path = "/productpage"
rate = 50

[phases]
warmup = "1s"
baseline = "2s"
recovery = "2s"

[recovery]
window = "500ms"
hold = "1s"

[[faults]]
name = "gateway-down"
component = "ingress-gateway"
region = "primary"
action = "down"
duration = "30s"

[[guard]]
{guard}"#
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

/// The guard's result in results.json.
fn guard<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["guards"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name))
        .unwrap_or_else(|| panic!("no guard {name} in {}", r["guards"]))
}

/// Nothing left injected: the journal is closed (in done/), every inject
/// in it reverted, no lab process of the run alive.
fn nothing_left(sb: &Sandbox, r: &Value) {
    assert!(sb.open_journals().is_empty(), "journal closed");
    let done = sb.done_journals();
    assert_eq!(done.len(), 1, "{done:?}");
    let entries = journal_entries(&done[0]);
    let injected: Vec<&Value> = entries.iter().filter(|e| e["type"] == "inject").collect();
    for i in &injected {
        assert!(
            entries
                .iter()
                .any(|e| e["type"] == "reverted" && e["id"] == i["id"]),
            "inject {} never reverted: {entries:?}",
            i["id"]
        );
    }
    let run_id = r["run_id"].as_str().unwrap();
    assert!(lab_processes(run_id).is_empty(), "lab processes left");
}

/// A breach mid-fault: exit 3, the guard named with what breached, the
/// fault reverted long before its 30 s, the JUnit case failed, the
/// Markdown saying so.
fn stopped_mid_fault(sb: &Sandbox, out: &Outcome, name: &str) -> Value {
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    assert_eq!(r["verdict"], "aborted");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("guard `{name}`")), "{reason}");
    let f = &r["faults"][0];
    assert_eq!(f["ended"], "reverted", "{f}");
    let held = f["reverted_at_s"].as_f64().unwrap() - f["injected_at_s"].as_f64().unwrap();
    assert!(
        held < 20.0,
        "the guard, not the 30 s duration, ended it: {f}"
    );
    let g = guard(&r, name);
    assert_eq!(g["at_preflight"], false);
    assert!(
        g["first_revert_at_s"].as_f64().unwrap() <= f["reverted_at_s"].as_f64().unwrap(),
        "{g} {f}"
    );
    let junit = sb.junit();
    let case = junit
        .cases
        .iter()
        .find(|c| c.name == format!("guard:{name}"))
        .unwrap_or_else(|| panic!("no guard:{name} case in {:?}", junit.names()));
    assert!(
        case.failure
            .as_deref()
            .is_some_and(|m| m.contains("time to guard")),
        "{case:?}"
    );
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(
        md.contains(&format!("**Guard `{name}` stopped the drill**")),
        "{md}"
    );
    nothing_left(sb, &r);
    r
}

#[test]
fn an_unexpected_alert_fired_mid_fault_stops_the_drill_and_reverts_within_a_poll() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    // Nothing in this drill expects IngressGatewayDown: when the gateway
    // it takes down makes it fire, production said "enough".
    let s = scenario(
        &sb,
        "alert-guard",
        "name = \"gateway-alert\"\nalert = \"IngressGatewayDown\"\nlabels = { cluster = \"primary\" }\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    let r = stopped_mid_fault(&sb, &out, "gateway-alert");
    let g = guard(&r, "gateway-alert");
    assert_eq!(g["status"], "breached");
    assert!(
        g["breach"]
            .as_str()
            .unwrap()
            .starts_with("IngressGatewayDown{cluster=\"primary\""),
        "{g}"
    );
    let ttg = g["time_to_guard_s"].as_f64().expect("time to guard");
    assert!(
        (0.0..=EVAL_S + POLL_S).contains(&ttg),
        "time to guard {ttg}s above one evaluation ({EVAL_S}s) and one poll ({POLL_S}s): {g}"
    );
    // results.json with its guard still matches the results schema.
    let schema = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(repo("schemas/results.schema.json"))
        .arg(sb.report_dir().join("results.json"))
        .output()
        .expect("check-jsonschema runs (ci/test.sh installs it)");
    assert!(schema.status.success(), "{}", Outcome::of(schema));
    // The alert needs its `for` (1m ÷ 20 on the lab) after the inject.
    let f = &r["faults"][0];
    assert!(
        g["visible_at_s"].as_f64().unwrap() >= f["injected_at_s"].as_f64().unwrap() + 3.0,
        "{g} {f}"
    );
}

#[test]
fn a_promql_guard_over_the_labs_metrics_stops_the_drill_and_reverts_within_an_interval() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    let s = scenario(
        &sb,
        "promql-guard",
        "name = \"primary-gateways\"\npromql = 'sum(up{app=\"istio-ingressgateway\",cluster=\"primary\"}) or vector(0)'\nbelow = 1\nfor = \"1s\"\ninterval = \"1s\"\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    let r = stopped_mid_fault(&sb, &out, "primary-gateways");
    let g = guard(&r, "primary-gateways");
    assert_eq!(g["status"], "breached");
    assert_eq!(g["value"], 0.0, "{g}");
    assert_eq!(g["limit"], 1.0, "{g}");
    let ttg = g["time_to_guard_s"].as_f64().expect("time to guard");
    let interval = 1.0;
    assert!(
        (0.0..=interval + POLL_S).contains(&ttg),
        "time to guard {ttg}s above one evaluation ({interval}s) and one poll: {g}"
    );
    // The check carries the breaching value against the limit.
    let c = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "guard:primary-gateways")
        .unwrap();
    assert_eq!(c["status"], "fail");
    assert_eq!(c["measured"], 0.0);
    assert_eq!(c["threshold"], 1.0);
}

/// Pids of the Prometheus drill started for `run_id` (its configuration
/// lives in the run's monitoring directory).
fn lab_prometheus(run_id: &str) -> Vec<i32> {
    let dir = format!("drill-monitoring-{run_id}/prometheus.yml");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_prometheus = args
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some("prometheus"));
        if is_prometheus && args.iter().any(|a| a.contains(&dir)) {
            pids.push(pid);
        }
    }
    pids
}

/// Runs `scenario` and kills the lab's Prometheus once the fault is in.
fn kill_prometheus_mid_fault(sb: &Sandbox, targets: &str, scenario: &str) -> Outcome {
    let mut run = sb.spawn(&run_args(sb, targets, scenario));
    let run_id = sb.wait_for_run_id(&mut run);
    let journal = sb.journal_dir().join(format!("{run_id}.jsonl"));
    wait_until(Duration::from_secs(60), "the fault's inject", || {
        run.assert_running("before its fault was injected");
        journal_entries(&journal)
            .iter()
            .any(|e| e["type"] == "inject")
    });
    let pids = lab_prometheus(&run_id);
    assert_eq!(pids.len(), 1, "the lab's Prometheus: {pids:?}");
    // SAFETY: a process of this test's own drill run.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    run.wait(Duration::from_secs(90))
}

/// Holds while both istiods are up: only an unreadable Prometheus matters.
const ISTIODS: &str = "name = \"istiods\"\npromql = 'sum(up{app=\"istiod\"}) or vector(0)'\nbelow = 1\ninterval = \"1s\"\n";

#[test]
fn a_prometheus_that_dies_mid_drill_stops_it_fail_safe() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    let s = scenario(&sb, "unreachable", ISTIODS);
    let out = kill_prometheus_mid_fault(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    let g = guard(&r, "istiods");
    assert_eq!(g["status"], "unreachable", "{g}");
    assert!(
        g["breach"]
            .as_str()
            .unwrap()
            .contains("Prometheus could not be read"),
        "{g}"
    );
    assert!(
        r["reason"].as_str().unwrap().contains("fail safe"),
        "{}",
        r["reason"]
    );
    assert_eq!(r["faults"][0]["ended"], "reverted", "{}", r["faults"]);
    nothing_left(&sb, &r);
}

#[test]
fn with_on_unreachable_continue_the_drill_goes_on_counting_failed_reads() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    let s = scenario(
        &sb,
        "continue",
        &format!("{ISTIODS}on_unreachable = \"continue\"\n"),
    )
    .to_string();
    // A 30 s fault would make this test slow: 6 s is enough to kill
    // Prometheus during it.
    let src = std::fs::read_to_string(&s)
        .unwrap()
        .replace("duration = \"30s\"", "duration = \"6s\"");
    std::fs::write(&s, src).unwrap();
    let out = kill_prometheus_mid_fault(&sb, &t, &s);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let g = guard(&r, "istiods");
    assert_eq!(g["status"], "held", "{g}");
    assert!(g["failed_reads"].as_u64().unwrap() > 0, "{g}");
    assert!(g["last_error"].as_str().is_some(), "{g}");
    assert_eq!(r["faults"][0]["ended"], "reverted", "{}", r["faults"]);
    nothing_left(&sb, &r);
}

#[test]
fn a_guard_already_breaching_at_preflight_refuses_to_start() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    // The lab runs two istiods; a guard demanding three is breached before
    // anything is injected.
    let s = scenario(
        &sb,
        "preflight",
        "name = \"three-istiods\"\npromql = 'sum(up{app=\"istiod\"})'\nbelow = 3\n",
    );
    let out = sb.run(&run_args(&sb, &t, &s));
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    assert!(
        r["faults"].as_array().unwrap().is_empty(),
        "{}",
        r["faults"]
    );
    let g = guard(&r, "three-istiods");
    assert_eq!(g["status"], "breached");
    assert_eq!(g["at_preflight"], true);
    // Two istiods, each scraped at least once before preflight.
    assert!(g["value"].as_f64().unwrap() < 3.0, "{g}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("already breaching") && reason.contains("nothing was injected"),
        "{reason}"
    );
    let done = sb.done_journals();
    assert_eq!(done.len(), 1);
    assert!(
        !journal_entries(&done[0])
            .iter()
            .any(|e| e["type"] == "inject"),
        "nothing injected"
    );
    nothing_left(&sb, &r);
    let junit = sb.junit();
    assert!(
        junit
            .cases
            .iter()
            .any(|c| c.name == "guard:three-istiods" && c.failure.is_some()),
        "{:?}",
        junit.cases
    );
}

#[test]
fn without_promtool_the_prometheus_the_guard_reads_rejects_its_expression_before_any_inject() {
    let _g = lab_lock();
    let sb = Sandbox::new();
    let t = targets(&sb);
    // A PATH with the lab's monitoring and the shell its lifeline needs,
    // but no promtool: validation cannot parse PromQL offline.
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["prometheus", "prometheus-alertmanager", "sh", "cat"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} on PATH (ci/test.sh installs it)"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let s = scenario(&sb, "type-error", "promql = 'rate(up) > 0'\nabove = 1\n");
    let mut cmd = sb.command(&run_args(&sb, &t, &s));
    cmd.env("PATH", &bin);
    let out = Outcome::of(cmd.output().unwrap());
    assert_eq!(out.code, Some(2), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains("type-error.toml:24:1")
            && shown.contains("rejects the expression")
            && shown.contains("range vector"),
        "{shown}"
    );
    let r = sb.results();
    assert!(
        r["faults"].as_array().unwrap().is_empty(),
        "{}",
        r["faults"]
    );
    nothing_left(&sb, &r);
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn invalid_guards_are_refused_at_their_line_before_anything_runs() {
    let sb = Sandbox::new();
    let t = targets(&sb);
    // A type error only Prometheus's parser (promtool) knows, at its column.
    let s = scenario(
        &sb,
        "bad-promql",
        "promql = 'sum(rate(up)) > 0'\nabove = 1\n",
    );
    let out = sb.run(&["--targets", &t, "validate", &s]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("bad-promql.toml:25:20") && out.stderr.contains("range vector"),
        "{out}"
    );
    // `for` shorter than the evaluation interval, with the way out.
    let s = scenario(
        &sb,
        "short-for",
        "promql = 'sum(up)'\nbelow = 1\nfor = \"2s\"\ninterval = \"5s\"\n",
    );
    let out = sb.run(&["--targets", &t, "validate", &s]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("short-for.toml:27:") && out.stderr.contains("at least \"5s\""),
        "{out}"
    );
    // A target without Prometheus/Alertmanager cannot be guarded.
    let http = sb.write(
        "http-targets.toml",
        "[targets.svc]\nkind = \"http\"\nurl = \"http://127.0.0.1:9\"\n",
    );
    let s = sb.write(
        "http-guard.toml",
        "description = \"d\"\ntarget = \"svc\"\n\n[load]\npath = \"/\"\nrate = 10\n\n[[faults]]\naction = \"command\"\ninject = \"true\"\nrevert = \"true\"\nduration = \"1s\"\n\n[[guard]]\nany_unexpected_alert = true\n",
    );
    let out = sb.run(&[
        "--targets",
        http.to_str().unwrap(),
        "run",
        s.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("http-guard.toml:14:") && out.stderr.contains("names neither"),
        "{out}"
    );
    assert!(sb.done_journals().is_empty() && sb.open_journals().is_empty());
    // `drill plan` says what each guard would do.
    let s = scenario(
        &sb,
        "planned",
        "name = \"errors\"\npromql = 'sum(up)'\nbelow = 1\nfor = \"5s\"\non_unreachable = \"continue\"\n",
    );
    let out = sb.run(&["--targets", &t, "plan", &s]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("guard `errors`")
            && out.stdout.contains("sum(up) < 1 for 5s")
            && out.stdout.contains("revert every active fault")
            && out.stdout.contains("continue"),
        "{out}"
    );
    // The scenario schema knows [[guard]].
    let schema = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(repo("schemas/scenario.schema.json"))
        .arg(&s)
        .output()
        .expect("check-jsonschema runs (ci/test.sh installs it)");
    assert!(schema.status.success(), "{}", Outcome::of(schema));
}
