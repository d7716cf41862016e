//! Generator agents on Kubernetes: one indexed Job per vantage point, its
//! pods reached through the API server's pod proxy, so the runner needs no
//! inbound network and no port-forward. The Job is the unit drill journals
//! (before creating it) and deletes (on every way out, or by `drill cleanup`).
//!
//! Guarantees: nothing is created unless every verb the agents need was
//! granted (SelfSubjectAccessReview); a Job's name is fixed by the run and
//! the vantage before it exists, so the journal can name it first; a delete
//! removes the pods with the Job (`propagationPolicy: Background`: the Job
//! API's own default orphans them). Backstops for a runner that vanished
//! without cleanup: the agents stop when no poll came for `--idle-timeout`,
//! the Job ends at `activeDeadlineSeconds`, and is removed
//! `ttlSecondsAfterFinished` after it ended.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, Pod, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecurityContext, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::core::Status;

use crate::targets::k8s::ops::{Cluster, K8sError};
use crate::targets::k8s::{agent_permissions, client};

/// The port every agent listens on in its pod.
pub(crate) const AGENT_PORT: u16 = 7600;
/// How long an agent sends without hearing from the runner before it stops.
pub(crate) const IDLE_TIMEOUT: &str = "10s";
/// How long the pods may take to be Ready (an image pull on a cold node).
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Added to the drill's planned duration for the Job's deadline: the
/// pods' start (image pull, the agent's own start timeout) and the drain.
const DEADLINE_MARGIN: Duration = Duration::from_secs(600);
/// A finished Job (and its pods' logs) stays this long for a person to
/// read after a runner died; drill deletes it at once otherwise.
const TTL_AFTER_FINISHED_S: i32 = 3600;

pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const RUN_LABEL: &str = "drill.dev/run";
pub(crate) const VANTAGE_LABEL: &str = "drill.dev/vantage";
/// Set by the Job controller on each pod of an indexed Job.
const INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";

/// The agents' image when a vantage point names none: drill's own release
/// as deploy/ names it (`drill:<version>`; kustomize or the vantage point's
/// `image` puts the registry in front).
pub(crate) fn default_image() -> String {
    format!("drill:{}", env!("CARGO_PKG_VERSION"))
}

/// Why agents could not be started, reached or removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentJobError {
    #[error("{0}")]
    Api(#[from] K8sError),
    #[error(
        "context `{context}` may not {} (SelfSubjectAccessReview denied); grant it (`drill rbac` prints the Roles); no agent Job was created",
        denied.join(", ")
    )]
    Denied {
        context: String,
        denied: Vec<String>,
    },
    #[error(
        "agent Job `{namespace}/{name}` on context `{context}`: {ready} of {agents} agent(s) Ready after {waited_s:.0}s; {why}"
    )]
    NotReady {
        context: String,
        namespace: String,
        name: String,
        ready: usize,
        agents: u32,
        waited_s: f64,
        why: String,
    },
    #[error("agent Job `{namespace}/{name}` on context `{context}` failed: {why}")]
    Failed {
        context: String,
        namespace: String,
        name: String,
        why: String,
    },
}

/// A created agent Job: where it is and which object it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JobRef {
    pub context: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub agents: u32,
}

/// The Job's name for a run's vantage point: fixed before the Job exists
/// (the journal names it first), unique per run, and short enough that
/// the pods' hostnames (`<job>-<index>`) stay within 63 characters.
pub(crate) fn job_name(run_id: &str, vantage: &str) -> String {
    let mut v: String = vantage
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    v = v.trim_matches('-').to_string();
    if v.is_empty() {
        v = "agents".into();
    }
    let h = run_id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    format!("drill-{v}-{h:08x}")
}

/// A label value for `s`: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at
/// both ends (run ids carry the scenario's name, which may be anything).
pub(crate) fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The labels on the Job and on each of its pods.
fn labels(run_id: &str, vantage: &str) -> BTreeMap<String, String> {
    [
        (MANAGED_BY, "drill".to_string()),
        ("app.kubernetes.io/name", "drill".to_string()),
        ("app.kubernetes.io/component", "agent".to_string()),
        (RUN_LABEL, label_value(run_id)),
        (VANTAGE_LABEL, label_value(vantage)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The Job for one vantage point: `agents` pods, each `drill agent` on
/// [`AGENT_PORT`], started together (parallelism = completions), never
/// retried (a replaced agent would restart its share mid-drill), ended by
/// the deadline if the runner never stops them.
pub(crate) fn manifest(
    namespace: &str,
    run_id: &str,
    vantage: &str,
    agents: u32,
    image: &str,
    planned: Duration,
) -> Job {
    let labels = labels(run_id, vantage);
    let deadline = (planned + DEADLINE_MARGIN).as_secs_f64().ceil() as i64;
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(run_id, vantage)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(agents as i32),
            parallelism: Some(agents as i32),
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED_S),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![agent_container(image)],
                    restart_policy: Some("Never".into()),
                    // The agent talks to the target, never to the API server.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(15),
                    security_context: Some(pod_security_context()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The one container of an agent pod: `drill agent` listening on
/// [`AGENT_PORT`], ready once the port accepts connections, with a whole
/// CPU requested (and no CPU limit), a memory cap, and no privileges.
fn agent_container(image: &str) -> Container {
    let quantity = |s: &str| Quantity(s.to_string());
    Container {
        name: "agent".into(),
        image: Some(image.to_string()),
        command: Some(vec!["drill".into()]),
        args: Some(
            [
                "agent",
                "--listen",
                &format!("0.0.0.0:{AGENT_PORT}"),
                "--idle-timeout",
                IDLE_TIMEOUT,
            ]
            .map(str::to_string)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("agent".into()),
            container_port: AGENT_PORT as i32,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(AGENT_PORT as i32),
                ..Default::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        // No CPU limit: CFS throttling would stall the open-loop schedule
        // and show up as send lag, not as the target's latency.
        resources: Some(ResourceRequirements {
            requests: Some(
                [("cpu", quantity("1")), ("memory", quantity("256Mi"))]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
            limits: Some([("memory".to_string(), quantity("512Mi"))].into()),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod-level security settings: a non-root user (65532) and the
/// runtime's default seccomp profile.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65532),
        run_as_group: Some(65532),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Asks the API server (SelfSubjectAccessReview) for every verb the
/// agents need in `namespace`, before anything is created. Every denied
/// verb is named at once.
pub(crate) async fn preflight(cluster: &Cluster, namespace: &str) -> Result<(), AgentJobError> {
    let mut denied = Vec::new();
    for p in agent_permissions(namespace) {
        if !cluster.may(&p).await? {
            denied.push(p.to_string());
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(AgentJobError::Denied {
            context: cluster.context.clone(),
            denied,
        })
    }
}

/// Creates the vantage point's Job. The caller has journalled it by
/// [`job_name`] first. A Job of that name already there is an error
/// (drill never adopts an object it did not create).
pub(crate) async fn create(
    cluster: &Cluster,
    namespace: &str,
    run_id: &str,
    vantage: &str,
    agents: u32,
    image: &str,
    planned: Duration,
) -> Result<JobRef, AgentJobError> {
    let job = manifest(namespace, run_id, vantage, agents, image, planned);
    let name = job.metadata.name.clone().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let made = api
        .create(&PostParams::default(), &job)
        .await
        .map_err(|e| {
            K8sError::from_kube(
                &cluster.context,
                format!("create job `{namespace}/{name}`"),
                e,
            )
        })?;
    tracing::info!(context = %cluster.context, namespace, job = %name, agents, image, "agent job created");
    Ok(JobRef {
        context: cluster.context.clone(),
        namespace: namespace.to_string(),
        name,
        uid: made.metadata.uid.unwrap_or_default(),
        agents,
    })
}

/// One pod of an agent Job, as far as starting the agents cares.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AgentPod {
    pub name: String,
    pub index: Option<u32>,
    pub ready: bool,
    pub phase: String,
    /// The agent container's waiting reason and message (ImagePullBackOff…).
    pub waiting: Option<(String, String)>,
}

/// The Job's pods (by the `job-name` label the Job controller sets).
pub(crate) async fn pods(cluster: &Cluster, job: &JobRef) -> Result<Vec<AgentPod>, K8sError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &job.namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("job-name={}", job.name)))
        .await
        .map_err(|e| {
            K8sError::from_kube(
                &cluster.context,
                format!("list pods of job `{}/{}`", job.namespace, job.name),
                e,
            )
        })?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let status = p.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let waiting = status
                .container_statuses
                .iter()
                .flatten()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref())
                .map(|w| {
                    (
                        w.reason.clone().unwrap_or_default(),
                        w.message.clone().unwrap_or_default(),
                    )
                });
            AgentPod {
                index: p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(INDEX_LABEL))
                    .and_then(|i| i.parse().ok()),
                name: p.metadata.name.unwrap_or_default(),
                ready,
                phase: status.phase.unwrap_or_default(),
                waiting,
            }
        })
        .collect())
}

/// Waits until every completion index has a Ready pod; returns the pods'
/// names ordered by index (agent *j* is index *j*). Stops early when the
/// Job or a pod failed; at `timeout`, says what each missing agent waits
/// for (ImagePullBackOff, Pending, no pod at all).
pub(crate) async fn wait_ready(
    cluster: &Cluster,
    job: &JobRef,
    timeout: Duration,
    poll: Duration,
) -> Result<Vec<String>, AgentJobError> {
    let started = Instant::now();
    loop {
        if let Some(why) = job_failed(cluster, job).await? {
            return Err(failed(job, why));
        }
        let pods = pods(cluster, job).await?;
        if let Some(p) = pods.iter().find(|p| p.phase == "Failed") {
            return Err(failed(job, format!("pod `{}` failed", p.name)));
        }
        let ready: Vec<Option<&AgentPod>> = (0..job.agents)
            .map(|i| pods.iter().find(|p| p.index == Some(i) && p.ready))
            .collect();
        if ready.iter().all(Option::is_some) {
            return Ok(ready
                .into_iter()
                .flatten()
                .map(|p| p.name.clone())
                .collect());
        }
        if started.elapsed() >= timeout {
            return Err(AgentJobError::NotReady {
                context: job.context.clone(),
                namespace: job.namespace.clone(),
                name: job.name.clone(),
                ready: ready.iter().flatten().count(),
                agents: job.agents,
                waited_s: started.elapsed().as_secs_f64(),
                why: waiting_for(job, &pods),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

fn failed(job: &JobRef, why: String) -> AgentJobError {
    AgentJobError::Failed {
        context: job.context.clone(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        why,
    }
}

/// What the agents not Ready wait for, pod by pod.
fn waiting_for(job: &JobRef, pods: &[AgentPod]) -> String {
    let each: Vec<String> = (0..job.agents)
        .filter_map(|i| {
            let p = pods.iter().find(|p| p.index == Some(i));
            match p {
                Some(p) if p.ready => None,
                Some(p) => Some(match &p.waiting {
                    Some((reason, msg)) if msg.is_empty() => format!("pod `{}`: {reason}", p.name),
                    Some((reason, msg)) => format!("pod `{}`: {reason} ({msg})", p.name),
                    None => format!("pod `{}`: {} and not Ready", p.name, p.phase),
                }),
                None => Some(format!(
                    "index {i}: no pod (quota, admission or scheduling: `kubectl -n {} describe job {}`)",
                    job.namespace, job.name
                )),
            }
        })
        .collect();
    each.join("; ")
}

/// The Job's `Failed` condition (deadline exceeded, a pod failed), if set.
async fn job_failed(cluster: &Cluster, job: &JobRef) -> Result<Option<String>, K8sError> {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), &job.namespace);
    let j = api.get(&job.name).await.map_err(|e| {
        K8sError::from_kube(
            &cluster.context,
            format!("get job `{}/{}`", job.namespace, job.name),
            e,
        )
    })?;
    Ok(j.status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| {
            format!(
                "{}: {}",
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default()
            )
        }))
}

/// Deletes a run's agent Job and its pods. A Job already gone is fine;
/// a Job of that name made by anything but this run is left alone.
pub(crate) async fn delete(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    run_id: &str,
) -> Result<(), K8sError> {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let what = format!("delete job `{namespace}/{name}`");
    let err = |e| K8sError::from_kube(&cluster.context, what.clone(), e);
    let job = match api.get(name).await {
        Ok(j) => j,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let labels = job.metadata.labels.unwrap_or_default();
    if labels.get(RUN_LABEL) != Some(&label_value(run_id)) {
        tracing::warn!(
            namespace,
            job = name,
            "a job of this name is not this run's; left alone"
        );
        return Ok(());
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: job.metadata.uid,
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {
            tracing::info!(context = %cluster.context, namespace, job = name, "agent job deleted");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// The client to reach agents with through the pod proxy: the vantage
/// point's context from the run's kubeconfig files, without kube's
/// retries (an agent that does not answer must show within a poll).
pub(crate) async fn proxy_client(
    kubeconfig: &[std::path::PathBuf],
    context: &str,
) -> Result<kube::Client, crate::targets::TargetError> {
    let kc = client::load(kubeconfig)?;
    Ok(client::for_context_without_retries(&kc, context)
        .await?
        .client)
}

/// POSTs `body` to `path` on the agent in `pod` through the API server's
/// pod proxy (`/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`),
/// and returns the agent's answer. A non-2xx answer (the agent's own, or
/// the API server's when the pod is unreachable) is a `kube::Error::Api`
/// with its code and body, at once: `client` should come from
/// [`proxy_client`], since kube's default client retries a 503 for minutes.
pub(crate) async fn proxy_post(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, kube::Error> {
    let uri = format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{}",
        path.trim_start_matches('/')
    );
    let req = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(kube::client::Body::from(body))
        .map_err(kube::Error::HttpError)?;
    let res = client.send(req).await?;
    let code = res.status();
    let bytes = res.into_body().collect().await?.to_bytes().to_vec();
    if code.is_success() {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let status = match serde_json::from_slice::<Status>(&bytes) {
        Ok(s) if s.code != 0 => s,
        _ => Status::failure(&text, code.canonical_reason().unwrap_or("")).with_code(code.as_u16()),
    };
    Err(kube::Error::Api(status.boxed()))
}

#[cfg(test)]
mod tests;
