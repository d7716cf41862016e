//! Reverting from journals: what `drill cleanup` does for runs that died,
//! and what a run does for itself if it panics mid-fault.

use std::time::Duration;

use crate::targets::command;
use crate::targets::journal::{self, Entry, Journal, RevertPlan};

/// Which journals to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Runs whose process is gone (`drill cleanup`).
    DeadRuns,
    /// This process's own runs (after a panic).
    OwnRuns,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// One line per action, for the person reading.
    pub lines: Vec<String>,
    /// What could not be reverted, with what to do by hand.
    pub failed: Vec<String>,
    /// Outstanding faults found.
    pub outstanding: usize,
}

pub async fn revert_outstanding(scope: Scope, dry_run: bool) -> std::io::Result<Outcome> {
    let mut out = Outcome::default();
    let me = std::process::id();
    for j in journal::open_journals()? {
        let own = j.pid == me;
        match scope {
            Scope::DeadRuns if journal::pid_alive(j.pid) && !own => {
                out.lines.push(format!(
                    "run {} (pid {}) is still running; leaving it alone",
                    j.run_id, j.pid
                ));
                continue;
            }
            Scope::OwnRuns if !own => continue,
            _ => {}
        }
        if j.outstanding.is_empty() {
            out.lines
                .push(format!("run {}: nothing outstanding", j.run_id));
        }
        let mut all_ok = true;
        for (id, fault, plan) in &j.outstanding {
            out.outstanding += 1;
            let what = plan.describe();
            if dry_run {
                out.lines.push(format!(
                    "run {}: would revert `{fault}`: {}",
                    j.run_id,
                    would_do(plan, &what).await
                ));
                all_ok = false;
                continue;
            }
            let res = revert_found(plan, &j.run_id, fault).await;
            let mut jw = Journal::reopen(&j.path)?;
            match res {
                Ok(None) => {
                    out.lines
                        .push(format!("run {}: reverted `{fault}`: {what}", j.run_id));
                    jw.append(&Entry::Reverted { id: *id })?;
                }
                Ok(Some(objects)) => {
                    out.lines.push(format!(
                        "run {}: WARNING `{fault}` was already restored: {objects} found as before the fault (someone else restored it, or the run died before changing it); drill changed nothing",
                        j.run_id
                    ));
                    jw.append(&Entry::Reverted { id: *id })?;
                }
                Err(e) => {
                    all_ok = false;
                    let e = if j.unfinished.contains(id) {
                        format!(
                            "{e} (the journal has no record that this inject finished: drill was stopped during it, so the fault may never have taken effect)"
                        )
                    } else {
                        e
                    };
                    out.lines
                        .push(format!("run {}: FAILED to revert `{fault}`: {e}", j.run_id));
                    let _ = jw.append(&Entry::RevertFailed {
                        id: *id,
                        error: e.clone(),
                    });
                    out.failed.push(format!(
                        "run {} fault `{fault}`: {e}; do by hand: {what}",
                        j.run_id
                    ));
                }
            }
        }
        if all_ok {
            Journal::reopen(&j.path)?
                .finish(&j.run_id)
                .map_err(std::io::Error::other)?;
        } else if !dry_run {
            out.lines.push(format!(
                "run {}: journal kept open in {}; fix the fault by hand and run `drill cleanup --resolved {}`",
                j.run_id,
                j.path.display(),
                j.run_id
            ));
        }
    }
    Ok(out)
}

/// What `drill cleanup --resolved` did.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The faults journalled as restored by hand.
    pub closed: Vec<String>,
    /// Claims that could not be released, each with the command that does.
    pub claims_left: Vec<String>,
}

/// A person says they restored a run's outstanding faults by hand: each is
/// journalled as resolved, the run's claims on those objects (Kubernetes
/// Leases, still marked with the fault) are released so later runs are not
/// refused, and the journal closes. Nothing is reverted.
pub async fn mark_resolved(run_id: &str) -> std::io::Result<Resolved> {
    let Some(j) = journal::open_journals()?
        .into_iter()
        .find(|j| j.run_id == run_id)
    else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no open journal for run `{run_id}` in {}",
                journal::journal_dir().display()
            ),
        ));
    };
    let mut jw = Journal::reopen(&j.path)?;
    let mut done = Resolved::default();
    for (id, fault, plan) in &j.outstanding {
        jw.append(&Entry::Resolved {
            id: *id,
            note: "restored by hand (drill cleanup --resolved)".into(),
        })?;
        done.closed.push(fault.clone());
        if let RevertPlan::K8s(k) = plan {
            done.claims_left
                .extend(k.release_claims_from_journal().await);
        }
    }
    jw.finish(&j.run_id).map_err(std::io::Error::other)?;
    Ok(done)
}

/// What a real cleanup would do with one entry, read from the target
/// (Kubernetes objects are read, nothing is written); other kinds say what
/// their revert runs.
async fn would_do(plan: &RevertPlan, what: &str) -> String {
    match plan {
        RevertPlan::K8s(k) => match k.dry_run().await {
            Ok(lines) => format!("on context `{}`: {}", k.context, lines.join("; ")),
            Err(e) => format!("cannot read the target ({e}); a cleanup would try: {what}"),
        },
        _ => what.to_string(),
    }
}

/// Reverts from the journal entry alone; `Ok(Some(objects))` when the
/// target was found already restored (Kubernetes).
async fn revert_found(
    plan: &RevertPlan,
    run_id: &str,
    fault: &str,
) -> Result<Option<String>, String> {
    match plan {
        RevertPlan::K8s(k) => k.revert_from_journal().await,
        _ => revert(plan, run_id, fault).await.map(|()| None),
    }
}

/// Reverts from the journal entry alone (no live target needed).
pub(super) async fn revert(plan: &RevertPlan, run_id: &str, fault: &str) -> Result<(), String> {
    match plan {
        RevertPlan::SelfHealing { .. } => Ok(()),
        RevertPlan::Lab { pids, .. } => {
            // Lab processes end with their run; make sure none lingers.
            for &pid in pids {
                if journal::pid_alive(pid) && pid != std::process::id() {
                    // SAFETY: kill(2) on a pid recorded as one of the lab's.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
            Ok(())
        }
        RevertPlan::K8s(k) => k.revert_from_journal().await.map(|_| ()),
        RevertPlan::Command {
            command,
            cwd,
            timeout_s,
        } => command::run(
            command,
            cwd,
            Duration::from_secs_f64(*timeout_s),
            &[("DRILL_RUN_ID", run_id), ("DRILL_FAULT", fault)],
        )
        .await
        .map_err(|e| e.to_string()),
        RevertPlan::Silence {
            alertmanager,
            silence_id,
            ends_with_run,
            token_env,
            ca_file,
        } => {
            let am = crate::observe::api::Endpoint {
                url: alertmanager.clone(),
                token_env: token_env.clone(),
                ca_file: ca_file.clone(),
            };
            expire_silence(&am, silence_id, *ends_with_run).await
        }
        RevertPlan::AgentJob {
            context,
            kubeconfig,
            namespace,
            name,
            run_id,
        } => {
            crate::agent::jobs::delete_from_journal(kubeconfig, context, namespace, name, run_id)
                .await
        }
    }
}

/// Expires a silence drill created. An Alertmanager that ended with its lab
/// run took the silence with it; any other must answer (with its token, read
/// from the variable the journal names).
pub async fn expire_silence(
    alertmanager: &crate::observe::api::Endpoint,
    silence_id: &str,
    ends_with_run: bool,
) -> Result<(), String> {
    let am = crate::observe::api::Alertmanager::to(alertmanager)
        .map_err(|e| format!("{e}; export it and run `drill cleanup` again"))?;
    match am.expire(silence_id).await {
        Ok(()) => Ok(()),
        Err(crate::observe::api::ApiError::Unreachable { .. }) if ends_with_run => Ok(()),
        Err(e) => match am.silence_state(silence_id).await {
            // Already expired (e.g. by the run itself before it died).
            Ok(state) if state == "expired" => Ok(()),
            _ => Err(e.to_string()),
        },
    }
}
