//! One PostgreSQL server of the lab: its data directory, its postmaster
//! process (a child of drill, killed with it) and the few ways it is started
//! and stopped. A postmaster's children call setsid(), so killing a server
//! means finding them through /proc, not signalling a process group.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::oneshot;

use super::DbError;
use super::bin::{PgBin, RunAs};

/// The role the lab connects as (a superuser created by initdb).
pub(crate) const SUPERUSER: &str = "drill";

/// Programs and user shared by every server of one lab.
#[derive(Clone, Debug)]
pub(crate) struct Toolbox {
    pub bin: PgBin,
    pub user: RunAs,
    /// The lab's temp dir (owned by the server user).
    pub root: PathBuf,
}

impl Toolbox {
    /// A command for one of the PostgreSQL programs, run as the server user
    /// from the lab's directory (the caller's may be unreadable to it).
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.path(program));
        self.user.apply(&mut cmd);
        cmd.current_dir(&self.root)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a short-lived program to completion; its output goes into errors.
    pub(crate) async fn run(
        &self,
        step: &str,
        program: &str,
        args: &[&str],
    ) -> Result<(), DbError> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .await
            .map_err(|e| DbError::Setup {
                step: step.into(),
                detail: format!("{program}: {e}"),
            })?;
        if !out.status.success() {
            return Err(DbError::Setup {
                step: step.into(),
                detail: format!(
                    "{program} {}: {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            });
        }
        Ok(())
    }
}

/// One server: a data directory and, while it runs, its postmaster.
#[derive(Debug)]
pub(crate) struct Node {
    /// `a` or `b`; also its `application_name` when streaming.
    pub name: String,
    pub data: PathBuf,
    /// The port it serves clients on (the writer DSN lists it).
    pub port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub(crate) fn new(name: &str, root: &Path, port: u16) -> Node {
        Node {
            name: name.into(),
            data: root.join(name),
            port,
            log: root.join(format!("{name}.log")),
            child: None,
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the postmaster on `port` with extra `-c` settings and waits
    /// until it answers queries (a standby answers once consistent).
    pub(crate) async fn start(
        &mut self,
        tools: &Toolbox,
        port: u16,
        settings: &[(&str, &str)],
    ) -> Result<(), DbError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| DbError::Setup {
                step: format!("open {}", self.log.display()),
                detail: e.to_string(),
            })?;
        let log2 = log.try_clone().map_err(|e| DbError::Setup {
            step: "log file".into(),
            detail: e.to_string(),
        })?;
        let mut cmd = std::process::Command::new(tools.bin.path("postgres"));
        if let Some((uid, gid)) = tools.user.ids {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&tools.root)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(port.to_string())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        for (k, v) in settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let child = spawn_kept(cmd).await.map_err(|e| DbError::Setup {
            step: format!("start server {}", self.name),
            detail: e.to_string(),
        })?;
        self.child = Some(child);
        self.wait_ready(port, Duration::from_secs(60)).await
    }

    async fn wait_ready(&mut self, port: u16, limit: Duration) -> Result<(), DbError> {
        let deadline = Instant::now() + limit;
        let dsn = dsn(port);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(DbError::Setup {
                    step: format!("start server {} on port {port}", self.name),
                    detail: format!("postgres exited ({status}): {}", self.log_tail()),
                });
            }
            if let Ok(client) = super::connect(&dsn).await
                && client.simple_query("SELECT 1").await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DbError::Setup {
                    step: format!("start server {} on port {port}", self.name),
                    detail: format!("not ready after {limit:?}: {}", self.log_tail()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A clean shutdown (`pg_ctl stop -m fast`: SIGINT to the postmaster):
    /// clients are disconnected, and the walsenders ship everything,
    /// shutdown checkpoint included, to connected standbys before it exits.
    /// Returns false when it had to be killed after `limit`.
    pub(crate) async fn stop_fast(&mut self, limit: Duration) -> bool {
        let Some(pid) = self.pid() else {
            self.child = None;
            return true;
        };
        signal(pid, libc::SIGINT);
        let exited = self.wait_exit(limit).await;
        if !exited {
            self.kill().await;
        }
        self.child = None;
        exited
    }

    /// SIGKILL to the postmaster and every child: a crash, as a power loss
    /// would leave it (minus the OS page cache, which survives).
    pub(crate) async fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            kill_tree(pid);
        }
        self.wait_exit(Duration::from_secs(10)).await;
        self.child = None;
    }

    /// Polls the postmaster until it has exited (and is reaped).
    async fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(child) = self.child.as_mut() {
            if !matches!(child.try_wait(), Ok(None)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Kill without waiting: for Drop.
    pub(crate) fn kill_now(&mut self) {
        if let Some(pid) = self.pid() {
            kill_tree(pid);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join(" | ");
        format!("last log lines of {}: {tail}", self.log.display())
    }
}

type SpawnJob = (
    std::process::Command,
    oneshot::Sender<std::io::Result<Child>>,
);

/// Spawns a postmaster from one thread that lives as long as drill, with
/// PR_SET_PDEATHSIG: if drill dies, even by SIGKILL, the postmaster gets
/// SIGKILL and its backends exit on postmaster death, so no server outlives
/// the run. (The "parent" of that signal is the forking *thread*; a tokio
/// worker or blocking thread may exit mid-drill, this one never does.)
async fn spawn_kept(mut cmd: std::process::Command) -> std::io::Result<Child> {
    static KEEPER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("drill-db-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the database spawner thread");
        tx
    });
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe. Runs after the uid change,
        // which would clear the setting.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let (tx, rx) = oneshot::channel();
    keeper
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("the database spawner thread is gone"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the database spawner thread dropped a request"))?
}

/// The lab's DSN for one server.
pub(crate) fn dsn(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres connect_timeout=3")
}

pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid we found as our server or its child.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Pids whose parent is `pid`, from /proc.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
                == Some(pid)
        })
        .collect()
}

/// The ppid field of /proc/<pid>/stat (after the parenthesised command,
/// which may itself hold spaces and parentheses).
fn parent_of(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// SIGKILL to a postmaster and its children, then waits (briefly) until
/// they are gone so the data directory can be started again.
pub(crate) fn kill_tree(pid: u32) {
    let kids = children(pid);
    signal(pid, libc::SIGKILL);
    for &c in &kids {
        signal(c, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while kids.iter().any(|&c| alive(c)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_of("123 (postgres: a) b) S 77 123 1"), Some(77));
        assert_eq!(parent_of("1 (init) S 0 1 1"), Some(0));
    }
}
