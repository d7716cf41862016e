//! A vantage point's agent Job as a journal entry, kept like a fault's:
//! journalled (synced) before the Job is created, closed once it is
//! deleted, so a run killed with its agents still running leaves `drill
//! cleanup` what it needs to delete them, and the journal never closes
//! while a Job may still be there.
//!
//! The runner's sequence per vantage point, after `agent::k8s::preflight`
//! passed for every one: [`launch`] ([`plan`] → [`record`] →
//! `agent::k8s::create` → `agent::k8s::wait_ready`); on every way out,
//! whether the launch succeeded or not, [`remove`] for what it journalled.
//! A Job that is already gone, or that is not this run's, counts as removed.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::k8s::{self, JobRef};
use crate::targets::journal::{Entry, Journal, RevertPlan};
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

/// One vantage point's agents as the runner asks for them.
pub(crate) struct VantageJob<'a> {
    pub vantage: &'a str,
    pub namespace: &'a str,
    pub agents: u32,
    pub image: &'a str,
    /// The drill's planned duration (the Job's deadline adds a margin).
    pub planned: Duration,
}

/// A journalled Job: what the teardown hands to [`remove`].
pub(crate) struct Journalled {
    pub id: u32,
    pub plan: RevertPlan,
}

/// Agents up: the Job, its pods by completion index (agent *j* is pod
/// *j*), and the client that reaches them through the pod proxy.
pub(crate) struct Started {
    pub job: JobRef,
    pub pods: Vec<String>,
    pub proxy: kube::Client,
}

/// Journals the `index`-th vantage point's Job, creates it and waits until
/// every agent is Ready. Whenever the first value is `Some`, the Job may
/// exist and the caller removes it on every way out, error or not.
pub(crate) async fn launch(
    journal: &mut Journal,
    index: usize,
    kubeconfig: &[PathBuf],
    cluster: &Cluster,
    run_id: &str,
    v: &VantageJob<'_>,
    ready_timeout: Duration,
) -> (Option<Journalled>, Result<Started, String>) {
    let plan = plan(kubeconfig, &cluster.context, v.namespace, run_id, v.vantage);
    let id = journal_id(index);
    if let Err(e) = record(journal, id, v.vantage, &plan) {
        let why = format!(
            "cannot write the journal ({}): {e}; no agent Job was created",
            journal.path().display()
        );
        return (None, Err(why));
    }
    let journalled = Some(Journalled { id, plan });
    let started = async {
        let job = k8s::create(
            cluster,
            v.namespace,
            run_id,
            v.vantage,
            v.agents,
            v.image,
            v.planned,
        )
        .await
        .map_err(|e| e.to_string())?;
        let pods = k8s::wait_ready(cluster, &job, ready_timeout, Duration::from_millis(250))
            .await
            .map_err(|e| e.to_string())?;
        let proxy = k8s::proxy_client(kubeconfig, &cluster.context)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Started { job, pods, proxy })
    }
    .await;
    (journalled, started)
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

/// The line for the report when [`remove`] failed: what to do by hand,
/// and how the journal gets closed after.
pub(crate) fn manual_instruction(plan: &RevertPlan, error: &str, run_id: &str) -> String {
    format!(
        "agents not removed ({error}): {}   — then `drill cleanup` retries the delete, or `drill cleanup --resolved {run_id}` once you deleted it by hand",
        plan.describe()
    )
}
