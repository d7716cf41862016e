//! Helpers for the end-to-end tests: run the real `drill` binary as a user
//! would, in a sandbox of its own (working directory and state directory),
//! then read what it left behind: reports, journals, lab processes.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Drills measure timing on a small shared machine: one lab at a time.
pub static LOCK: Mutex<()> = Mutex::new(());

/// Takes the lab lock; a test that panicked while holding it does not stop
/// the others.
pub fn lab_lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest any one `drill` invocation may take before the test gives up.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A file under `fixtures/spine/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/spine")
        .join(rel)
}

/// A fixture's path as a string argument.
pub fn fixture_arg(rel: &str) -> String {
    fixture(rel).display().to_string()
}

/// A working directory and a state directory of one test's own.
pub struct Sandbox {
    root: TempDir,
    seq: AtomicUsize,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("drill-spine-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(root.path().join("work")).expect("work dir");
        std::fs::create_dir(root.path().join("state")).expect("state dir");
        Sandbox {
            root,
            seq: AtomicUsize::new(0),
        }
    }

    /// The working directory drill runs in (command faults run here too).
    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `$DRILL_STATE_DIR`.
    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// A path in the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    /// Where `--report-dir` points.
    pub fn report_dir(&self) -> PathBuf {
        self.work().join("report")
    }

    pub fn report_arg(&self) -> String {
        self.report_dir().display().to_string()
    }

    /// Writes a file into the working directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// Copies a fixture into the working directory under its file name.
    pub fn copy_fixture(&self, rel: &str) -> PathBuf {
        let src = fixture(rel);
        let dst = self.path(src.file_name().expect("file name").to_str().expect("utf-8"));
        std::fs::copy(&src, &dst).expect("copy fixture");
        dst
    }

    /// Writes a targets file naming one `http` target.
    pub fn http_targets(&self, name: &str, url: &str) -> PathBuf {
        self.write(
            "targets.toml",
            &format!("[targets.{name}]\nkind = \"http\"\nurl = \"{url}\"\n"),
        )
    }

    /// `drill ARGS` as a user would start it in this sandbox.
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drill"));
        cmd.args(args.iter().map(AsRef::as_ref))
            .current_dir(self.work())
            .env("DRILL_STATE_DIR", self.state())
            .env("CI", "1")
            .env_remove("DRILL_LAB_DEBUG")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `drill ARGS`, its output going to files in the sandbox.
    pub fn spawn<S: AsRef<str>>(&self, args: &[S]) -> Running {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let out = self.root.path().join(format!("stdout-{n}.txt"));
        let err = self.root.path().join(format!("stderr-{n}.txt"));
        let child = self
            .command(args)
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("start drill");
        Running {
            child: Some(child),
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            out,
            err,
        }
    }

    /// Runs `drill ARGS` to the end.
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Outcome {
        self.spawn(args).wait(RUN_LIMIT)
    }

    /// `results.json` from the report directory.
    pub fn results(&self) -> Value {
        let p = self.report_dir().join("results.json");
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        serde_json::from_str(&text).expect("results.json is JSON")
    }

    /// `junit.xml` from the report directory.
    pub fn junit(&self) -> Junit {
        let p = self.report_dir().join("junit.xml");
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        Junit::parse(&text)
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.state().join("journal")
    }

    /// Journals of runs not finished (still in `journal/`).
    pub fn open_journals(&self) -> Vec<PathBuf> {
        jsonl_in(&self.journal_dir())
    }

    /// Journals of finished or cleaned-up runs (`journal/done/`).
    pub fn done_journals(&self) -> Vec<PathBuf> {
        jsonl_in(&self.journal_dir().join("done"))
    }

    /// Waits for the run's journal to appear and returns its run id (the
    /// journal is written before the target starts).
    pub fn wait_for_run_id(&self, run: &mut Running) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(20), "the run's journal", || {
            run.assert_running("while waiting for its journal");
            found = self.open_journals().into_iter().next();
            found.is_some()
        });
        run_id_of(&found.expect("journal"))
    }
}

/// The run id a journal belongs to (its file stem).
pub fn run_id_of(journal: &Path) -> String {
    journal
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("journal name")
        .to_string()
}

/// The entries of a journal, one JSON value a line (torn lines skipped).
pub fn journal_entries(journal: &Path) -> Vec<Value> {
    std::fs::read_to_string(journal)
        .expect("read journal")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn jsonl_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v
}

/// How a `drill` invocation ended and what it printed.
pub struct Outcome {
    pub args: Vec<String>,
    /// Exit code; None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// From a finished `Command::output()`.
    pub fn of(out: std::process::Output) -> Outcome {
        Outcome {
            args: vec![],
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "drill {} → exit {:?}", self.args.join(" "), self.code)?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}

/// A `drill` process the test started and still owns.
pub struct Running {
    child: Option<Child>,
    args: Vec<String>,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        let r = unsafe { libc::kill(self.pid() as i32, sig) };
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Panics (with the output so far) if the process has already exited.
    pub fn assert_running(&mut self, when: &str) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "drill exited early ({status}) {when}\n--- stdout\n{}\n--- stderr\n{}",
                read(&self.out),
                read(&self.err)
            );
        }
    }

    /// Waits for the exit (killing it after `limit`) and collects the output.
    pub fn wait(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "drill {} did not exit within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.args.join(" "),
                    read(&self.out),
                    read(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        Outcome {
            args: std::mem::take(&mut self.args),
            code: status.code(),
            stdout: read(&self.out),
            stderr: read(&self.err),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failing test must not leave a drill (and its lab) running.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of live `drill lab serve` processes whose spec names `run_id`.
pub fn lab_processes(run_id: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // A zombie's cmdline is empty: it serves nothing.
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let serve = args.windows(2).any(|w| w[0] == "lab" && w[1] == "serve");
        let ours = args
            .iter()
            .any(|a| a.contains(&format!("\"run_id\":\"{run_id}\"")));
        if serve && ours {
            pids.push(pid);
        }
    }
    pids
}

/// A `drill lab serve` front service started by the test as a stand-in for
/// a real system behind an `http` target. Ends when dropped.
pub struct Service {
    child: Child,
    /// Held open: the process exits when its stdin closes.
    _stdin: ChildStdin,
    pub port: u16,
}

impl Service {
    pub fn start() -> Service {
        let port = free_port();
        let spec = format!(
            r#"{{"run_id":"spine-test","component":"productpage","region":"primary","port":{port},"role":{{"role":"service","service_time":"1ms"}}}}"#
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(["lab", "serve", "--spec", &spec])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start drill lab serve");
        let stdin = child.stdin.take().expect("stdin piped");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("read READY");
        assert_eq!(
            line.trim(),
            format!("READY {port}"),
            "lab serve did not start"
        );
        Service {
            child,
            _stdin: stdin,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (free at the time of the call).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr").port()
}

/// One `<testcase>` of a JUnit file.
#[derive(Debug)]
pub struct TestCase {
    pub name: String,
    /// The `message` of its `<failure>`, if it failed.
    pub failure: Option<String>,
}

#[derive(Debug)]
pub struct Junit {
    pub cases: Vec<TestCase>,
}

impl Junit {
    /// Parses the test cases; panics if the file is not well-formed XML.
    pub fn parse(xml: &str) -> Junit {
        use quick_xml::events::{BytesStart, Event};
        let attr = |e: &BytesStart, key: &str| -> Option<String> {
            e.attributes().map(|a| a.expect("attribute")).find_map(|a| {
                (a.key.as_ref() == key.as_bytes()).then(|| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("attribute value")
                        .into_owned()
                })
            })
        };
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut cases: Vec<TestCase> = Vec::new();
        let mut open = 0i32;
        loop {
            let ev = reader
                .read_event()
                .unwrap_or_else(|e| panic!("junit.xml is not XML ({e}):\n{xml}"));
            let (e, start) = match &ev {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    open -= 1;
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            if start {
                open += 1;
            }
            match e.name().as_ref() {
                b"testcase" => cases.push(TestCase {
                    name: attr(e, "name").expect("testcase name"),
                    failure: None,
                }),
                b"failure" => {
                    let case = cases.last_mut().expect("failure inside a testcase");
                    case.failure = Some(attr(e, "message").unwrap_or_default());
                }
                _ => {}
            }
        }
        assert_eq!(open, 0, "unbalanced junit.xml:\n{xml}");
        Junit { cases }
    }

    pub fn names(&self) -> Vec<&str> {
        self.cases.iter().map(|c| c.name.as_str()).collect()
    }
}
