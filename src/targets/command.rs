//! The generic `command` fault: the user's inject and revert shell commands,
//! each with a timeout. Works on every target.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("`{command}` could not start: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status}: {output}")]
    Failed {
        command: String,
        status: String,
        output: String,
    },
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },
}

/// Runs `command` with `sh -c` in `cwd`, with the run's identity in the
/// environment (`DRILL_RUN_ID`, `DRILL_FAULT`, `DRILL_TARGET`).
pub(crate) async fn run(
    command: &str,
    cwd: &Path,
    timeout: Duration,
    env: &[(&str, &str)],
) -> Result<(), CommandError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    // Its own process group, so a timeout kills the command's children too.
    cmd.process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|source| CommandError::Spawn {
        command: command.into(),
        source,
    })?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if text.is_empty() {
                text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            text.truncate(500);
            Err(CommandError::Failed {
                command: command.into(),
                status: out.status.to_string(),
                output: text,
            })
        }
        Ok(Err(source)) => Err(CommandError::Spawn {
            command: command.into(),
            source,
        }),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signalling a process group we created.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            Err(CommandError::Timeout {
                command: command.into(),
                timeout,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_and_timeout_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        run("touch made", dir.path(), Duration::from_secs(5), &[])
            .await
            .unwrap();
        assert!(dir.path().join("made").exists());
        let e = run(
            "echo nope >&2; exit 3",
            dir.path(),
            Duration::from_secs(5),
            &[],
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = run("sleep 5", dir.path(), Duration::from_millis(200), &[])
            .await
            .unwrap_err();
        assert!(matches!(e, CommandError::Timeout { .. }), "{e}");
        run(
            "test \"$DRILL_FAULT\" = f1",
            dir.path(),
            Duration::from_secs(5),
            &[("DRILL_FAULT", "f1")],
        )
        .await
        .unwrap();
    }
}
