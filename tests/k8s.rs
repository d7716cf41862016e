//! The kubernetes target against loopback fake API servers: two clusters
//! the target names and a third (the kubeconfig's current-context) it does
//! not. Drives `drill::targets::k8s` directly: preflight refusals that touch
//! nothing, each fault's inject and exact restore, revert after an API error
//! mid-drill, and `drill cleanup`'s journal path after a simulated crash.

// The action × way-out matrix (uses this binary's `Pair`, so it lives here, not in drill-testkit).
#[path = "k8s/matrix.rs"]
mod matrix;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use drill::base::clock::Clock;
use drill::fault::cleanup::{self, Scope};
use drill::scenario::plan::FaultPlan;
use drill::targets::journal::{self, Entry, Journal, RevertPlan};
use drill::targets::k8s::{K8sInjection, K8sSettings, K8sTarget, PriorState, Step};
use drill::targets::{TargetDef, TargetError, Targets};
use drill_testkit::k8s as k8s_support;
use k8s_support::{FakeCluster, Timing};
use matrix::{ACTIONS, WAYS_OUT, WayOut};
use serde_json::json;
use tempfile::TempDir;

const RUN: &str = "20261121T050000Z-k8s";

static INIT: Once = Once::new();

/// Journals go to a state directory of this test binary's own. Every test
/// calls this first, so the variable is set before any test reads it.
fn init() {
    INIT.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        // SAFETY: runs once, before any test of this binary goes on (the
        // others wait in `call_once`), so nothing reads the environment meanwhile.
        unsafe { std::env::set_var("DRILL_STATE_DIR", dir) };
    });
}

/// Two fake regions and an unnamed third cluster, and a targets file for them.
struct Pair {
    primary: FakeCluster,
    secondary: FakeCluster,
    other: FakeCluster,
    dir: TempDir,
}

impl Pair {
    async fn start(extra_toml: &str) -> Pair {
        Pair::start_with_entry(extra_toml, "http://127.0.0.1:9").await
    }

    async fn start_with_entry(extra_toml: &str, entry: &str) -> Pair {
        let entry = entry.to_string();
        Pair::start_with(extra_toml, Timing::default(), move |_| entry).await
    }

    /// Clusters with this timing, and the entry URL made once they are up.
    async fn start_with(
        extra_toml: &str,
        timing: Timing,
        entry: impl FnOnce(&FakeCluster) -> String,
    ) -> Pair {
        init();
        let primary = FakeCluster::bookinfo(timing).await;
        let secondary = FakeCluster::bookinfo(timing).await;
        let other = FakeCluster::bookinfo(timing).await;
        let entry = entry(&primary);
        let dir = tempfile::tempdir().unwrap();
        let kc = std::fs::read_to_string(fixture("kubeconfig.yaml"))
            .unwrap()
            .replace("{{PRIMARY}}", &primary.addr.port().to_string())
            .replace("{{SECONDARY}}", &secondary.addr.port().to_string())
            .replace("{{OTHER}}", &other.addr.port().to_string());
        std::fs::write(dir.path().join("kubeconfig.yaml"), kc).unwrap();
        std::fs::write(
            dir.path().join("drill.toml"),
            format!(
                r#"
[targets.two-regions]
kind = "kubernetes"
url = "{entry}"
kubeconfig = "kubeconfig.yaml"
contexts = {{ primary = "primary-cluster-context", secondary = "secondary-cluster" }}
ingress = {{ primary = "http://127.0.0.1:10", secondary = "http://127.0.0.1:11" }}
{extra_toml}
"#
            ),
        )
        .unwrap();
        Pair {
            primary,
            secondary,
            other,
            dir,
        }
    }

    fn targets(&self) -> Result<Targets, drill::base::diag::Diagnostics> {
        Targets::load(Some(&self.dir.path().join("drill.toml")))
    }

    fn settings(&self) -> K8sSettings {
        match self.targets().unwrap().get("two-regions") {
            Some(TargetDef::Kubernetes { settings, .. }) => settings.clone(),
            other => panic!("not a kubernetes target: {other:?}"),
        }
    }

    async fn connect(&self) -> K8sTarget {
        let mut t = K8sTarget::connect(&self.settings(), RUN, Clock::start())
            .await
            .unwrap();
        t.set_poll(Duration::from_millis(50));
        t
    }

    /// Nothing was changed on any cluster, and the unnamed one heard nothing.
    fn assert_untouched(&self) {
        assert_eq!(
            self.primary.mutations().len(),
            0,
            "{:?}",
            self.primary.mutations()
        );
        assert_eq!(
            self.secondary.mutations().len(),
            0,
            "{:?}",
            self.secondary.mutations()
        );
        self.assert_other_unheard();
    }

    fn assert_other_unheard(&self) {
        assert!(
            self.other.requests().is_empty(),
            "the context the target does not name was contacted: {:?}",
            self.other.requests()
        );
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/k8s")
        .join(name)
}

fn fault(src: &str) -> FaultPlan {
    let f: drill::scenario::model::Fault = toml::from_str(src).expect("fault TOML");
    FaultPlan::resolve(&f)
}

async fn inject(t: &K8sTarget, f: &FaultPlan) -> (K8sInjection, RevertPlan) {
    let (inj, plan) = t.plan(f, 42).await.unwrap();
    t.inject(f, &inj).await.unwrap();
    (inj, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_passes_for_every_fault_kind_and_changes_nothing() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let faults = [
        fault(
            "component = \"ingress-gateway\"\nregion = \"primary\"\naction = \"delete\"\ncount = 1",
        ),
        fault("component = \"istiod\"\nregion = \"primary\"\naction = \"down\""),
        fault(
            "component = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"1s\"",
        ),
        fault(
            "component = \"productpage\"\nregion = \"secondary\"\naction = \"abort\"\nstatus = 503",
        ),
        fault("region = \"primary\"\naction = \"region-outage\""),
    ];
    let refs: Vec<&FaultPlan> = faults.iter().collect();
    t.preflight(&refs).await.unwrap();
    p.assert_untouched();
    // It asked: reachability and access reviews on both named contexts.
    for c in [&p.primary, &p.secondary] {
        let seen = c.requests();
        assert!(seen.iter().any(|r| r.uri == "/version"));
        assert!(
            seen.iter()
                .any(|r| r.uri.contains("selfsubjectaccessreviews"))
        );
    }
    let reviews: Vec<String> = p
        .primary
        .requests()
        .into_iter()
        .filter(|r| r.uri.contains("selfsubjectaccessreviews"))
        .map(|r| r.body)
        .collect();
    for want in [
        r#""resource":"pods","verb":"delete""#,
        r#""resource":"deployments","subresource":"scale","verb":"update""#,
        r#""resource":"virtualservices","verb":"update""#,
    ] {
        assert!(
            reviews.iter().any(|b| b.contains(want)),
            "no access review with {want}: {reviews:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_selector_that_matches_no_pods_and_changes_nothing() {
    let p =
        Pair::start("[targets.two-regions.components.reviews]\nselector = \"app=reviewz\"\n").await;
    let t = p.connect().await;
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"");
    let err = t.preflight(&[&f]).await.unwrap_err();
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("selector `app=reviewz` matches no pods"),
        "{err}"
    );
    // Only the claim was taken (the run's end releases it).
    let writes: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .filter(|m| !m.uri.contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(p.secondary.mutations().is_empty());
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_everything_selector_is_refused_when_the_targets_file_loads() {
    for sel in ["", "!canary"] {
        let p = Pair::start(&format!(
            "[targets.two-regions.components.reviews]\nselector = \"{sel}\"\n"
        ))
        .await;
        let err = p.targets().unwrap_err().to_string();
        assert!(
            err.contains("component `reviews`") && err.contains("match"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_the_target_does_not_name_are_never_used() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    // The kubeconfig has `other-cluster` (its current-context); the target
    // maps no region to it, so a fault cannot reach it.
    let f = fault("component = \"reviews\"\nregion = \"other\"\naction = \"delete\"");
    let err = t.preflight(&[&f]).await.unwrap_err();
    assert!(
        err.to_string().contains("not mapped to a kube context"),
        "{err}"
    );
    let err = t.plan(&f, 1).await.unwrap_err();
    assert!(matches!(err, TargetError::Invalid(_)), "{err:?}");
    p.assert_untouched();

    // A context missing from the kubeconfig is refused before any request.
    let mut s = p.settings();
    s.contexts
        .insert("secondary".into(), "secondary-clustr".into());
    let err = K8sTarget::connect(&s, RUN, Clock::start())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("`secondary-clustr` is not in the kubeconfig"),
        "{err}"
    );
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_forbidden_verb_and_changes_nothing() {
    let p = Pair::start("").await;
    p.primary.deny("update", "deployments", "scale");
    let t = p.connect().await;
    let f = fault("component = \"istiod\"\nregion = \"primary\"\naction = \"down\"");
    let err = t.preflight(&[&f]).await.unwrap_err();
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("`primary-cluster-context` may not `update deployments/scale.apps` in namespace `istio-system`"),
        "{m}"
    );
    p.assert_untouched();
    // The same fault in the other region is allowed there.
    let f2 = fault("component = \"istiod\"\nregion = \"secondary\"\naction = \"down\"");
    t.preflight(&[&f2]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_an_unreachable_context() {
    let p = Pair::start("").await;
    let mut s = p.settings();
    // Point the primary context at a port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let kc = std::fs::read_to_string(p.dir.path().join("kubeconfig.yaml"))
        .unwrap()
        .replace(&p.primary.addr.port().to_string(), &port.to_string());
    let path = p.dir.path().join("dead-kubeconfig.yaml");
    std::fs::write(&path, kc).unwrap();
    s.kubeconfig = Some(path);
    let t = K8sTarget::connect(&s, RUN, Clock::start()).await.unwrap();
    let f = fault("component = \"reviews\"\nregion = \"secondary\"\naction = \"delete\"");
    let err = t.preflight(&[&f]).await.unwrap_err();
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("region `primary`") && m.contains("unreachable"),
        "{m}"
    );
    p.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_takes_the_seeded_count_and_heals_when_replacements_are_ready() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\ncount = 2");
    // The same seed picks the same pods on identical clusters.
    let picked = |inj: &K8sInjection| match &inj.step {
        Step::DeletePods { pods, .. } => pods.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let f2 = fault(
        "component = \"reviews\"\nregion = \"secondary\"\naction = \"delete\"\ncount = 2\nname = \"delete-reviews-primary\"",
    );
    let (on_secondary, _) = t.plan(&f2, 42).await.unwrap();
    let (inj, plan) = inject(&t, &f).await;
    let gone = picked(&inj);
    assert_eq!(gone, picked(&on_secondary));
    assert_eq!(gone.len(), 2);
    assert!(matches!(plan, RevertPlan::SelfHealing { .. }), "{plan:?}");
    let deletes: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert_eq!(p.primary.mutations().len(), 2);
    assert!(p.secondary.mutations().is_empty());
    let now: Vec<String> = p
        .primary
        .pods("bookinfo", "app=reviews")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(gone.iter().all(|g| !now.contains(g)), "{now:?}");
    assert_eq!(t.healed_at(&inj), None, "not healed at once");
    t.wait_ready(&inj, Duration::from_secs(10)).await.unwrap();
    let after = p.primary.pods("bookinfo", "app=reviews");
    assert_eq!(
        after.iter().filter(|(_, ready)| *ready).count(),
        3,
        "{after:?}"
    );
    // The runner's polling finds the same.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.healed_at(&inj).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never healed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.revert(&f, &inj).await.unwrap();
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_scales_to_zero_marks_the_deployment_and_restores_it_exactly() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let before = p.primary.objects();
    let f = fault("component = \"ingress-gateway\"\nregion = \"primary\"\naction = \"down\"");
    let (inj, _) = inject(&t, &f).await;
    assert_eq!(
        p.primary.replicas("istio-system", "istio-ingressgateway"),
        0
    );
    // The run's mark is its Lease, marked with the fault; the Deployment
    // itself is never written (only its scale subresource).
    assert_eq!(
        p.primary
            .lease_annotation(
                "istio-system",
                "drill.deployment.istio-ingressgateway",
                "drill.dev/fault"
            )
            .as_deref(),
        Some(f.name.as_str())
    );
    assert_eq!(
        p.primary
            .deployment_annotation("istio-system", "istio-ingressgateway", "drill.dev/run-id"),
        None
    );
    assert!(
        !p.primary
            .mutations()
            .iter()
            .any(|m| m.uri.contains("/deployments/") && !m.uri.contains("/scale")),
        "a Deployment was written beyond its scale: {:?}",
        p.primary.mutations()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !p
        .primary
        .pods("istio-system", "app=istio-ingressgateway")
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pods never went away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before);
    t.wait_ready(&inj, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        p.primary
            .pods("istio-system", "app=istio-ingressgateway")
            .len(),
        2
    );
    assert!(p.secondary.mutations().is_empty());
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_abort_write_istio_faults_and_restore_the_exact_spec() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let before = p.secondary.objects();
    let lat = fault(
        "component = \"reviews\"\nregion = \"secondary\"\naction = \"latency\"\ndelay = \"1500ms\"\npercent = \"25%\"",
    );
    let (inj, _) = inject(&t, &lat).await;
    let (spec, ann) = p.secondary.vs("bookinfo", "reviews");
    assert_eq!(
        spec["http"][0]["fault"],
        json!({ "delay": { "percentage": { "value": 25.0 }, "fixedDelay": "1.5s" } })
    );
    assert_eq!(ann.get("drill.dev/run-id").map(String::as_str), Some(RUN));
    assert_eq!(ann.get("team").map(String::as_str), Some("reviews"));
    t.revert(&lat, &inj).await.unwrap();
    assert_eq!(p.secondary.objects(), before);

    let abort = fault(
        "component = \"productpage\"\nregion = \"secondary\"\naction = \"abort\"\nstatus = 503",
    );
    let (inj, _) = inject(&t, &abort).await;
    let (spec, _) = p.secondary.vs("bookinfo", "productpage");
    assert_eq!(
        spec["http"][0]["fault"],
        json!({ "abort": { "percentage": { "value": 100.0 }, "httpStatus": 503 } })
    );
    t.revert(&abort, &inj).await.unwrap();
    assert_eq!(p.secondary.objects(), before);
    assert!(p.primary.mutations().is_empty());
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_outage_takes_every_deployment_of_every_component_of_one_region_and_brings_it_back()
{
    let p = Pair::start("").await;
    let t = p.connect().await;
    let (before_p, before_s) = (p.primary.objects(), p.secondary.objects());
    let f = fault("region = \"primary\"\naction = \"region-outage\"");
    t.preflight(&[&f]).await.unwrap();
    let (inj, plan) = inject(&t, &f).await;
    let RevertPlan::K8s(r) = &plan else {
        panic!("{plan:?}")
    };
    let all = [
        ("istio-system", "istio-ingressgateway"),
        ("istio-system", "istio-eastwestgateway"),
        ("istio-system", "istiod"),
        ("bookinfo", "productpage-v1"),
        ("bookinfo", "details-v1"),
        ("bookinfo", "ratings-v1"),
        ("bookinfo", "reviews-v1"),
        ("bookinfo", "reviews-v2"),
        ("bookinfo", "reviews-v3"),
    ];
    assert_eq!(r.objects.len(), all.len(), "{r:?}");
    for (ns, d) in all {
        assert_eq!(p.primary.replicas(ns, d), 0, "{ns}/{d}");
    }
    // No reviews version keeps serving in the lost region.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !p.primary.pods("bookinfo", "app=reviews").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "reviews still up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.secondary.objects(), before_s);
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before_p);
    t.wait_ready(&inj, Duration::from_secs(10)).await.unwrap();
    assert_eq!(p.primary.pods("bookinfo", "app=reviews").len(), 3);
    assert!(p.secondary.mutations().is_empty());
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_on_a_component_served_by_several_deployments_scales_each_and_restores_each() {
    let p = Pair::start("").await;
    p.primary.scale_by_hand("bookinfo", "reviews-v2", 3);
    let t = p.connect().await;
    let before = p.primary.objects();
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let (inj, plan) = inject(&t, &f).await;
    let RevertPlan::K8s(r) = &plan else {
        panic!("{plan:?}")
    };
    let journalled: Vec<(String, i32)> = r
        .objects
        .iter()
        .map(|o| match o {
            PriorState::Deployment { name, replicas, .. } => (name.clone(), *replicas),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        journalled,
        [
            ("reviews-v1".to_string(), 1),
            ("reviews-v2".to_string(), 3),
            ("reviews-v3".to_string(), 1)
        ]
    );
    for v in ["v1", "v2", "v3"] {
        assert_eq!(p.primary.replicas("bookinfo", &format!("reviews-{v}")), 0);
    }
    assert_eq!(
        p.primary.replicas("bookinfo", "ratings-v1"),
        1,
        "not reviews"
    );
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before, "each back to its own replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_no_deployment_runs_are_refused_before_anything_is_scaled() {
    // A component whose pods a StatefulSet runs: nothing to scale at all.
    let p = Pair::start(
        "[targets.two-regions.components.cache]\nnamespace = \"bookinfo\"\nselector = \"app=cache\"\ndeployment = \"cache\"\n",
    )
    .await;
    p.primary
        .add_bare_pods("bookinfo", "cache", &[("app", "cache")], 2);
    // And reviews with a v4 that runs outside any Deployment.
    p.primary.add_bare_pods(
        "bookinfo",
        "reviews-v4",
        &[("app", "reviews"), ("version", "v4")],
        1,
    );
    let t = p.connect().await;
    let cache = fault("component = \"cache\"\nregion = \"primary\"\naction = \"down\"");
    let reviews = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"");
    let outage = fault("region = \"primary\"\naction = \"region-outage\"");
    let err = t.preflight(&[&cache]).await.unwrap_err();
    assert!(matches!(err, TargetError::Preflight(_)), "{err:?}");
    let m = err.to_string();
    assert!(
        m.contains("component `cache` in `primary`: selector `app=cache` matches pods")
            && m.contains("no Deployment runs them"),
        "{m}"
    );
    let m = t.preflight(&[&reviews]).await.unwrap_err().to_string();
    assert!(
        m.contains("pods reviews-v4-") && m.contains("would keep serving"),
        "{m}"
    );
    let m = t.preflight(&[&outage]).await.unwrap_err().to_string();
    assert!(m.contains("`cache`") && m.contains("reviews-v4-"), "{m}");
    p.assert_untouched();

    // Through the binary: exit 3, nothing injected.
    let scenario = p.dir.path().join("cache-down.toml");
    std::fs::write(
        &scenario,
        "description = \"cache down\"\n\n[load]\npath = \"/\"\nrate = 10\n\n[phases]\nwarmup = \"100ms\"\nbaseline = \"300ms\"\nrecovery = \"300ms\"\n\n[recovery]\nwindow = \"100ms\"\nratio = \"99%\"\nhold = \"100ms\"\n\n[[faults]]\ncomponent = \"cache\"\nregion = \"primary\"\naction = \"down\"\nduration = \"1s\"\n",
    )
    .unwrap();
    let state = p.dir.path().join("state");
    let out = matrix::drill_run(&p, &state, &scenario)
        .output()
        .await
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(shown.contains("no Deployment runs them"), "{shown}");
    p.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inject_refused_midway_is_reverted_completely() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let before = p.primary.objects();
    // Deployments go down in component order; istiod's scale is forbidden.
    p.primary.fail("PUT", "deployments/istiod/scale", 403, 1);
    let f = fault("region = \"primary\"\naction = \"region-outage\"");
    let (inj, _) = t.plan(&f, 1).await.unwrap();
    let err = t.inject(&f, &inj).await.unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("forbidden") && m.contains("istio-system/istiod"),
        "{m}"
    );
    assert_eq!(
        p.primary.replicas("istio-system", "istio-ingressgateway"),
        0,
        "partly injected"
    );
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_edit_during_the_fault_is_kept_and_only_drills_fault_comes_off() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let before = p.primary.objects();
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let (inj, _) = inject(&t, &f).await;
    // Their edits land while the fault lasts: a retries change on the
    // faulted route, a new route in front of it, a label of theirs.
    p.primary.edit_vs("bookinfo", "reviews", |s| {
        s["http"][0]["retries"]["attempts"] = json!(5);
        s["http"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({ "name": "canary", "route": [ { "destination": { "host": "reviews", "subset": "v3" } } ] }));
    });
    p.primary
        .annotate_vs("bookinfo", "reviews", "owner", Some("team-reviews"));
    t.revert(&f, &inj).await.unwrap();
    let (spec, ann) = p.primary.vs("bookinfo", "reviews");
    let mut want = before["virtualservice/bookinfo/reviews"]["spec"].clone();
    want["http"][0]["retries"]["attempts"] = json!(5);
    want["http"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({ "name": "canary", "route": [ { "destination": { "host": "reviews", "subset": "v3" } } ] }));
    assert_eq!(spec, want, "drill's fault off, their edits kept");
    assert_eq!(ann.get("owner").map(String::as_str), Some("team-reviews"));
    assert!(!ann.contains_key("drill.dev/run-id"), "{ann:?}");
    let patches: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .filter(|m| m.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].body.contains(r#""op":"test""#), "{patches:?}");

    // A patch refused (422) because of an edit between drill's read and its
    // patch is read again and retried.
    let p = Pair::start("").await;
    let t = p.connect().await;
    let before = p.primary.objects();
    let (inj, _) = inject(&t, &f).await;
    p.primary.fail("PATCH", "virtualservices/reviews", 422, 1);
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_own_fault_changed_by_someone_else_is_reported_precisely_and_left() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 500");
    let (inj, _) = inject(&t, &f).await;
    p.primary.edit_vs("bookinfo", "reviews", |s| {
        s["http"][0]["fault"]["abort"]["httpStatus"] = json!(503)
    });
    let err = t.revert(&f, &inj).await.unwrap_err();
    assert!(matches!(err, TargetError::Drift(_)), "{err:?}");
    let m = err.to_string();
    for want in [
        "virtualservice bookinfo/reviews",
        "route `split` at /spec/http/0/fault",
        r#"expected {"abort":{"httpStatus":500"#,
        r#"found {"abort":{"httpStatus":503"#,
        "before the drill it had no fault",
    ] {
        assert!(m.contains(want), "no {want:?} in: {m}");
    }
    let (spec, ann) = p.primary.vs("bookinfo", "reviews");
    assert_eq!(spec["http"][0]["fault"]["abort"]["httpStatus"], json!(503));
    assert_eq!(
        ann.get("drill.dev/run-id").map(String::as_str),
        Some(RUN),
        "still marked as held until a person or cleanup has restored it"
    );
    assert!(
        p.primary.mutations().iter().all(|m| m.method != "PATCH"),
        "nothing was patched"
    );

    // A Deployment someone scaled by hand during a `down` is left as they set it.
    let down = fault("component = \"ratings\"\nregion = \"primary\"\naction = \"down\"");
    let (inj, _) = inject(&t, &down).await;
    p.primary.scale_by_hand("bookinfo", "ratings-v1", 3);
    let err = t.revert(&down, &inj).await.unwrap_err();
    assert!(err.to_string().contains("scaled it to 3"), "{err}");
    assert_eq!(p.primary.replicas("bookinfo", "ratings-v1"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_mid_drill_is_named() {
    let p = Pair::start("").await;
    let t = p.connect().await;
    p.primary.fail("GET", "virtualservices/reviews", 404, 1);
    let f = fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"");
    let err = t.plan(&f, 1).await.err().unwrap();
    assert!(
        err.to_string().contains(
            "context `primary-cluster-context`: get virtualservice `bookinfo/reviews`: not found"
        ),
        "{err}"
    );
    // A down whose Deployments vanished between preflight and plan.
    p.primary
        .fail("GET", "namespaces/istio-system/deployments", 404, 1);
    let f = fault("component = \"istiod\"\nregion = \"primary\"\naction = \"down\"");
    let err = t.plan(&f, 1).await.err().unwrap();
    assert!(
        err.to_string().contains(
            "component `istiod`: context `primary-cluster-context`: list deployments in `istio-system`: not found"
        ),
        "{err}"
    );
    // Only the claim was taken (the run's end releases it).
    let writes: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .filter(|m| !m.uri.contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(p.secondary.mutations().is_empty());
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_after_a_crash_restores_from_the_journal_alone() {
    let p = Pair::start("").await;
    let (before_p, before_s) = (p.primary.objects(), p.secondary.objects());
    let run_id = format!("{RUN}-crash");
    let mut j = Journal::create(
        &run_id,
        &Entry::Run {
            run_id: run_id.clone(),
            pid: std::process::id(),
            scenario: "crash".into(),
            target: "two-regions".into(),
            started_at: "2026-11-21T05:00:00Z".into(),
        },
    )
    .unwrap();
    let path = j.path().to_path_buf();
    {
        let t = K8sTarget::connect(&p.settings(), &run_id, Clock::start())
            .await
            .unwrap();
        let faults = [
            fault("component = \"istiod\"\nregion = \"primary\"\naction = \"down\""),
            fault(
                "component = \"reviews\"\nregion = \"secondary\"\naction = \"latency\"\ndelay = \"2s\"",
            ),
        ];
        for (i, f) in faults.iter().enumerate() {
            let (inj, plan) = t.plan(f, 1).await.unwrap();
            j.append(&Entry::Inject {
                id: i as u32 + 1,
                fault: f.name.clone(),
                component: f.component().map(str::to_string),
                region: f.region().map(str::to_string),
                action: f.action.name().into(),
                plan,
            })
            .unwrap();
            t.inject(f, &inj).await.unwrap();
        }
        // The run dies here: no revert, the target and its clients dropped.
    }
    drop(j);
    assert_eq!(p.primary.replicas("istio-system", "istiod"), 0);
    assert!(
        p.secondary.vs("bookinfo", "reviews").0["http"][0]
            .get("fault")
            .is_some()
    );

    let line = std::fs::read_to_string(&path).unwrap();
    assert!(
        line.contains("\"kind\":\"k8s\"") && line.contains("\"context\":\"secondary-cluster\"")
    );
    assert!(!line.contains("fixture-token"), "no secret in the journal");

    let out = cleanup::revert_outstanding(Scope::OwnRuns, false)
        .await
        .unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.outstanding, 2, "{:?}", out.lines);
    assert_eq!(p.primary.objects(), before_p);
    assert_eq!(p.secondary.objects(), before_s);
    assert!(
        p.primary.leases().is_empty() && p.secondary.leases().is_empty(),
        "cleanup releases the dead run's claims: {:?} {:?}",
        p.primary.leases(),
        p.secondary.leases()
    );
    assert!(!path.exists(), "journal closed and moved to done/");
    assert!(
        journal::journal_dir()
            .join("done")
            .join(path.file_name().unwrap())
            .exists()
    );
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_binary_runs_kubernetes_faults_and_leaves_the_clusters_as_it_found_them() {
    let entry = k8s_support::serve_ok().await;
    let p = Pair::start_with_entry("", &format!("http://{entry}")).await;
    let (before_p, before_s) = (p.primary.objects(), p.secondary.objects());
    let scenario = p.dir.path().join("smoke.toml");
    std::fs::write(
        &scenario,
        r#"
description = "kubernetes faults through the whole run"

[load]
path = "/productpage"
rate = 50
timeout = "1s"

[phases]
warmup = "300ms"
baseline = "1s"
recovery = "1s"

[recovery]
window = "200ms"
ratio = "99%"
hold = "1s"

[[faults]]
name = "kill-reviews"
component = "reviews"
region = "primary"
action = "delete"
count = 1
until = "healed"
timeout = "20s"

[[faults]]
name = "slow-reviews"
component = "reviews"
region = "secondary"
action = "latency"
delay = "100ms"
duration = "1s"

[[faults]]
name = "istiod-down"
component = "istiod"
region = "primary"
action = "down"
duration = "1s"
"#,
    )
    .unwrap();
    let state = p.dir.path().join("state");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"))
        .current_dir(p.dir.path())
        .env("DRILL_STATE_DIR", &state)
        .args(["--targets", "drill.toml", "run"])
        .arg(&scenario)
        .args([
            "--target",
            "two-regions",
            "--seed",
            "7",
            "--quiet",
            "--report-dir",
            "out",
        ])
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["verdict"], "pass", "{results:#}");
    // The deleted pod's replacement was seen Ready: the fault ended healed.
    assert_eq!(results["faults"][0]["ended"], "healed", "{results:#}");
    assert_eq!(results["faults"][1]["ended"], "reverted", "{results:#}");
    assert_eq!(
        results["faults"].as_array().unwrap().len(),
        3,
        "{results:#}"
    );
    let deletes = p
        .primary
        .mutations()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.uri.contains("/pods/"))
        .count();
    assert_eq!(deletes, 1);
    assert!(
        p.primary.leases().is_empty() && p.secondary.leases().is_empty(),
        "the run released its claims: {:?} {:?}",
        p.primary.leases(),
        p.secondary.leases()
    );
    assert_eq!(p.primary.objects(), before_p);
    assert_eq!(p.secondary.objects(), before_s);
    let open: Vec<_> = std::fs::read_dir(state.join("journal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(open.is_empty(), "journal left open: {open:?}");
    p.assert_other_unheard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_file_mistakes_are_reported_with_the_target_named() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drill.toml");
    std::fs::write(
        &file,
        r#"
[targets.no-url]
kind = "kubernetes"
contexts = { primary = "primary-cluster-context" }

[targets.lab-with-contexts]
kind = "lab"
contexts = { primary = "primary-cluster-context" }

[targets.same-context]
kind = "kubernetes"
url = "https://x.example.com"
contexts = { primary = "c", secondary = "c" }
"#,
    )
    .unwrap();
    let err = Targets::load(Some(&file)).unwrap_err().to_string();
    assert!(
        err.contains("target `no-url`: a kubernetes target needs the global entry `url`"),
        "{err}"
    );
    assert!(err.contains("target `lab-with-contexts`: contexts, kubeconfig, ingress and components are for kind = \"kubernetes\""), "{err}");
    assert!(
        err.contains(
            "target `same-context`: regions `primary` and `secondary` map to the same context `c`"
        ),
        "{err}"
    );
}

/// Runs one shipped scenario through the binary against the fake clusters.
async fn run_shipped(p: &Pair, scenario: &str) -> (serde_json::Value, String) {
    let state = p.dir.path().join("state");
    let report = p.dir.path().join(format!("out-{scenario}"));
    // The fake clusters have no Alertmanager, and a scenario that silences
    // its alerts is refused on a target without one (tests/validate.rs): the
    // copy run here keeps everything but the silence and the send lag bound.
    let shipped = std::fs::read_to_string(format!(
        "{}/scenarios/{scenario}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let copy = p.dir.path().join(format!("{scenario}.toml"));
    // The fake clusters' servers run in this test process, next to other
    // tests: the generator's timing is judged on the lab (tests/lab.rs),
    // here only the Kubernetes path and the restore.
    assert!(!shipped.contains("max_send_lag"), "{scenario} sets its own");
    std::fs::write(
        &copy,
        shipped
            .replace("\nsilence = true\n", "\nsilence = false\n")
            .replacen("[load]\n", "[load]\nmax_send_lag = \"2s\"\n", 1),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"))
        .current_dir(p.dir.path())
        .env("DRILL_STATE_DIR", &state)
        .env("CI", "1")
        .args(["--targets", "drill.toml", "run"])
        .arg(&copy)
        .args([
            "--target",
            "two-regions",
            "--seed",
            "11",
            "--quiet",
            "--report-dir",
        ])
        .arg(&report)
        .output()
        .await
        .unwrap();
    let shown = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{scenario}: {shown}");
    let results =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    assert!(report.join("junit.xml").is_file() && report.join("report.md").is_file());
    (results, shown)
}

/// The shipped ingress-failover, istiod-down and latency-injection scenarios
/// run unchanged against two clusters: each makes exactly the API calls its
/// fault needs, and leaves both clusters as it found them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_scenarios_run_against_two_clusters_and_restore_them() {
    let entry = k8s_support::serve_ok().await;
    let p = Pair::start_with_entry("", &format!("http://{entry}")).await;
    let (before_p, before_s) = (p.primary.objects(), p.secondary.objects());

    // ingress-failover: the primary's ingress gateway pods are deleted by
    // selector and come back Ready.
    let (r, shown) = run_shipped(&p, "ingress-failover").await;
    assert_eq!(r["faults"][0]["ended"], "healed", "{shown}");
    let deletes: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .filter(|m| m.method == "DELETE")
        .collect();
    assert!(
        !deletes.is_empty()
            && deletes
                .iter()
                .all(|m| m.uri.contains("/namespaces/istio-system/pods/")),
        "{deletes:?}"
    );
    assert!(
        p.secondary.mutations().is_empty(),
        "the secondary was not touched"
    );
    assert!(
        r["faults"][0]["extra"]["component_ready_s"]
            .as_f64()
            .is_some(),
        "{:#}",
        r["faults"][0]
    );

    // istiod-down: istiod scaled to zero and back; the routing-change part is
    // not measurable here and is skipped, not failed.
    let n = p.primary.mutations().len();
    let (r, shown) = run_shipped(&p, "istiod-down").await;
    let scale: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .skip(n)
        .filter(|m| m.uri.contains("/deployments/istiod"))
        .collect();
    assert!(scale.len() >= 2, "scaled down and back: {scale:?}\n{shown}");
    let sync = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "config-sync:istiod-down")
        .unwrap();
    assert_eq!(sync["status"], "skipped", "{sync:#}");

    // latency-injection: an Istio fault on the primary's reviews
    // VirtualService, then its exact previous spec.
    let n = p.primary.mutations().len();
    let (_r, shown) = run_shipped(&p, "latency-injection").await;
    let vs: Vec<_> = p
        .primary
        .mutations()
        .into_iter()
        .skip(n)
        .filter(|m| m.uri.contains("/virtualservices/reviews"))
        .collect();
    assert!(
        vs.iter()
            .any(|m| m.body.contains("\"fixedDelay\":\"0.5s\"")),
        "{vs:?}\n{shown}"
    );

    assert_eq!(p.primary.objects(), before_p, "primary restored exactly");
    assert_eq!(
        p.secondary.objects(),
        before_s,
        "secondary restored exactly"
    );
    p.assert_other_unheard();
}

/// The seed in results.json is the run's seed to the last digit: fed back
/// with `--seed`, it picks the same pod to delete on an identical cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_seed_fed_back_with_seed_reproduces_the_pod_choice() {
    let entry = k8s_support::serve_ok().await;
    let scenario = r#"
description = "one seeded delete"

[load]
path = "/productpage"
rate = 20
timeout = "1s"

[phases]
warmup = "200ms"
baseline = "500ms"
recovery = "500ms"

[recovery]
window = "200ms"
hold = "500ms"

[[faults]]
name = "kill-one-reviews"
component = "reviews"
region = "primary"
action = "delete"
count = 1
until = "healed"
timeout = "20s"
"#;
    // One drill on fresh fake clusters: its results.json and the pod deleted.
    async fn drill_once(
        entry: &str,
        scenario: &str,
        seed: Option<&str>,
    ) -> (serde_json::Value, String) {
        let p = Pair::start_with_entry("", &format!("http://{entry}")).await;
        let file = p.dir.path().join("seeded.toml");
        std::fs::write(&file, scenario).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"));
        cmd.current_dir(p.dir.path())
            .env("DRILL_STATE_DIR", p.dir.path().join("state"))
            .env("CI", "1")
            .env_remove("DRILL_SEED")
            .args(["--targets", "drill.toml", "run"])
            .arg(&file)
            .args(["--target", "two-regions", "--quiet", "--report-dir", "out"]);
        if let Some(seed) = seed {
            cmd.args(["--seed", seed]);
        }
        let out = cmd.output().await.unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(p.dir.path().join("out/results.json")).unwrap(),
        )
        .unwrap();
        let deleted: Vec<String> = p
            .primary
            .mutations()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.uri)
            .collect();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        (results, deleted[0].clone())
    }
    let (first, pod) = drill_once(&entry.to_string(), scenario, None).await;
    let seed = first["seed"]
        .as_str()
        .expect("the seed is a string")
        .to_string();
    assert!(seed.parse::<u64>().is_ok(), "{seed}");
    let (again, same_pod) = drill_once(&entry.to_string(), scenario, Some(&seed)).await;
    assert_eq!(again["seed"], seed);
    assert_eq!(same_pod, pod, "seed {seed} picked another pod");
}

/// Every fault action × every way out (normal end, failed check, abort
/// condition, an API error halfway through the inject, SIGINT, SIGTERM,
/// kill -9 + `drill cleanup`, someone else's edit during the fault), each
/// through the binary on its own pair of fake clusters: both end exactly as
/// they were (plus the other person's edit), the journal closed, no Lease
/// left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_matrix_every_action_and_way_out_leaves_both_clusters_as_they_were() {
    let cells = ACTIONS
        .iter()
        .flat_map(|a| WAYS_OUT.iter().map(move |w| (*a, *w)))
        .collect();
    let failed = matrix::run_all(cells).await;
    assert!(
        failed.is_empty(),
        "{} cell(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

/// Someone else changes drill's own fault while it lasts: exit 4, the
/// instruction names the object, the journal stays open and `drill cleanup`
/// keeps failing until a person has restored it, then closes it.
/// (A delete leaves nothing of drill's to change.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_matrix_drills_own_fault_changed_exits_4_and_keeps_the_journal_open() {
    let cells = ACTIONS
        .iter()
        .filter(|a| **a != matrix::Action::Delete)
        .map(|a| (*a, WayOut::EditOwnFault))
        .collect();
    let failed = matrix::run_all(cells).await;
    assert!(
        failed.is_empty(),
        "{} cell(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

/// The faults the concurrency tests race for: every object of `reviews`
/// on the primary (its three Deployments and its VirtualService).
fn reviews_faults() -> Vec<FaultPlan> {
    vec![
        fault("name = \"down\"\ncomponent = \"reviews\"\nregion = \"primary\"\naction = \"down\""),
        fault(
            "name = \"slow\"\ncomponent = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"2s\"",
        ),
    ]
}

async fn target_for(p: &Pair, run_id: &str, lease: Duration) -> K8sTarget {
    let mut t = K8sTarget::connect(&p.settings(), run_id, Clock::start())
        .await
        .unwrap();
    t.set_poll(Duration::from_millis(50));
    t.set_lease_duration(lease);
    t
}

/// The concurrency column at the library level, 20 repetitions: two runs
/// claim the same objects at the same instant; exactly one gets them, the
/// other is refused naming the holder and leaves nothing behind. A third
/// run started mid-fault of the winner is refused too. The winner's faults
/// revert and its claims go: the cluster ends exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_racing_for_the_same_objects_one_claims_and_the_other_is_refused() {
    let p = Pair::start("").await;
    let before = p.primary.objects();
    let faults = reviews_faults();
    let refs: Vec<&FaultPlan> = faults.iter().collect();
    for rep in 0..20 {
        let (a_id, b_id) = (format!("race{rep}-a"), format!("race{rep}-b"));
        let a = target_for(&p, &a_id, Duration::from_secs(30)).await;
        let b = target_for(&p, &b_id, Duration::from_secs(30)).await;
        let (ra, rb) = tokio::join!(a.claim(&refs), b.claim(&refs));
        let (winner, loser, w_id, err) = match (ra, rb) {
            (Ok(()), Err(e)) => (a, b, &a_id, e),
            (Err(e), Ok(())) => (b, a, &b_id, e),
            (ra, rb) => panic!("rep {rep}: exactly one run claims: a {ra:?}, b {rb:?}"),
        };
        let msg = err.to_string();
        assert!(
            matches!(err, TargetError::Preflight(_))
                && msg.contains(&format!("held by drill run `{w_id}` since"))
                && msg.contains("started by"),
            "rep {rep}: {msg}"
        );
        assert_eq!(
            p.primary.objects(),
            before,
            "rep {rep}: the refused run wrote"
        );
        assert!(
            p.primary.leases().values().all(|h| h == w_id),
            "rep {rep}: the refused run left a claim: {:?}",
            p.primary.leases()
        );
        let mut active = Vec::new();
        for f in &faults {
            active.push((f, inject(&winner, f).await.0));
        }
        let mid = target_for(&p, &format!("race{rep}-mid"), Duration::from_secs(30)).await;
        let e = mid.claim(&refs).await.unwrap_err().to_string();
        assert!(e.contains(&format!("held by drill run `{w_id}`")), "{e}");
        // The refused runs plan nothing either: a plan is refused at its claim.
        assert!(loser.plan(&faults[0], 1).await.is_err());
        while let Some((f, inj)) = active.pop() {
            winner.revert(f, &inj).await.unwrap();
        }
        winner.release_claims().await;
        assert_eq!(p.primary.objects(), before, "rep {rep}: not as it was");
        assert!(p.primary.leases().is_empty(), "{:?}", p.primary.leases());
    }
    assert!(p.secondary.mutations().is_empty());
    p.assert_other_unheard();
}

/// A killed run stops renewing: its claim expires after the Lease's
/// duration. A live run's claim is renewed past it. An expired claim is
/// taken over, but an object the dead run left faulted (its mark still on
/// it) is refused: its state is not one to restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_renewed_while_its_run_lives_and_expires_after_it_dies() {
    let p = Pair::start("").await;
    let faults = reviews_faults();
    let refs: Vec<&FaultPlan> = faults.iter().collect();
    let live = target_for(&p, "renewed", Duration::from_secs(1)).await;
    live.claim(&refs).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let other = target_for(&p, "other", Duration::from_secs(1)).await;
    let e = other.claim(&refs).await.unwrap_err().to_string();
    assert!(e.contains("held by drill run `renewed`"), "renewed: {e}");
    let (inj, _) = inject(&live, &faults[0]).await;
    drop(inj);
    drop(live); // kill -9: nothing renews, nothing reverts
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = other.claim(&refs).await.unwrap_err().to_string();
    assert!(
        e.contains("left faulted by drill run `renewed`") && e.contains("drill cleanup"),
        "{e}"
    );
    assert!(
        !p.primary.leases().values().any(|h| h == "other"),
        "a refused claim is released: {:?}",
        p.primary.leases()
    );
    assert_eq!(p.primary.replicas("bookinfo", "reviews-v1"), 0);
}

/// A claim lasts as long as its fault, not its run: once fault 1 is
/// reverted its objects' Leases are gone, and while fault 2 still runs
/// another run claims fault 1's objects (and is refused fault 2's). A
/// Lease is marked with the fault it stands for while that fault is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faults_claim_is_released_by_its_revert_while_the_run_goes_on() {
    let p = Pair::start("").await;
    let before = p.primary.objects();
    let faults = reviews_faults();
    let refs: Vec<&FaultPlan> = faults.iter().collect();
    let run = target_for(&p, "first", Duration::from_secs(30)).await;
    run.claim(&refs).await.unwrap();
    let (down, _) = inject(&run, &faults[0]).await;
    let (slow, _) = inject(&run, &faults[1]).await;
    assert_eq!(
        p.primary
            .lease_annotation("bookinfo", "drill.deployment.reviews-v1", "drill.dev/fault")
            .as_deref(),
        Some("down")
    );
    let other = target_for(&p, "second", Duration::from_secs(30)).await;
    let e = other.claim(&refs[..1]).await.unwrap_err().to_string();
    assert!(e.contains("held by drill run `first`"), "{e}");
    run.revert(&faults[0], &down).await.unwrap();
    let leases = p.primary.leases();
    assert!(
        !leases.keys().any(|l| l.contains("drill.deployment.")),
        "fault 1's claims outlived its revert: {leases:?}"
    );
    assert_eq!(
        leases
            .get("bookinfo/drill.virtualservice.reviews")
            .map(String::as_str),
        Some("first"),
        "{leases:?}"
    );
    // Fault 2 still on: its object stays the first run's, fault 1's are free.
    other.claim(&refs[..1]).await.unwrap();
    assert!(
        p.primary
            .leases()
            .iter()
            .filter(|(l, _)| l.contains("drill.deployment."))
            .all(|(_, h)| h == "second")
    );
    let e = other.claim(&refs[1..]).await.unwrap_err().to_string();
    assert!(e.contains("held by drill run `first`"), "{e}");
    run.revert(&faults[1], &slow).await.unwrap();
    run.release_claims().await;
    other.release_claims().await;
    assert_eq!(p.primary.objects(), before);
    assert!(p.primary.leases().is_empty(), "{:?}", p.primary.leases());
}

/// The concurrency column through the `drill` binary: two drills on the
/// same objects started together (twice per action) and one started
/// mid-fault of the other, for each action that changes objects. The
/// 20-repetition race runs at the library level above, where a repetition
/// costs milliseconds instead of a whole drill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_matrix_concurrency_two_drills_on_the_same_objects_one_is_refused() {
    init();
    let mut cells = Vec::new();
    for action in [
        matrix::Action::Down,
        matrix::Action::Latency,
        matrix::Action::RegionOutage,
    ] {
        cells.extend([(action, false), (action, false), (action, true)]);
    }
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut set = tokio::task::JoinSet::new();
    for (action, mid) in cells {
        let gate = gate.clone();
        set.spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            (action, mid, matrix::run_race(action, mid).await)
        });
    }
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        if let (a, mid, Err(e)) = r.unwrap() {
            failed.push(format!("{a:?} (mid-fault: {mid}): {e}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// A VirtualService that had no annotations ends with none: drill's run
/// annotation goes with the map it made, not leaving `annotations: {}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_virtualservice_is_byte_equal_to_its_prior() {
    let p = Pair::start("").await;
    p.primary.annotate_vs("bookinfo", "reviews", "team", None);
    let before = p.primary.objects();
    assert!(before["virtualservice/bookinfo/reviews"]["annotations"].is_null());
    let t = p.connect().await;
    let f =
        fault("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 503");
    let (inj, _) = inject(&t, &f).await;
    assert!(
        p.primary
            .vs("bookinfo", "reviews")
            .1
            .contains_key("drill.dev/run-id")
    );
    t.revert(&f, &inj).await.unwrap();
    assert_eq!(p.primary.objects(), before);
}

/// A fault someone else undid while it lasted: the revert succeeds having
/// changed nothing of the objects' state, and says so (the run's end is
/// `already-restored`, not `reverted`); drill's own annotation still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_someone_else_undid_is_reported_as_already_restored() {
    let p = Pair::start("").await;
    let before = p.primary.objects();
    let t = p.connect().await;
    let faults = reviews_faults();
    let (down, _) = inject(&t, &faults[0]).await;
    for v in ["reviews-v1", "reviews-v2", "reviews-v3"] {
        p.primary.scale_by_hand("bookinfo", v, 1);
    }
    t.revert(&faults[0], &down).await.unwrap();
    let found = down.already_restored().expect("already restored");
    assert!(found.contains("deployment bookinfo/reviews-v3"), "{found}");
    let (slow, _) = inject(&t, &faults[1]).await;
    p.primary.edit_vs("bookinfo", "reviews", |s| {
        s["http"][0].as_object_mut().unwrap().remove("fault");
    });
    t.revert(&faults[1], &slow).await.unwrap();
    assert_eq!(
        slow.already_restored().as_deref(),
        Some("virtualservice bookinfo/reviews")
    );
    assert_eq!(p.primary.objects(), before);
    // A revert that did the work says nothing of the kind.
    let (down, _) = inject(&t, &faults[0]).await;
    t.revert(&faults[0], &down).await.unwrap();
    assert_eq!(down.already_restored(), None);
    assert_eq!(p.primary.objects(), before);
}

/// `drill cleanup --dry-run` after kill -9 reads the cluster and says what a
/// real cleanup would do, object by object, and writes nothing: scale back,
/// already restored, or altered (a person decides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_dry_run_reads_the_cluster_and_says_what_cleanup_would_do() {
    let p = matrix::pair().await;
    let want = p.primary.objects();
    let state = p.dir.path().join("state");
    let file = p.dir.path().join("case.toml");
    std::fs::write(
        &file,
        matrix::scenario(matrix::Action::Down, WayOut::Kill9Cleanup),
    )
    .unwrap();
    let child = matrix::drill_run(&p, &state, &file).spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while p
        .primary
        .lease_annotation("bookinfo", "drill.deployment.reviews-v3", "drill.dev/fault")
        .is_none()
        || p.primary.replicas("bookinfo", "reviews-v3") != 0
    {
        assert!(tokio::time::Instant::now() < deadline, "never injected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: kill(2) on the drill child this test spawned.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGKILL) };
    let _ = child.wait_with_output().await;
    p.primary.scale_by_hand("bookinfo", "reviews-v2", 1);
    p.primary.scale_by_hand("bookinfo", "reviews-v3", 4);
    let writes = p.primary.mutations().len();
    let out = matrix::cleanup_with(&p, &state, &["--dry-run"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "deployment bookinfo/reviews-v1: would scale it from 0 back to 1 replicas",
        "deployment bookinfo/reviews-v2: already restored",
        "deployment bookinfo/reviews-v3: altered, needs a person: someone scaled it to 4",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert_eq!(p.primary.mutations().len(), writes, "a dry run wrote");
    p.primary.scale_by_hand("bookinfo", "reviews-v3", 1);
    let out = matrix::cleanup_with(&p, &state, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(p.primary.objects(), want);
    assert!(p.primary.leases().is_empty(), "{:?}", p.primary.leases());
}

/// Every file under `dir` (recursively) that contains `needle`, except the
/// inputs the test wrote itself.
fn files_containing(dir: &Path, needle: &str, inputs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !inputs
                .iter()
                .any(|i| p.file_name().is_some_and(|n| n == *i))
                && std::fs::read(&p)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                out.push(p);
            }
        }
    }
    out
}

/// The canary: a secret planted in every place a user can put one (the
/// kubeconfig's bearer token, a literal header, a header from the
/// environment, the database DSN's password, a URL's userinfo) appears in
/// no file drill writes (reports, results, JUnit, history, journal) and not
/// on its stdout or stderr, even at -vv. A URL with credentials is refused
/// at validation (exit 2), located, with the env-var form as the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_planted_everywhere_appear_in_no_output() {
    const TOKEN: &str = "CANARYkubetoken7731";
    const HEADER: &str = "CANARYliteralheader7732";
    const ENV_HEADER: &str = "CANARYenvheader7733";
    const DSN_PW: &str = "CANARYdsnpassword7734";
    const URL_PW: &str = "CANARYurlpassword7735";
    let entry = k8s_support::serve_ok().await;
    let p = Pair::start_with_entry(
        "database = { dsn_env = \"DRILL_CANARY_DSN\" }",
        &format!("http://{entry}"),
    )
    .await;
    let kc = p.dir.path().join("kubeconfig.yaml");
    let text = std::fs::read_to_string(&kc)
        .unwrap()
        .replace("fixture-token-not-a-secret", TOKEN);
    std::fs::write(&kc, text).unwrap();
    let scenario = |database: &str| {
        format!(
            r#"description = "canary"

[load]
path = "/productpage"
rate = 50
timeout = "1s"
headers = {{ "x-api-key" = "{HEADER}" }}
headers_env = {{ Authorization = "DRILL_CANARY_AUTH" }}
{database}
[phases]
warmup = "200ms"
baseline = "500ms"
recovery = "500ms"

[recovery]
window = "100ms"
ratio = "99%"
hold = "200ms"

[[faults]]
name = "slow"
component = "reviews"
region = "primary"
action = "latency"
delay = "100ms"
duration = "500ms"
"#
        )
    };
    std::fs::write(p.dir.path().join("canary.toml"), scenario("")).unwrap();
    std::fs::write(
        p.dir.path().join("canary-db.toml"),
        scenario("\n[database]\nrate = 10\n"),
    )
    .unwrap();
    let drill = |file: &str, targets: &str| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"));
        c.current_dir(p.dir.path())
            .env("DRILL_STATE_DIR", p.dir.path().join("state"))
            .env("DRILL_CANARY_AUTH", format!("Bearer {ENV_HEADER}"))
            .env(
                "DRILL_CANARY_DSN",
                format!(
                    "host=127.0.0.1 port=9 user=drill password={DSN_PW} dbname=x connect_timeout=1"
                ),
            )
            .env_remove("RUST_LOG")
            .args([
                "-vv",
                "--targets",
                targets,
                "run",
                file,
                "--target",
                "two-regions",
            ])
            .arg("--report-dir")
            .arg(p.dir.path().join("out").join(file))
            .stdin(std::process::Stdio::null());
        c
    };
    let full = drill("canary.toml", "drill.toml").output().await.unwrap();
    assert_eq!(
        full.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let db = drill("canary-db.toml", "drill.toml")
        .output()
        .await
        .unwrap();
    assert_eq!(db.status.code(), Some(3), "the database is unreachable");
    // A URL with a password: refused before anything runs.
    let targets = std::fs::read_to_string(p.dir.path().join("drill.toml"))
        .unwrap()
        .replace(
            &format!("url = \"http://{entry}\""),
            &format!("url = \"http://admin:{URL_PW}@{entry}\""),
        );
    std::fs::write(p.dir.path().join("userinfo.toml"), &targets).unwrap();
    let refused = drill("canary.toml", "userinfo.toml")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    let line = targets.lines().position(|l| l.contains(URL_PW)).unwrap() + 1;
    assert!(
        said.contains(&format!("userinfo.toml:{line}:"))
            && said.contains("carries credentials")
            && said.contains("headers_env"),
        "{said}"
    );
    let inputs = [
        "kubeconfig.yaml",
        "drill.toml",
        "userinfo.toml",
        "canary.toml",
        "canary-db.toml",
    ];
    for secret in [TOKEN, HEADER, ENV_HEADER, DSN_PW, URL_PW] {
        for (what, o) in [
            ("run", &full),
            ("database run", &db),
            ("refused run", &refused),
        ] {
            for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                assert!(
                    !String::from_utf8_lossy(bytes).contains(secret),
                    "{secret} on the {what}'s {stream}"
                );
            }
        }
        let leaked = files_containing(p.dir.path(), secret, &inputs);
        assert!(leaked.is_empty(), "{secret} written to {leaked:?}");
    }
    // The search had something to read: -vv debug lines, the DSN reached
    // (and shown redacted), the files a run always writes.
    assert!(String::from_utf8_lossy(&full.stderr).contains("DEBUG"));
    let db_said =
        String::from_utf8_lossy(&db.stdout).to_string() + &String::from_utf8_lossy(&db.stderr);
    assert!(db_said.contains("password=***"), "{db_said}");
    let out = p.dir.path().join("out/canary.toml");
    for f in ["results.json", "report.md", "junit.xml"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert!(p.dir.path().join("state/journal/done").exists());
}

/// Through the binary: a fault someone else undid mid-fault ends
/// `already-restored` in results.json, with the WARNING in report.md and on
/// stderr; the run exits 0 and the cluster ends as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_undone_by_someone_else_is_warned_in_the_report() {
    let p = matrix::pair().await;
    let want = p.primary.objects();
    let state = p.dir.path().join("state");
    let file = p.dir.path().join("case.toml");
    std::fs::write(
        &file,
        matrix::scenario(matrix::Action::Latency, WayOut::Sigint),
    )
    .unwrap();
    let child = matrix::drill_run(&p, &state, &file).spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !p
        .primary
        .vs("bookinfo", "reviews")
        .1
        .contains_key("drill.dev/run-id")
    {
        assert!(tokio::time::Instant::now() < deadline, "never injected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.primary.edit_vs("bookinfo", "reviews", |s| {
        s["http"][0].as_object_mut().unwrap().remove("fault");
    });
    // SAFETY: kill(2) on the drill child this test spawned.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "interrupted: {out:?}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("out/results.json")).unwrap())
            .unwrap();
    assert_eq!(
        results["faults"][0]["ended"], "already-restored",
        "{results:#}"
    );
    let md = std::fs::read_to_string(state.join("out/report.md")).unwrap();
    assert!(md.contains("already restored by someone else"), "{md}");
    assert_eq!(p.primary.objects(), want);
    assert!(p.primary.leases().is_empty(), "{:?}", p.primary.leases());
}

/// `drill cleanup --resolved` after a run died with a fault on: a person
/// restored the object by hand, so nothing is reverted, the journal closes,
/// and the run's claim — marked with the fault, which would refuse every
/// later run even after it expired — is released, so the next run can
/// claim the object at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_by_hand_closes_the_journal_and_releases_the_runs_claims() {
    init();
    let p = Pair::start("").await;
    let run_id = format!("{RUN}-resolved");
    let faults = reviews_faults();
    let mut j = Journal::create(
        &run_id,
        &Entry::Run {
            run_id: run_id.clone(),
            pid: std::process::id(),
            scenario: "resolved".into(),
            target: "two-regions".into(),
            started_at: "2026-12-05T05:00:00Z".into(),
        },
    )
    .unwrap();
    {
        let run = target_for(&p, &run_id, Duration::from_millis(300)).await;
        run.claim(&[&faults[0]]).await.unwrap();
        let (inj, plan) = run.plan(&faults[0], 42).await.unwrap();
        j.append(&Entry::Inject {
            id: 1,
            fault: faults[0].name.clone(),
            component: faults[0].component().map(str::to_string),
            region: faults[0].region().map(str::to_string),
            action: faults[0].action.name().into(),
            plan,
        })
        .unwrap();
        run.inject(&faults[0], &inj).await.unwrap();
        // The run dies here with its fault on.
    }
    drop(j);
    assert_eq!(p.primary.replicas("bookinfo", "reviews-v1"), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let other = target_for(&p, "after", Duration::from_secs(30)).await;
    let e = other.claim(&[&faults[0]]).await.unwrap_err().to_string();
    assert!(
        e.contains(&run_id),
        "expired but marked, still refused: {e}"
    );

    let done = cleanup::mark_resolved(&run_id).await.unwrap();
    assert_eq!(done.closed, vec![faults[0].name.clone()]);
    assert!(done.claims_left.is_empty(), "{:?}", done.claims_left);
    assert_eq!(
        p.primary.replicas("bookinfo", "reviews-v1"),
        0,
        "nothing is reverted: the person said they restored it"
    );
    assert!(
        !p.primary.leases().values().any(|h| h == &run_id),
        "{:?}",
        p.primary.leases()
    );
    other.claim(&[&faults[0]]).await.unwrap();
    other.release_claims().await;
    assert!(
        journal::open_journals()
            .unwrap()
            .iter()
            .all(|o| o.run_id != run_id)
    );
}
