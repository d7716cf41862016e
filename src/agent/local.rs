//! Local agents: N `drill agent` child processes of this very binary on
//! 127.0.0.1, reached directly. They are killed when dropped, so no way out
//! of the runner leaves one behind (and each also stops by itself when its
//! runner goes silent).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{AgentLink, Transport, Vantage};

/// The child processes; dropping this kills them.
pub(crate) struct LocalAgents {
    children: Vec<Child>,
}

/// How long an agent may take to print its `listening on` line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl LocalAgents {
    /// Starts `n` agents and waits until each listens. `idle_timeout`: how
    /// long each keeps going without hearing from the runner.
    pub(crate) async fn spawn(
        n: usize,
        vantage: &str,
        idle_timeout: Duration,
    ) -> Result<(LocalAgents, Vantage), String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find drill's own executable: {e}"))?;
        let mut me = LocalAgents {
            children: Vec::new(),
        };
        let mut agents = Vec::new();
        for i in 0..n {
            let mut cmd = Command::new(&exe);
            cmd.args(["agent", "--listen", "127.0.0.1:0", "--idle-timeout"])
                .arg(format!("{}ms", idle_timeout.as_millis()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            // A runner killed with SIGKILL cannot kill its agents: the kernel
            // does, when the runtime thread that started them goes (that
            // thread lives as long as the runner's runtime).
            // SAFETY: prctl(2) only, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot start agent {i}: {e}"))?;
            let stdout = child.stdout.take().expect("stdout is piped");
            me.children.push(child);
            let addr = tokio::time::timeout(READY_TIMEOUT, listening(stdout))
                .await
                .map_err(|_| format!("agent {i} did not listen within {READY_TIMEOUT:?}"))??;
            let base = format!("http://{addr}")
                .parse()
                .map_err(|e| format!("agent {i} printed a bad address {addr}: {e}"))?;
            agents.push(AgentLink {
                name: format!("{vantage}/{i}"),
                transport: Transport::Direct { base },
            });
        }
        Ok((
            me,
            Vantage {
                name: vantage.to_string(),
                agents,
            },
        ))
    }

    /// Adds another vantage point's processes (numbered after these).
    pub(crate) fn join(&mut self, other: LocalAgents) {
        self.children.extend(other.children);
    }

    /// Whether agent `i`'s process has exited, and how.
    pub(crate) fn exited(&mut self, i: usize) -> Option<String> {
        let c = self.children.get_mut(i)?;
        match c.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// Kills every agent still running and reaps it.
    pub(crate) async fn kill(&mut self) {
        for c in &mut self.children {
            let _ = c.kill().await;
        }
    }
}

/// The address from the agent's `listening on ADDR` line.
async fn listening(stdout: tokio::process::ChildStdout) -> Result<String, String> {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = line.strip_prefix("listening on ") {
            let addr = addr.trim().to_string();
            // The agent prints nothing else; keep draining so it never blocks.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        }
    }
    Err("an agent exited before listening".into())
}
