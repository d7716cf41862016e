//! A fault's lifecycle: journal, inject, revert, journal again. Every inject
//! is preceded by a synced journal entry saying how to undo it, so a crash at
//! any point leaves enough on disk for `drill cleanup`.

pub mod cleanup;

use std::path::PathBuf;
use std::time::Duration;

use crate::targets::command;
use crate::targets::journal::{Entry, Journal, RevertPlan};

use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::targets::{Injection, Target, TargetError};

/// A fault that has been injected (or whose inject was attempted).
pub struct Active {
    pub id: u32,
    pub fault: FaultPlan,
    pub injection: Injection,
    pub plan: RevertPlan,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("cannot write the fault journal ({path}): {source}; nothing was injected")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inject of `{fault}` failed: {source}")]
    Inject {
        fault: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Target(#[from] TargetError),
}

/// Identity passed to command faults' environment.
pub struct RunIdentity {
    pub run_id: String,
    pub target: String,
    pub cwd: PathBuf,
}

/// Resolves and journals `fault`, then injects it. On an inject error the
/// returned `Active` is still handed back inside the error path by the caller
/// reverting: the journal entry exists, so the revert must run.
pub async fn inject(
    target: &Target,
    journal: &mut Journal,
    id: u32,
    fault: &FaultPlan,
    who: &RunIdentity,
) -> (Option<Active>, Result<(), FaultError>) {
    let (injection, plan) = match fault.action {
        Action::Command => (
            Injection::None,
            RevertPlan::Command {
                command: fault.revert.as_ref().cloned().unwrap_or_default(),
                cwd: who.cwd.clone(),
                timeout_s: fault.command_timeout.as_secs_f64(),
            },
        ),
        _ => match target.plan(fault).await {
            Ok(p) => p,
            Err(e) => return (None, Err(e.into())),
        },
    };
    let entry = Entry::Inject {
        id,
        fault: fault.name.clone(),
        component: fault.component().map(str::to_string),
        region: fault.region().map(str::to_string),
        action: fault.action.name().to_string(),
        plan: plan.clone(),
    };
    if let Err(source) = journal.append(&entry) {
        return (
            None,
            Err(FaultError::Journal {
                path: journal.path().to_path_buf(),
                source,
            }),
        );
    }
    let active = Active {
        id,
        fault: fault.clone(),
        injection,
        plan,
    };
    let res = match fault.action {
        Action::Command => {
            let cmd = fault.inject.as_deref().unwrap_or("true");
            let name = fault.name.clone();
            let env = [
                ("DRILL_RUN_ID", who.run_id.as_str()),
                ("DRILL_TARGET", who.target.as_str()),
                ("DRILL_FAULT", name.as_str()),
            ];
            command::run(cmd, &who.cwd, fault.command_timeout.0, &env)
                .await
                .map_err(|e| FaultError::Inject {
                    fault: fault.name.clone(),
                    source: Box::new(e),
                })
        }
        _ => target
            .inject(fault, &active.injection)
            .await
            .map_err(|e| FaultError::Inject {
                fault: fault.name.clone(),
                source: Box::new(e),
            }),
    };
    match &res {
        Ok(()) => {
            tracing::info!(fault = %fault.name, action = fault.action.name(), "injected");
            // Only a note for `drill cleanup`'s message: the revert runs
            // whether or not this line made it to disk.
            if let Err(e) = journal.append(&Entry::Injected { id }) {
                tracing::warn!(fault = %fault.name, error = %e, "cannot journal the finished inject");
            }
        }
        Err(e) => tracing::warn!(fault = %fault.name, error = %e, "inject failed"),
    }
    (Some(active), res)
}

/// Journals and runs a database switchover or failover. One-way: the
/// journal says so, since the promoted standby stays primary.
pub async fn inject_database(
    db: &crate::targets::database::Database,
    journal: &mut Journal,
    id: u32,
    fault: &FaultPlan,
) -> Result<Vec<(std::time::Instant, String)>, crate::db::DbError> {
    let entry = Entry::Inject {
        id,
        fault: fault.name.clone(),
        component: fault.component().map(str::to_string),
        region: None,
        action: fault.action.name().to_string(),
        plan: RevertPlan::SelfHealing {
            what: format!(
                "a database {} is one-way: the promoted standby stays primary",
                fault.action.name()
            ),
        },
    };
    journal.append(&entry).map_err(|e| {
        crate::db::DbError::Invalid(format!(
            "cannot write the fault journal: {e}; nothing was injected"
        ))
    })?;
    let res = db.fault(fault.action).await;
    match &res {
        Ok(_) => {
            tracing::info!(fault = %fault.name, action = fault.action.name(), "database fault done")
        }
        Err(e) => {
            tracing::warn!(fault = %fault.name, error = %e, "database fault failed")
        }
    }
    let _ = journal.append(&Entry::Reverted { id });
    res
}

/// Reverts an injected fault and journals the outcome. Self-healing faults
/// have nothing to revert.
pub async fn revert(
    target: &Target,
    journal: &mut Journal,
    a: &Active,
    who: &RunIdentity,
) -> Result<(), String> {
    let res = match &a.plan {
        RevertPlan::SelfHealing { .. } => Ok(()),
        RevertPlan::Command {
            command,
            cwd,
            timeout_s,
        } => {
            let name = a.fault.name.clone();
            let env = [
                ("DRILL_RUN_ID", who.run_id.as_str()),
                ("DRILL_TARGET", who.target.as_str()),
                ("DRILL_FAULT", name.as_str()),
            ];
            command::run(command, cwd, Duration::from_secs_f64(*timeout_s), &env)
                .await
                .map_err(|e| e.to_string())
        }
        RevertPlan::Lab { .. } | RevertPlan::K8s(_) => target
            .revert(&a.fault, &a.injection)
            .await
            .map_err(|e| e.to_string()),
        // Reverted from what the journal holds alone, as `drill cleanup` does.
        RevertPlan::Silence { .. } | RevertPlan::AgentJob { .. } => {
            cleanup::revert(&a.plan, &who.run_id, &a.fault.name).await
        }
    };
    match &res {
        Ok(()) => tracing::info!(fault = %a.fault.name, "reverted"),
        Err(e) => tracing::warn!(fault = %a.fault.name, error = %e, "revert failed"),
    }
    let entry = match &res {
        Ok(()) => Entry::Reverted { id: a.id },
        Err(e) => Entry::RevertFailed {
            id: a.id,
            error: e.clone(),
        },
    };
    // A journal write failure after a successful revert leaves an entry that
    // cleanup will revert again; every revert here is idempotent.
    let _ = journal.append(&entry);
    res
}

/// The one-line instruction for a person when a revert failed. The journal
/// stays open: `drill cleanup` retries the revert, and a person who restored
/// the fault by hand closes it with `drill cleanup --resolved`.
pub fn manual_instruction(a: &Active, error: &str, run_id: &str) -> String {
    let then = format!(
        "— then `drill cleanup` retries the revert, or `drill cleanup --resolved {run_id}` once you restored it by hand"
    );
    match &a.plan {
        RevertPlan::Command { command, cwd, .. } => format!(
            "fault `{}` was not reverted ({error}). Run by hand in {}: {command}   {then}",
            a.fault.name.clone(),
            cwd.display()
        ),
        RevertPlan::Lab { instances, .. } => {
            format!(
                "lab fault `{}` on {} was not reverted ({error}); the lab is torn down with the run",
                a.fault.name.clone(),
                instances.join(", ")
            )
        }
        RevertPlan::K8s(k) => format!(
            "kubernetes fault `{}` was not reverted ({error}). Restore by hand: {}   {then}",
            a.fault.name.clone(),
            k.describe()
        ),
        RevertPlan::SelfHealing { what } => {
            format!("fault `{}`: {what} ({error})", a.fault.name.clone())
        }
        RevertPlan::Silence { .. } | RevertPlan::AgentJob { .. } => format!(
            "`{}` not undone ({error}): {}   {then}",
            a.fault.name.clone(),
            a.plan.describe()
        ),
    }
}
