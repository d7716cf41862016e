//! Each fault's exact call sequence against the loopback fake API server of
//! drill-testkit (testkit/): method, path, query, content type and body of
//! every request, in order. The fake keeps the objects (answers shaped from
//! the real API bodies in `fixtures/k8s/`) and enforces what the API server
//! does: resourceVersion preconditions (409), a JSON Patch's `test`
//! operations (422), uid preconditions on a delete. Someone else's edit
//! between two of drill's calls is a hook the fake runs as the second call
//! arrives.

use std::collections::BTreeMap;
use std::path::Path;

use drill_testkit::k8s::{FakeCluster, Seen, Timing};
use serde_json::{Value, json};

use super::choose::Amount;
use super::settings::K8sEntry;
use super::*;
use crate::base::clock::Clock;
use crate::targets::journal::RevertPlan;

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

/// A target whose primary region talks to `fake`; secondary has no client.
/// Also a client of the fake's own, for the tests' reads.
fn target(fake: &FakeCluster) -> (K8sTarget, kube::Client) {
    let config = kube::Config::new(fake.url().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let clusters = BTreeMap::from([(
        "primary".to_string(),
        Cluster::new("primary-cluster-context", client.clone()),
    )]);
    let t = K8sTarget::with_clusters(
        settings(),
        vec!["/home/u/.kube/config".into()],
        clusters,
        "run-1",
        Clock::start(),
    );
    (t, client)
}

/// The users' reference deployment (Bookinfo, with its VirtualServices).
async fn bookinfo() -> FakeCluster {
    FakeCluster::bookinfo(Timing::default()).await
}

fn fault(toml_src: &str) -> FaultPlan {
    let f: crate::scenario::model::Fault = toml::from_str(toml_src).expect("fault TOML");
    FaultPlan::resolve(&f)
}

/// An object as the API server holds it now (the test's own read; it is
/// not among the requests a sequence below is compared with).
async fn get(client: &kube::Client, uri: &str) -> Value {
    client
        .request::<Value>(http::Request::get(uri).body(Vec::new()).unwrap())
        .await
        .unwrap()
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

const PODS: &str = "/api/v1/namespaces/bookinfo/pods?&labelSelector=app%3Dreviews";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/bookinfo/deployments?";
const VS: &str = "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/bookinfo/leases?";
const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?";

/// One expected request.
struct Call {
    method: &'static str,
    uri: String,
    body: Option<Value>,
    content_type: Option<&'static str>,
}

fn call(method: &'static str, uri: &str) -> Call {
    Call {
        method,
        uri: uri.to_string(),
        body: None,
        content_type: None,
    }
}

impl Call {
    fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }
    fn content_type(mut self, ct: &'static str) -> Self {
        self.content_type = Some(ct);
        self
    }
}

/// The run's claim on an object, taken before its prior state is read.
fn claim() -> Call {
    call("POST", LEASES)
}

/// The path of the Lease standing for a `kind` (`deployment`,
/// `virtualservice`) object `name` in `bookinfo`: `drill.<kind>.<name>`.
fn lease(kind: &str, name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/bookinfo/leases/drill.{kind}.{name}")
}

/// The run's mark on a claimed object, before the inject changes it: its
/// Lease read and replaced (conditional on the version read) with the
/// `drill.dev/fault` annotation naming the fault. The object itself is not
/// written for it.
fn mark(kind: &str, name: &str) -> [Call; 2] {
    let l = lease(kind, name);
    [call("GET", &l), call("PUT", &format!("{l}?"))]
}

/// A claim released by its fault's successful revert (no other fault of
/// the run needs the object): the Lease read (is it still the run's?) and
/// deleted, conditional on the version read.
fn release(kind: &str, name: &str) -> [Call; 2] {
    let l = lease(kind, name);
    [call("GET", &l), call("DELETE", &format!("{l}?"))]
}

/// The requests the fake saw from the `from`-th on are exactly `want`, in
/// order (method, path and query; body and content type where given).
fn assert_calls(fake: &FakeCluster, from: usize, want: &[Call]) {
    let seen: Vec<Seen> = fake.requests().split_off(from);
    let shown: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect();
    assert_eq!(seen.len(), want.len(), "requests: {shown:#?}");
    for (i, (got, ex)) in seen.iter().zip(want).enumerate() {
        assert_eq!(got.method, ex.method, "request {i}: method; {shown:#?}");
        assert_eq!(got.uri, ex.uri, "request {i}: uri; {shown:#?}");
        if let Some(ct) = ex.content_type {
            assert_eq!(
                got.content_type.as_deref(),
                Some(ct),
                "request {i}: content-type"
            );
        }
        if let Some(want) = &ex.body {
            let body: Value = serde_json::from_str(&got.body).expect("JSON body");
            assert_eq!(&body, want, "request {i} ({} {}): body", ex.method, ex.uri);
        }
    }
}

/// The body of the `i`-th request from the `from`-th on, as JSON.
fn body_of(fake: &FakeCluster, from: usize, i: usize) -> Value {
    serde_json::from_str(&fake.requests()[from + i].body).expect("JSON body")
}

#[tokio::test]
async fn delete_with_count_lists_by_selector_and_deletes_the_seeded_pick_by_uid() {
    let fake = bookinfo().await;
    let (t, client) = target(&fake);
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\ncount = 1");
    let list = get(&client, PODS).await;
    let names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3, "reviews v1, v2 and v3");
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
    let from = fake.requests().len();
    let (inj, plan) = t.plan(&f, 7).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    assert_calls(
        &fake,
        from,
        &[
            call("GET", PODS),
            call(
                "DELETE",
                &format!("/api/v1/namespaces/bookinfo/pods/{}?", pick[0]),
            )
            .body(json!({ "preconditions": { "uid": uid } })),
        ],
    );
    assert!(
        !fake
            .pods("bookinfo", "app=reviews")
            .iter()
            .any(|(name, _)| *name == pick[0]),
        "the pick is gone"
    );
    match (&inj.step, &plan) {
        (Step::DeletePods { pods, .. }, RevertPlan::SelfHealing { what }) => {
            assert_eq!(pods, &vec![(pick[0].clone(), uid)]);
            assert!(what.contains(&pick[0]) && what.contains("primary-cluster-context"));
        }
        other => panic!("unexpected plan {other:?}"),
    }
    // A delete heals by itself: nothing to revert, no request.
    let fake2 = bookinfo().await;
    let (t2, _) = target(&fake2);
    t2.revert(&f, &inj).await.unwrap();
    assert_calls(&fake2, 0, &[]);
}

#[tokio::test]
async fn delete_on_an_unmapped_region_is_refused_without_a_request() {
    let fake = bookinfo().await;
    let (t, _) = target(&fake);
    let f = fault("component = \"reviews\"\nregion = \"staging\"\naction = \"delete\"");
    let err = t.plan(&f, 1).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, TargetError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("not mapped to a kube context"),
        "{err}"
    );
    assert_calls(&fake, 0, &[]);
}

/// The `reviews` Deployments of the down test and their replicas.
const REVIEWS: [(&str, i32); 3] = [("reviews-v1", 2), ("reviews-v2", 2), ("reviews-v3", 1)];

fn deployment_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/bookinfo/deployments/{name}")
}

/// The `reviews` Deployments, and ratings-v1 beside them in the namespace
/// (its pods are not `app=reviews`, so a down of reviews must not touch it).
fn add_reviews_and_ratings(fake: &FakeCluster) {
    for (name, replicas) in REVIEWS {
        let version = name.trim_start_matches("reviews-");
        fake.add_deployment(
            "bookinfo",
            name,
            &[("app", "reviews"), ("version", version)],
            replicas,
        );
    }
    fake.add_deployment(
        "bookinfo",
        "ratings-v1",
        &[("app", "ratings"), ("version", "v1")],
        1,
    );
}

/// The exact requests of a down of reviews: the inject's (how many is the
/// second value), then the revert's.
fn down_calls() -> (Vec<Call>, usize) {
    let dep = deployment_path;
    let mut want = vec![call("GET", PODS), call("GET", DEPLOYS)];
    // Each claimed, then read again under the claim.
    for (name, _) in REVIEWS {
        want.push(claim());
        want.push(call("GET", &dep(name)));
    }
    // Each Lease marked first; then scaled at the version read under the
    // claim (the fake refuses any other with 409). No PATCH on a
    // Deployment: `deployments/scale` is all drill writes.
    for (name, _) in REVIEWS {
        want.extend(mark("deployment", name));
        want.push(call("PUT", &format!("{}/scale?", dep(name))));
    }
    let inject = want.len();
    for (name, _) in REVIEWS {
        want.push(call("GET", &dep(name)));
        want.push(call("PUT", &format!("{}/scale?", dep(name))));
    }
    // Every object restored, then each claim released.
    for (name, _) in REVIEWS {
        want.extend(release("deployment", name));
    }
    (want, inject)
}

/// The journal's revert plan of the down: each Deployment's prior replicas
/// at the version read, and its Lease; the line round-trips exactly.
fn assert_down_journalled(plan: RevertPlan, read: &[String]) {
    let RevertPlan::K8s(r) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(r.context, "primary-cluster-context");
    assert_eq!(r.run_id, "run-1");
    let want: Vec<PriorState> = REVIEWS
        .iter()
        .zip(read)
        .map(|((name, replicas), rv)| PriorState::Deployment {
            namespace: "bookinfo".into(),
            name: name.to_string(),
            replicas: *replicas,
            resource_version: rv.clone(),
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
    let line = serde_json::to_string(&RevertPlan::K8s(r.clone())).unwrap();
    assert!(line.starts_with("{\"kind\":\"k8s\""), "{line}");
    assert_eq!(
        serde_json::from_str::<RevertPlan>(&line).unwrap(),
        RevertPlan::K8s(r)
    );
}

#[tokio::test]
async fn down_scales_every_deployment_running_the_components_pods_and_restores_each() {
    let fake = FakeCluster::start(Timing::default()).await;
    add_reviews_and_ratings(&fake);
    let prior = REVIEWS;
    let (t, client) = target(&fake);
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"down\"\nduration = \"10s\"",
    );
    let mut read = Vec::new();
    for (name, _) in prior {
        read.push(rv(&get(&client, &deployment_path(name)).await));
    }
    let from = fake.requests().len();
    let (inj, plan) = t.plan(&f, 1).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    assert!(
        prior
            .iter()
            .all(|(name, _)| fake.replicas("bookinfo", name) == 0)
    );
    assert_eq!(fake.replicas("bookinfo", "ratings-v1"), 1);
    // The run's mark is each Deployment's Lease, naming the fault.
    for (name, _) in prior {
        assert_eq!(
            fake.lease_annotation(
                "bookinfo",
                &format!("drill.deployment.{name}"),
                "drill.dev/fault"
            ),
            Some(f.name.clone()),
            "{name}"
        );
    }
    let injected = fake.requests().len() - from;
    t.revert(&f, &inj).await.unwrap();
    for (name, replicas) in prior {
        assert_eq!(fake.replicas("bookinfo", name), replicas, "{name}");
        assert_eq!(
            fake.deployment_annotation("bookinfo", name, "drill.dev/run-id"),
            None
        );
    }
    // Each claim went with the revert: no fault of the run needs them.
    assert!(fake.leases().is_empty(), "{:?}", fake.leases());
    let (want, inject) = down_calls();
    assert_eq!(injected, inject, "inject's requests");
    assert_calls(&fake, from, &want);
    // The scale bodies: to 0 at the version read under the claim, then
    // back to each one's prior replicas at the version the revert read.
    let scale = |name: &str, replicas: i32, rv: &str| {
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": { "name": name, "namespace": "bookinfo", "resourceVersion": rv },
            "spec": { "replicas": replicas }
        })
    };
    for (i, ((name, replicas), read)) in prior.iter().zip(&read).enumerate() {
        let down = body_of(&fake, from, 2 + 2 * prior.len() + 3 * i + 2);
        assert_eq!(down, scale(name, 0, read));
        let up = body_of(&fake, from, injected + 2 * i + 1);
        let at = rv(&up);
        assert_eq!(up, scale(name, *replicas, &at));
    }
    assert_down_journalled(plan, &read);
}

#[tokio::test]
async fn a_restore_refuses_to_clobber_replicas_someone_else_set() {
    let fake = FakeCluster::start(Timing::default()).await;
    fake.add_deployment(
        "bookinfo",
        "reviews-v1",
        &[("app", "reviews"), ("version", "v1")],
        1,
    );
    let (t, _) = target(&fake);
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let (inj, _) = t.plan(&f, 1).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    // Someone scales it while the fault is on.
    fake.scale_by_hand("bookinfo", "reviews-v1", 5);
    let from = fake.requests().len();
    let err = t.revert(&f, &inj).await.unwrap_err();
    assert!(matches!(err, TargetError::Drift(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("scaled it to 5") && m.contains("left as it is"),
        "{m}"
    );
    // Read, and nothing written.
    assert_calls(
        &fake,
        from,
        &[call(
            "GET",
            "/apis/apps/v1/namespaces/bookinfo/deployments/reviews-v1",
        )],
    );
    assert_eq!(fake.replicas("bookinfo", "reviews-v1"), 5);
}

#[tokio::test]
async fn latency_writes_the_istio_fault_and_revert_patches_off_only_that_fault() {
    let fake = bookinfo().await;
    let (t, client) = target(&fake);
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"2s\"\npercent = \"50%\"\nduration = \"30s\"",
    );
    let vs = get(&client, VS).await;
    let before = fake.vs("bookinfo", "reviews");
    let delay = json!({ "delay": { "percentage": { "value": 50.0 }, "fixedDelay": "2s" } });
    let mut injected = vs.clone();
    injected["spec"]["http"][0]["fault"] = delay.clone();
    injected["metadata"]["annotations"]["drill.dev/run-id"] = json!("run-1");
    let from = fake.requests().len();
    let (inj, plan) = t.plan(&f, 1).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    assert_eq!(fake.vs("bookinfo", "reviews").0["http"][0]["fault"], delay);
    let claim_name = "drill.virtualservice.reviews";
    assert_eq!(
        fake.lease_annotation("bookinfo", claim_name, "drill.dev/fault"),
        Some(f.name.clone()),
        "the Lease is marked with the fault"
    );
    t.revert(&f, &inj).await.unwrap();
    let [mark_get, mark_put] = mark("virtualservice", "reviews");
    let [release_get, release_delete] = release("virtualservice", "reviews");
    assert_calls(
        &fake,
        from,
        &[
            call("GET", PODS),
            claim(),
            call("GET", VS),
            mark_get,
            mark_put,
            call("PUT", &format!("{VS}?")).body(injected),
            call("GET", VS),
            // Only drill's change, each part tested first.
            call("PATCH", &format!("{VS}?"))
                .content_type("application/json-patch+json")
                .body(json!([
                    { "op": "test", "path": "/spec/http/0/name", "value": "split" },
                    { "op": "test", "path": "/spec/http/0/fault", "value": delay },
                    { "op": "remove", "path": "/spec/http/0/fault" },
                    { "op": "test", "path": "/metadata/annotations/drill.dev~1run-id", "value": "run-1" },
                    { "op": "remove", "path": "/metadata/annotations/drill.dev~1run-id" },
                ])),
            // The only fault on it is reverted: its claim goes now.
            release_get,
            release_delete,
        ],
    );
    // The mark names the fault and the run holds it.
    let marked = body_of(&fake, from, 4);
    assert_eq!(
        marked["metadata"]["annotations"]["drill.dev/fault"],
        json!(f.name)
    );
    assert_eq!(marked["spec"]["holderIdentity"], "run-1");
    // The release is conditional on the version the run read.
    let released = body_of(&fake, from, 9);
    assert!(
        released["preconditions"]["resourceVersion"].is_string(),
        "{released}"
    );
    assert!(fake.leases().is_empty(), "{:?}", fake.leases());
    assert_eq!(
        fake.vs("bookinfo", "reviews"),
        before,
        "spec and annotations as they were"
    );
    let RevertPlan::K8s(r) = plan else {
        panic!("{plan:?}")
    };
    let want = PriorState::VirtualService {
        namespace: "bookinfo".into(),
        name: "reviews".into(),
        resource_version: rv(&vs),
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
    let fake = bookinfo().await;
    let (t, _) = target(&fake);
    let f = fault(
        "component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 503\npercent = \"10%\"",
    );
    // Someone else's edit lands between drill's read and its write: the
    // write carries the version read, and the API server answers 409.
    fake.before("PUT", "/virtualservices/reviews", |c| {
        c.edit_vs("bookinfo", "reviews", |spec| {
            spec["http"][0]["timeout"] = json!("5s")
        });
    });
    let from = fake.requests().len();
    let (inj, _) = t.plan(&f, 1).await.unwrap();
    let err = t.inject(&f, &inj).await.unwrap_err();
    assert!(matches!(err, TargetError::Drift(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("primary-cluster-context") && m.contains("changed by someone else"),
        "{m}"
    );
    let [mark_get, mark_put] = mark("virtualservice", "reviews");
    assert_calls(
        &fake,
        from,
        &[
            call("GET", PODS),
            claim(),
            call("GET", VS),
            // The Lease is marked before the write the API server refuses.
            mark_get,
            mark_put,
            call("PUT", &format!("{VS}?")),
        ],
    );
    let (spec, _) = fake.vs("bookinfo", "reviews");
    assert!(spec["http"][0].get("fault").is_none(), "{spec}");
    assert_eq!(spec["http"][0]["timeout"], "5s", "their edit stands");
}

#[tokio::test]
async fn an_altered_fault_is_reported_with_what_was_expected_and_found_and_not_patched() {
    let fake = bookinfo().await;
    let (t, _) = target(&fake);
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let (inj, _) = t.plan(&f, 1).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    // Someone changes drill's fault while it is on.
    fake.edit_vs("bookinfo", "reviews", |spec| {
        spec["http"][0]["fault"] =
            json!({ "abort": { "percentage": { "value": 100.0 }, "httpStatus": 418 } });
    });
    let from = fake.requests().len();
    let err = t.revert(&f, &inj).await.unwrap_err();
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
    // No PATCH: the fault there is not drill's any more.
    assert_calls(&fake, from, &[call("GET", VS)]);
}

#[tokio::test]
async fn a_patch_refused_by_a_failed_test_reads_the_object_again_before_giving_up() {
    let fake = bookinfo().await;
    let (t, _) = target(&fake);
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let before = fake.vs("bookinfo", "reviews");
    let (inj, _) = t.plan(&f, 1).await.unwrap();
    t.inject(&f, &inj).await.unwrap();
    // Between drill's read and its patch someone else takes the fault off
    // and the annotation too: the patch's tests fail (422) and the second
    // read finds the route as it was.
    fake.before("PATCH", "/virtualservices/reviews", |c| {
        c.edit_vs("bookinfo", "reviews", |spec| {
            spec["http"][0].as_object_mut().unwrap().remove("fault");
        });
        c.annotate_vs("bookinfo", "reviews", "drill.dev/run-id", None);
    });
    let from = fake.requests().len();
    t.revert(&f, &inj).await.unwrap();
    let [release_get, release_delete] = release("virtualservice", "reviews");
    assert_calls(
        &fake,
        from,
        &[
            call("GET", VS),
            call("PATCH", &format!("{VS}?")).content_type("application/json-patch+json"),
            call("GET", VS),
            // Found as it was before the drill: the revert succeeded, so
            // the claim goes.
            release_get,
            release_delete,
        ],
    );
    assert_eq!(fake.vs("bookinfo", "reviews"), before);
    assert!(fake.leases().is_empty(), "{:?}", fake.leases());
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
    let fake = bookinfo().await;
    fake.deny("delete", "pods", "");
    let (t, _) = target(&fake);
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
    let err = t.preflight(&[&f]).await.unwrap_err();
    assert_calls(
        &fake,
        0,
        &[
            call("GET", "/version"),
            call("GET", PODS),
            call("POST", SSAR).body(review("delete")),
            call("POST", SSAR).body(review("list")),
        ],
    );
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
    // No pods at all; listing deployments and the first access review are
    // forbidden.
    let fake = FakeCluster::start(Timing::default()).await;
    fake.fail("GET", "/deployments?", 403, 1);
    fake.fail("POST", "/selfsubjectaccessreviews", 403, 1);
    let (t, _) = target(&fake);
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let err = t.preflight(&[&f]).await.unwrap_err();
    let mut want = vec![
        call("GET", "/version"),
        call("GET", PODS),
        call("GET", DEPLOYS),
    ];
    // The down verbs (list pods; list and get deployments; update
    // deployments/scale, no patch on deployments), then the claim's verbs
    // on Leases: create, get, update, delete.
    for _ in 0..8 {
        want.push(call("POST", SSAR));
    }
    assert_calls(&fake, 0, &want);
    // Exactly these verbs, in the permission set's order (by verb): none
    // writes a Deployment itself.
    let asked: Vec<String> = (3..want.len())
        .map(|i| {
            let a = &body_of(&fake, 0, i)["spec"]["resourceAttributes"];
            let sub = a["subresource"].as_str().unwrap_or("");
            format!(
                "{} {}/{}{}{sub}",
                a["verb"].as_str().unwrap(),
                a["group"].as_str().unwrap(),
                a["resource"].as_str().unwrap(),
                if sub.is_empty() { "" } else { "/" }
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            "create coordination.k8s.io/leases",
            "delete coordination.k8s.io/leases",
            "get apps/deployments",
            "get coordination.k8s.io/leases",
            "list /pods",
            "list apps/deployments",
            "update apps/deployments/scale",
            "update coordination.k8s.io/leases",
        ]
    );
    let m = err.to_string();
    assert!(m.contains("selector `app=reviews` matches no pods"), "{m}");
    assert!(
        m.contains("list deployments in `bookinfo`: forbidden"),
        "{m}"
    );
    assert!(m.contains("forbidden"), "{m}");
}
