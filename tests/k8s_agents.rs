//! Generator agents' Jobs after the run that created them was killed
//! (kill -9): `drill cleanup` finds them in the run's journal and deletes
//! them with their pods through the fake API server, exits 0 and closes the
//! journal; a delete the API server refuses exits 4 and keeps the journal
//! open until a later cleanup succeeds. (The Jobs' own creation, access
//! reviews and pod proxy are tested next to the code, in
//! src/agent/k8s/tests.rs, against the same fake.)

use std::path::{Path, PathBuf};
use std::process::Output;

use drill::targets::journal::{Entry, RevertPlan};
use drill_testkit::k8s as k8s_support;
use k8s_openapi::api::batch::v1::Job;
use k8s_support::{FakeCluster, Timing};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const NS: &str = "drill";
const CONTEXT: &str = "agents-primary";

/// A fake cluster and a kubeconfig naming it.
async fn cluster(dir: &Path) -> (FakeCluster, PathBuf, kube::Client) {
    let fake = FakeCluster::start(Timing::default()).await;
    let kubeconfig = dir.join("kubeconfig.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{}'}}}}]\n\
             contexts: [{{name: {CONTEXT}, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{token: not-a-secret}}}}]\n",
            fake.url()
        ),
    )
    .unwrap();
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some(CONTEXT.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    (fake, kubeconfig, kube::Client::try_from(cfg).unwrap())
}

/// An agent Job as the run creates it (the fields cleanup relies on: its
/// name and the run's label).
async fn create_job(client: &kube::Client, run_id: &str, name: &str, vantage: &str) {
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": name, "namespace": NS, "labels": {
            "app.kubernetes.io/managed-by": "drill", "drill.dev/run": run_id, "drill.dev/vantage": vantage } },
        "spec": {
            "completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimit": 0,
            "template": { "metadata": { "labels": { "drill.dev/run": run_id } }, "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "agent", "image": "drill:0.1.0", "command": ["drill"],
                    "args": ["agent", "--listen", "0.0.0.0:7600", "--idle-timeout", "10s"],
                    "ports": [{ "containerPort": 7600 }] }] } }
        }
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
}

/// A run that journalled two vantage points' Jobs, created the first, and
/// was killed with -9 before creating the second. Returns the journal.
async fn killed_run(state: &Path, kubeconfig: &Path, run_id: &str, jobs: &[&str]) -> PathBuf {
    let mut run = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = run.id();
    let mut lines = vec![Entry::Run {
        run_id: run_id.into(),
        pid,
        scenario: "region-outage".into(),
        target: "production".into(),
        started_at: "2026-11-21T05:00:00Z".into(),
    }];
    for (i, (vantage, name)) in ["primary", "secondary"].iter().zip(jobs).enumerate() {
        lines.push(Entry::Agents {
            id: (1 << 30) + i as u32,
            vantage: vantage.to_string(),
            plan: RevertPlan::AgentJob {
                context: CONTEXT.into(),
                kubeconfig: vec![kubeconfig.to_path_buf()],
                namespace: NS.into(),
                name: name.to_string(),
                run_id: run_id.into(),
            },
        });
    }
    let dir = state.join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{run_id}.jsonl"));
    let text: Vec<String> = lines
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    // SIGKILL: the run gets no chance to delete anything.
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    run.wait().unwrap();
    path
}

async fn cleanup(state: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"))
        .env("DRILL_STATE_DIR", state)
        .arg("cleanup")
        .output()
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn job_deletes(fake: &FakeCluster) -> Vec<Value> {
    fake.mutations()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.uri.contains("/jobs/"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_a_killed_runs_agent_jobs_with_their_pods_and_closes_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, kubeconfig, client) = cluster(dir.path()).await;
    let run_id = "region-outage-20261121T050000Z-k9";
    let (made, never) = ("drill-primary-0badc0de", "drill-secondary-0badc0de");
    create_job(&client, run_id, made, "primary").await;
    assert_eq!(fake.job_pods(NS, made).len(), 2, "the kubelet ran its pods");
    let state = dir.path().join("state");
    let journal = killed_run(&state, &kubeconfig, run_id, &[made, never]).await;

    let out = cleanup(&state).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "run {run_id}: reverted `agents `primary``: delete the agents' Job {NS}/{made} on context `{CONTEXT}`"
        )),
        "{}",
        text(&out)
    );
    // The Job the run never created counts as gone.
    assert!(
        stdout.contains("reverted `agents `secondary``"),
        "{}",
        text(&out)
    );
    assert!(fake.jobs(NS).is_empty());
    assert!(
        fake.job_pods(NS, made).is_empty(),
        "pods deleted with the Job"
    );
    let deletes = job_deletes(&fake);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["propagationPolicy"], "Background");
    assert!(!journal.exists(), "the journal closed");
    assert!(
        state
            .join("journal/done")
            .join(journal.file_name().unwrap())
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delete_exits_4_and_keeps_the_journal_until_a_later_cleanup_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, kubeconfig, client) = cluster(dir.path()).await;
    let run_id = "region-outage-20261121T050000Z-k4";
    let (a, b) = ("drill-primary-00c0ffee", "drill-secondary-00c0ffee");
    create_job(&client, run_id, a, "primary").await;
    create_job(&client, run_id, b, "secondary").await;
    let state = dir.path().join("state");
    let journal = killed_run(&state, &kubeconfig, run_id, &[a, b]).await;
    fake.fail("DELETE", &format!("/jobs/{a}"), 403, 1);

    let out = cleanup(&state).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains(&format!("delete job `{NS}/{a}`: forbidden")),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "kubectl --context {CONTEXT} -n {NS} delete job {a} --cascade=background"
        )),
        "{all}"
    );
    assert!(journal.exists(), "the journal stays open for the Job left");
    let names: Vec<Value> = fake
        .jobs(NS)
        .iter()
        .map(|j| j["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, vec![json!(a)], "the other Job was still deleted");

    let again = cleanup(&state).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(fake.jobs(NS).is_empty());
    assert!(!journal.exists());
}

/// A kubernetes target with one vantage point of two agents, whose pods the
/// fake kubelet runs as this very `drill` binary's `drill agent`, and a
/// scenario (`extra`: checks) with a command fault lasting `fault_for`.
struct Drill {
    dir: tempfile::TempDir,
    fake: FakeCluster,
    state: PathBuf,
}

impl Drill {
    async fn new(extra: &str, fault_for: &str) -> Drill {
        let dir = tempfile::tempdir().unwrap();
        let (fake, kubeconfig, _) = cluster(dir.path()).await;
        fake.kubelet_runs(env!("CARGO_BIN_EXE_drill"), &[]);
        let entry = k8s_support::serve_ok().await;
        std::fs::write(
            dir.path().join("drill.toml"),
            format!(
                "[targets.production]\nkind = \"kubernetes\"\nurl = \"http://{entry}\"\n\
                 kubeconfig = \"{}\"\ncontexts = {{ primary = \"{CONTEXT}\" }}\n\n\
                 [[targets.production.vantage]]\nname = \"primary\"\ncontext = \"primary\"\n\
                 namespace = \"{NS}\"\nagents = 2\nimage = \"registry.example/drill:test\"\n",
                kubeconfig.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("smoke.toml"),
            format!(
                "description = \"load from a kubernetes vantage point\"\n\n\
                 [load]\npath = \"/\"\nrate = 40\ntimeout = \"1s\"\nmax_send_lag = \"1s\"\n\n\
                 [phases]\nwarmup = \"300ms\"\nbaseline = \"1s\"\nrecovery = \"1s\"\n\n\
                 [recovery]\nwindow = \"200ms\"\nratio = \"99%\"\nhold = \"500ms\"\n\n\
                 [[faults]]\nname = \"noop\"\naction = \"command\"\ninject = \"true\"\n\
                 revert = \"true\"\nduration = \"{fault_for}\"\n\n{extra}"
            ),
        )
        .unwrap();
        let state = dir.path().join("state");
        Drill { dir, fake, state }
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_drill"));
        c.current_dir(self.dir.path())
            .env("DRILL_STATE_DIR", &self.state)
            .args(["--targets", "drill.toml", "run", "smoke.toml"])
            .args(["--target", "production", "--quiet", "--report-dir", "out"])
            .kill_on_drop(true);
        c
    }

    fn results(&self) -> Value {
        let p = self.dir.path().join("out/results.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn open_journals(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state.join("journal"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect()
    }

    /// No Job left, deleted once with its pods, nothing open in the journal.
    fn assert_cleaned(&self) {
        assert!(self.fake.jobs(NS).is_empty(), "{:?}", self.fake.jobs(NS));
        let deletes = job_deletes(&self.fake);
        assert_eq!(deletes.len(), 1);
        assert_eq!(deletes[0]["propagationPolicy"], "Background");
        assert!(
            self.open_journals().is_empty(),
            "{:?}",
            self.open_journals()
        );
    }
}

/// The whole path with only the API server faked: access reviews before
/// the Job, agents reached through the pod proxy, per-vantage results, the
/// Job deleted at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_with_a_kubernetes_vantage_point_runs_its_agents_as_a_job_and_deletes_it() {
    let d = Drill::new("", "500ms").await;
    let out = d.command().output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = d.results();
    assert_eq!(results["verdict"], "pass", "{results:#}");
    let v = &results["vantages"][0];
    assert_eq!(v["name"], "primary", "{results:#}");
    assert_eq!(v["agents"].as_array().unwrap().len(), 2, "{results:#}");
    let reqs = d.fake.requests();
    let create = reqs
        .iter()
        .position(|r| r.method == "POST" && r.uri.contains("/jobs"))
        .unwrap();
    let reviews = reqs[..create]
        .iter()
        .filter(|r| r.uri.contains("selfsubjectaccessreviews"))
        .count();
    assert_eq!(reviews, 9, "every verb reviewed before the Job was created");
    assert!(
        reqs.iter().any(|r| r.uri.contains(":7600/proxy/v1/poll")),
        "polled through the proxy"
    );
    let starts = d.fake.agent_calls();
    assert_eq!(starts.iter().filter(|c| c.path == "/v1/start").count(), 2);
    d.assert_cleaned();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_verb_stops_the_drill_with_exit_3_before_anything_is_created() {
    let d = Drill::new("", "500ms").await;
    d.fake.deny("create", "pods", "proxy");
    let out = d.command().output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("context `agents-primary` may not `create pods/proxy` in namespace `drill`"),
        "{all}"
    );
    assert!(d.fake.jobs(NS).is_empty());
    assert!(
        !d.fake.mutations().iter().any(|r| r.uri.contains("/jobs")),
        "{:?}",
        d.fake.mutations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_still_deletes_the_agents_job() {
    let check = "[[checks]]\nkind = \"latency\"\nphase = \"recovery\"\npercentile = \"p50\"\nmax = \"1us\"\n";
    let d = Drill::new(check, "500ms").await;
    let out = d.command().output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(d.results()["verdict"], "fail");
    d.assert_cleaned();
}

/// kill -9 mid-drill: the Job and its agents stay; `drill cleanup` deletes
/// them from the journal alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_drill_drill_cleanup_deletes_the_agents_job() {
    let d = Drill::new("", "30s").await;
    let mut run = d
        .command()
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = async {
        while !d.fake.agent_calls().iter().any(|c| c.path == "/v1/poll") {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), started)
        .await
        .expect("the agents were polled");
    // SAFETY: kill(2) on the drill child this test spawned.
    unsafe { libc::kill(run.id().unwrap() as i32, libc::SIGKILL) };
    run.wait().await.unwrap();
    assert_eq!(d.fake.jobs(NS).len(), 1, "a killed run deletes nothing");
    assert_eq!(d.open_journals().len(), 1);
    let out = cleanup(&d.state).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reverted `agents `primary``"),
        "{}",
        text(&out)
    );
    d.assert_cleaned();
}
