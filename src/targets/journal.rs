//! The fault journal: before each inject, a synced line saying what, where,
//! the prior state and how to revert; after the revert, a synced line saying
//! so. `drill cleanup` replays what a crashed or killed run left open.
//!
//! Journals live in the state directory (`$DRILL_STATE_DIR`, else
//! `$XDG_STATE_HOME/drill`, else `~/.local/state/drill`), not in the working
//! tree, so a wiped CI workspace does not lose them.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How to undo one injected fault, with the exact prior state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RevertPlan {
    /// Heals by itself (a deleted instance is recreated); nothing to undo.
    SelfHealing { what: String },
    /// A lab fault: the lab's processes end with the run that started them.
    Lab {
        instances: Vec<String>,
        pids: Vec<u32>,
    },
    /// A Kubernetes fault: the context and kubeconfig it ran with, and each
    /// touched object's exact prior state.
    K8s(crate::targets::k8s::revert::K8sRevert),
    /// A user's revert command.
    Command {
        command: String,
        cwd: PathBuf,
        timeout_s: f64,
    },
    /// An Alertmanager silence drill created for the expected alerts; the
    /// revert expires it. `ends_with_run`: the Alertmanager is the lab's,
    /// gone with its run (and the silence with it).
    /// `token_env`: the NAME of the variable holding Alertmanager's bearer
    /// token (never its value); `ca_file`: the CA its certificate needs.
    Silence {
        alertmanager: String,
        silence_id: String,
        ends_with_run: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<PathBuf>,
    },
    /// A vantage point's generator agents: the indexed Job drill creates
    /// (named before it exists) on that context; the revert deletes it
    /// with its pods, unless a Job of that name is not this run's.
    AgentJob {
        context: String,
        /// The kubeconfig files the run read (merged as kubectl does).
        kubeconfig: Vec<PathBuf>,
        namespace: String,
        name: String,
        run_id: String,
    },
}

impl RevertPlan {
    /// For people: what reverting this means, and how to do it by hand.
    pub fn describe(&self) -> String {
        match self {
            RevertPlan::SelfHealing { what } => format!("heals by itself ({what})"),
            RevertPlan::Lab { instances, .. } => {
                format!("lab {} (ends with its run)", instances.join(", "))
            }
            RevertPlan::K8s(k) => k.describe(),
            RevertPlan::Command { command, cwd, .. } => format!("`{command}` in {}", cwd.display()),
            RevertPlan::Silence {
                alertmanager,
                silence_id,
                ..
            } => format!("expire silence {silence_id} in Alertmanager {alertmanager}"),
            RevertPlan::AgentJob {
                context,
                namespace,
                name,
                ..
            } => format!(
                "delete the agents' Job {namespace}/{name} on context `{context}` (`kubectl --context {context} -n {namespace} delete job {name} --cascade=background`)"
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Entry {
    Run {
        run_id: String,
        pid: u32,
        scenario: String,
        target: String,
        started_at: String,
    },
    Inject {
        id: u32,
        fault: String,
        component: Option<String>,
        region: Option<String>,
        action: String,
        plan: RevertPlan,
    },
    /// The inject of `id` returned: the fault took effect. An `Inject` with
    /// no `Injected` after it was cut short (drill killed during it), so a
    /// failed revert may only mean there was nothing to revert.
    Injected {
        id: u32,
    },
    /// A vantage point's agent Job, journalled before it is created; it is
    /// outstanding like a fault until `Reverted` says it was deleted.
    Agents {
        id: u32,
        vantage: String,
        plan: RevertPlan,
    },
    Reverted {
        id: u32,
    },
    RevertFailed {
        id: u32,
        error: String,
    },
    /// A person restored the fault by hand and said so with
    /// `drill cleanup --resolved`.
    Resolved {
        id: u32,
        note: String,
    },
    End {
        run_id: String,
    },
}

pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DRILL_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("drill");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/drill")
}

pub fn journal_dir() -> PathBuf {
    state_dir().join("journal")
}

/// An open journal for one run. It knows which injects are outstanding (not
/// yet reverted, healed or resolved by a person) and refuses to close while
/// any is.
pub struct Journal {
    path: PathBuf,
    file: File,
    outstanding: BTreeSet<u32>,
}

/// Why a journal stayed open.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("{count} fault(s) still outstanding; the journal stays open for `drill cleanup`")]
    Outstanding { count: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Journal {
    pub fn create(run_id: &str, first: &Entry) -> std::io::Result<Journal> {
        let dir = journal_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut j = Journal {
            path,
            file,
            outstanding: BTreeSet::new(),
        };
        j.append(first)?;
        Ok(j)
    }

    /// Reopens a journal to append (cleanup marking entries reverted).
    pub fn reopen(path: &Path) -> std::io::Result<Journal> {
        let outstanding = read(path)?.outstanding.iter().map(|o| o.0).collect();
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            outstanding,
        })
    }

    /// Injects not yet reverted, healed or resolved.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and syncs it to disk before returning.
    pub fn append(&mut self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(e).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        match e {
            Entry::Inject { id, .. } | Entry::Agents { id, .. } => {
                self.outstanding.insert(*id);
            }
            Entry::Reverted { id } | Entry::Resolved { id, .. } => {
                self.outstanding.remove(id);
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the journal: moves it to `done/` (kept as an audit trail), but
    /// only when nothing is outstanding. Otherwise the journal stays where
    /// `drill cleanup` finds it, and the caller must say so.
    pub fn finish(mut self, run_id: &str) -> Result<(), FinishError> {
        if !self.outstanding.is_empty() {
            return Err(FinishError::Outstanding {
                count: self.outstanding.len(),
            });
        }
        self.append(&Entry::End {
            run_id: run_id.into(),
        })?;
        let done = journal_dir().join("done");
        std::fs::create_dir_all(&done)?;
        std::fs::rename(
            &self.path,
            done.join(self.path.file_name().unwrap_or_default()),
        )?;
        Ok(())
    }
}

/// A journal read back: its run and the injects not marked reverted.
#[derive(Debug)]
pub struct OpenJournal {
    pub path: PathBuf,
    pub run_id: String,
    pub pid: u32,
    pub scenario: String,
    pub outstanding: Vec<(u32, String, RevertPlan)>,
    /// Injects journalled with no `Injected` after them: drill stopped
    /// before the inject returned.
    pub unfinished: std::collections::BTreeSet<u32>,
    pub ended: bool,
}

pub fn read(path: &Path) -> std::io::Result<OpenJournal> {
    let mut j = OpenJournal {
        path: path.to_path_buf(),
        run_id: String::new(),
        pid: 0,
        scenario: String::new(),
        outstanding: Vec::new(),
        unfinished: Default::default(),
        ended: false,
    };
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        // A torn last line (crash mid-write) is ignored: its entry was never synced.
        let Ok(e) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        match e {
            Entry::Run {
                run_id,
                pid,
                scenario,
                ..
            } => (j.run_id, j.pid, j.scenario) = (run_id, pid, scenario),
            Entry::Inject {
                id, fault, plan, ..
            } => {
                j.unfinished.insert(id);
                j.outstanding.push((id, fault, plan))
            }
            Entry::Injected { id } => {
                j.unfinished.remove(&id);
            }
            Entry::Agents { id, vantage, plan } => {
                j.outstanding
                    .push((id, format!("agents `{vantage}`"), plan))
            }
            Entry::Reverted { id } | Entry::Resolved { id, .. } => {
                j.outstanding.retain(|(i, _, _)| *i != id)
            }
            Entry::RevertFailed { .. } => {}
            Entry::End { .. } => j.ended = true,
        }
    }
    Ok(j)
}

/// Journals left in the journal directory (not moved to `done/`).
pub fn open_journals() -> std::io::Result<Vec<OpenJournal>> {
    let dir = journal_dir();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in rd {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            out.push(read(&p)?);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Whether a process with this pid is alive (and not a zombie we own).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 3 is the state; Z = zombie, X = dead.
    match stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
    {
        Some('Z') | Some('X') | None => false,
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverted_entries_are_not_outstanding_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let plan = RevertPlan::Command {
            command: "rm x".into(),
            cwd: "/".into(),
            timeout_s: 5.0,
        };
        let lines = [
            serde_json::to_string(&Entry::Run {
                run_id: "r".into(),
                pid: 7,
                scenario: "s".into(),
                target: "lab".into(),
                started_at: "t".into(),
            })
            .unwrap(),
            serde_json::to_string(&Entry::Inject {
                id: 1,
                fault: "a".into(),
                component: None,
                region: None,
                action: "command".into(),
                plan: plan.clone(),
            })
            .unwrap(),
            serde_json::to_string(&Entry::Inject {
                id: 2,
                fault: "b".into(),
                component: None,
                region: None,
                action: "command".into(),
                plan: plan.clone(),
            })
            .unwrap(),
            serde_json::to_string(&Entry::Injected { id: 1 }).unwrap(),
            serde_json::to_string(&Entry::Reverted { id: 1 }).unwrap(),
            "{\"type\":\"inj".to_string(),
        ];
        std::fs::write(&p, lines.join("\n")).unwrap();
        let j = read(&p).unwrap();
        assert_eq!(j.pid, 7);
        assert_eq!(j.outstanding, vec![(2, "b".to_string(), plan)]);
        // b's inject never returned (its `injected` line is missing).
        assert_eq!(j.unfinished.iter().copied().collect::<Vec<_>>(), vec![2]);
        assert!(!j.ended);
    }

    /// The journal is a finalizer on disk: it cannot be closed while a fault
    /// is outstanding, so a failed revert is still there for `drill cleanup`.
    #[test]
    fn a_journal_with_an_outstanding_fault_refuses_to_close() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: tests in this module are the only readers of this variable.
        unsafe { std::env::set_var("DRILL_STATE_DIR", dir.path()) };
        let run = Entry::Run {
            run_id: "r1".into(),
            pid: 1,
            scenario: "s".into(),
            target: "lab".into(),
            started_at: "t".into(),
        };
        let inject = |id| Entry::Inject {
            id,
            fault: format!("f{id}"),
            component: None,
            region: None,
            action: "command".into(),
            plan: RevertPlan::SelfHealing { what: "x".into() },
        };
        let mut j = Journal::create("r1", &run).unwrap();
        j.append(&inject(1)).unwrap();
        j.append(&inject(2)).unwrap();
        j.append(&Entry::Reverted { id: 1 }).unwrap();
        j.append(&Entry::RevertFailed {
            id: 2,
            error: "exit 7".into(),
        })
        .unwrap();
        let path = j.path().to_path_buf();
        assert!(matches!(
            j.finish("r1"),
            Err(FinishError::Outstanding { count: 1 })
        ));
        assert!(path.is_file(), "the journal left the open folder");
        let mut j = Journal::reopen(&path).unwrap();
        assert_eq!(j.outstanding(), 1);
        j.append(&Entry::Resolved {
            id: 2,
            note: "restored by hand".into(),
        })
        .unwrap();
        j.finish("r1").unwrap();
        assert!(!path.exists());
        assert!(journal_dir().join("done/r1.jsonl").is_file());
    }
}
