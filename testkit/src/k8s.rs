//! A loopback fake Kubernetes API server for the kubernetes target's tests:
//! plain HTTP on 127.0.0.1, objects kept in memory (pods, Deployments with
//! their scale subresource, Istio VirtualServices), answers shaped from the
//! real API bodies in `fixtures/k8s/`. PUT replaces (409 on a stale
//! resourceVersion), a merge PATCH merges, a JSON Patch (RFC 6902) applies
//! all or nothing (422 `Invalid` when a `test` fails, as the real API server
//! answers). A Deployment's missing pods come back
//! after a delay and turn Ready after another, as a ReplicaSet's would.
//! Every request is recorded, so a test can say "nothing was touched".
//! The bodies are read from the repository's `fixtures/k8s/`.

pub mod jobs;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// A request the fake saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub body: String,
    /// The `content-type` header, if any (a JSON Patch says
    /// `application/json-patch+json`).
    pub content_type: Option<String>,
}

impl Seen {
    /// Whether the request changes state (an access review does not).
    pub fn mutating(&self) -> bool {
        match self.method.as_str() {
            "GET" | "HEAD" => false,
            "POST" => !self.uri.contains("selfsubjectaccessreviews"),
            _ => true,
        }
    }
}

/// How fast the fake's "ReplicaSets" bring pods back.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub recreate_after: Duration,
    pub ready_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            recreate_after: Duration::from_millis(200),
            ready_after: Duration::from_millis(200),
        }
    }
}

struct Pod {
    ns: String,
    name: String,
    uid: String,
    labels: BTreeMap<String, String>,
    owner: String,
    ready_at: Instant,
    /// Set on the pods of a Job: what the fake kubelet runs for it.
    job: Option<jobs::JobPod>,
}

struct Deploy {
    ns: String,
    name: String,
    labels: BTreeMap<String, String>,
    replicas: i32,
    rv: u64,
    annotations: BTreeMap<String, String>,
    short_since: Option<Instant>,
}

struct Vs {
    ns: String,
    name: String,
    rv: u64,
    annotations: BTreeMap<String, String>,
    /// Whether `metadata.annotations` is there at all: a custom resource
    /// keeps an empty map written to it (`annotations: {}`), so a revert
    /// that leaves one is not byte-equal to an object that had none.
    has_annotations: bool,
    spec: Value,
}

/// A coordination.k8s.io/v1 Lease, kept as the body last written.
struct LeaseObj {
    rv: u64,
    uid: String,
    body: Value,
}

/// Something a test does to the cluster as a request arrives, before it is
/// answered (someone else's edit landing between two of drill's calls).
struct Hook {
    method: String,
    path_contains: String,
    run: Box<dyn FnOnce(&FakeCluster) + Send>,
}

struct Failure {
    method: String,
    path_contains: String,
    status: u16,
    remaining: u32,
}

#[derive(Default)]
struct State {
    pods: Vec<Pod>,
    deployments: BTreeMap<(String, String), Deploy>,
    vss: BTreeMap<(String, String), Vs>,
    leases: BTreeMap<(String, String), LeaseObj>,
    rv: u64,
    next: u64,
    seen: Vec<Seen>,
    denied: Vec<(String, String, String)>,
    failures: Vec<Failure>,
    hooks: Vec<Hook>,
    /// The fake's own address, for the hooks' [`FakeCluster`].
    addr: Option<SocketAddr>,
    timing: Timing,
    jobs: BTreeMap<(String, String), jobs::JobObj>,
    /// Images the fake kubelet cannot pull (their pods stay in ImagePullBackOff).
    unpullable: Vec<String>,
    /// Requests the pods' processes answered, through the pod proxy.
    agent_calls: Vec<jobs::AgentCall>,
    /// The program (and its leading arguments) the kubelet runs for a
    /// container's command; `None`: an in-process listener stands in.
    kubelet: Option<(String, Vec<String>)>,
}

/// One fake cluster (one kube context's API server).
#[derive(Clone)]
pub struct FakeCluster {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/k8s")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("fixture JSON")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl FakeCluster {
    /// Starts an empty fake on a free loopback port.
    pub async fn start(timing: Timing) -> FakeCluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            timing,
            addr: Some(addr),
            ..Default::default()
        }));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            while let Some(st) = weak.upgrade() {
                reconcile(&mut st.lock().unwrap());
                drop(st);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        FakeCluster { addr, state }
    }

    /// A fake holding the users' reference deployment: Istio's gateways and
    /// istiod in `istio-system`, Bookinfo in `bookinfo` with its VirtualServices.
    pub async fn bookinfo(timing: Timing) -> FakeCluster {
        let c = FakeCluster::start(timing).await;
        c.add_deployment(
            "istio-system",
            "istio-ingressgateway",
            &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
            2,
        );
        c.add_deployment(
            "istio-system",
            "istio-eastwestgateway",
            &[
                ("app", "istio-eastwestgateway"),
                ("istio", "eastwestgateway"),
            ],
            1,
        );
        c.add_deployment("istio-system", "istiod", &[("app", "istiod")], 1);
        for svc in ["productpage", "details", "ratings"] {
            c.add_deployment(
                "bookinfo",
                &format!("{svc}-v1"),
                &[("app", svc), ("version", "v1")],
                1,
            );
        }
        for v in ["v1", "v2", "v3"] {
            c.add_deployment(
                "bookinfo",
                &format!("reviews-{v}"),
                &[("app", "reviews"), ("version", v)],
                1,
            );
        }
        let reviews = fixture("virtualservice.json");
        c.add_virtual_service(
            "bookinfo",
            "reviews",
            reviews["spec"].clone(),
            &[("team", "reviews")],
        );
        for svc in ["productpage", "details", "ratings"] {
            let spec = json!({ "hosts": [svc], "http": [ { "route": [ { "destination": { "host": svc, "subset": "v1" } } ] } ] });
            c.add_virtual_service("bookinfo", svc, spec, &[]);
        }
        c
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Deployment and its pods, all Ready now.
    pub fn add_deployment(&self, ns: &str, name: &str, pod_labels: &[(&str, &str)], replicas: i32) {
        let mut s = self.lock();
        s.rv += 1;
        let d = Deploy {
            ns: ns.into(),
            name: name.into(),
            labels: labels(pod_labels),
            replicas,
            rv: s.rv,
            annotations: labels(&[("deployment.kubernetes.io/revision", "1")]),
            short_since: None,
        };
        let now = Instant::now();
        for _ in 0..replicas {
            new_pod(&mut s, &d, now);
        }
        s.deployments.insert((ns.into(), name.into()), d);
    }

    /// Pods no Deployment runs (a StatefulSet's, say): nothing recreates
    /// them and nothing scales them.
    pub fn add_bare_pods(&self, ns: &str, owner: &str, pod_labels: &[(&str, &str)], n: usize) {
        let mut s = self.lock();
        let d = Deploy {
            ns: ns.into(),
            name: owner.into(),
            labels: labels(pod_labels),
            replicas: 0,
            rv: 0,
            annotations: BTreeMap::new(),
            short_since: None,
        };
        for _ in 0..n {
            new_pod(&mut s, &d, Instant::now());
        }
    }

    pub fn add_virtual_service(
        &self,
        ns: &str,
        name: &str,
        spec: Value,
        annotations: &[(&str, &str)],
    ) {
        let mut s = self.lock();
        s.rv += 1;
        let vs = Vs {
            ns: ns.into(),
            name: name.into(),
            rv: s.rv,
            annotations: labels(annotations),
            has_annotations: !annotations.is_empty(),
            spec,
        };
        s.vss.insert((ns.into(), name.into()), vs);
    }

    /// Access reviews for this verb on this resource answer "not allowed".
    pub fn deny(&self, verb: &str, resource: &str, subresource: &str) {
        self.lock()
            .denied
            .push((verb.into(), resource.into(), subresource.into()));
    }

    /// The next `times` requests with this method whose path contains
    /// `path_contains` fail with `status` (403, 404 or 409, real bodies).
    pub fn fail(&self, method: &str, path_contains: &str, status: u16, times: u32) {
        self.lock().failures.push(Failure {
            method: method.into(),
            path_contains: path_contains.into(),
            status,
            remaining: times,
        });
    }

    /// Runs `edit` once, when the next request with this method whose path
    /// contains `path_contains` arrives, before the fake answers it (and
    /// before [`FakeCluster::fail`] is consulted).
    pub fn before(
        &self,
        method: &str,
        path_contains: &str,
        edit: impl FnOnce(&FakeCluster) + Send + 'static,
    ) {
        self.lock().hooks.push(Hook {
            method: method.into(),
            path_contains: path_contains.into(),
            run: Box::new(edit),
        });
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    pub fn mutations(&self) -> Vec<Seen> {
        self.requests().into_iter().filter(Seen::mutating).collect()
    }

    /// Every Deployment's replicas and annotations, every VirtualService's
    /// spec and annotations: what a fault must leave as it found it.
    pub fn objects(&self) -> BTreeMap<String, Value> {
        let s = self.lock();
        let mut m = BTreeMap::new();
        for d in s.deployments.values() {
            m.insert(
                format!("deployment/{}/{}", d.ns, d.name),
                json!({ "replicas": d.replicas, "annotations": d.annotations }),
            );
        }
        for v in s.vss.values() {
            m.insert(
                format!("virtualservice/{}/{}", v.ns, v.name),
                json!({
                    "spec": v.spec,
                    "annotations": if v.has_annotations { json!(v.annotations) } else { Value::Null },
                }),
            );
        }
        m
    }

    /// Every Lease: `namespace/name` → its holder.
    pub fn leases(&self) -> BTreeMap<String, String> {
        self.lock()
            .leases
            .iter()
            .map(|((ns, n), l)| {
                let holder = l.body["spec"]["holderIdentity"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (format!("{ns}/{n}"), holder)
            })
            .collect()
    }

    /// One annotation of a Lease (`None`: no such Lease or annotation).
    pub fn lease_annotation(&self, ns: &str, name: &str, key: &str) -> Option<String> {
        self.lock()
            .leases
            .get(&(ns.to_string(), name.to_string()))
            .and_then(|l| {
                l.body["metadata"]["annotations"][key]
                    .as_str()
                    .map(str::to_string)
            })
    }

    /// (name, ready) of the pods matching an equality selector.
    pub fn pods(&self, ns: &str, selector: &str) -> Vec<(String, bool)> {
        let s = self.lock();
        let now = Instant::now();
        s.pods
            .iter()
            .filter(|p| p.ns == ns && matches(&p.labels, selector))
            .map(|p| (p.name.clone(), p.ready_at <= now))
            .collect()
    }

    pub fn replicas(&self, ns: &str, name: &str) -> i32 {
        self.lock().deployments[&(ns.to_string(), name.to_string())].replicas
    }

    pub fn deployment_annotation(&self, ns: &str, name: &str, key: &str) -> Option<String> {
        self.lock().deployments[&(ns.to_string(), name.to_string())]
            .annotations
            .get(key)
            .cloned()
    }

    pub fn vs(&self, ns: &str, name: &str) -> (Value, BTreeMap<String, String>) {
        let s = self.lock();
        let v = &s.vss[&(ns.to_string(), name.to_string())];
        (v.spec.clone(), v.annotations.clone())
    }

    /// Someone else edits a VirtualService's spec (a new resourceVersion).
    pub fn edit_vs(&self, ns: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut s = self.lock();
        s.rv += 1;
        let rv = s.rv;
        let v = s.vss.get_mut(&(ns.to_string(), name.to_string())).unwrap();
        edit(&mut v.spec);
        v.rv = rv;
    }

    /// Someone else sets (`Some`) or removes an annotation of a VirtualService.
    pub fn annotate_vs(&self, ns: &str, name: &str, key: &str, value: Option<&str>) {
        let mut s = self.lock();
        s.rv += 1;
        let rv = s.rv;
        let v = s.vss.get_mut(&(ns.to_string(), name.to_string())).unwrap();
        match value {
            Some(x) => v.annotations.insert(key.into(), x.into()),
            None => v.annotations.remove(key),
        };
        // As `kubectl annotate` leaves it: no empty map.
        v.has_annotations = !v.annotations.is_empty();
        v.rv = rv;
    }

    /// Whether anything is impaired: an Istio fault on a route, a
    /// Deployment at zero or short of Ready pods.
    pub fn impaired(&self) -> bool {
        let s = self.lock();
        let now = Instant::now();
        let faulted = s.vss.values().any(|v| {
            v.spec["http"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r.get("fault").is_some()))
        });
        faulted
            || s.deployments.values().any(|d| {
                let ready = s
                    .pods
                    .iter()
                    .filter(|p| p.ns == d.ns && p.owner == d.name && p.ready_at <= now)
                    .count();
                d.replicas == 0 || ready < d.replicas as usize
            })
    }

    /// Someone else sets an annotation of a Deployment.
    pub fn annotate_deployment_by_hand(&self, ns: &str, name: &str, key: &str, value: &str) {
        let mut s = self.lock();
        s.rv += 1;
        let rv = s.rv;
        let d = s
            .deployments
            .get_mut(&(ns.to_string(), name.to_string()))
            .unwrap();
        d.annotations.insert(key.into(), value.into());
        d.rv = rv;
    }

    /// Someone else scales a Deployment.
    pub fn scale_by_hand(&self, ns: &str, name: &str, replicas: i32) {
        let mut s = self.lock();
        s.rv += 1;
        let rv = s.rv;
        let d = s
            .deployments
            .get_mut(&(ns.to_string(), name.to_string()))
            .unwrap();
        d.replicas = replicas;
        d.rv = rv;
    }
}

fn new_pod(s: &mut State, d: &Deploy, ready_at: Instant) {
    s.next += 1;
    s.rv += 1;
    s.pods.push(Pod {
        ns: d.ns.clone(),
        name: format!("{}-5b5d6db9bb-{:05}", d.name, s.next),
        uid: format!("00000000-0000-4000-8000-{:012}", s.next),
        labels: d.labels.clone(),
        owner: d.name.clone(),
        ready_at,
        job: None,
    });
}

/// The ReplicaSets' work: remove extra pods at once, bring missing ones
/// back after `recreate_after`, Ready `ready_after` later.
fn reconcile(s: &mut State) {
    let now = Instant::now();
    let timing = s.timing;
    let keys: Vec<_> = s.deployments.keys().cloned().collect();
    for k in keys {
        let (ns, name, replicas) = {
            let d = &s.deployments[&k];
            (d.ns.clone(), d.name.clone(), d.replicas.max(0) as usize)
        };
        let owned: Vec<usize> = (0..s.pods.len())
            .filter(|&i| s.pods[i].ns == ns && s.pods[i].owner == name)
            .collect();
        if owned.len() > replicas {
            let extra: Vec<usize> = owned[replicas..].to_vec();
            for i in extra.into_iter().rev() {
                s.pods.remove(i);
            }
            s.deployments.get_mut(&k).unwrap().short_since = None;
        } else if owned.len() < replicas {
            let since = *s
                .deployments
                .get_mut(&k)
                .unwrap()
                .short_since
                .get_or_insert(now);
            if now.duration_since(since) >= timing.recreate_after {
                let d = s.deployments.remove(&k).unwrap();
                for _ in owned.len()..replicas {
                    new_pod(s, &d, now + timing.ready_after);
                }
                s.deployments.insert(k.clone(), d);
                s.deployments.get_mut(&k).unwrap().short_since = None;
            }
        } else {
            s.deployments.get_mut(&k).unwrap().short_since = None;
        }
    }
}

/// Equality selectors (`k=v`, `k==v`, comma-separated), as the target sends.
fn matches(l: &BTreeMap<String, String>, selector: &str) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|t| {
        let (k, v) = t
            .split_once("==")
            .or_else(|| t.split_once('='))
            .unwrap_or((t, ""));
        l.get(k.trim()).is_some_and(|x| x == v.trim())
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(uri: &hyper::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

type Resp = Response<Full<Bytes>>;

fn reply(status: u16, v: &Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(v).unwrap())))
        .unwrap()
}

fn status(code: u16, kind: &str, name: &str) -> Resp {
    let mut v = match code {
        403 | 404 | 409 | 422 => fixture(&format!("status-{code}.json")),
        _ => {
            json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "bad request", "reason": "BadRequest", "code": code })
        }
    };
    if code != 422 {
        // The real 422 of a failed JSON Patch names nothing.
        v["details"]["name"] = json!(name);
        v["details"]["kind"] = json!(kind);
    }
    match code {
        404 => v["message"] = json!(format!("{kind} \"{name}\" not found")),
        409 => {
            v["message"] = json!(format!(
                "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ))
        }
        _ => {}
    }
    reply(code, &v)
}

fn pod_json(p: &Pod, with_kind: bool) -> Value {
    let mut v = fixture("pod.json");
    if !with_kind {
        let o = v.as_object_mut().unwrap();
        o.remove("kind");
        o.remove("apiVersion");
    }
    let m = &mut v["metadata"];
    m["name"] = json!(p.name);
    m["namespace"] = json!(p.ns);
    m["uid"] = json!(p.uid);
    m["generateName"] = json!(format!("{}-5b5d6db9bb-", p.owner));
    m["labels"] = json!(p.labels);
    m["ownerReferences"][0]["name"] = json!(format!("{}-5b5d6db9bb", p.owner));
    let ready = if p.ready_at <= Instant::now() {
        "True"
    } else {
        "False"
    };
    for c in v["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            c["status"] = json!(ready);
        }
    }
    v
}

fn deployment_json(d: &Deploy, s: &State) -> Value {
    let mut v = fixture("deployment.json");
    let ready = s
        .pods
        .iter()
        .filter(|p| p.ns == d.ns && p.owner == d.name && p.ready_at <= Instant::now())
        .count();
    let m = &mut v["metadata"];
    m["name"] = json!(d.name);
    m["namespace"] = json!(d.ns);
    m["resourceVersion"] = json!(d.rv.to_string());
    m["labels"] = json!(d.labels);
    m["annotations"] = json!(d.annotations);
    v["spec"]["replicas"] = json!(d.replicas);
    v["spec"]["selector"]["matchLabels"] = json!(d.labels);
    v["spec"]["template"]["metadata"]["labels"] = json!(d.labels);
    v["status"]["replicas"] = json!(d.replicas);
    v["status"]["readyReplicas"] = json!(ready);
    v["status"]["availableReplicas"] = json!(ready);
    v
}

fn scale_json(d: &Deploy) -> Value {
    let mut v = fixture("scale.json");
    v["metadata"]["name"] = json!(d.name);
    v["metadata"]["namespace"] = json!(d.ns);
    v["metadata"]["resourceVersion"] = json!(d.rv.to_string());
    v["spec"]["replicas"] = json!(d.replicas);
    v["status"]["replicas"] = json!(d.replicas);
    let sel: Vec<String> = d.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v["status"]["selector"] = json!(sel.join(","));
    v
}

fn vs_json(x: &Vs) -> Value {
    let mut v = fixture("virtualservice.json");
    v["metadata"]["name"] = json!(x.name);
    v["metadata"]["namespace"] = json!(x.ns);
    v["metadata"]["resourceVersion"] = json!(x.rv.to_string());
    if !x.has_annotations {
        v["metadata"].as_object_mut().unwrap().remove("annotations");
    } else {
        v["metadata"]["annotations"] = json!(x.annotations);
    }
    v["spec"] = x.spec.clone();
    v
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(st: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    run_hook(&st, &parts);
    // The pod proxy answers after a round trip to the pod's process, so the
    // state's lock is released before it.
    match answer(&st, &parts, &bytes) {
        Answer::Now(r) => Ok(r),
        Answer::Proxy(to) => Ok(jobs::forward(st, to, &parts, parts.uri.query(), bytes).await),
    }
}

/// Runs the first hook this request matches, with the state's lock released.
fn run_hook(st: &Arc<Mutex<State>>, parts: &hyper::http::request::Parts) {
    let path_q = parts
        .uri
        .path_and_query()
        .map_or(String::new(), |p| p.to_string());
    let (hook, addr) = {
        let mut s = st.lock().unwrap();
        let at = s
            .hooks
            .iter()
            .position(|h| h.method == parts.method.as_str() && path_q.contains(&h.path_contains));
        (at.map(|i| s.hooks.remove(i)), s.addr)
    };
    if let (Some(h), Some(addr)) = (hook, addr) {
        (h.run)(&FakeCluster {
            addr,
            state: st.clone(),
        });
    }
}

enum Answer {
    Now(Resp),
    Proxy(jobs::Proxied),
}

fn answer(st: &Mutex<State>, parts: &hyper::http::request::Parts, bytes: &Bytes) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let uri = parts.uri.clone();
    let path_q = uri
        .path_and_query()
        .map_or(String::new(), |p| p.to_string());
    let mut s = st.lock().unwrap();
    s.seen.push(Seen {
        method: parts.method.to_string(),
        uri: path_q.clone(),
        body: text.clone(),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if let Some(f) = s.failures.iter_mut().find(|f| {
        f.remaining > 0 && f.method == parts.method.as_str() && path_q.contains(&f.path_contains)
    }) {
        f.remaining -= 1;
        let code = f.status;
        return Answer::Now(status(
            code,
            "object",
            uri.path().rsplit('/').next().unwrap_or(""),
        ));
    }
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let seg: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let m = parts.method.clone();
    if let Some(to) = jobs::proxy_target(&s, &seg) {
        return Answer::Proxy(to);
    }
    if let Some(r) = jobs::route(&mut s, &m, &seg, &uri, &body) {
        return Answer::Now(r);
    }
    if m == Method::PATCH
        && parts
            .headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == b"application/json-patch+json")
    {
        return Answer::Now(json_patch_route(&mut s, &seg, &body));
    }
    Answer::Now(route(&mut s, &m, &seg, &uri, &body))
}

fn route(s: &mut State, m: &Method, seg: &[&str], uri: &hyper::Uri, body: &Value) -> Resp {
    match (m.as_str(), seg) {
        ("GET", ["version"]) => reply(200, &fixture("version.json")),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            let sel = query(uri, "labelSelector").unwrap_or_default();
            let items: Vec<Value> = s
                .pods
                .iter()
                .filter(|p| p.ns == *ns && matches(&p.labels, &sel))
                .map(|p| match &p.job {
                    Some(j) => jobs::pod_json(p, j, false),
                    None => pod_json(p, false),
                })
                .collect();
            reply(
                200,
                &json!({ "kind": "PodList", "apiVersion": "v1", "metadata": { "resourceVersion": s.rv.to_string() }, "items": items }),
            )
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let Some(i) = s.pods.iter().position(|p| p.ns == *ns && p.name == *name) else {
                return status(404, "pods", name);
            };
            if let Some(uid) = body["preconditions"]["uid"].as_str()
                && uid != s.pods[i].uid
            {
                return status(409, "pods", name);
            }
            s.rv += 1;
            let p = s.pods.remove(i);
            let mut v = pod_json(&p, true);
            v["metadata"]["deletionTimestamp"] = json!("2026-11-21T05:00:00Z");
            v["metadata"]["deletionGracePeriodSeconds"] = json!(30);
            reply(200, &v)
        }
        ("GET", ["apis", "apps", "v1", "namespaces", ns, "deployments"]) => {
            let items: Vec<Value> = s
                .deployments
                .values()
                .filter(|d| d.ns == *ns)
                .map(|d| {
                    let mut v = deployment_json(d, s);
                    let o = v.as_object_mut().unwrap();
                    o.remove("kind");
                    o.remove("apiVersion");
                    v
                })
                .collect();
            reply(
                200,
                &json!({ "kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": { "resourceVersion": s.rv.to_string() }, "items": items }),
            )
        }
        (
            _,
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                ns,
                "deployments",
                name,
                rest @ ..,
            ],
        ) => {
            let key = (ns.to_string(), name.to_string());
            if !s.deployments.contains_key(&key) {
                return status(404, "deployments.apps", name);
            }
            match (m.as_str(), rest) {
                ("GET", []) => reply(200, &deployment_json(&s.deployments[&key], s)),
                ("PATCH", []) => {
                    // A resourceVersion in the patch is a precondition.
                    if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
                        && rv != s.deployments[&key].rv.to_string()
                    {
                        return status(409, "deployments.apps", name);
                    }
                    s.rv += 1;
                    let rv = s.rv;
                    let d = s.deployments.get_mut(&key).unwrap();
                    if let Some(a) = body["metadata"]["annotations"].as_object() {
                        for (k, v) in a {
                            match v.as_str() {
                                Some(x) => {
                                    d.annotations.insert(k.clone(), x.to_string());
                                }
                                None => {
                                    d.annotations.remove(k);
                                }
                            }
                        }
                    }
                    d.rv = rv;
                    reply(200, &deployment_json(&s.deployments[&key], s))
                }
                ("GET", ["scale"]) => reply(200, &scale_json(&s.deployments[&key])),
                ("PUT", ["scale"]) => {
                    let cur = s.deployments[&key].rv.to_string();
                    if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
                        && rv != cur
                    {
                        return status(409, "deployments.apps", name);
                    }
                    s.rv += 1;
                    let rv = s.rv;
                    let d = s.deployments.get_mut(&key).unwrap();
                    d.replicas = body["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
                    d.rv = rv;
                    reply(200, &scale_json(d))
                }
                _ => status(404, "deployments.apps", name),
            }
        }
        (
            _,
            [
                "apis",
                "networking.istio.io",
                "v1",
                "namespaces",
                ns,
                "virtualservices",
                name,
            ],
        ) => {
            let key = (ns.to_string(), name.to_string());
            if !s.vss.contains_key(&key) {
                return status(404, "virtualservices.networking.istio.io", name);
            }
            match m.as_str() {
                "GET" => reply(200, &vs_json(&s.vss[&key])),
                "PUT" => {
                    let cur = s.vss[&key].rv.to_string();
                    if body["metadata"]["resourceVersion"].as_str() != Some(cur.as_str()) {
                        return status(409, "virtualservices.networking.istio.io", name);
                    }
                    s.rv += 1;
                    let rv = s.rv;
                    let v = s.vss.get_mut(&key).unwrap();
                    v.spec = body["spec"].clone();
                    v.annotations = string_map(&body["metadata"]["annotations"]);
                    v.has_annotations = body["metadata"].get("annotations").is_some();
                    v.rv = rv;
                    reply(200, &vs_json(v))
                }
                _ => status(404, "virtualservices.networking.istio.io", name),
            }
        }
        (
            _,
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
                rest @ ..,
            ],
        ) => lease_route(s, m.as_str(), ns, rest, body),
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            let ra = &body["spec"]["resourceAttributes"];
            let field = |k: &str| ra[k].as_str().unwrap_or("").to_string();
            let key = (field("verb"), field("resource"), field("subresource"));
            let allowed = !s.denied.contains(&key);
            let mut v = fixture(if allowed {
                "ssar-allowed.json"
            } else {
                "ssar-denied.json"
            });
            v["spec"] = body["spec"].clone();
            reply(201, &v)
        }
        _ => status(404, "path", uri.path()),
    }
}

fn lease_json(l: &LeaseObj) -> Value {
    let mut v = l.body.clone();
    v["apiVersion"] = json!("coordination.k8s.io/v1");
    v["kind"] = json!("Lease");
    v["metadata"]["resourceVersion"] = json!(l.rv.to_string());
    v["metadata"]["uid"] = json!(l.uid);
    v
}

/// Leases as the API server keeps them: a create fails with 409 when the
/// Lease exists, a replace or delete with a stale resourceVersion with 409.
fn lease_route(s: &mut State, m: &str, ns: &str, rest: &[&str], body: &Value) -> Resp {
    const KIND: &str = "leases.coordination.k8s.io";
    match (m, rest) {
        ("POST", []) => {
            let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
            let key = (ns.to_string(), name.clone());
            if s.leases.contains_key(&key) {
                return status(409, KIND, &name);
            }
            s.rv += 1;
            s.next += 1;
            let l = LeaseObj {
                rv: s.rv,
                uid: format!("lease-{}", s.next),
                body: body.clone(),
            };
            let v = lease_json(&l);
            s.leases.insert(key, l);
            reply(201, &v)
        }
        (_, [name]) => {
            let key = (ns.to_string(), name.to_string());
            let Some(cur) = s.leases.get(&key) else {
                return status(404, KIND, name);
            };
            let cur_rv = cur.rv.to_string();
            match m {
                "GET" => reply(200, &lease_json(cur)),
                "PUT" => {
                    if body["metadata"]["resourceVersion"].as_str() != Some(cur_rv.as_str()) {
                        return status(409, KIND, name);
                    }
                    s.rv += 1;
                    let rv = s.rv;
                    let l = s.leases.get_mut(&key).unwrap();
                    l.rv = rv;
                    l.body = body.clone();
                    reply(200, &lease_json(l))
                }
                "DELETE" => {
                    if let Some(rv) = body["preconditions"]["resourceVersion"].as_str()
                        && rv != cur_rv
                    {
                        return status(409, KIND, name);
                    }
                    s.rv += 1;
                    let l = s.leases.remove(&key).unwrap();
                    reply(200, &lease_json(&l))
                }
                _ => status(405, KIND, name),
            }
        }
        _ => status(404, "path", ns),
    }
}

/// A JSON Patch on a VirtualService: applied to the whole object, all or
/// nothing, as the real API server does.
fn json_patch_route(s: &mut State, seg: &[&str], body: &Value) -> Resp {
    let [
        "apis",
        "networking.istio.io",
        "v1",
        "namespaces",
        ns,
        "virtualservices",
        name,
    ] = seg
    else {
        return status(415, "path", &seg.join("/"));
    };
    let key = (ns.to_string(), name.to_string());
    let Some(vs) = s.vss.get(&key) else {
        return status(404, "virtualservices.networking.istio.io", name);
    };
    let Ok(ops) = serde_json::from_value::<json_patch::Patch>(body.clone()) else {
        return status(400, "virtualservices.networking.istio.io", name);
    };
    let mut doc = vs_json(vs);
    if json_patch::patch(&mut doc, &ops).is_err() {
        return status(422, "virtualservices.networking.istio.io", name);
    }
    s.rv += 1;
    let rv = s.rv;
    let v = s.vss.get_mut(&key).unwrap();
    v.spec = doc["spec"].clone();
    v.annotations = string_map(&doc["metadata"]["annotations"]);
    v.has_annotations = doc["metadata"].get("annotations").is_some();
    v.rv = rv;
    reply(200, &vs_json(v))
}

/// A stand-in for the global entry point in front of `cluster`: 503 while
/// anything of it is impaired (a route carries an Istio fault, a Deployment
/// has fewer Ready pods than it wants, or none at all), 200 otherwise. Lets
/// checks and abort conditions see the faults.
pub fn serve_while_healthy(cluster: FakeCluster) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let c = cluster.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let code = if c.impaired() { 503 } else { 200 };
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(code)
                                .body(Full::new(Bytes::from_static(b"entry")))
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
    addr
}

/// A stand-in for the global entry point: answers 200 to everything.
pub async fn serve_ok() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}
