//! Conformance: drill's counts by class equal the server's own count.
//!
//! Two servers nobody here wrote the HTTP side of, each over http and https:
//! nginx (its access log is the count) and a raw asyncio server scripted per
//! behaviour (`fixtures/conformance/raw.py`, which logs every request it
//! read whole before answering). Each case runs the real generator for half
//! a second at 200 req/s and asserts equality, class by class, between what
//! drill recorded and what the server logged, and that the server saw
//! exactly the requests drill sent: none resent, none hidden.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

use super::http::{Control, HttpLoad, auto_tick, run};
use crate::base::clock::Clock;
use crate::measure::{Cause, Micros, Phase, Recorder};
use crate::scenario::model::StatusMatch;
use crate::scenario::plan::DEFAULT_MAX_IN_FLIGHT;

const MS: Micros = 1_000;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} does not listen on {port}");
}

/// A CA and a certificate for 127.0.0.1 signed by it, made once with
/// openssl (ci/test.sh installs it): (directory, CA file).
fn certs() -> &'static (PathBuf, PathBuf) {
    static CERTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("drill-conformance-certs")
            .tempdir()
            .unwrap()
            .keep();
        drill_testkit::tls::private_ca(
            &dir,
            drill_testkit::tls::Key::Rsa2048,
            "drill conformance CA",
        );
        let ca = dir.join("ca.pem");
        (dir, ca)
    })
}

/// A server under test: its http and https base URLs and its log.
struct Server {
    _proc: Proc,
    _dir: tempfile::TempDir,
    http: String,
    https: String,
    log: PathBuf,
}

impl Server {
    fn base(&self, tls: bool) -> &str {
        if tls { &self.https } else { &self.http }
    }

    /// The log's lines for `path` (nginx: `<uri> <status>`; raw: `<path>
    /// <what it answered>`), counted by their second field.
    fn counts(&self, path: &str) -> BTreeMap<String, u64> {
        // Both servers log a request as it completes: give the last ones a
        // moment to land.
        std::thread::sleep(Duration::from_millis(200));
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let mut f = line.split_whitespace();
            if f.next() == Some(path) {
                *m.entry(f.next().unwrap_or("").to_string()).or_default() += 1;
            }
        }
        m
    }
}

fn nginx_bin() -> &'static str {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx (ci/test.sh installs Debian's nginx-light)")
}

/// nginx, one process, with every behaviour on its own location; at most
/// 10 requests per kept-alive connection (`keepalive_requests`).
fn nginx() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (certs, _) = certs();
    let (http, https) = (free_port(), free_port());
    std::fs::create_dir_all(d.join("www")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    std::fs::write(d.join("www/big"), vec![b'x'; 1 << 20]).unwrap();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format c '$request_uri $status $connection';
  access_log {d}/access.log c;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  keepalive_requests 10;
  split_clients "${{request_id}}" $mix {{ 50% 200; 10% 404; 10% 503; 10% 301; 10% 444; * 204; }}
  server {{
    listen 127.0.0.1:{http};
    listen 127.0.0.1:{https} ssl;
    ssl_certificate {certs}/srv.pem;
    ssl_certificate_key {certs}/srv.key;
    root {d}/www;
    location = /mix {{ rewrite ^ /s$mix last; }}
    location = /s200 {{ return 200 "ok"; }}
    location = /s204 {{ return 204; }}
    location = /s301 {{ return 301 /s200; }}
    location = /s304 {{ return 304; }}
    location = /s404 {{ return 404; }}
    location = /s503 {{ return 503; }}
    location = /s444 {{ return 444; }}
    location = /empty {{ return 200 ""; }}
  }}
}}
"#,
        d = d.display(),
        certs = certs.display(),
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_bin())
        .args(["-p", &d.display().to_string(), "-c"])
        .arg(d.join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let proc = Proc(child);
    wait_listening(http, "nginx");
    wait_listening(https, "nginx (https)");
    Server {
        _proc: proc,
        log: d.join("access.log"),
        _dir: dir,
        http: format!("http://127.0.0.1:{http}"),
        https: format!("https://127.0.0.1:{https}"),
    }
}

/// The scripted raw server, one process per protocol.
fn raw() -> (Server, Server) {
    let start = |tls: bool| {
        let dir = tempfile::tempdir().unwrap();
        let (certs, _) = certs();
        let port = free_port();
        let log = dir.path().join("raw.log");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/conformance/raw.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(&log);
        if tls {
            cmd.arg(certs.join("srv.pem")).arg(certs.join("srv.key"));
        }
        let proc = Proc(cmd.spawn().expect("python3"));
        wait_listening(port, "raw.py");
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{port}");
        Server {
            _proc: proc,
            _dir: dir,
            http: base.clone(),
            https: base,
            log,
        }
    };
    (start(false), start(true))
}

/// What drill counted: `good` and each cause with a count, plus `sent`.
type Counted = BTreeMap<&'static str, u64>;

struct Case<'a> {
    url: String,
    method: Method,
    keep_alive: bool,
    timeout: Duration,
    success: Vec<StatusMatch>,
    rate: f64,
    /// Runs beside the load (e.g. stops the server half-way).
    during: Option<Box<dyn FnOnce() + Send + 'a>>,
}

fn case<'a>(url: String) -> Case<'a> {
    Case {
        url,
        method: Method::GET,
        keep_alive: true,
        timeout: Duration::from_millis(1_000),
        success: vec![StatusMatch::Class(2)],
        rate: 200.0,
        during: None,
    }
}

/// Runs the generator at the case's rate (200 req/s) for 500 ms of due times on the case,
/// waits for every request to end, and returns drill's counts.
fn drill(c: Case<'_>) -> Counted {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rate = c.rate;
    let load = HttpLoad {
        url: c.url.parse().unwrap(),
        method: c.method,
        headers: vec![(
            "user-agent".parse().unwrap(),
            "drill-conformance".parse().unwrap(),
        )],
        body: Bytes::new(),
        rate,
        timeout: c.timeout,
        success: c.success,
        keep_alive: c.keep_alive,
        workers: 1,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        tick: auto_tick(rate, 1, crate::scenario::plan::DEFAULT_MAX_SEND_LAG_US),
        ca_file: Some(certs().1.clone()),
    };
    let clock = Clock::start();
    let rec = Arc::new(Mutex::new(Recorder::new(100 * MS, 10_000 * MS)));
    let start = clock.now() + 20 * MS;
    rec.lock().unwrap().mark(Phase::Baseline, start);
    let during = c.during;
    std::thread::scope(|s| {
        if let Some(f) = during {
            s.spawn(f);
        }
        rt.block_on(async {
            let control = Arc::new(Control::default());
            let generator = tokio::spawn(run(load, clock, start, rec.clone(), control.clone()));
            // The last request is due just before 500 ms.
            tokio::time::sleep_until(clock.at(start + 499 * MS).into()).await;
            control.stop();
            generator.await.unwrap();
        });
    });
    let r = rec.lock().unwrap();
    let b = r.phase(Phase::Baseline);
    let mut m = Counted::new();
    m.insert("good", b.good);
    for cause in Cause::ALL {
        let n = b.bad[cause as usize];
        if n > 0 {
            m.insert(cause.name(), n);
        }
    }
    m.insert("sent", r.sent_in(&[Phase::Baseline]).0);
    m.insert("total", b.total());
    // As many as were released before the stop: about rate / 2.
    assert!(b.total() as f64 >= rate / 4.0, "the load ran: {m:?}");
    assert_eq!(r.unfinished(Phase::Baseline), 0, "{m:?}");
    m
}

fn get(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// nginx's status mix (50% 200, 10% each 204, 301, 404, 503 and 444, a
/// close after reading the request), 10 requests a connection: each class
/// equals nginx's count, a 444 is a reset for that request, and nginx saw
/// exactly the requests drill sent (none resent after a close).
#[test]
fn status_mix_and_444_match_nginx_over_http_and_https() {
    let srv = nginx();
    for tls in [false, true] {
        let before = srv.counts("/mix");
        let got = drill(case(format!("{}/mix", srv.base(tls))));
        let log = srv.counts("/mix");
        let n = |k: &str| get(&log, k) - get(&before, k);
        let seen: u64 = ["200", "204", "301", "404", "503", "444"]
            .iter()
            .map(|k| n(k))
            .sum();
        let what = format!("tls {tls}: drill {got:?}, nginx {log:?}");
        assert_eq!(got["sent"], seen, "nginx saw every request once: {what}");
        assert_eq!(got["good"], n("200") + n("204"), "{what}");
        assert_eq!(got.get("3xx").copied().unwrap_or(0), n("301"), "{what}");
        assert_eq!(got.get("4xx").copied().unwrap_or(0), n("404"), "{what}");
        assert_eq!(got.get("5xx").copied().unwrap_or(0), n("503"), "{what}");
        assert_eq!(got.get("reset").copied().unwrap_or(0), n("444"), "{what}");
        assert!(
            n("444") > 0 && n("301") > 0,
            "the mix was exercised: {what}"
        );
    }
}

/// Bodies and heads nginx frames in every way: a 1 MiB body, Content-Length
/// 0, 204, 304, a HEAD for the 1 MiB file, and `Connection: close` on every
/// request: all good, each counted once.
#[test]
fn bodies_empty_answers_head_and_connection_close_match_nginx() {
    let srv = nginx();
    let ok_304 = vec![StatusMatch::Class(2), StatusMatch::Exact(304)];
    for tls in [false, true] {
        for (path, method, keep_alive, status) in [
            ("/big", Method::GET, true, "200"),
            ("/empty", Method::GET, true, "200"),
            ("/s204", Method::GET, true, "204"),
            ("/s304", Method::GET, true, "304"),
            ("/big", Method::HEAD, true, "200"),
            ("/s200", Method::GET, false, "200"),
        ] {
            let before = get(&srv.counts(path), status);
            let mut c = case(format!("{}{path}", srv.base(tls)));
            c.method = method.clone();
            c.keep_alive = keep_alive;
            c.success = ok_304.clone();
            let got = drill(c);
            let seen = get(&srv.counts(path), status) - before;
            let what = format!("{method} {path} tls {tls} keep-alive {keep_alive}: {got:?}");
            assert_eq!(got["good"], got["total"], "{what}");
            assert_eq!(seen, got["total"], "nginx logged each once: {what}");
            assert_eq!(got["sent"], got["total"], "{what}");
        }
    }
}

/// At 40 req/s each answer is in long before the next request is due, so
/// one kept-alive connection carries them all, over http and over https
/// (a TLS connection is not dropped for the records it holds, such as
/// session tickets): nginx saw a single connection, and 10 requests on it
/// at most (`keepalive_requests 10`) before drill opened the next.
#[test]
fn kept_alive_connections_are_reused_over_http_and_https() {
    let srv = nginx();
    for tls in [false, true] {
        let path = if tls { "/s204" } else { "/empty" };
        let mut c = case(format!("{}{path}", srv.base(tls)));
        c.rate = 40.0;
        let got = drill(c);
        std::thread::sleep(Duration::from_millis(200));
        let text = std::fs::read_to_string(&srv.log).unwrap();
        let conns: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{path} ")))
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        let what = format!("tls {tls}: drill {got:?}, nginx connections {conns:?}");
        assert_eq!(got["good"], got["total"], "{what}");
        // 20 requests, 10 a connection.
        assert_eq!(conns.len() as u64, got["total"].div_ceil(10), "{what}");
    }
}

/// The raw server's behaviours over http and https: chunked with extensions
/// and trailers, interim 1xx answers (in their own writes, and in the same
/// write as the final answer), 100 header fields, an HTTP/1.0 answer ended
/// by the close: all good, each counted as the server logged it.
#[test]
fn chunked_interim_many_headers_and_http10_match_a_raw_server() {
    let (plain, tls) = raw();
    for srv in [&plain, &tls] {
        for path in [
            "/chunked",
            "/interim-split",
            "/interim-one",
            "/headers100",
            "/http10",
        ] {
            let got = drill(case(format!("{}{path}", srv.http)));
            let log = srv.counts(path);
            let what = format!("{}{path}: drill {got:?}, server {log:?}", srv.http);
            assert_eq!(got["good"], got["total"], "{what}");
            assert_eq!(get(&log, "200"), got["total"], "{what}");
        }
    }
}

/// What ends badly is counted as the server saw it: 150 header fields are
/// `too-many-headers`; a close mid-body, or right after reading the request,
/// is a `reset` for exactly the requests the server read (never resent); a
/// server that never answers gives timeouts.
#[test]
fn cut_answers_closes_and_silence_match_a_raw_server() {
    let (plain, tls) = raw();
    for srv in [&plain, &tls] {
        for (path, key, logged) in [
            ("/headers150", "too-many-headers", "200"),
            ("/close-mid-body", "reset", "cut"),
            ("/close-after-read", "reset", "closed"),
            ("/never", "timeout", "never"),
        ] {
            let got = drill(case(format!("{}{path}", srv.http)));
            let log = srv.counts(path);
            let what = format!("{}{path}: drill {got:?}, server {log:?}", srv.http);
            assert_eq!(got.get(key).copied(), Some(got["total"]), "{what}");
            assert_eq!(
                get(&log, logged),
                got["total"],
                "the server saw each once: {what}"
            );
            assert_eq!(got["sent"], got["total"], "{what}");
        }
    }
}

/// A server that sends an unprompted 408 and closes a kept-alive
/// connection idle for 20 ms: at 10 req/s every connection goes idle that
/// long between requests (80 ms to spare, for a loaded machine); drill drops such a connection before reuse, so
/// no request is counted as the 408 it never got, and the server answered
/// every request drill sent.
#[test]
fn an_unprompted_408_on_an_idle_connection_is_never_counted() {
    let (plain, tls) = raw();
    for srv in [&plain, &tls] {
        let mut c = case(format!("{}/idle408", srv.http));
        c.rate = 10.0;
        let got = drill(c);
        let log = srv.counts("/idle408");
        let what = format!("{}: drill {got:?}, server {log:?}", srv.http);
        assert!(
            get(&log, "unprompted-408") > 0,
            "the server sent 408s: {what}"
        );
        assert_eq!(got.get("4xx"), None, "{what}");
        assert_eq!(got["good"], got["total"], "{what}");
        assert_eq!(get(&log, "200"), got["total"], "{what}");
    }
}

/// A target that goes away mid-run: what the server logged is exactly what
/// drill counted good, and every other request is refused (or reset in
/// the moment of the stop), never hidden.
#[test]
fn a_server_stopped_mid_run_matches_its_log() {
    for tls in [false, true] {
        let (plain, secure) = raw();
        let srv = if tls { secure } else { plain };
        let Server {
            _proc: mut proc,
            http,
            log,
            _dir,
            ..
        } = srv;
        let mut c = case(format!("{http}/s"));
        let child = &mut proc.0;
        c.during = Some(Box::new(move || {
            std::thread::sleep(Duration::from_millis(270));
            let _ = child.kill();
            let _ = child.wait();
        }));
        let got = drill(c);
        std::thread::sleep(Duration::from_millis(100));
        let seen = std::fs::read_to_string(&log).unwrap().lines().count() as u64;
        let what = format!("{http}: drill {got:?}, server saw {seen}");
        assert_eq!(got["good"], seen, "{what}");
        let refused = got.get("refused").copied().unwrap_or(0);
        let reset = got.get("reset").copied().unwrap_or(0);
        assert!(refused > 0, "{what}");
        assert_eq!(got["good"] + refused + reset, got["total"], "{what}");
    }
}
