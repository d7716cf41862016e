//! A vantage point's agent Job as a journal entry, kept like a fault's:
//! journalled (synced) before the Job is created, closed once it is
//! deleted, so a run killed with its agents still running leaves `drill
//! cleanup` what it needs to delete them, and the journal never closes
//! while a Job may still be there.
//!
//! The runner's sequence per vantage point: [`plan`] → [`record`] →
//! `agent::k8s::create` → `agent::k8s::wait_ready`; on every way out,
//! whether the create succeeded or not, [`remove`]. A Job that is already
//! gone, or that is not this run's, counts as removed.

// The runner (issue 12's agent runner) is what starts agents; until it is
// wired in, only `drill cleanup` and the tests call the rest of this.
#![allow(dead_code)]

use std::path::PathBuf;

use super::journal::{Entry, Journal, RevertPlan};
use crate::agent::k8s;
use crate::targets::k8s::client;
use crate::targets::k8s::ops::Cluster;

/// Journal ids of agent Jobs start here, far above the faults' (1, 2, …).
const FIRST_ID: u32 = 1 << 30;

/// The journal id of the `index`-th vantage point's Job.
pub(crate) fn journal_id(index: usize) -> u32 {
    FIRST_ID + index as u32
}

/// What the journal holds to delete the vantage point's Job without the
/// run: the context and kubeconfig, and the Job's name fixed in advance.
pub(crate) fn plan(
    kubeconfig: &[PathBuf],
    context: &str,
    namespace: &str,
    run_id: &str,
    vantage: &str,
) -> RevertPlan {
    RevertPlan::AgentJob {
        context: context.to_string(),
        kubeconfig: kubeconfig.to_vec(),
        namespace: namespace.to_string(),
        name: k8s::job_name(run_id, vantage),
        run_id: run_id.to_string(),
    }
}

/// Journals the Job before it is created; an error means: do not create it.
pub(crate) fn record(
    journal: &mut Journal,
    id: u32,
    vantage: &str,
    plan: &RevertPlan,
) -> std::io::Result<()> {
    journal.append(&Entry::Agents {
        id,
        vantage: vantage.to_string(),
        plan: plan.clone(),
    })
}

/// Deletes the Job (and its pods) with the run's own client and journals
/// the outcome; a failed delete stays outstanding for `drill cleanup`.
pub(crate) async fn remove(
    journal: &mut Journal,
    id: u32,
    cluster: &Cluster,
    plan: &RevertPlan,
) -> Result<(), String> {
    let res = match plan {
        RevertPlan::AgentJob {
            namespace,
            name,
            run_id,
            ..
        } => k8s::delete(cluster, namespace, name, run_id)
            .await
            .map_err(|e| e.to_string()),
        other => Err(format!("not an agent Job: {other:?}")),
    };
    let entry = match &res {
        Ok(()) => Entry::Reverted { id },
        Err(e) => Entry::RevertFailed {
            id,
            error: e.clone(),
        },
    };
    // A lost journal line after a delete only makes cleanup delete again,
    // which finds the Job gone: deleting is idempotent.
    let _ = journal.append(&entry);
    res
}

/// Deletes a journalled Job with a client built from the journal alone
/// (`drill cleanup`, a run's panic path).
pub(crate) async fn delete_from_journal(
    kubeconfig: &[PathBuf],
    context: &str,
    namespace: &str,
    name: &str,
    run_id: &str,
) -> Result<(), String> {
    let cluster = client::connect(kubeconfig, context)
        .await
        .map_err(|e| e.to_string())?;
    k8s::delete(&cluster, namespace, name, run_id)
        .await
        .map_err(|e| e.to_string())
}

/// For people: what deleting the Job means, and how to do it by hand.
pub(crate) fn describe(context: &str, namespace: &str, name: &str) -> String {
    format!(
        "delete the agents' Job {namespace}/{name} on context `{context}` (`kubectl --context {context} -n {namespace} delete job {name} --cascade=background`)"
    )
}
