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
use crate::clock::Clock;
use crate::fault::journal::RevertPlan;

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
    status: u16,
    reply: Value,
}

fn expect(method: &'static str, uri: &str) -> Exchange {
    Exchange {
        method,
        uri: uri.to_string(),
        body: None,
        status: 200,
        reply: json!({}),
    }
}

impl Exchange {
    fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
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
const VS: &str = "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews";

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
async fn down_scales_to_zero_and_restores_the_prior_replicas_with_version_preconditions() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"down\"\nduration = \"10s\"",
    );
    let deployment = fixture!("deployment.json");
    let mut faulted = deployment.clone();
    faulted["spec"]["replicas"] = json!(0);
    faulted["metadata"]["resourceVersion"] = json!("1003");
    faulted["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    let scale = |replicas: i32, rv: &str| {
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": { "name": "reviews-v1", "namespace": "bookinfo", "resourceVersion": rv },
            "spec": { "replicas": replicas }
        })
    };
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", DEPLOY).reply(200, deployment.clone()),
        // inject
        expect("PUT", &format!("{DEPLOY}/scale?"))
            .body(scale(0, "1001"))
            .reply(200, fixture!("scale.json")),
        expect("PATCH", &format!("{DEPLOY}?"))
            .body(json!({ "metadata": { "annotations": { "drill.dev/run-id": "run-1" } } }))
            .reply(200, faulted.clone()),
        // revert
        expect("GET", DEPLOY).reply(200, faulted.clone()),
        expect("PUT", &format!("{DEPLOY}/scale?"))
            .body(scale(2, "1003"))
            .reply(200, fixture!("scale.json")),
        expect("PATCH", &format!("{DEPLOY}?"))
            .body(json!({ "metadata": { "annotations": { "drill.dev/run-id": null } } }))
            .reply(200, deployment),
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
    assert_eq!(r.context, "primary-cluster-context");
    assert_eq!(r.run_id, "run-1");
    assert_eq!(
        r.objects,
        vec![PriorState::Deployment {
            namespace: "bookinfo".into(),
            name: "reviews-v1".into(),
            replicas: 2,
            resource_version: "1001".into(),
        }]
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
    let mut deployment = fixture!("deployment.json");
    let mut rescaled = deployment.clone();
    rescaled["spec"]["replicas"] = json!(5);
    rescaled["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    deployment["metadata"]["resourceVersion"] = json!("1001");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", DEPLOY).reply(200, deployment),
        expect("PUT", &format!("{DEPLOY}/scale?")).reply(200, fixture!("scale.json")),
        expect("PATCH", &format!("{DEPLOY}?")).reply(200, json!({})),
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
async fn latency_writes_the_istio_fault_and_revert_puts_back_the_exact_prior_spec() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"2s\"\npercent = \"50%\"\nduration = \"30s\"",
    );
    let vs = fixture!("virtualservice.json");
    let mut injected = vs.clone();
    injected["spec"]["http"][0]["fault"] =
        json!({ "delay": { "percentage": { "value": 50.0 }, "fixedDelay": "2s" } });
    injected["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    let mut stored = injected.clone();
    stored["metadata"]["resourceVersion"] = json!("2002");
    let mut restored = vs.clone();
    restored["metadata"]["resourceVersion"] = json!("2002");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", VS).reply(200, vs.clone()),
        expect("PUT", &format!("{VS}?"))
            .body(injected)
            .reply(200, stored.clone()),
        expect("GET", VS).reply(200, stored),
        expect("PUT", &format!("{VS}?"))
            .body(restored)
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
    match &r.objects[..] {
        [
            PriorState::VirtualService {
                spec,
                resource_version,
                ..
            },
        ] => {
            assert_eq!(spec, &vs["spec"]);
            assert_eq!(resource_version, "2001");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn abort_refuses_to_overwrite_a_virtualservice_changed_since_the_plan() {
    let (t, handle) = target();
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 503\npercent = \"10%\"",
    );
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
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
async fn a_virtualservice_edited_during_the_fault_is_reported_not_reverted() {
    let (t, handle) = target();
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let vs = fixture!("virtualservice.json");
    let mut edited = vs.clone();
    edited["spec"]["http"][0]["timeout"] = json!("3s");
    edited["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    edited["metadata"]["resourceVersion"] = json!("2007");
    let script = vec![
        expect("GET", PODS).reply(200, fixture!("pod-list.json")),
        expect("GET", VS).reply(200, vs),
        expect("PUT", &format!("{VS}?")).reply(200, json!({})),
        expect("GET", VS).reply(200, edited),
        // No PUT: the other person's change stands.
    ];
    let err = run(handle, script, async {
        let (inj, _) = t.plan(&f, 1).await.unwrap();
        t.inject(&f, &inj).await.unwrap();
        t.revert(&f, &inj).await.unwrap_err()
    })
    .await;
    let m = err.to_string();
    assert!(
        m.contains("changed by someone else") && m.contains("left as it is"),
        "{m}"
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
        expect("GET", DEPLOY).reply(404, fixture!("status-404.json")),
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
    ];
    let err = run(handle, script, async {
        t.preflight(&[&f]).await.unwrap_err()
    })
    .await;
    let m = err.to_string();
    assert!(m.contains("selector `app=reviews` matches no pods"), "{m}");
    assert!(
        m.contains("deployment `bookinfo/reviews-v1`: not found"),
        "{m}"
    );
    assert!(m.contains("forbidden"), "{m}");
}
