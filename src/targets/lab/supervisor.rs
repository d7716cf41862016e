//! The lab's supervisor: runs each component as its own OS process and,
//! like a Deployment, recreates one that dies after the restart delay. A
//! component can also be held down (scaled to zero) until released.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::serve::ProcessSpec;
use crate::base::clock::Clock;
use crate::measure::Micros;

/// Something the lab reports for the run's timeline.
#[derive(Clone, Debug)]
pub struct LabEvent {
    pub at: Micros,
    pub what: String,
}

/// What the supervisor knows of one instance.
#[derive(Clone, Debug, Default)]
pub(crate) struct InstanceState {
    pub pid: Option<u32>,
    pub ready: bool,
    /// Incremented each time a fresh process becomes ready.
    pub generation: u32,
    /// When it last became ready (run clock).
    pub ready_at: Option<Micros>,
    /// A task inside the process failed (it printed `FAILED …` and exited);
    /// kept across restarts, since the same settings fail the same way.
    pub failure: Option<String>,
}

struct Instance {
    port: u16,
    state: Mutex<InstanceState>,
    /// Whether the instance should run (false = scaled to zero).
    wanted: watch::Sender<bool>,
}

pub(crate) struct Supervisor {
    exe: PathBuf,
    clock: Clock,
    restart_delay: Duration,
    instances: BTreeMap<String, Arc<Instance>>,
    events: mpsc::UnboundedSender<LabEvent>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    pub(crate) fn new(
        clock: Clock,
        restart_delay: Duration,
        events: mpsc::UnboundedSender<LabEvent>,
    ) -> std::io::Result<Supervisor> {
        Ok(Supervisor {
            exe: std::env::current_exe()?,
            clock,
            restart_delay,
            instances: BTreeMap::new(),
            events,
            shutdown: watch::channel(false).0,
            tasks: Vec::new(),
        })
    }

    /// Starts supervising `spec` under `key` (e.g. `ingress-gateway/primary`).
    pub(crate) fn add(&mut self, key: String, spec: ProcessSpec) {
        let inst = Arc::new(Instance {
            port: spec.port,
            state: Mutex::new(InstanceState::default()),
            wanted: watch::channel(true).0,
        });
        self.instances.insert(key.clone(), inst.clone());
        let ctx = Ctx {
            key,
            exe: self.exe.clone(),
            spec_json: serde_json::to_string(&spec).expect("spec serialises"),
            clock: self.clock,
            restart_delay: self.restart_delay,
            events: self.events.clone(),
            shutdown: self.shutdown.subscribe(),
            inst,
        };
        self.tasks.push(tokio::spawn(ctx.run()));
    }

    pub(crate) fn state(&self, key: &str) -> Option<InstanceState> {
        self.instances
            .get(key)
            .map(|i| i.state.lock().expect("state lock").clone())
    }

    pub(crate) fn ports(&self) -> BTreeMap<String, u16> {
        self.instances
            .iter()
            .map(|(k, i)| (k.clone(), i.port))
            .collect()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.instances.keys()
    }

    /// Kills the instance's process (SIGKILL); it comes back after the
    /// restart delay if wanted. Returns the killed pid.
    pub(crate) fn kill(&self, key: &str) -> Option<u32> {
        let pid = self.state(key)?.pid?;
        // SAFETY: plain kill(2) on a child we spawned.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        Some(pid)
    }

    /// Scales the instance to zero (`false`) or back to one (`true`).
    pub(crate) fn set_wanted(&self, key: &str, wanted: bool) {
        if let Some(i) = self.instances.get(key) {
            i.wanted.send_replace(wanted);
        }
    }

    /// Components whose process reported a failed task, with what failed.
    pub(crate) fn failures(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter_map(|(k, i)| {
                let s = i.state.lock().expect("state lock");
                s.failure
                    .as_ref()
                    .map(|f| format!("lab component `{k}`: {f}"))
            })
            .collect()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.instances
            .values()
            .filter_map(|i| i.state.lock().expect("state lock").pid)
            .collect()
    }

    /// Stops every process and waits for them to exit.
    pub(crate) async fn stop(&mut self) {
        self.shutdown.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

struct Ctx {
    key: String,
    exe: PathBuf,
    spec_json: String,
    clock: Clock,
    restart_delay: Duration,
    events: mpsc::UnboundedSender<LabEvent>,
    shutdown: watch::Receiver<bool>,
    inst: Arc<Instance>,
}

impl Ctx {
    fn event(&self, what: String) {
        if std::env::var_os("DRILL_LAB_DEBUG").is_some() {
            eprintln!("lab: {what}");
        }
        let _ = self.events.send(LabEvent {
            at: self.clock.now(),
            what,
        });
    }

    fn set(&self, f: impl FnOnce(&mut InstanceState)) {
        f(&mut self.inst.state.lock().expect("state lock"));
    }

    async fn run(mut self) {
        let mut wanted = self.inst.wanted.subscribe();
        let mut first = true;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            if !*wanted.borrow_and_update() {
                tokio::select! {
                    _ = wanted.changed() => continue,
                    _ = self.shutdown.changed() => return,
                }
            }
            let mut child = match self.spawn() {
                Ok(c) => c,
                Err(e) => {
                    self.event(format!("{}: cannot start: {e}", self.key));
                    tokio::select! {
                        _ = tokio::time::sleep(self.restart_delay) => continue,
                        _ = self.shutdown.changed() => return,
                    }
                }
            };
            let pid = child.id();
            self.set(|s| s.pid = pid);
            // Keep the child's stdin open for as long as we supervise it:
            // `Child::wait` would close it, and EOF tells the child to exit.
            let _lifeline = child.stdin.take();
            let stdout = child.stdout.take().expect("stdout piped");
            let reader = self.watch_output(BufReader::new(stdout).lines(), first);
            first = false;
            let exit = loop {
                tokio::select! {
                    status = child.wait() => break Some(status),
                    _ = self.shutdown.changed() => break None,
                    _ = wanted.changed() => if !*wanted.borrow() { break None },
                }
            };
            match exit {
                Some(status) => self.record_exit(status, reader).await,
                None => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    self.set(|s| {
                        s.ready = false;
                        s.pid = None;
                    });
                    if *self.shutdown.borrow() {
                        return;
                    }
                    self.event(format!("{} scaled to zero", self.key));
                    // Wait to be wanted again, then start at once.
                    continue;
                }
            }
            if !*self.inst.wanted.borrow() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.restart_delay) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// Follows the process's stdout until it closes: `READY` marks the
    /// instance ready (and, after the first start, reports it recreated),
    /// `FAILED …` records why a task inside it failed and reports it, and
    /// `EVENT …` goes to the run's timeline.
    fn watch_output(
        &self,
        mut lines: Lines<BufReader<ChildStdout>>,
        was_first: bool,
    ) -> JoinHandle<()> {
        let events = self.events.clone();
        let clock = self.clock;
        let key = self.key.clone();
        let inst = self.inst.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("READY") {
                    let now = clock.now();
                    let mut s = inst.state.lock().expect("state lock");
                    s.ready = true;
                    s.generation += 1;
                    s.ready_at = Some(now);
                    if !was_first {
                        let _ = events.send(LabEvent {
                            at: now,
                            what: format!("{key} recreated and ready"),
                        });
                    }
                } else if let Some(why) = line.strip_prefix("FAILED ") {
                    inst.state.lock().expect("state lock").failure = Some(why.to_string());
                    let _ = events.send(LabEvent {
                        at: clock.now(),
                        what: format!("{key}: {why}"),
                    });
                } else if let Some(ev) = line.strip_prefix("EVENT ") {
                    let _ = events.send(LabEvent {
                        at: clock.now(),
                        what: format!("{key}: {ev}"),
                    });
                }
            }
        })
    }

    /// The process exited on its own: marks the instance down, lets the
    /// output reader finish, then reports how it exited.
    async fn record_exit(&self, status: std::io::Result<ExitStatus>, reader: JoinHandle<()>) {
        self.set(|s| {
            s.ready = false;
            s.pid = None;
        });
        let _ = reader.await;
        let how = status
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        self.event(format!("{} process exited ({how})", self.key));
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["lab", "serve", "--spec", &self.spec_json])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("DRILL_LAB_DEBUG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        cmd.spawn()
    }
}
