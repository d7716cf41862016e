//! The preflight probe of an HTTP entry point is one request of the load
//! itself (its method, headers and body), and a target already failing
//! (5xx) stops the drill before anything is injected, unless the scenario
//! counts that status as good. Checked against the scripted raw server's
//! own log (`fixtures/conformance/raw.py`).

mod common;

use std::process::{Child, Command};

use common::Sandbox;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn raw(sb: &Sandbox) -> (Server, String) {
    let port = common::free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/conformance/raw.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(sb.path("raw.log"))
        .spawn()
        .expect("python3");
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the raw server listens",
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (Server(child), format!("http://127.0.0.1:{port}"))
}

fn run(sb: &Sandbox, url: &str, load: &str) -> common::Outcome {
    let targets = sb.http_targets("svc", url);
    let scenario = sb.write(
        "s.toml",
        &format!(
            "description = \"preflight\"\n[load]\nrate = 20\n{load}\n[phases]\nwarmup = \"100ms\"\nbaseline = \"500ms\"\n[recovery]\nwindow = \"200ms\"\nhold = \"200ms\"\n"
        ),
    );
    sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        scenario.to_str().unwrap(),
        "--target",
        "svc",
        "--quiet",
        "--no-history",
        "--report-dir",
        &sb.report_arg(),
    ])
}

fn log(sb: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sb.path("raw.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A HEAD load with a header: the first request the server saw (the
/// preflight) is that HEAD with that header, and the drill passes.
#[test]
fn the_preflight_sends_the_loads_method_and_headers() {
    let sb = Sandbox::new();
    let (_srv, url) = raw(&sb);
    let out = run(
        &sb,
        &url,
        "method = \"HEAD\"\npath = \"/ok\"\nheaders = { \"x-probe\" = \"yes\" }",
    );
    assert_eq!(out.code, Some(0), "{out}");
    let log = log(&sb);
    assert_eq!(
        log.first().map(String::as_str),
        Some("/ok 200 HEAD yes"),
        "{log:?}"
    );
    assert!(log.iter().all(|l| l == "/ok 200 HEAD yes"), "{log:?}");
}

/// A target answering 503 before any fault: exit 3, the status named, and
/// no load sent (the server saw the preflight only). With 503 in the
/// success set the same target passes its preflight.
#[test]
fn a_5xx_at_preflight_stops_the_drill_unless_the_scenario_counts_it_good() {
    let sb = Sandbox::new();
    let (_srv, url) = raw(&sb);
    let out = run(&sb, &url, "path = \"/s503\"");
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.contains("answered 503"), "{out}");
    assert_eq!(log(&sb).len(), 1, "only the preflight reached the server");

    let sb = Sandbox::new();
    let (_srv, url) = raw(&sb);
    let out = run(&sb, &url, "path = \"/s503\"\nsuccess = [\"2xx\", 503]");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(log(&sb).len() > 5, "the load ran");
}
