//! Each fault's exact call sequence against a mocked API (kube-rs's
//! `tower_test` pattern): method, path, query and body of every request, in
//! order, answered with real API bodies from `fixtures/k8s/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

use super::choose::Amount;
use super::settings::K8sEntry;
use super::*;
use crate::base::clock::Clock;
use crate::targets::journal::RevertPlan;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/k8s/",
            $name
        )))
        .expect("fixture is JSON")
    };
}

/// One expected request and the answer to give.
struct Exchange {
    method: &'static str,
    uri: String,
    body: Option<Value>,
    content_type: Option<&'static str>,
    status: u16,
    reply: Value,
}

fn expect(method: &'static str, uri: &str) -> Exchange {
    Exchange {
        method,
        uri: uri.to_string(),
        body: None,
        content_type: None,
        status: 200,
        reply: json!({}),
    }
}

impl Exchange {
    fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }
    fn content_type(mut self, ct: &'static str) -> Self {
        self.content_type = Some(ct);
        self
    }
    fn reply(mut self, status: u16, v: Value) -> Self {
        self.status = status;
        self.reply = v;
        self
    }
}

/// Answers the script in order, asserting each request; any request after
/// the script is recorded as unexpected (and answered 500).
async fn serve(mut handle: Handle, script: Vec<Exchange>) -> Vec<String> {
    for (i, ex) in script.into_iter().enumerate() {
        let (req, send) = handle
            .next_request()
            .await
            .unwrap_or_else(|| panic!("request {i} ({} {}) never came", ex.method, ex.uri));
        assert_eq!(req.method().as_str(), ex.method, "request {i}: method");
        assert_eq!(req.uri().to_string(), ex.uri, "request {i}: uri");
        if let Some(ct) = ex.content_type {
            assert_eq!(
                req.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some(ct),
                "request {i}: content-type"
            );
        }
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        if let Some(want) = ex.body {
            let got: Value = serde_json::from_slice(&bytes).expect("JSON body");
            assert_eq!(got, want, "request {i} ({} {}): body", ex.method, ex.uri);
        }
        let resp = Response::builder()
            .status(ex.status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&ex.reply).unwrap()))
            .unwrap();
        send.send_response(resp);
    }
    let mut unexpected = Vec::new();
    while let Ok(Some((req, send))) =
        tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await
    {
        unexpected.push(format!("{} {}", req.method(), req.uri()));
        send.send_response(
            Response::builder()
                .status(500)
                .body(Body::from(b"{}".to_vec()))
                .unwrap(),
        );
    }
    unexpected
}

fn settings() -> K8sSettings {
    K8sEntry {
        url: Some("https://bookinfo.example.com".into()),
        contexts: BTreeMap::from([
            ("primary".to_string(), "primary-cluster-context".to_string()),
            ("secondary".to_string(), "secondary-cluster".to_string()),
        ]),
        ..Default::default()
    }
    .resolve(Path::new("/"))
    .unwrap()
}

/// A target whose primary region talks to a mock; secondary has no client.
fn target() -> (K8sTarget, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let clusters = BTreeMap::from([(
        "primary".to_string(),
        Cluster::new("primary-cluster-context", client),
    )]);
    let t = K8sTarget::with_clusters(
        settings(),
        vec!["/home/u/.kube/config".into()],
        clusters,
        "run-1",
        Clock::start(),
    );
    (t, handle)
}

fn fault(toml_src: &str) -> FaultPlan {
    let f: crate::scenario::model::Fault = toml::from_str(toml_src).expect("fault TOML");
    FaultPlan::resolve(&f)
}

const PODS: &str = "/api/v1/namespaces/bookinfo/pods?&labelSelector=app%3Dreviews";
const DEPLOY: &str = "/apis/apps/v1/namespaces/bookinfo/deployments/reviews-v1";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/bookinfo/deployments?";
const VS: &str = "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews";

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/bookinfo/leases?";

/// The run's claim on an object, taken before its prior state is read.
fn claim(kind: &str, name: &str) -> Exchange {
    expect("POST", LEASES).reply(
        201,
        json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": { "name": format!("drill.{kind}.{name}"), "namespace": "bookinfo", "resourceVersion": "1" },
                "spec": { "holderIdentity": "run-1" } }),
    )
}

async fn run<T>(
    handle: Handle,
    script: Vec<Exchange>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let server = tokio::spawn(serve(handle, script));
    let out = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("the calls finished");
    let unexpected = server.await.expect("every request as scripted");
    assert!(unexpected.is_empty(), "unexpected requests: {unexpected:?}");
    out
}

#[tokio::test]
async fn delete_with_count_lists_by_selector_and_deletes_the_seeded_pick_by_uid() {
    let (t, handle) = target();
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\ncount = 1");
    let list = fixture!("pod-list.json");
    let names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    // The pod the seed picks, computed by the pure chooser.
    let pick = choose::choose(&names, Amount::Count(1), 7, "delete-reviews-primary");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == pick[0].as_str())
        .unwrap()
        .clone();
    let uid = item["metadata"]["uid"].as_str().unwrap().to_string();
    let script = vec![
        expect("GET", PODS).reply(200, list),
        expect(
            "DELETE",
            &format!("/api/v1/namespaces/bookinfo/pods/{}?", pick[0]),
        )
        .body(json!({ "preconditions": { "uid": uid } }))
        .reply(200, fixture!("pod.json")),
    ];
    let (inj, plan) = run(handle, script, async {
        let (inj, plan) = t.plan(&f, 7).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        (inj, plan)
    })
    .await;
    match (&inj.step, &plan) {
        (Step::DeletePods { pods, .. }, RevertPlan::SelfHealing { what }) => {
            assert_eq!(pods, &vec![(pick[0].clone(), uid)]);
            assert!(what.contains(&pick[0]) && what.contains("primary-cluster-context"));
        }
        other => panic!("unexpected plan {other:?}"),
    }
    // A delete heals by itself: nothing to revert, no request.
    let (t2, handle2) = target();
    run(handle2, vec![], async {
        t2.revert(&f, &inj).await.unwrap()
    })
    .await;
}

#[tokio::test]
async fn delete_on_an_unmapped_region_is_refused_without_a_request() {
    let (t, handle) = target();
    let f = fault("component = \"reviews\"\nregion = \"staging\"\naction = \"delete\"");
    let err = run(handle, vec![], async { t.plan(&f, 1).await.map(|_| ()) })
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("not mapped to a kube context"),
        "{err}"
    );
}

#[tokio::test]
async fn down_scales_every_deployment_running_the_components_pods_and_restores_each() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"down\"\nduration = \"10s\"",
    );
    let list = fixture!("deployment-list.json");
    let item = |name: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap()
            .clone()
    };
    let scale = |name: &str, replicas: i32, rv: &str| {
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": { "name": name, "namespace": "bookinfo", "resourceVersion": rv },
            "spec": { "replicas": replicas }
        })
    };
    let dep = |name: &str| format!("/apis/apps/v1/namespaces/bookinfo/deployments/{name}");
    let mark = |run: Value| json!({ "metadata": { "annotations": { "drill.dev/run-id": run } } });
    let mut script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", DEPLOYS).reply(200, list.clone()),
    ];
    // ratings-v1 is in the namespace too; its pods are not `app=reviews`.
    let prior = [
        ("reviews-v1", 2, "1001"),
        ("reviews-v2", 2, "1004"),
        ("reviews-v3", 1, "1007"),
    ];
    // Each claimed, then read again under the claim.
    for (name, _, _) in prior {
        script.push(claim("deployment", name));
        script.push(expect("GET", &dep(name)).reply(200, item(name)));
    }
    // Marked first, conditional on the version read; then scaled at the
    // marked version.
    for (name, _, rv) in prior {
        let mut marked = item(name);
        marked["metadata"]["resourceVersion"] = json!(format!("{rv}9"));
        let mut conditional = mark(json!("run-1"));
        conditional["metadata"]["resourceVersion"] = json!(rv);
        script.push(
            expect("PATCH", &format!("{}?", dep(name)))
                .body(conditional)
                .reply(200, marked),
        );
        script.push(
            expect("PUT", &format!("{}/scale?", dep(name)))
                .body(scale(name, 0, &format!("{rv}9")))
                .reply(200, fixture!("scale.json")),
        );
    }
    for (name, replicas, _) in prior {
        let mut faulted = item(name);
        faulted["spec"]["replicas"] = json!(0);
        faulted["metadata"]["resourceVersion"] = json!("1100");
        faulted["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
        script.push(expect("GET", &dep(name)).reply(200, faulted));
        script.push(
            expect("PUT", &format!("{}/scale?", dep(name)))
                .body(scale(name, replicas, "1100"))
                .reply(200, fixture!("scale.json")),
        );
        script.push(
            expect("PATCH", &format!("{}?", dep(name)))
                .body(mark(Value::Null))
                .reply(200, item(name)),
        );
    }
    let plan = run(handle, script, async {
        let (inj, plan) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap();
        plan
    })
    .await;
    let RevertPlan::K8s(r) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(r.context, "primary-cluster-context");
    assert_eq!(r.run_id, "run-1");
    let want: Vec<PriorState> = prior
        .iter()
        .map(|(name, replicas, rv)| PriorState::Deployment {
            namespace: "bookinfo".into(),
            name: name.to_string(),
            replicas: *replicas,
            resource_version: rv.to_string(),
        })
        .collect();
    assert_eq!(r.objects, want);
    let leases: Vec<String> = r.leases.iter().map(|l| l.name.clone()).collect();
    assert_eq!(
        leases,
        [
            "drill.deployment.reviews-v1",
            "drill.deployment.reviews-v2",
            "drill.deployment.reviews-v3"
        ]
    );
    // The journal line round-trips with the exact prior state.
    let line = serde_json::to_string(&RevertPlan::K8s(r.clone())).unwrap();
    assert!(line.starts_with("{\"kind\":\"k8s\""), "{line}");
    assert_eq!(
        serde_json::from_str::<RevertPlan>(&line).unwrap(),
        RevertPlan::K8s(r)
    );
}

#[tokio::test]
async fn a_restore_refuses_to_clobber_replicas_someone_else_set() {
    let (t, handle) = target();
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let deployment = fixture!("deployment.json");
    let mut rescaled = deployment.clone();
    rescaled["spec"]["replicas"] = json!(5);
    rescaled["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    let list = json!({ "kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": [deployment] });
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", DEPLOYS).reply(200, list),
        claim("deployment", "reviews-v1"),
        expect("GET", DEPLOY).reply(200, deployment.clone()),
        expect("PATCH", &format!("{DEPLOY}?")).reply(200, deployment),
        expect("PUT", &format!("{DEPLOY}/scale?")).reply(200, fixture!("scale.json")),
        expect("GET", DEPLOY).reply(200, rescaled),
    ];
    let err = run(handle, script, async {
        let (inj, _) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap_err()
    })
    .await;
    assert!(matches!(err, TargetError::Drift(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("scaled it to 5") && m.contains("left as it is"),
        "{m}"
    );
}

#[tokio::test]
async fn latency_writes_the_istio_fault_and_revert_patches_off_only_that_fault() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"2s\"\npercent = \"50%\"\nduration = \"30s\"",
    );
    let vs = fixture!("virtualservice.json");
    let delay = json!({ "delay": { "percentage": { "value": 50.0 }, "fixedDelay": "2s" } });
    let mut injected = vs.clone();
    injected["spec"]["http"][0]["fault"] = delay.clone();
    injected["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    let mut stored = injected.clone();
    stored["metadata"]["resourceVersion"] = json!("2002");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        claim("virtualservice", "reviews"),
        expect("GET", VS).reply(200, vs.clone()),
        expect("PUT", &format!("{VS}?"))
            .body(injected)
            .reply(200, stored.clone()),
        expect("GET", VS).reply(200, stored),
        // Only drill's change, each part tested first.
        expect("PATCH", &format!("{VS}?"))
            .content_type("application/json-patch+json")
            .body(json!([
                { "op": "test", "path": "/spec/http/0/name", "value": "split" },
                { "op": "test", "path": "/spec/http/0/fault", "value": delay },
                { "op": "remove", "path": "/spec/http/0/fault" },
                { "op": "test", "path": "/metadata/annotations/drill.dev~1run-id", "value": "run-1" },
                { "op": "remove", "path": "/metadata/annotations/drill.dev~1run-id" },
            ]))
            .reply(200, vs.clone()),
    ];
    let plan = run(handle, script, async {
        let (inj, plan) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap();
        plan
    })
    .await;
    let RevertPlan::K8s(r) = plan else {
        panic!("{plan:?}")
    };
    let want = PriorState::VirtualService {
        namespace: "bookinfo".into(),
        name: "reviews".into(),
        resource_version: "2001".into(),
        routes: vec![istio::RouteFault {
            index: 0,
            name: Some("split".into()),
            injected: delay,
            prior: None,
        }],
    };
    assert_eq!(r.objects, vec![want]);
    // The journal line carries it all, for `drill cleanup` after a crash.
    let line = serde_json::to_string(&RevertPlan::K8s(r.clone())).unwrap();
    assert_eq!(
        serde_json::from_str::<RevertPlan>(&line).unwrap(),
        RevertPlan::K8s(r)
    );
}

#[tokio::test]
async fn abort_refuses_to_overwrite_a_virtualservice_changed_since_the_plan() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 503\npercent = \"10%\"",
    );
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        claim("virtualservice", "reviews"),
        expect("GET", VS).reply(200, fixture!("virtualservice.json")),
        expect("PUT", &format!("{VS}?")).reply(409, fixture!("status-409.json")),
    ];
    let err = run(handle, script, async {
        let (inj, _) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap_err()
    })
    .await;
    assert!(matches!(err, TargetError::Drift(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("primary-cluster-context") && m.contains("changed by someone else"),
        "{m}"
    );
}

#[tokio::test]
async fn an_altered_fault_is_reported_with_what_was_expected_and_found_and_not_patched() {
    let (t, handle) = target();
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let vs = fixture!("virtualservice.json");
    let mut edited = vs.clone();
    edited["spec"]["http"][0]["fault"] =
        json!({ "abort": { "percentage": { "value": 100.0 }, "httpStatus": 418 } });
    edited["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    edited["metadata"]["resourceVersion"] = json!("2007");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        claim("virtualservice", "reviews"),
        expect("GET", VS).reply(200, vs),
        expect("PUT", &format!("{VS}?")).reply(200, json!({})),
        expect("GET", VS).reply(200, edited),
        // No PATCH: the fault there is not drill's any more.
    ];
    let err = run(handle, script, async {
        let (inj, _) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap_err()
    })
    .await;
    let m = err.to_string();
    for want in [
        "virtualservice bookinfo/reviews",
        "route `split` at /spec/http/0/fault",
        r#"expected {"abort":{"httpStatus":500,"percentage":{"value":100.0}}}"#,
        r#"found {"abort":{"httpStatus":418"#,
        "before the drill it had no fault",
        "left as it is",
    ] {
        assert!(m.contains(want), "no {want:?} in: {m}");
    }
}

#[tokio::test]
async fn a_patch_refused_by_a_failed_test_reads_the_object_again_before_giving_up() {
    let (t, handle) = target();
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let vs = fixture!("virtualservice.json");
    let mut faulted = vs.clone();
    faulted["spec"]["http"][0]["fault"] =
        json!({ "abort": { "percentage": { "value": 100.0 }, "httpStatus": 500 } });
    faulted["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    // Between drill's read and its patch someone else took the fault off
    // and the annotation too: the second read finds the route as it was.
    let mut cleaned = vs.clone();
    cleaned["metadata"]["resourceVersion"] = json!("2009");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        claim("virtualservice", "reviews"),
        expect("GET", VS).reply(200, vs),
        expect("PUT", &format!("{VS}?")).reply(200, json!({})),
        expect("GET", VS).reply(200, faulted),
        expect("PATCH", &format!("{VS}?")).reply(422, fixture!("status-422.json")),
        expect("GET", VS).reply(200, cleaned),
    ];
    run(handle, script, async {
        let (inj, _) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap()
    })
    .await;
}

#[test]
fn the_revert_patch_finds_a_named_route_moved_and_puts_back_a_prior_fault() {
    let prior = json!({ "abort": { "httpStatus": 418 } });
    let ours = json!({ "delay": { "fixedDelay": "1s" } });
    let routes = [istio::RouteFault {
        index: 0,
        name: Some("split".into()),
        injected: ours.clone(),
        prior: Some(prior.clone()),
    }];
    // Someone put a new route in front: `split` is now second.
    let http = [
        json!({ "name": "new", "route": [] }),
        json!({ "name": "split", "fault": ours.clone() }),
    ];
    let p = restore::revert_patch(&http, &routes, true, 2, "run-1");
    assert!(p.problems.is_empty(), "{p:?}");
    assert_eq!(
        &p.ops[..3],
        &[
            json!({ "op": "test", "path": "/spec/http/1/name", "value": "split" }),
            json!({ "op": "test", "path": "/spec/http/1/fault", "value": ours }),
            json!({ "op": "replace", "path": "/spec/http/1/fault", "value": prior }),
        ]
    );
    // Already back: nothing to do, not even the annotation if it is gone.
    let back = [json!({ "name": "split", "fault": prior })];
    assert_eq!(
        restore::revert_patch(&back, &routes, false, 0, "run-1"),
        restore::RevertPatch::default()
    );
    // The route is gone: reported, the annotation kept (the journal stays open).
    let gone = restore::revert_patch(&[], &routes, true, 1, "run-1");
    assert!(gone.ops.is_empty(), "{gone:?}");
    assert!(gone.problems[0].contains("route `split` is no longer in spec.http"));
}

#[test]
fn a_run_annotation_that_is_the_only_one_takes_the_map_with_it() {
    let ours = json!({ "abort": { "httpStatus": 503 } });
    let routes = [istio::RouteFault {
        index: 0,
        name: None,
        injected: ours.clone(),
        prior: None,
    }];
    let http = [json!({ "route": [], "fault": ours })];
    // drill's annotation alone: the object had none before, so none after.
    let p = restore::revert_patch(&http, &routes, true, 1, "run-1");
    assert_eq!(
        p.ops.last().unwrap(),
        &json!({ "op": "remove", "path": "/metadata/annotations" })
    );
    assert_eq!(p.undone, 1);
    // Beside someone else's: only drill's key goes.
    let p = restore::revert_patch(&http, &routes, true, 2, "run-1");
    assert_eq!(
        p.ops.last().unwrap(),
        &json!({ "op": "remove", "path": "/metadata/annotations/drill.dev~1run-id" })
    );
}

#[test]
fn a_journal_entry_from_before_surgical_reverts_still_reverts_its_route() {
    // As drill wrote it when it kept whole specs.
    let line = r#"{"object":"virtual-service","namespace":"bookinfo","name":"reviews","resource_version":"2001","spec":{"hosts":["reviews"],"http":[{"name":"split","route":[]},{"name":"canary","route":[]}]},"injected":{"hosts":["reviews"],"http":[{"name":"split","route":[]},{"name":"canary","route":[],"fault":{"abort":{"httpStatus":503}}}]}}"#;
    let o: PriorState = serde_json::from_str(line).unwrap();
    assert_eq!(
        o,
        PriorState::VirtualService {
            namespace: "bookinfo".into(),
            name: "reviews".into(),
            resource_version: "2001".into(),
            routes: vec![istio::RouteFault {
                index: 1,
                name: Some("canary".into()),
                injected: json!({ "abort": { "httpStatus": 503 } }),
                prior: None,
            }],
        }
    );
}

#[test]
fn unnamed_routes_shifted_by_an_insert_still_lose_every_fault_of_drills() {
    let ours = json!({ "abort": { "httpStatus": 503 } });
    let routes: Vec<istio::RouteFault> = (0..2)
        .map(|index| istio::RouteFault {
            index,
            name: None,
            injected: ours.clone(),
            prior: None,
        })
        .collect();
    // Someone put an unnamed route of theirs in front of both.
    let http = [
        json!({ "route": [ { "destination": { "host": "new" } } ] }),
        json!({ "route": [ { "destination": { "host": "a" } } ], "fault": ours.clone() }),
        json!({ "route": [ { "destination": { "host": "b" } } ], "fault": ours.clone() }),
    ];
    let p = restore::revert_patch(&http, &routes, false, 0, "run-1");
    assert!(p.problems.is_empty(), "{p:?}");
    let removed: Vec<&Value> = p
        .ops
        .iter()
        .filter(|o| o["op"] == "remove")
        .map(|o| &o["path"])
        .collect();
    assert_eq!(
        removed,
        [&json!("/spec/http/1/fault"), &json!("/spec/http/2/fault")]
    );
}

#[tokio::test]
async fn preflight_asks_a_selfsubjectaccessreview_per_verb_and_reports_the_denied_one() {
    let (t, handle) = target();
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"");
    let review = |verb: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": { "resourceAttributes": {
                "group": "", "namespace": "bookinfo", "resource": "pods", "verb": verb
            } }
        })
    };
    const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?";
    let script = vec![
        expect("GET", "/version").reply(200, fixture!("version.json")),
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("POST", SSAR)
            .body(review("delete"))
            .reply(201, fixture!("ssar-denied.json")),
        expect("POST", SSAR)
            .body(review("list"))
            .reply(201, fixture!("ssar-allowed.json")),
    ];
    let err = run(handle, script, async {
        t.preflight(&[&f]).await.unwrap_err()
    })
    .await;
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("`primary-cluster-context` may not `delete pods` in namespace `bookinfo`"),
        "{m}"
    );
    assert!(!m.contains("`list pods`"), "{m}");
}

#[tokio::test]
async fn preflight_reports_an_unreachable_or_forbidden_api_in_the_contexts_words() {
    let (t, handle) = target();
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let script = vec![
        expect("GET", "/version").reply(200, fixture!("version.json")),
        expect("GET", PODS).reply(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        expect("GET", DEPLOYS).reply(403, fixture!("status-403.json")),
        expect(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
        )
        .reply(403, fixture!("status-403.json")),
        expect(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
        )
        .reply(201, fixture!("ssar-allowed.json")),
        expect(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
        )
        .reply(201, fixture!("ssar-allowed.json")),
        expect(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
        )
        .reply(201, fixture!("ssar-allowed.json")),
        expect(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
        )
        .reply(201, fixture!("ssar-allowed.json")),
    ];
    // The claim's verbs on Leases: create, get, update, delete.
    let mut script = script;
    for _ in 0..4 {
        script.push(
            expect(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?",
            )
            .reply(201, fixture!("ssar-allowed.json")),
        );
    }
    let err = run(handle, script, async {
        t.preflight(&[&f]).await.unwrap_err()
    })
    .await;
    let m = err.to_string();
    assert!(m.contains("selector `app=reviews` matches no pods"), "{m}");
    assert!(
        m.contains("list deployments in `bookinfo`: forbidden"),
        "{m}"
    );
    assert!(m.contains("forbidden"), "{m}");
}
