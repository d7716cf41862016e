//! Drills against "the user's" monitoring: a real Prometheus and Alertmanager
//! (Debian's binaries) started by the test, scraping a stand-in system behind
//! an `http` target (`drill lab serve`, which exports Istio's metrics), with
//! the user's own rule file. drill reaches them only through the targets
//! file's `[targets.NAME.prometheus]` / `[targets.NAME.alertmanager]`, here
//! behind loopback proxies that demand a bearer token.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Outcome, Sandbox, Service, free_port, lab_lock};
use drill::observe::api::{Alertmanager, ApiError, Endpoint, Prometheus};
// The loopback fake Kubernetes API servers of tests/k8s.rs.
use drill_testkit::k8s as k8s_support;
use drill_testkit::tls::{Key, private_ca};

const PROM_TOKEN: &str = "prom-t0ken-5f2c9a-never-written";
const AM_TOKEN: &str = "am-t0ken-8d1e77-never-written";

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The user's rule: any 5xx the mesh records on productpage.
const RULES: &str = r#"groups:
  - name: user
    rules:
      - alert: ProductpageErrors
        expr: sum(rate(istio_requests_total{reporter="destination",response_code=~"5.."}[3s])) > 0
        labels:
          severity: page
"#;

/// Prometheus (scrape and evaluation every 500 ms) scraping `app_port`,
/// sending to its own Alertmanager. Both killed on drop. With `tls`, both
/// serve https with `tls`'s srv.pem/srv.key (signed by its ca.pem).
struct UserMonitoring {
    children: Vec<Child>,
    prom_port: u16,
    am_port: u16,
    tls: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl UserMonitoring {
    fn start(app_port: u16) -> UserMonitoring {
        UserMonitoring::start_with(app_port, None)
    }

    fn start_with(app_port: u16, tls: Option<&Path>) -> UserMonitoring {
        let dir = tempfile::tempdir().unwrap();
        let (prom_port, am_port) = (free_port(), free_port());
        let p = |f: &str| dir.path().join(f).display().to_string();
        std::fs::write(p("rules.yml"), RULES).unwrap();
        let (web, am_tls) = match tls {
            Some(d) => {
                let f = |n: &str| d.join(n).display().to_string();
                std::fs::write(
                    p("web.yml"),
                    format!(
                        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                        f("srv.pem"),
                        f("srv.key")
                    ),
                )
                .unwrap();
                (
                    vec![format!("--web.config.file={}", p("web.yml"))],
                    format!(
                        "      scheme: https\n      tls_config:\n        ca_file: {}\n",
                        f("ca.pem")
                    ),
                )
            }
            None => (Vec::new(), String::new()),
        };
        std::fs::write(
            p("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n  evaluation_interval: 500ms\n\
                 rule_files:\n  - rules.yml\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n{am_tls}\
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
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{bin} runs (ci/test.sh installs it): {e}"))
        };
        let am = spawn(
            "prometheus-alertmanager",
            [
                format!("--config.file={}", p("am.yml")),
                format!("--storage.path={}", p("am-data")),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ]
            .into_iter()
            .chain(web.clone())
            .collect(),
        );
        let prom = spawn(
            "prometheus",
            [
                format!("--config.file={}", p("prometheus.yml")),
                format!("--storage.tsdb.path={}", p("prom-data")),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--rules.alert.resend-delay=500ms".into(),
            ]
            .into_iter()
            .chain(web)
            .collect(),
        );
        let m = UserMonitoring {
            children: vec![am, prom],
            prom_port,
            am_port,
            tls: tls.map(Path::to_path_buf),
            _dir: dir,
        };
        wait_for("Prometheus ready", || block(m.prometheus().ready()));
        wait_for("Alertmanager ready", || {
            block(m.alertmanager().ready()).is_ok()
        });
        // Ready is not scraping: Prometheus starts scraping only after its
        // first discovery update (about 5 s), and a drill should not start
        // before the user's monitoring sees anything.
        wait_for("Prometheus's first scrape", || {
            block(m.prometheus().query("up")).is_ok_and(|s| !s.is_empty())
        });
        m
    }

    fn endpoint(&self, port: u16) -> Endpoint {
        match &self.tls {
            Some(d) => Endpoint {
                url: format!("https://127.0.0.1:{port}"),
                token_env: None,
                ca_file: Some(d.join("ca.pem")),
            },
            None => Endpoint::plain(&format!("http://127.0.0.1:{port}")),
        }
    }

    fn prometheus(&self) -> Prometheus {
        Prometheus::to(&self.endpoint(self.prom_port)).unwrap()
    }

    /// Straight to Alertmanager, bypassing the token proxy.
    fn alertmanager(&self) -> Alertmanager {
        Alertmanager::to(&self.endpoint(self.am_port)).unwrap()
    }

    /// States of the silences drill created.
    fn drill_silences(&self) -> Vec<String> {
        block(self.alertmanager().silences())
            .unwrap()
            .into_iter()
            .filter(|s| s.2 == "drill")
            .map(|s| s.1)
            .collect()
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

/// A loopback reverse proxy that refuses (401) any connection whose first
/// request lacks `Authorization: Bearer <token>`, and pipes the rest to
/// `upstream`. drill's client sends the header on every request, so the
/// first of each connection stands for all of them.
struct TokenProxy {
    port: u16,
    authorized: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenProxy {
    fn start(upstream: u16, token: &'static str) -> TokenProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (authorized, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, r) = (authorized.clone(), refused.clone());
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (a, r) = (a.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = relay(c, upstream, token, &a, &r);
                });
            }
        });
        TokenProxy {
            port,
            authorized,
            refused,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn relay(
    mut c: TcpStream,
    upstream: u16,
    token: &str,
    authorized: &AtomicUsize,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let want = format!("Bearer {token}");
    let ok = String::from_utf8_lossy(&head).lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.trim() == want)
    });
    if !ok {
        refused.fetch_add(1, Ordering::SeqCst);
        return c.write_all(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nconnection: close\r\n\r\nunauthorized",
        );
    }
    authorized.fetch_add(1, Ordering::SeqCst);
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(&head)?;
    let (mut c2, mut up2) = (c.try_clone()?, up.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut c, &mut up);
    let _ = up.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// A targets file: `svc` (kind http) at the service, with its monitoring.
fn targets(sb: &Sandbox, svc: &Service, prom_url: &str, am_url: &str) -> String {
    sb.write(
        "targets.toml",
        &format!(
            "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\n\n\
             [targets.svc.prometheus]\nurl = \"{prom_url}\"\ntoken_env = \"DRILL_PROMETHEUS_TOKEN\"\n\n\
             [targets.svc.alertmanager]\nurl = \"{am_url}\"\ntoken_env = \"DRILL_ALERTMANAGER_TOKEN\"\n",
            svc.url()
        ),
    )
    .display()
    .to_string()
}

/// Every request to the service answers 503 while the fault lasts (the lab
/// server's fault filter, set by the user's own command: python3, which
/// ci/test.sh installs, posts the rule; no rule clears it).
fn scenario(sb: &Sandbox, name: &str, svc: &Service, recovery: &str, extra: &str) -> String {
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
    sb.write(
        &format!("{name}.toml"),
        &format!(
            r#"description = "the user's monitoring sees productpage fail"
target = "svc"
silence = true

[load]
path = "/productpage"
rate = 50
max_send_lag = "1s"

[phases]
warmup = "1s"
baseline = "3s"
recovery = "{recovery}"

[recovery]
window = "500ms"
hold = "1s"

[[faults]]
name = "abort-all"
action = "command"
inject = "touch injected && python3 fault.py 503"
revert = "python3 fault.py"
duration = "4s"

[[alerts]]
name = "ProductpageErrors"
fault = "abort-all"
fire_within = "10s"
resolve_within = "15s"
{extra}"#
        ),
    )
    .display()
    .to_string()
}

fn drill(sb: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sb.command(args);
    cmd.env("DRILL_PROMETHEUS_TOKEN", PROM_TOKEN)
        .env("DRILL_ALERTMANAGER_TOKEN", AM_TOKEN);
    cmd
}

fn run(sb: &Sandbox, t: &str, s: &str) -> Outcome {
    let out = drill(
        sb,
        &[
            "--targets",
            t,
            "run",
            s,
            "--quiet",
            "--report-dir",
            &sb.report_arg(),
        ],
    )
    .output()
    .unwrap();
    Outcome::of(out)
}

/// Every file under `dir`, recursively, as text.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_users_prometheus_measures_the_alert_on_an_http_target_with_tokens_sent_and_never_written() {
    let _g = lab_lock();
    let svc = Service::start();
    let mon = UserMonitoring::start(svc.port);
    let (pp, ap) = (
        TokenProxy::start(mon.prom_port, PROM_TOKEN),
        TokenProxy::start(mon.am_port, AM_TOKEN),
    );
    // The proxy can refuse: no token, no answer.
    let refused = block(Prometheus::new(&pp.url()).query("vector(1)"));
    assert!(
        matches!(refused, Err(ApiError::Status { status: 401, .. })),
        "{refused:?}"
    );
    let refused_before = pp.refused.load(Ordering::SeqCst);
    let sb = Sandbox::new();
    let t = targets(&sb, &svc, &pp.url(), &ap.url());
    let s = scenario(
        &sb,
        "user-monitoring",
        &svc,
        "6s",
        // The mesh's own 5xx ratio while the fault lasts, read from the
        // user's Prometheus beside what drill's clients saw.
        "[[probes]]\nname = \"mesh-5xx\"\nquery = '(sum(rate(istio_requests_total{response_code=~\"5..\"}[2s])) or vector(0)) / sum(rate(istio_requests_total[2s]))'\nphase = \"fault\"\nmin = 0\n",
    );
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let a = &r["alerts"][0];
    assert_eq!(a["alert"], "ProductpageErrors", "{}", r["alerts"]);
    let ttd = a["time_to_detect_s"].as_f64().expect("fired");
    // rate() needs two scrapes of the 5xx series (the second 0.5-1 s after
    // the inject), then one evaluation (≤ 0.5 s), then Alertmanager and
    // drill's poll (≤ 0.5 s); the rest is room for a loaded CI machine.
    assert!((0.5..=4.0).contains(&ttd), "time to detect {ttd}s");
    let ttr = a["time_to_resolve_s"].as_f64().expect("resolved");
    eprintln!(
        "ProductpageErrors via the user's Prometheus: time to detect {ttd}s, time to resolve {ttr}s"
    );
    assert_eq!(a["suppressed"], true, "silenced, still seen: {a}");
    assert!(
        r["probes"][0]["samples"].as_u64().unwrap() > 0,
        "{}",
        r["probes"]
    );
    let m = &r["monitoring"];
    assert_eq!(m["prometheus"], pp.url().as_str());
    assert_eq!(m["silence_expired"], true, "{m}");
    // The intervals as the user's Prometheus runs them, not the lab's.
    assert_eq!(m["scrape_interval_s"], 0.5, "{m}");
    assert_eq!(m["evaluation_interval_s"], 0.5, "{m}");
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(
        md.contains(
            "scraped every 0.5s and evaluated rules every 0.5s; each rule's `for` as written"
        ),
        "{md}"
    );
    // Through Alertmanager's own API: the silence is expired.
    let states = mon.drill_silences();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "expired"),
        "{states:?}"
    );
    // Every request drill made carried its token; none was refused.
    assert!(pp.authorized.load(Ordering::SeqCst) > 0);
    assert!(ap.authorized.load(Ordering::SeqCst) > 0);
    assert_eq!(pp.refused.load(Ordering::SeqCst), refused_before);
    assert_eq!(ap.refused.load(Ordering::SeqCst), 0);
    // The tokens are nowhere: reports, journal, output.
    let mut written = files_under(&sb.work());
    written.extend(files_under(&sb.state()));
    written.push(("stdout".into(), out.stdout.clone()));
    written.push(("stderr".into(), out.stderr.clone()));
    assert!(written.iter().any(|(p, _)| p.ends_with("results.json")));
    assert!(written.iter().any(|(p, _)| p.ends_with(".jsonl")));
    for (path, text) in &written {
        assert!(
            !text.contains(PROM_TOKEN) && !text.contains(AM_TOKEN),
            "a token is written in {path}"
        );
    }
    // The journal names the variable instead.
    let journal = written
        .iter()
        .find(|(p, _)| p.ends_with(".jsonl"))
        .map(|(_, t)| t)
        .unwrap();
    assert!(journal.contains("DRILL_ALERTMANAGER_TOKEN"), "{journal}");
}

#[test]
fn an_unreachable_prometheus_stops_the_drill_before_any_inject() {
    let svc = Service::start();
    let sb = Sandbox::new();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let t = targets(&sb, &svc, &dead, &dead);
    let s = scenario(&sb, "unreachable", &svc, "1s", "");
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains(&format!("Prometheus does not answer: {dead}/"))
            && shown.contains("Connection refused")
            && shown.contains("nothing was injected"),
        "{out}"
    );
    assert!(!sb.path("injected").exists(), "the inject command ran");
    assert!(sb.results()["faults"].as_array().unwrap().is_empty());
}

#[test]
fn an_unknown_expected_alert_or_a_rejected_probe_query_stops_the_drill_before_any_inject() {
    let svc = Service::start();
    let mon = UserMonitoring::start(svc.port);
    let sb = Sandbox::new();
    let (prom, am) = (mon.prometheus(), mon.alertmanager());
    let t = targets(&sb, &svc, prom.url(), am.url());
    // An alert name no loaded rule has can never fire.
    let s = scenario(
        &sb,
        "unknown-alert",
        &svc,
        "1s",
        "[[alerts]]\nname = \"ProductpageDown\"\nfault = \"abort-all\"\nfire_within = \"10s\"\n",
    );
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains("`ProductpageDown`")
            && shown.contains("loaded: ProductpageErrors")
            && shown.contains("can never fire"),
        "{out}"
    );
    assert!(!sb.path("injected").exists(), "the inject command ran");
    // Well-formed, but only Prometheus knows rate() wants a range.
    let s = scenario(
        &sb,
        "bad-probe",
        &svc,
        "1s",
        "[[probes]]\nname = \"bad\"\nquery = 'rate(up)'\nmax = 1\n",
    );
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains("probe `bad`") && shown.contains("range vector"),
        "{out}"
    );
    assert!(!sb.path("injected").exists(), "the inject command ran");
    // Prometheus answers, Alertmanager does not.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let t = targets(&sb, &svc, prom.url(), &dead);
    let s = scenario(&sb, "no-alertmanager", &svc, "1s", "");
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains(&format!("Alertmanager does not answer: {dead}/")),
        "{out}"
    );
    assert!(!sb.path("injected").exists(), "the inject command ran");
    assert!(
        mon.drill_silences().is_empty(),
        "no silence before preflight passed"
    );
}

#[test]
fn an_unset_token_variable_is_an_input_error_at_its_line() {
    let svc = Service::start();
    let sb = Sandbox::new();
    let t = targets(
        &sb,
        &svc,
        "https://prometheus.example:9090",
        "http://127.0.0.1:9",
    );
    let s = scenario(&sb, "no-token", &svc, "1s", "");
    let out = Outcome::of(
        sb.command(&["--targets", &t, "validate", &s])
            .env("DRILL_PROMETHEUS_TOKEN", PROM_TOKEN)
            .env_remove("DRILL_ALERTMANAGER_TOKEN")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(2), "{out}");
    // [targets.svc.alertmanager]'s token_env is on line 11, its value at column 13.
    assert!(out.stderr.contains("targets.toml:11:13"), "{out}");
    assert!(
        out.stderr.contains("DRILL_ALERTMANAGER_TOKEN") && out.stderr.contains("not set"),
        "{out}"
    );
    assert!(!out.stderr.contains(PROM_TOKEN), "{out}");
    // The lab's rule-file key means nothing to the user's own Prometheus.
    sb.write("rules.yml", RULES);
    let s = sb.write(
        "with-rules.toml",
        &std::fs::read_to_string(&s).unwrap().replace(
            "silence = true\n",
            "silence = true\nalert_rules = \"rules.yml\"\n",
        ),
    );
    let out = Outcome::of(
        drill(&sb, &["--targets", &t, "validate", s.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("with-rules.toml:4:15")
            && out.stderr.contains("alert_rules is for the lab"),
        "{out}"
    );
}

#[test]
fn a_drill_with_only_probes_needs_only_prometheus() {
    let _g = lab_lock();
    let svc = Service::start();
    let mon = UserMonitoring::start(svc.port);
    let sb = Sandbox::new();
    let t = sb
        .write(
            "targets.toml",
            &format!(
                "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\nprometheus = {{ url = \"{}\" }}\n",
                svc.url(),
                mon.prometheus().url()
            ),
        )
        .display()
        .to_string();
    let s = scenario(
        &sb,
        "probes-only",
        &svc,
        "1s",
        "[[probes]]\nname = \"mesh-5xx\"\nquery = '(sum(rate(istio_requests_total{response_code=~\"5..\"}[2s])) or vector(0)) / sum(rate(istio_requests_total[2s]))'\nphase = \"fault\"\nmin = 0\n",
    );
    // The same scenario without its alert and silence.
    let text = std::fs::read_to_string(&s).unwrap();
    let cut = text.find("[[alerts]]").unwrap();
    let probes = text.find("[[probes]]").unwrap();
    let only = format!("{}{}", &text[..cut], &text[probes..]).replace("silence = true\n", "");
    sb.write("probes-only.toml", &only);
    // With the alert, the missing Alertmanager is an input error.
    let with_alert = sb.write("with-alert.toml", &text.replace("silence = true\n", ""));
    let out = run(&sb, &t, with_alert.to_str().unwrap());
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("no alertmanager"), "{out}");
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let p = &r["probes"][0];
    assert!(
        p["max"].as_f64().unwrap() > 0.9,
        "the mesh saw the 503s: {p}"
    );
    assert_eq!(r["monitoring"]["alertmanager"], serde_json::Value::Null);
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(md.contains("no Alertmanager was read"), "{md}");
}

#[test]
fn kill_9_leaves_the_silence_for_drill_cleanup_which_expires_it_with_the_journals_url_and_token() {
    let _g = lab_lock();
    let svc = Service::start();
    let mon = UserMonitoring::start(svc.port);
    let ap = TokenProxy::start(mon.am_port, AM_TOKEN);
    let sb = Sandbox::new();
    let t = targets(&sb, &svc, mon.prometheus().url(), &ap.url());
    let s = scenario(&sb, "killed", &svc, "30s", "");
    let mut child = drill(
        &sb,
        &[
            "--targets",
            &t,
            "run",
            &s,
            "--quiet",
            "--report-dir",
            &sb.report_arg(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for("drill's silence", || {
        mon.drill_silences().iter().any(|s| s == "active")
    });
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert_eq!(mon.drill_silences(), vec!["active".to_string()]);
    // Without the token's variable, cleanup says which one it needs.
    let out = Outcome::of(
        sb.command(&["cleanup"])
            .env_remove("DRILL_ALERTMANAGER_TOKEN")
            .output()
            .unwrap(),
    );
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.to_string().contains("DRILL_ALERTMANAGER_TOKEN"),
        "{out}"
    );
    assert_eq!(mon.drill_silences(), vec!["active".to_string()]);
    let out = Outcome::of(drill(&sb, &["cleanup"]).output().unwrap());
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains(&ap.url()), "{out}");
    assert_eq!(mon.drill_silences(), vec!["expired".to_string()]);
    assert!(sb.open_journals().is_empty(), "journal closed");
    assert_eq!(ap.refused.load(Ordering::SeqCst), 0);
}

#[test]
fn https_monitoring_signed_by_a_private_ca_is_read_with_its_ca_file_and_refused_without() {
    let _g = lab_lock();
    let svc = Service::start();
    let sb = Sandbox::new();
    // A private CA (ca.pem) and a certificate for 127.0.0.1 it signed
    // (srv.pem, srv.key).
    private_ca(&sb.work(), Key::EcP256, "drill test monitoring CA");
    let mon = UserMonitoring::start_with(svc.port, Some(&sb.work()));
    let (p, a) = (
        format!("https://127.0.0.1:{}", mon.prom_port),
        format!("https://127.0.0.1:{}", mon.am_port),
    );
    let s = scenario(&sb, "https", &svc, "6s", "");
    // Without the CA file, the system's roots do not know the certificate.
    let t = sb
        .write(
            "plain.toml",
            &format!(
                "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\nprometheus = {{ url = \"{p}\" }}\nalertmanager = {{ url = \"{a}\" }}\n",
                svc.url()
            ),
        )
        .display()
        .to_string();
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(3), "{out}");
    let shown = out.to_string();
    assert!(
        shown.contains("Prometheus does not answer") && shown.contains("UnknownIssuer"),
        "{out}"
    );
    assert!(!sb.path("injected").exists(), "the inject command ran");
    // With it: the whole drill over https, silence included.
    let t = sb
        .write(
            "ca.toml",
            &format!(
                "[targets.svc]\nkind = \"http\"\nurl = \"{}\"\nprometheus = {{ url = \"{p}\", ca_file = \"ca.pem\" }}\nalertmanager = {{ url = \"{a}\", ca_file = \"ca.pem\" }}\n",
                svc.url()
            ),
        )
        .display()
        .to_string();
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    assert!(
        r["alerts"][0]["time_to_detect_s"].as_f64().is_some(),
        "{}",
        r["alerts"]
    );
    assert_eq!(
        r["monitoring"]["silence_expired"], true,
        "{}",
        r["monitoring"]
    );
    let states = mon.drill_silences();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "expired"),
        "{states:?}"
    );
}

#[test]
fn an_http_target_naming_no_monitoring_skips_the_alert_checks_saying_how_to_name_it() {
    let _g = lab_lock();
    let svc = Service::start();
    let sb = Sandbox::new();
    let t = sb.http_targets("svc", &svc.url()).display().to_string();
    let s = scenario(&sb, "unmonitored", &svc, "1s", "");
    // A silence there would do nothing: refused (exit 2) before anything
    // runs, so this drill asks for none.
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(2), "{out}");
    let text = std::fs::read_to_string(&s).unwrap();
    std::fs::write(&s, text.replace("silence = true", "silence = false")).unwrap();
    let out = run(&sb, &t, &s);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    let c = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "alert:ProductpageErrors")
        .expect("the alert's check")
        .clone();
    assert_eq!(c["status"], "skipped", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("[targets.svc.prometheus]"),
        "{c}"
    );
    assert!(sb.path("injected").exists(), "the drill itself ran");
}

/// A `kubernetes` target (two fake clusters) with its own Prometheus and
/// Alertmanager: a probes-only drill reads that Prometheus, and an expected
/// alert it does not know stops the drill before any change to a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_target_reads_its_own_prometheus_and_an_unknown_alert_stops_it_before_any_change()
 {
    use k8s_support::{FakeCluster, Timing};
    let primary = FakeCluster::bookinfo(Timing::default()).await;
    let secondary = FakeCluster::bookinfo(Timing::default()).await;
    let entry = k8s_support::serve_ok().await;
    // Prometheus scrapes the entry (not an exporter: `up` is 0, the series is there).
    let mon = tokio::task::spawn_blocking(move || UserMonitoring::start(entry.port()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/k8s/kubeconfig.yaml"),
    )
    .unwrap()
    .replace("{{PRIMARY}}", &primary.addr.port().to_string())
    .replace("{{SECONDARY}}", &secondary.addr.port().to_string())
    .replace("{{OTHER}}", &free_port().to_string());
    std::fs::write(dir.path().join("kubeconfig.yaml"), kc).unwrap();
    std::fs::write(
        dir.path().join("drill.toml"),
        format!(
            r#"[targets.two-regions]
kind = "kubernetes"
url = "http://{entry}"
kubeconfig = "kubeconfig.yaml"
contexts = {{ primary = "primary-cluster-context", secondary = "secondary-cluster" }}
ingress = {{ primary = "http://127.0.0.1:10", secondary = "http://127.0.0.1:11" }}
prometheus = {{ url = "http://127.0.0.1:{}" }}
alertmanager = {{ url = "http://127.0.0.1:{}" }}
"#,
            mon.prom_port, mon.am_port
        ),
    )
    .unwrap();
    let scenario = |name: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"description = "istiod down, watched by the clusters' own Prometheus"
target = "two-regions"

[load]
path = "/productpage"
rate = 50
timeout = "1s"
max_send_lag = "1s"

[phases]
warmup = "300ms"
baseline = "1s"
recovery = "1s"

[recovery]
window = "200ms"
ratio = "99%"
hold = "1s"

[[faults]]
name = "istiod-down"
component = "istiod"
region = "primary"
action = "down"
duration = "2s"

[[probes]]
name = "scraped"
query = 'count(up{{job="app"}})'
phase = "fault"
min = 1
{extra}"#
            ),
        )
        .unwrap();
        path
    };
    let run = |path: PathBuf, report: &str| {
        let state = dir.path().join("state");
        let report = dir.path().join(report);
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"));
        cmd.current_dir(dir.path())
            .env("DRILL_STATE_DIR", &state)
            .env("CI", "1")
            .args(["--targets", "drill.toml", "run"])
            .arg(&path)
            .args(["--quiet", "--report-dir"])
            .arg(&report);
        async move {
            let out = cmd.output().await.unwrap();
            let shown = format!(
                "exit {:?}\nstdout:\n{}\nstderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let results: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(report.join("results.json")).unwrap_or_default(),
            )
            .unwrap_or_default();
            (out.status.code(), shown, results)
        }
    };
    let (code, shown, r) = run(scenario("probed", ""), "out-probed").await;
    assert_eq!(code, Some(0), "{shown}");
    let p = &r["probes"][0];
    assert!(p["samples"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["min"], 1.0, "{p}");
    assert_eq!(
        r["monitoring"]["prometheus"],
        format!("http://127.0.0.1:{}", mon.prom_port).as_str()
    );
    assert_eq!(r["monitoring"]["scrape_interval_s"], 0.5);
    // Writes to the objects themselves; a run's claim (its Leases, taken
    // and released around preflight) changes nothing a fault touches.
    let object_writes = |c: &k8s_support::FakeCluster| {
        c.mutations()
            .into_iter()
            .filter(|m| !m.uri.contains("/leases"))
            .count()
    };
    let changes = object_writes(&primary);
    assert!(changes > 0, "the fault went through the API");
    let (code, shown, _) = run(
        scenario(
            "unknown-alert",
            "[[alerts]]\nname = \"IstiodDown\"\nfault = \"istiod-down\"\nfire_within = \"10s\"\n",
        ),
        "out-unknown",
    )
    .await;
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains("`IstiodDown`") && shown.contains("can never fire"),
        "{shown}"
    );
    assert_eq!(
        object_writes(&primary),
        changes,
        "nothing changed on the cluster: {shown}"
    );
    assert_eq!(object_writes(&secondary), 0);
    drop(mon);
}
