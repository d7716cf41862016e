//! Generator agents through the binary: `drill run --agents N` against a
//! local server merges to what one generator reports, the stall truth holds
//! through agents, an agent killed mid-drill is reported missing from its
//! last frontier (exit 5, never a pass), and an agent whose runner goes
//! silent stops by itself.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Outcome, Sandbox, lab_lock};
use serde_json::Value;

/// A local HTTP/1.1 server (keep-alive, a thread per connection) answering
/// 200 after `delay`; while the file `freeze` exists it answers nothing
/// until the file is gone. Counts the requests it answered.
struct Server {
    port: u16,
    answered: Arc<AtomicU64>,
}

impl Server {
    fn start(delay: Duration, freeze: PathBuf) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let answered = Arc::new(AtomicU64::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (count, freeze) = (count.clone(), freeze.clone());
                std::thread::spawn(move || serve(s, delay, &freeze, &count));
            }
        });
        Server { port, answered }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(s: TcpStream, delay: Duration, freeze: &Path, count: &AtomicU64) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        // Request line and headers (the load's requests have no body).
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        while freeze.exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(delay);
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
}

fn scenario(sb: &Sandbox, extra: &str) -> PathBuf {
    sb.write(
        "s.toml",
        &format!(
            "description = \"agents\"\n[load]\npath = \"/\"\nrate = 100\ntimeout = \"500ms\"\n\
             max_send_lag = \"1s\"\n[phases]\nwarmup = \"500ms\"\nbaseline = \"2s\"\n\
             recovery = \"2s\"\n[recovery]\nwindow = \"200ms\"\nhold = \"500ms\"\n{extra}"
        ),
    )
}

fn drill(sb: &Sandbox, srv: &Server, s: &Path, extra: &[&str]) -> common::Running {
    let targets = sb.http_targets("svc", &srv.url());
    let mut args = vec![
        "--targets".to_string(),
        targets.display().to_string(),
        "run".into(),
        s.display().to_string(),
        "--target".into(),
        "svc".into(),
        "--quiet".into(),
        "--no-history".into(),
        "--report-dir".into(),
        sb.report_arg(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    sb.spawn(&args)
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Two agents at 50/s each against one generator at 100/s: exactly the
/// same counts (100/s × 2 s of baseline = 200 requests, all good), the same
/// availability, and medians within 5 ms: the merge itself is exact (HDR
/// histograms added, 0.1% precision, see `measure::delta` tests; the lone
/// vantage point's percentiles equal the merged ones to the digit); what
/// differs between two runs on a shared machine is scheduling noise around
/// the server's fixed 10 ms, which on a busy machine reaches the tail most.
#[test]
fn two_agents_at_half_the_rate_merge_to_one_generator() {
    let _lab = lab_lock();
    let mut seen = Vec::new();
    for agents in [None, Some("2")] {
        let sb = Sandbox::new();
        let srv = Server::start(Duration::from_millis(10), sb.path("frozen"));
        let s = scenario(&sb, "");
        let extra: Vec<&str> = agents.map_or(vec![], |n| vec!["--agents", n]);
        let out = drill(&sb, &srv, &s, &extra).wait(common::RUN_LIMIT);
        assert_eq!(out.code, Some(0), "{out}");
        seen.push(sb.results());
    }
    let (one, two) = (&seen[0], &seen[1]);
    let (b1, b2) = (&one["phases"]["baseline"], &two["phases"]["baseline"]);
    assert_eq!(b1["requests"], 200, "{b1:#}");
    assert_eq!(b2["requests"], 200, "{b2:#}");
    assert_eq!(b1["good"], b2["good"]);
    assert_eq!(b1["availability"], b2["availability"]);
    // Every sender stops counting at the drill's end, however late it heard
    // of the stop: the merged total is the one generator's, within a tick's
    // worth of requests (1 ms at 100/s: at most one either side).
    let sent = |r: &Value| r["load"]["sent"].as_i64().unwrap();
    assert!(
        (sent(one) - sent(two)).abs() <= 1,
        "sent: one generator {}, two agents {}: {:#} {:#}",
        sent(one),
        sent(two),
        one["load"],
        two["load"]
    );
    // Two runs a few seconds apart on a shared machine: the median is the
    // server's 10 ms plus scheduling, the tail is whatever else ran then.
    for b in [b1, b2] {
        let (p50, p99) = (ms(&b["p50_ms"]), ms(&b["p99_ms"]));
        assert!(
            (10.0..25.0).contains(&p50),
            "p50 {p50}: the server's 10 ms plus scheduling: {b:#}"
        );
        assert!((p50..100.0).contains(&p99), "p99 {p99}: {b:#}");
    }
    assert!(
        (ms(&b1["p50_ms"]) - ms(&b2["p50_ms"])).abs() < 5.0,
        "{b1:#} {b2:#}"
    );
    assert!(one.get("vantages").is_none(), "one generator: no vantages");
    let v = &two["vantages"][0];
    assert_eq!(v["name"], "local");
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
    assert_eq!(v["phases"]["baseline"]["requests"], 200);
    // One vantage point holds every agent's requests: its figures are the
    // merged ones exactly, percentiles included (the same HDR merge).
    for k in ["requests", "availability", "p50_ms", "p99_ms"] {
        assert_eq!(v["phases"]["baseline"][k], b2[k], "{k}: {v:#} {b2:#}");
    }
    for a in v["agents"].as_array().unwrap() {
        assert!(a["missing_from_s"].is_null(), "{a:#}");
        assert!(ms(&a["clock_bound_ms"]) < 50.0, "{a:#}");
    }
    let rate = ms(&two["load"]["achieved_rate"]);
    assert!((rate - 100.0).abs() < 1.0, "achieved {rate}");
}

/// The stall truth through agents: the target frozen for 1.5 s (a command
/// fault creates and removes the file the server watches) reads back an
/// RTO of 1.5 s (±0.3 s: the command's own start and the 100 ms buckets),
/// merged and from the vantage point alike; results.json passes its schema.
#[test]
fn a_frozen_target_reads_back_its_freeze_through_agents() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let srv = Server::start(Duration::ZERO, sb.path("frozen"));
    let s = scenario(
        &sb,
        "[[faults]]\nname = \"freeze\"\naction = \"command\"\ninject = \"touch frozen\"\n\
         revert = \"rm frozen\"\nduration = \"1500ms\"\n",
    );
    let out = drill(&sb, &srv, &s, &["--agents", "2"]).wait(common::RUN_LIMIT);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let rto = ms(&r["faults"][0]["rto_s"]);
    assert!((rto - 1.5).abs() < 0.3, "rto {rto}: {:#}", r["faults"]);
    let v = &r["vantages"][0]["faults"][0];
    assert_eq!(v["rto_s"], r["faults"][0]["rto_s"], "{v:#}");
    assert_eq!(
        r["vantages"][0]["phases"]["fault"]["requests"],
        r["phases"]["fault"]["requests"]
    );
    assert!(srv.answered.load(Ordering::Relaxed) > 400);
    let schema = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/results.schema.json"
        ))
        .arg(sb.report_dir().join("results.json"))
        .output()
        .expect("check-jsonschema (ci/test.sh installs it)");
    let schema = Outcome::of(schema);
    assert_eq!(schema.code, Some(0), "{schema}");
}

/// Live `drill agent` children of a process, by /proc.
fn agent_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<u32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{k}/cmdline")).unwrap_or_default();
            if cmd.split(|&b| b == 0).any(|a| a == b"agent") {
                out.push(k);
            }
        }
    }
    out.sort();
    out
}

/// One of two agents killed (SIGKILL) during the baseline: the drill still
/// finishes its phases, says which agent went missing and from when, its
/// achieved rate falls below the asked one, and the verdict is
/// `inconclusive` (exit 5), never a pass.
#[test]
fn an_agent_killed_mid_drill_is_reported_missing_and_the_drill_is_inconclusive() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let srv = Server::start(Duration::ZERO, sb.path("frozen"));
    let s = scenario(&sb, "");
    let mut run = drill(&sb, &srv, &s, &["--agents", "2"]);
    let mut kids = Vec::new();
    common::wait_until(Duration::from_secs(20), "two agents", || {
        run.assert_running("while waiting for its agents");
        kids = agent_children(run.pid());
        kids.len() == 2
    });
    // Into the baseline (0.3 s lead + 0.5 s warmup + 0.7 s).
    std::thread::sleep(Duration::from_millis(1_500));
    let killed_at = Instant::now();
    // SAFETY: kill(2) on a process this test found as the drill's child.
    assert_eq!(unsafe { libc::kill(kids[1] as i32, libc::SIGKILL) }, 0);
    let out = run.wait(common::RUN_LIMIT);
    assert_eq!(out.code, Some(5), "{out}");
    assert!(killed_at.elapsed() < Duration::from_secs(30));
    let r = sb.results();
    assert_eq!(r["verdict"], "inconclusive");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("agent local/1 missing from t+"), "{reason}");
    let agents = r["vantages"][0]["agents"].as_array().unwrap();
    assert!(agents[0]["missing_from_s"].is_null(), "{agents:#?}");
    let from = ms(&agents[1]["missing_from_s"]);
    // Killed about 1.5 s after its start; its last frontier is a little before.
    assert!((0.8..=2.5).contains(&from), "missing from {from}");
    assert!(ms(&r["load"]["achieved_rate"]) < 99.0, "{:#}", r["load"]);
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(md.contains("local/1") && md.contains("missing"), "{md}");
}

/// The runner killed with SIGKILL (no teardown can run): its local agents
/// go with it, at once, instead of sending for their idle timeout.
#[test]
fn local_agents_end_with_a_runner_killed_with_sigkill() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let srv = Server::start(Duration::ZERO, sb.path("frozen"));
    let s = scenario(&sb, "");
    let mut run = drill(&sb, &srv, &s, &["--agents", "2"]);
    let mut kids = Vec::new();
    common::wait_until(Duration::from_secs(20), "two agents", || {
        run.assert_running("while waiting for its agents");
        kids = agent_children(run.pid());
        kids.len() == 2
    });
    run.signal(libc::SIGKILL);
    let _ = run.wait(Duration::from_secs(5));
    common::wait_until(Duration::from_secs(2), "the agents to end", || {
        kids.iter()
            .all(|k| !Path::new(&format!("/proc/{k}")).exists() || zombie(*k))
    });
    let after = srv.answered.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.answered.load(Ordering::Relaxed), after, "still sending");
}

/// A process that ended and waits to be reaped.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

/// One POST to an agent, the answer's body (a fresh connection each time).
fn post(port: u16, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// An agent started and polled once, then left alone: it stops sending
/// and exits (code 3) after its idle timeout, saying why; an agent never
/// started exits after its start timeout.
#[test]
fn an_agent_whose_runner_goes_silent_stops_by_itself() {
    let srv = Server::start(Duration::ZERO, PathBuf::from("/nonexistent/frozen"));
    let mut agent = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["agent", "--idle-timeout", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    let hello: Value = serde_json::from_str(&post(port, "/v1/hello", "{}")).unwrap();
    assert_eq!(hello["version"], 1);
    let share = serde_json::json!({
        "template": {"url": format!("{}/", srv.url()), "method": "GET", "headers": [],
            "body": "", "timeout_ms": 500, "success": ["2xx"], "keep_alive": true,
            "workers": 1, "max_in_flight": 100},
        "rate": 50.0, "start_us": 0, "offset_us": hello["agent_us"].as_i64().unwrap(),
        "bucket_us": 100000, "horizon_us": 2000000, "idle_timeout_ms": 1000
    });
    post(port, "/v1/start", &share.to_string());
    std::thread::sleep(Duration::from_millis(300));
    let reply: Value = serde_json::from_str(&post(
        port,
        "/v1/poll",
        r#"{"ack":0,"marks":[],"settled_us":200000}"#,
    ))
    .unwrap();
    assert_eq!(reply["seq"], 1);
    assert!(reply["delta"]["sent"].as_u64().unwrap() >= 5, "{reply:#}");
    let silent = Instant::now();
    let status = loop {
        if let Some(st) = agent.try_wait().unwrap() {
            break st;
        }
        assert!(
            silent.elapsed() < Duration::from_secs(5),
            "the agent kept running"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    assert!(silent.elapsed() >= Duration::from_millis(900));
    let mut err = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("no poll from the runner"), "{err}");
    let after = srv.answered.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.answered.load(Ordering::Relaxed), after, "still sending");

    let never = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["agent", "--start-timeout", "300ms"])
        .output()
        .unwrap();
    assert_eq!(never.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&never.stderr).contains("not started"));
}

/// Vantage points that cannot work are input errors (exit 2) at their
/// file:line:col with a hint, before anything runs: a duplicate name, an
/// agent count out of range, a region the lab does not have, kubernetes
/// keys on a lab target, a context the kubernetes target does not name.
#[test]
fn bad_vantage_points_exit_2_at_their_line_and_column() {
    let sb = Sandbox::new();
    let targets = sb.write(
        "targets.toml",
        "[targets.mylab]\nkind = \"lab\"\n\n\
         [[targets.mylab.vantage]]\nname = \"a\"\nagents = 0\n\n\
         [[targets.mylab.vantage]]\nname = \"a\"\nregion = \"tertiary\"\nnamespace = \"x\"\n\n\
         [targets.prod]\nkind = \"kubernetes\"\nurl = \"https://bookinfo.example.com\"\n\
         contexts = { primary = \"p\" }\n\n\
         [[targets.prod.vantage]]\nname = \"east\"\ncontext = \"east\"\nregion = \"primary\"\n",
    );
    let s = sb.write(
        "s.toml",
        "description = \"d\"\n[load]\npath = \"/\"\nrate = 10\n",
    );
    let out = Outcome::of(
        sb.command(&[
            "--targets",
            targets.to_str().unwrap(),
            "validate",
            s.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(out.code, Some(2), "{out}");
    let err = &out.stderr;
    for (what, at) in [
        ("agents = 0 is out of range", "targets.toml:6:10"),
        ("vantage point `a` is declared twice", "targets.toml:9:8"),
        ("the lab has no region `tertiary`", "targets.toml:10:10"),
        (
            "`namespace` is for vantage points of kubernetes targets",
            "targets.toml:11:13",
        ),
        (
            "context `east` is not one of the target's contexts",
            "targets.toml:20:11",
        ),
        (
            "`region` is for vantage points of lab targets",
            "targets.toml:21:10",
        ),
    ] {
        assert!(err.contains(what), "{what}: {err}");
        assert!(err.contains(at), "{what} at {at}: {err}");
    }
    assert!(err.contains("1 to 64 agents per vantage point"), "{err}");
    assert!(err.contains("one of: primary, secondary"), "{err}");
}

/// The finding vantage points exist for, on the lab: the primary ingress
/// gateway killed is a failover of about half a second (the entry's
/// health checks, 200 ms × 3) from the global entry, and nothing at all
/// from the secondary region, whose users enter through their own gateway.
#[test]
fn a_failover_is_seen_differently_from_each_side_on_the_lab() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let targets = sb.write(
        "targets.toml",
        "[targets.sides]\nkind = \"lab\"\nlab = { restart_delay = \"2s\", push_interval = \"200ms\", \
         health = { interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 3, healthy_threshold = 2 } }\n\
         [[targets.sides.vantage]]\nname = \"global-entry\"\n\
         [[targets.sides.vantage]]\nname = \"via-secondary\"\nregion = \"secondary\"\n",
    );
    let s = sb.write(
        "s.toml",
        "description = \"sides\"\n[load]\npath = \"/productpage\"\nrate = 200\ntimeout = \"2s\"\n\
         max_send_lag = \"1s\"\n[phases]\nwarmup = \"1s\"\nbaseline = \"2s\"\nrecovery = \"3s\"\n\
         [recovery]\nwindow = \"500ms\"\nhold = \"2s\"\n[[faults]]\nname = \"kill\"\n\
         component = \"ingress-gateway\"\nregion = \"primary\"\naction = \"delete\"\n\
         until = \"healed\"\ntimeout = \"30s\"\n",
    );
    // `drill plan` says where the load will come from before anything runs.
    let plan = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "plan",
        s.to_str().unwrap(),
        "--target",
        "sides",
    ]);
    assert_eq!(plan.code, Some(0), "{plan}");
    assert!(
        plan.stdout.contains("load from: via-secondary: 1 local agent process(es), entering through region secondary's ingress gateway"),
        "{plan}"
    );
    let out = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        s.to_str().unwrap(),
        "--target",
        "sides",
        "--quiet",
        "--no-history",
        "--report-dir",
        &sb.report_arg(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let vs = r["vantages"].as_array().unwrap();
    let (global, secondary) = (&vs[0], &vs[1]);
    assert_eq!(global["name"], "global-entry");
    let rto = ms(&global["faults"][0]["rto_s"]);
    assert!(
        (0.2..=1.5).contains(&rto),
        "from the global entry: {global:#}"
    );
    // Merged, half the traffic (the secondary's) never failed, so each
    // bucket's first good answer may come a little earlier than the global
    // side's alone: the same failover within a bucket or two.
    let merged = ms(&r["faults"][0]["rto_s"]);
    assert!((merged - rto).abs() <= 0.2, "merged {merged}, global {rto}");
    assert_eq!(
        secondary["faults"][0]["recovery"], "no-impact",
        "{secondary:#}"
    );
    assert_eq!(secondary["availability"], 1.0);
    assert!(ms(&global["availability"]) < 1.0);
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(
        md.contains("| | merged | global-entry | via-secondary |"),
        "{md}"
    );
}
