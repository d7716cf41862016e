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

/// The user's own Prometheus (scrape and evaluation every 500 ms) and
/// Alertmanager, started by the test, scraping a `drill lab serve`
/// stand-in; killed on drop.
struct UserMonitoring {
    children: Vec<std::process::Child>,
    prom_port: u16,
    am_port: u16,
    _dir: tempfile::TempDir,
}

impl UserMonitoring {
    fn start(app_port: u16) -> UserMonitoring {
        let dir = tempfile::tempdir().unwrap();
        let (prom_port, am_port) = (common::free_port(), common::free_port());
        let p = |f: &str| dir.path().join(f).display().to_string();
        std::fs::write(
            p("rules.yml"),
            "groups:\n  - name: user\n    rules:\n      - alert: ProductpageErrors\n        expr: sum(rate(istio_requests_total{reporter=\"destination\",response_code=~\"5..\"}[3s])) > 0\n        labels:\n          severity: page\n",
        )
        .unwrap();
        std::fs::write(
            p("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n  evaluation_interval: 500ms\n\
                 rule_files:\n  - rules.yml\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
            ),
        )
        .unwrap();
        std::fs::write(
            p("am.yml"),
            "route:\n  receiver: r\n  group_wait: 0s\nreceivers:\n  - name: r\n",
        )
        .unwrap();
        let spawn = |bin: &str, args: Vec<String>| {
            Command::new(bin)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{bin} runs (ci/test.sh installs it): {e}"))
        };
        let am = spawn(
            "prometheus-alertmanager",
            vec![
                format!("--config.file={}", p("am.yml")),
                format!("--storage.path={}", p("am-data")),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ],
        );
        let prom = spawn(
            "prometheus",
            vec![
                format!("--config.file={}", p("prometheus.yml")),
                format!("--storage.tsdb.path={}", p("prom-data")),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--rules.alert.resend-delay=500ms".into(),
            ],
        );
        let m = UserMonitoring {
            children: vec![am, prom],
            prom_port,
            am_port,
            _dir: dir,
        };
        let block = |f: std::pin::Pin<Box<dyn std::future::Future<Output = bool>>>| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        };
        let prom = drill::observe::api::Prometheus::new(&m.url(m.prom_port));
        let am = drill::observe::api::Alertmanager::new(&m.url(m.am_port));
        // Ready is not scraping: wait for the first scrape of the service.
        wait_until(Duration::from_secs(30), "the user's monitoring", || {
            let (p, a) = (prom.clone(), am.clone());
            block(Box::pin(async move {
                a.ready().await.is_ok() && p.query("up").await.is_ok_and(|s| !s.is_empty())
            }))
        });
        m
    }

    fn url(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }
}

impl Drop for UserMonitoring {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn on_an_http_target_the_users_own_alert_stops_the_drill_and_a_promql_guard_holds() {
    let svc = common::Service::start();
    let mon = UserMonitoring::start(svc.port);
    let sb = Sandbox::new();
    let t = sb.write(
        "targets.toml",
        &format!(
            "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\n\n[targets.svc.prometheus]\nurl = \"{}\"\n\n[targets.svc.alertmanager]\nurl = \"{}\"\n",
            svc.url(),
            mon.url(mon.prom_port),
            mon.url(mon.am_port)
        ),
    );
    // Every request answers 503 while the fault lasts (the lab server's
    // fault filter, set by the user's own command; python3, which
    // ci/test.sh installs).
    sb.write(
        "fault.py",
        &format!(
            "import sys, urllib.request\n\
             body = ('{{\"percent\":1,\"abort_status\":%s}}' % sys.argv[1]).encode() if len(sys.argv) > 1 else b''\n\
             req = urllib.request.Request('http://127.0.0.1:{}/-/drill/fault', data=body, method='POST')\n\
             urllib.request.urlopen(req, timeout=5).read()\n",
            svc.port
        ),
    );
    let s = sb.write(
        "user-alert.toml",
        r#"description = "the user's own alert is a stop guard"
target = "svc"

[load]
path = "/productpage"
rate = 50
max_send_lag = "1s"

[phases]
warmup = "1s"
baseline = "2s"
recovery = "1s"

[recovery]
window = "500ms"
hold = "1s"

[[faults]]
name = "abort-all"
action = "command"
inject = "python3 fault.py 503"
revert = "python3 fault.py"
duration = "30s"

[[guard]]
alert = "ProductpageErrors"

[[guard]]
name = "scraped"
promql = 'sum(up) or vector(0)'
below = 1
interval = "500ms"
"#,
    );
    let out = sb.run(&[
        "--targets",
        t.to_str().unwrap(),
        "run",
        s.to_str().unwrap(),
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    let g = guard(&r, "ProductpageErrors");
    assert_eq!(g["status"], "breached", "{g}");
    assert!(
        g["breach"].as_str().unwrap().contains("severity=\"page\""),
        "{g}"
    );
    let ttg = g["time_to_guard_s"].as_f64().expect("time to guard");
    let (eval, poll) = (0.5, POLL_S);
    assert!(
        (0.0..=eval + poll).contains(&ttg),
        "time to guard {ttg}s above the user's evaluation ({eval}s) and one poll: {g}"
    );
    let held = guard(&r, "scraped");
    assert_eq!(held["status"], "held", "{held}");
    assert!(held["readings"].as_u64().unwrap() > 1, "{held}");
    let f = &r["faults"][0];
    assert_eq!(f["ended"], "reverted", "{f}");
    assert!(
        f["reverted_at_s"].as_f64().unwrap() - f["injected_at_s"].as_f64().unwrap() < 20.0,
        "{f}"
    );
    assert!(sb.open_journals().is_empty(), "journal closed");
    // The service answers again: the revert command ran.
    let status = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('{}/productpage', timeout=5).status)",
                svc.url()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "200");
}
