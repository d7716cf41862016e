//! `batch/v1` Jobs in the fake API server, its "kubelet", and the pod
//! proxy. Create answers 201 with the server's defaults filled in (uid,
//! selector, the controller's labels), a second create of a name 409
//! AlreadyExists, a missing Job 404 NotFound, both as `Status` bodies shaped
//! like a 1.34 API server's. Delete follows `propagationPolicy`: Background
//! answers a `Status` Success and takes the pods with the Job; Foreground
//! answers the object with its finalizer; Orphan — the Job API's own
//! default when no policy is sent — answers the object and leaves the pods.
//!
//! The kubelet starts one pod per completion index (labels `job-name`,
//! `controller-uid`, `batch.kubernetes.io/job-completion-index`) and runs
//! the container's command on 127.0.0.1: with [`FakeCluster::kubelet_runs`]
//! as a real process (the program stands for the image's `drill`; its
//! `--listen` becomes `127.0.0.1:0`; the pod is Ready once the process
//! printed `listening on ADDR`, and the process is killed with its pod),
//! else as an in-process listener that answers with what it got (its pod,
//! its index, the command it was started from, the path and body). Pods
//! are Ready after `Timing::ready_after` at the earliest. `pods/{name}:{port}/proxy/{path}`
//! forwards the request to that listener over real HTTP, as the API server
//! would to the pod's IP; a port nothing listens on is a 503.

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{Pod, Resp, State, matches, query, reply};

/// A Job as stored: the object as created, with the server's fields.
pub(super) struct JobObj {
    object: Value,
    uid: String,
    /// The Job controller gave up: (reason, message) of its Failed condition.
    failed: Option<(String, String)>,
}

/// What the kubelet knows of a Job's pod.
pub(super) struct JobPod {
    index: u32,
    job: String,
    job_uid: String,
    container: Value,
    /// Why the container is not running (ImagePullBackOff), if it is not.
    waiting: Option<(String, String)>,
    /// The local port its process listens on, once it does.
    port: Arc<OnceLock<u16>>,
    /// Held, never read: dropping it ends the process with the pod.
    _process: Option<Process>,
}

impl JobPod {
    fn ready(&self, p: &Pod) -> bool {
        self.waiting.is_none() && p.ready_at <= Instant::now() && self.port.get().is_some()
    }
}

/// The pod's process; it ends with the pod (its `Drop` does it).
#[allow(dead_code)]
enum Process {
    Listener(Server),
    Child(tokio::process::Child),
}

struct Server(tokio::task::JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request a pod's process answered (it came through the pod proxy).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentCall {
    pub pod: String,
    pub index: u32,
    pub method: String,
    pub path: String,
    pub body: String,
}

/// A Job's pod as a test sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPodView {
    pub name: String,
    pub index: u32,
    pub ready: bool,
    /// The command and args the kubelet ran.
    pub command: Vec<String>,
}

/// The port the pods' containers declare (proxying to another one fails).
fn container_port(container: &Value) -> Option<u16> {
    container["ports"][0]["containerPort"]
        .as_u64()
        .map(|p| p as u16)
}

fn command(container: &Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl super::FakeCluster {
    /// The kubelet runs each Job container's command as `program` with
    /// `leading` arguments first, e.g. the `drill` binary itself.
    pub fn kubelet_runs(&self, program: &str, leading: &[&str]) {
        self.lock().kubelet = Some((
            program.to_string(),
            leading.iter().map(|a| a.to_string()).collect(),
        ));
    }

    /// The Job controller fails the Job (e.g. `DeadlineExceeded`), as its
    /// status conditions say.
    pub fn fail_job(&self, ns: &str, name: &str, reason: &str, message: &str) {
        let mut s = self.lock();
        let j = s.jobs.get_mut(&(ns.to_string(), name.to_string())).unwrap();
        j.failed = Some((reason.to_string(), message.to_string()));
    }

    /// The kubelet cannot pull this image: its pods wait in ImagePullBackOff.
    pub fn unpullable(&self, image: &str) {
        self.lock().unpullable.push(image.to_string());
    }

    /// Every Job of a namespace as the API server would return it.
    pub fn jobs(&self, ns: &str) -> Vec<Value> {
        let s = self.lock();
        s.jobs
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, j)| job_json(&s, j))
            .collect()
    }

    /// The pods of a Job (by its `job-name` label), by completion index.
    pub fn job_pods(&self, ns: &str, job: &str) -> Vec<JobPodView> {
        let s = self.lock();
        let mut v: Vec<JobPodView> = s
            .pods
            .iter()
            .filter(|p| p.ns == ns && p.labels.get("job-name").is_some_and(|j| j == job))
            .filter_map(|p| {
                let j = p.job.as_ref()?;
                Some(JobPodView {
                    name: p.name.clone(),
                    index: j.index,
                    ready: j.ready(p),
                    command: command(&j.container),
                })
            })
            .collect();
        v.sort_by_key(|p| p.index);
        v
    }

    /// What the pods' processes were asked, in order.
    pub fn agent_calls(&self) -> Vec<AgentCall> {
        self.lock().agent_calls.clone()
    }
}

fn job_status(code: u16, reason: &str, name: &str, message: String) -> Resp {
    reply(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason,
            "details": { "name": name, "group": "batch", "kind": "jobs" }, "code": code,
        }),
    )
}

fn not_found(name: &str) -> Resp {
    job_status(
        404,
        "NotFound",
        name,
        format!("jobs.batch \"{name}\" not found"),
    )
}

/// The Job with its status as the Job controller keeps it.
fn job_json(s: &State, j: &JobObj) -> Value {
    let mut v = j.object.clone();
    let mine: Vec<&Pod> = s
        .pods
        .iter()
        .filter(|p| p.job.as_ref().is_some_and(|x| x.job_uid == j.uid))
        .collect();
    let ready = mine
        .iter()
        .filter(|p| p.job.as_ref().unwrap().ready(p))
        .count();
    v["status"] = json!({
        "startTime": "2026-11-21T05:00:01Z",
        "active": mine.len(),
        "ready": ready,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    });
    if let Some((reason, message)) = &j.failed {
        let cond = |t: &str| {
            json!({ "type": t, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": "2026-11-21T05:10:00Z", "lastTransitionTime": "2026-11-21T05:10:00Z" })
        };
        v["status"]["conditions"] = json!([cond("FailureTarget"), cond("Failed")]);
        v["status"]["failed"] = json!(mine.len());
        v["status"]["active"] = json!(0);
    }
    v
}

/// Jobs' routes; `None` for every other path.
pub(super) fn route(
    s: &mut State,
    m: &Method,
    seg: &[&str],
    uri: &hyper::Uri,
    body: &Value,
) -> Option<Resp> {
    let ["apis", "batch", "v1", "namespaces", ns, "jobs", rest @ ..] = seg else {
        return None;
    };
    let ns = ns.to_string();
    Some(match (m.as_str(), rest) {
        ("POST", []) => create(s, &ns, body),
        ("GET", []) => {
            let sel = query(uri, "labelSelector").unwrap_or_default();
            let items: Vec<Value> = s
                .jobs
                .iter()
                .filter(|((n, _), j)| {
                    *n == ns && matches(&super::string_map(&j.object["metadata"]["labels"]), &sel)
                })
                .map(|(_, j)| {
                    let mut v = job_json(s, j);
                    let o = v.as_object_mut().unwrap();
                    o.remove("kind");
                    o.remove("apiVersion");
                    v
                })
                .collect();
            reply(
                200,
                &json!({ "kind": "JobList", "apiVersion": "batch/v1", "metadata": { "resourceVersion": s.rv.to_string() }, "items": items }),
            )
        }
        ("GET", [name]) => match s.jobs.get(&(ns.clone(), name.to_string())) {
            Some(j) => reply(200, &job_json(s, j)),
            None => not_found(name),
        },
        ("DELETE", [name]) => delete(s, &ns, name, uri, body),
        _ => job_status(
            405,
            "MethodNotAllowed",
            "",
            "the server does not allow this method on the requested resource".into(),
        ),
    })
}

fn create(s: &mut State, ns: &str, body: &Value) -> Resp {
    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return job_status(422, "Invalid", "", "Job.batch \"\" is invalid: metadata.name: Required value: name or generateName is required".into());
    }
    let key = (ns.to_string(), name.clone());
    if s.jobs.contains_key(&key) {
        return job_status(
            409,
            "AlreadyExists",
            &name,
            format!("jobs.batch \"{name}\" already exists"),
        );
    }
    s.next += 1;
    s.rv += 1;
    let uid = format!("6a1f0c2e-0000-4000-9000-{:012}", s.next);
    let mut v = body.clone();
    v["kind"] = json!("Job");
    v["apiVersion"] = json!("batch/v1");
    let m = &mut v["metadata"];
    m["namespace"] = json!(ns);
    m["uid"] = json!(uid);
    m["resourceVersion"] = json!(s.rv.to_string());
    m["generation"] = json!(1);
    m["creationTimestamp"] = json!("2026-11-21T05:00:00Z");
    // The defaults the API server adds to every Job.
    let controller = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    });
    let spec = &mut v["spec"];
    spec["selector"] = json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
    spec["manualSelector"] = Value::Null;
    spec["suspend"] = json!(false);
    spec["podReplacementPolicy"] = json!("TerminatingOrFailed");
    if spec["completionMode"].is_null() {
        spec["completionMode"] = json!("NonIndexed");
    }
    for (k, x) in controller.as_object().unwrap() {
        spec["template"]["metadata"]["labels"][k] = x.clone();
    }
    v["status"] = json!({});
    let created = v.clone();
    s.jobs.insert(
        key,
        JobObj {
            object: v,
            uid: uid.clone(),
            failed: None,
        },
    );
    start_pods(s, ns, &name, &uid, &created);
    reply(201, &created)
}

/// The Job controller and the kubelet: one pod per index, its process up.
fn start_pods(s: &mut State, ns: &str, job: &str, uid: &str, obj: &Value) {
    let spec = &obj["spec"];
    let n = spec["parallelism"].as_u64().unwrap_or(1) as u32;
    let indexed = spec["completionMode"] == "Indexed";
    let template = &spec["template"];
    let container = template["spec"]["containers"][0].clone();
    let image = container["image"].as_str().unwrap_or("").to_string();
    let ready_at = Instant::now() + s.timing.ready_after;
    for index in 0..n {
        s.next += 1;
        let name = format!("{job}-{index}-{:05x}", s.next % 0xfffff);
        let mut labels = super::string_map(&template["metadata"]["labels"]);
        if indexed {
            labels.insert(
                "batch.kubernetes.io/job-completion-index".into(),
                index.to_string(),
            );
        }
        let port = Arc::new(OnceLock::new());
        let (waiting, process) = if s.unpullable.contains(&image) {
            let why = format!(
                "Back-off pulling image \"{image}\": ErrImagePull: failed to pull and unpack image \"{image}\": not found"
            );
            (Some(("ImagePullBackOff".to_string(), why)), None)
        } else if let Some((program, leading)) = &s.kubelet {
            let child = run_child(program, leading, &name, index, &container, port.clone());
            (None, Some(Process::Child(child)))
        } else {
            let server = run_listener(&name, index, &container, &port);
            (None, Some(Process::Listener(server)))
        };
        s.pods.push(Pod {
            ns: ns.into(),
            uid: format!("00000000-0000-4000-8000-{:012}", s.next),
            name,
            labels,
            owner: job.into(),
            ready_at,
            job: Some(JobPod {
                index,
                job: job.into(),
                job_uid: uid.into(),
                container: container.clone(),
                waiting,
                port,
                _process: process,
            }),
        });
    }
}

/// The container's command as a real process: `program` for the image's
/// binary, listening on a free loopback port instead of the pod's IP. Its
/// port is known when it prints `listening on ADDR`.
fn run_child(
    program: &str,
    leading: &[String],
    pod: &str,
    index: u32,
    container: &Value,
    port: Arc<OnceLock<u16>>,
) -> tokio::process::Child {
    let mut args: Vec<String> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--listen") {
        args[i + 1] = "127.0.0.1:0".into();
    }
    let mut child = tokio::process::Command::new(program)
        .args(leading)
        .args(&args)
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env("HOSTNAME", pod)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("the fake kubelet cannot run {program}: {e}"));
    let stdout = child.stdout.take().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        // Read to the end: a full pipe would stall the process.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.trim().strip_prefix("listening on ")
                && let Some(p) = addr.rsplit(':').next().and_then(|p| p.parse().ok())
            {
                let _ = port.set(p);
            }
        }
    });
    child
}

/// The container's process stood in for by a local HTTP server that
/// answers every request with what it got.
fn run_listener(pod: &str, index: u32, container: &Value, port: &OnceLock<u16>) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let _ = port.set(listener.local_addr().unwrap().port());
    let (pod, command) = (pod.to_string(), command(container));
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (pod, command) = (pod.clone(), command.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (pod, command) = (pod.clone(), command.clone());
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                        let v = json!({ "pod": pod, "index": index, "command": command, "method": method, "path": path, "body": body });
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(v.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Server(task)
}

/// The pod's view for the pods list: the template's container, the Job as
/// owner, Ready or waiting.
pub(super) fn pod_json(p: &Pod, j: &JobPod, with_kind: bool) -> Value {
    let ready = j.ready(p);
    let state = match &j.waiting {
        Some((reason, message)) => {
            json!({ "waiting": { "reason": reason, "message": message } })
        }
        None => json!({ "running": { "startedAt": "2026-11-21T05:00:02Z" } }),
    };
    let cond = |t: &str, ok: bool| json!({ "type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": "2026-11-21T05:00:02Z" });
    let mut v = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": p.name,
            "generateName": format!("{}-{}-", j.job, j.index),
            "namespace": p.ns,
            "uid": p.uid,
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-21T05:00:01Z",
            "labels": p.labels,
            "annotations": { "batch.kubernetes.io/job-completion-index": j.index.to_string() },
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": j.job, "uid": j.job_uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
        },
        "spec": {
            "containers": [j.container],
            "restartPolicy": "Never",
            "hostname": format!("{}-{}", j.job, j.index),
            "subdomain": j.job,
            "nodeName": "10.0.10.21",
        },
        "status": {
            "phase": if j.waiting.is_some() { "Pending" } else { "Running" },
            "conditions": [
                cond("PodReadyToStartContainers", j.waiting.is_none()),
                cond("Initialized", true),
                cond("Ready", ready),
                cond("ContainersReady", ready),
                cond("PodScheduled", true),
            ],
            "hostIP": "10.0.10.21",
            "podIP": "10.244.1.40",
            "containerStatuses": [{
                "name": j.container["name"], "image": j.container["image"],
                "ready": ready, "restartCount": 0, "started": j.waiting.is_none(), "state": state,
            }],
            "qosClass": "Burstable",
        },
    });
    if !with_kind {
        let o = v.as_object_mut().unwrap();
        o.remove("kind");
        o.remove("apiVersion");
    }
    v
}

fn delete(s: &mut State, ns: &str, name: &str, uri: &hyper::Uri, body: &Value) -> Resp {
    let key = (ns.to_string(), name.to_string());
    let Some(j) = s.jobs.get(&key) else {
        return not_found(name);
    };
    if let Some(uid) = body["preconditions"]["uid"].as_str()
        && uid != j.uid
    {
        return job_status(
            409,
            "Conflict",
            name,
            format!(
                "Operation cannot be fulfilled on jobs.batch \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                j.uid
            ),
        );
    }
    let policy = body["propagationPolicy"]
        .as_str()
        .map(str::to_string)
        .or_else(|| query(uri, "propagationPolicy"))
        .unwrap_or_else(|| "Orphan".into());
    let j = s.jobs.remove(&key).unwrap();
    s.rv += 1;
    let mut obj = job_json(s, &j);
    let uid = j.uid.clone();
    match policy.as_str() {
        "Orphan" => {
            for p in s.pods.iter_mut() {
                if p.job.as_ref().is_some_and(|x| x.job_uid == uid) {
                    p.owner = String::new();
                }
            }
        }
        _ => s
            .pods
            .retain(|p| p.job.as_ref().is_none_or(|x| x.job_uid != uid)),
    }
    if policy == "Background" {
        return reply(
            200,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": { "name": name, "group": "batch", "kind": "jobs", "uid": uid },
            }),
        );
    }
    let finalizer = if policy == "Orphan" {
        "orphan"
    } else {
        "foregroundDeletion"
    };
    obj["metadata"]["deletionTimestamp"] = json!("2026-11-21T05:10:00Z");
    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    obj["metadata"]["finalizers"] = json!([finalizer]);
    reply(200, &obj)
}

/// Where a pod-proxy request goes: the pod's process, or the API server's
/// own error when there is none to reach.
pub(super) enum Proxied {
    To {
        port: u16,
        pod: String,
        index: u32,
        path: String,
    },
    Refused(Resp),
}

/// `Some` for `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`.
pub(super) fn proxy_target(s: &State, seg: &[&str]) -> Option<Proxied> {
    let [
        "api",
        "v1",
        "namespaces",
        ns,
        "pods",
        target,
        "proxy",
        rest @ ..,
    ] = seg
    else {
        return None;
    };
    let (name, port) = target.split_once(':').unwrap_or((target, ""));
    let Some(p) = s.pods.iter().find(|p| p.ns == *ns && p.name == name) else {
        return Some(Proxied::Refused(reply(
            404,
            &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("pods \"{name}\" not found"), "reason": "NotFound",
                "details": { "name": name, "kind": "pods" }, "code": 404 }),
        )));
    };
    let unreachable = |why: &str| {
        Proxied::Refused(reply(
            503,
            &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("error trying to reach service: dial tcp 10.244.1.40:{port}: {why}"),
                "reason": "ServiceUnavailable", "code": 503 }),
        ))
    };
    let Some(j) = &p.job else {
        return Some(unreachable("connect: connection refused"));
    };
    match (j.port.get().copied(), container_port(&j.container)) {
        (Some(local), Some(declared)) if port == declared.to_string() => Some(Proxied::To {
            port: local,
            pod: p.name.clone(),
            index: j.index,
            path: format!("/{}", rest.join("/")),
        }),
        _ => Some(unreachable("connect: connection refused")),
    }
}

/// Sends the request on to the pod's process over HTTP and hands back its
/// answer as it is.
pub(super) async fn forward(
    st: Arc<Mutex<State>>,
    to: Proxied,
    parts: &hyper::http::request::Parts,
    query: Option<&str>,
    body: Bytes,
) -> Resp {
    let (port, pod, index, path) = match to {
        Proxied::Refused(r) => return r,
        Proxied::To {
            port,
            pod,
            index,
            path,
        } => (port, pod, index, path),
    };
    st.lock().unwrap().agent_calls.push(AgentCall {
        pod,
        index,
        method: parts.method.to_string(),
        path: path.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let gone = || {
        reply(
            503,
            &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("error trying to reach service: dial tcp 10.244.1.40: connection reset"), "reason": "ServiceUnavailable", "code": 503 }),
        )
    };
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return gone();
    };
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return gone();
    };
    tokio::spawn(conn);
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut req = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(ct) = parts.headers.get("content-type") {
        req = req.header("content-type", ct);
    }
    let Ok(res) = send.send_request(req.body(Full::new(body)).unwrap()).await else {
        return gone();
    };
    let status = res.status();
    let ct = res.headers().get("content-type").cloned();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Response::builder().status(status);
    if let Some(ct) = ct {
        out = out.header("content-type", ct);
    }
    out.body(Full::new(bytes)).unwrap()
}
