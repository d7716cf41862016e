//! Results in the users' Prometheus, end to end with the real parts: a
//! Pushgateway (Debian's `prometheus-pushgateway`; ci/test.sh installs it)
//! and a Prometheus (Debian's `prometheus`) that scrapes it with
//! `honor_labels` and evaluates rules/drill-results.yml every second. A
//! passing drill and then a failing one push their results; the metrics are
//! read back from the Pushgateway, and `DrillFailed` must fire in
//! Prometheus for the failing one. A Pushgateway that cannot be reached is
//! a warning and leaves the exit code alone.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, Service, free_port};
use drill::observe::api::Prometheus;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A process the test owns, killed on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pushgateway_bin() -> String {
    std::env::var("DRILL_PUSHGATEWAY_BIN").unwrap_or_else(|_| "prometheus-pushgateway".into())
}

fn get(url: &str) -> Option<String> {
    // A plain HTTP GET over std, to read the Pushgateway's /metrics as a
    // scraper would (no client of drill's involved).
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /{} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        path.trim_start_matches('/')
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

fn wait(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the one series of `name` whose labels include every
/// `want` pair, in a text exposition.
fn series(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn scenario(sb: &Sandbox, dir: &str, p99_max: &str) -> PathBuf {
    let text = std::fs::read_to_string(common::fixture("http-command.toml")).unwrap()
        + &format!(
            "\n[[checks]]\nkind = \"latency\"\nphase = \"fault\"\npercentile = \"p99\"\nmax = \"{p99_max}\"\n"
        );
    std::fs::create_dir_all(sb.path(dir)).unwrap();
    sb.write(&format!("{dir}/http-push.toml"), &text)
}

#[test]
fn each_run_pushes_its_results_and_a_failed_drill_fires_drill_failed() {
    let _lab = common::lab_lock();
    let sb = Sandbox::new();
    let data = tempfile::tempdir().unwrap();

    let pg_port = free_port();
    let pg_url = format!("http://127.0.0.1:{pg_port}");
    let _pg = Owned(
        Command::new(pushgateway_bin())
            .arg(format!("--web.listen-address=127.0.0.1:{pg_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway runs (ci/test.sh installs it)"),
    );
    wait(Duration::from_secs(20), "the Pushgateway answers", || {
        get(&format!("{pg_url}/metrics")).is_some()
    });

    let prom_port = free_port();
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/drill-results.yml");
    let cfg = data.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{pg_port}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let _prom = Owned(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (ci/test.sh installs it)"),
    );
    let prom = Prometheus::new(&format!("http://127.0.0.1:{prom_port}"));
    wait(Duration::from_secs(30), "Prometheus is ready", || {
        block(prom.ready())
    });

    let svc = Service::start();
    // The targets file names the Pushgateway and the schedule.
    let targets = sb.write(
        "targets.toml",
        &format!(
            "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\n\n[pushgateway]\nurl = \"{pg_url}\"\nperiod = \"31d\"\ngrace = \"1d\"\n",
            svc.url()
        ),
    );
    let history = sb.path("history");
    let run = |file: &PathBuf, report: &str, extra: &[&str]| {
        let mut args = vec![
            "--targets".to_string(),
            targets.display().to_string(),
            "run".into(),
            "--target".into(),
            "svc".into(),
            "--quiet".into(),
            "--history".into(),
            history.display().to_string(),
            "--report-dir".into(),
            sb.path(report).display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(file.display().to_string());
        sb.run(&args)
    };

    // A passing run: its figures and its success time.
    let out = run(&scenario(&sb, "pass", "10s"), "r1", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("pushed: "), "{out}");
    let text = get(&format!("{pg_url}/metrics")).unwrap();
    let group = [
        ("job", "drill"),
        ("scenario", "http-push"),
        ("target", "svc"),
    ];
    assert_eq!(
        series(&text, "drill_run_success", &group),
        Some(1.0),
        "{text}"
    );
    assert_eq!(series(&text, "drill_run_exit_code", &group), Some(0.0));
    let r1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("r1/results.json")).unwrap())
            .unwrap();
    let dur = series(&text, "drill_run_duration_seconds", &group).unwrap();
    assert!(
        (dur - r1["duration_s"].as_f64().unwrap()).abs() < 1e-6,
        "{dur}"
    );
    let fault = [group[0], group[1], group[2], ("fault", "flip")];
    assert_eq!(
        series(&text, "drill_fault_rto_seconds", &fault),
        r1["faults"][0]["rto_s"].as_f64(),
        "{text}"
    );
    let baseline = [group[0], group[1], group[2], ("phase", "baseline")];
    assert_eq!(
        series(&text, "drill_availability_ratio", &baseline),
        r1["phases"]["baseline"]["availability"].as_f64()
    );
    assert!(series(&text, "drill_error_budget_consumed_ratio", &group).is_some());
    assert_eq!(
        series(&text, "drill_schedule_period_seconds", &group),
        Some(31.0 * 86400.0)
    );
    let success = [
        ("job", "drill_success"),
        ("scenario", "http-push"),
        ("target", "svc"),
    ];
    let last_ok = series(&text, "drill_last_success_timestamp_seconds", &success)
        .expect("a passing run pushes its success time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last_ok).abs() < 120.0, "{last_ok} vs now {now}");

    // A failing run (p99 above 0.5 ms against a service that takes 1 ms),
    // pushed through the flag this time: the group is replaced, the
    // success time stays.
    let out = run(
        &scenario(&sb, "fail", "0.5ms"),
        "r2",
        &["--pushgateway", &pg_url],
    );
    assert_eq!(out.code, Some(1), "{out}");
    let text = get(&format!("{pg_url}/metrics")).unwrap();
    assert_eq!(
        series(&text, "drill_run_success", &group),
        Some(0.0),
        "{text}"
    );
    assert_eq!(series(&text, "drill_run_exit_code", &group), Some(1.0));
    let verdict = [group[0], group[1], group[2], ("verdict", "fail")];
    assert_eq!(series(&text, "drill_run_verdict", &verdict), Some(1.0));
    let check = [group[0], group[1], group[2], ("check", "latency-p99:fault")];
    assert_eq!(
        series(&text, "drill_check_passed", &check),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "drill_last_success_timestamp_seconds", &success),
        Some(last_ok),
        "a failing run must not erase the last success"
    );

    // Prometheus scrapes it and DrillFailed fires for this scenario.
    wait(
        Duration::from_secs(30),
        "DrillFailed fires in Prometheus",
        || {
            block(prom.alerts()).is_ok_and(|alerts| {
                alerts.iter().any(|a| {
                    a.state == "firing"
                        && a.labels.get("alertname").map(String::as_str) == Some("DrillFailed")
                        && a.labels.get("scenario").map(String::as_str) == Some("http-push")
                        && a.labels.get("target").map(String::as_str) == Some("svc")
                })
            })
        },
    );

    // A Pushgateway nobody answers at: a warning, the verdict stands.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(
        &scenario(&sb, "pass", "10s"),
        "r3",
        &["--pushgateway", &dead],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("warning: cannot push http-push on svc"),
        "{out}"
    );
}

#[test]
fn a_pushgateway_flag_that_is_not_a_url_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "run",
        "--quiet",
        "--pushgateway",
        "pushgateway:9091",
        "--report-dir",
        sb.path("r").to_str().unwrap(),
        "ingress-failover",
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--pushgateway"), "{out}");
    assert!(!sb.path("r").join("results.json").exists());
}
