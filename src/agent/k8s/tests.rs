//! Agent Jobs against the loopback fake API server of drill-testkit (testkit/):
//! the Job object as created, the access reviews before it, the pods by
//! completion index, the proxy's real HTTP round trip to each pod's
//! process, and the deletes (with the pods, idempotent, never another
//! run's Job), journalled like faults.

use std::time::Duration;

use drill_testkit::k8s::{FakeCluster, Timing};
use serde_json::{Value, json};

use super::*;
use crate::agent::jobs;
use crate::targets::journal::{self, Entry, Journal};

const RUN: &str = "region-outage-20261121T050000Z-1a2b";
const NS: &str = "drill";
const IMAGE: &str = "registry.example/drill:0.1";
const POLL: Duration = Duration::from_millis(20);

async fn cluster() -> (FakeCluster, Cluster) {
    let (fake, c, _) = clients().await;
    (fake, c)
}

/// The fake, the run's client for its context, and the proxy's client
/// (the same context without kube's retries).
async fn clients() -> (FakeCluster, Cluster, kube::Client) {
    let timing = Timing {
        ready_after: Duration::from_millis(100),
        ..Timing::default()
    };
    let fake = FakeCluster::start(timing).await;
    let kc: kube::config::Kubeconfig = serde_yaml_ng::from_str(&format!(
        "clusters: [{{name: c, cluster: {{server: '{}'}}}}]\n\
         contexts: [{{name: primary, context: {{cluster: c, user: u}}}}]\n\
         users: [{{name: u, user: {{token: t}}}}]\n",
        fake.url()
    ))
    .unwrap();
    let c = client::for_context(&kc, "primary").await.unwrap();
    let proxy = client::for_context_without_retries(&kc, "primary")
        .await
        .unwrap()
        .client;
    (fake, c, proxy)
}

async fn started(c: &Cluster, vantage: &str, agents: u32) -> (JobRef, Vec<String>) {
    let job = create(c, NS, RUN, vantage, agents, IMAGE, Duration::from_secs(300))
        .await
        .unwrap();
    let pods = wait_ready(c, &job, Duration::from_secs(10), POLL)
        .await
        .unwrap();
    (job, pods)
}

#[test]
fn job_names_are_fixed_by_run_and_vantage_and_fit_a_hostname() {
    let a = job_name(RUN, "primary");
    assert_eq!(a, job_name(RUN, "primary"), "the journal names it first");
    assert!(a.starts_with("drill-primary-"), "{a}");
    assert_ne!(a, job_name(RUN, "secondary"));
    assert_ne!(a, job_name("another-run", "primary"));
    let long = job_name(
        RUN,
        "Via The Secondary Region's Ingress, From Outside Both Failure Domains",
    );
    // `<job>-<index>` is each pod's hostname: 63 characters at most.
    assert!(long.len() + 1 + 7 <= 63, "{long}");
    assert!(
        long.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{long}"
    );
    assert_eq!(label_value("  weird/run id!  "), "weird-run-id");
    assert_eq!(label_value(&"x".repeat(80)).len(), 63);
}

#[tokio::test]
async fn the_created_job_is_an_indexed_job_running_drill_agent_as_non_root() {
    let (fake, c) = cluster().await;
    let job = create(&c, NS, RUN, "primary", 2, IMAGE, Duration::from_secs(900))
        .await
        .unwrap();
    assert_eq!(job.name, job_name(RUN, "primary"));
    assert!(!job.uid.is_empty(), "the uid the API server gave it");
    let jobs = fake.jobs(NS);
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j["metadata"]["name"], json!(job.name));
    let labels = &j["metadata"]["labels"];
    assert_eq!(labels[MANAGED_BY], "drill");
    assert_eq!(labels[RUN_LABEL], RUN);
    assert_eq!(labels[VANTAGE_LABEL], "primary");
    let spec = &j["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 2);
    assert_eq!(spec["parallelism"], 2);
    assert_eq!(spec["backoffLimit"], 0);
    // The planned 900 s and the margin for the pods' start and drain.
    assert_eq!(spec["activeDeadlineSeconds"], 1500);
    assert_eq!(spec["ttlSecondsAfterFinished"], 3600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(spec["template"]["metadata"]["labels"][RUN_LABEL], RUN);
    let ctr = &pod["containers"][0];
    assert_eq!(ctr["image"], IMAGE);
    assert_eq!(ctr["command"], json!(["drill"]));
    assert_eq!(
        ctr["args"],
        json!(["agent", "--listen", "0.0.0.0:7600", "--idle-timeout", "10s"])
    );
    assert_eq!(ctr["ports"][0]["containerPort"], 7600);
    assert_eq!(ctr["readinessProbe"]["tcpSocket"]["port"], 7600);
    assert_eq!(ctr["resources"]["requests"]["cpu"], "1");
    assert_eq!(ctr["resources"]["requests"]["memory"], "256Mi");
    assert!(
        ctr["resources"]["limits"].get("cpu").is_none(),
        "no CPU throttling"
    );
    let sc = &ctr["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    // A second create of the same run's vantage is refused, not adopted.
    let again = create(&c, NS, RUN, "primary", 2, IMAGE, Duration::from_secs(900)).await;
    let err = again.unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    assert!(
        err.contains(&format!("create job `{NS}/{}`", job.name)),
        "{err}"
    );
}

#[tokio::test]
async fn preflight_asks_for_every_verb_before_anything_is_created() {
    let (fake, c) = cluster().await;
    preflight(&c, NS).await.unwrap();
    let reviews: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.uri.contains("selfsubjectaccessreviews"))
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["spec"]["resourceAttributes"].clone()
        })
        .collect();
    let asked: Vec<String> = reviews
        .iter()
        .map(|r| {
            assert_eq!(r["namespace"], NS);
            format!(
                "{} {}/{}{}",
                r["verb"].as_str().unwrap(),
                r["group"].as_str().unwrap(),
                r["resource"].as_str().unwrap(),
                r["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            "create batch/jobs",
            "delete batch/jobs",
            "get batch/jobs",
            "list batch/jobs",
            "watch batch/jobs",
            "get /pods",
            "list /pods",
            "create /pods/proxy",
            "get /pods/proxy",
        ]
    );
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());

    fake.deny("create", "pods", "proxy");
    fake.deny("delete", "jobs", "");
    let err = preflight(&c, NS).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AgentJobError::Denied { .. }), "{msg}");
    assert!(msg.contains("context `primary` may not"), "{msg}");
    assert!(
        msg.contains("`delete jobs.batch` in namespace `drill`"),
        "{msg}"
    );
    assert!(
        msg.contains("`create pods/proxy` in namespace `drill`"),
        "{msg}"
    );
    assert!(msg.contains("drill rbac"), "{msg}");
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());
    assert!(fake.jobs(NS).is_empty());
}

#[tokio::test]
async fn agents_are_ready_by_index_and_reached_through_the_pod_proxy() {
    let (fake, c, proxy) = clients().await;
    let (job, pods) = started(&c, "secondary", 3).await;
    let seen = fake.job_pods(NS, &job.name);
    assert_eq!(seen.len(), 3);
    let by_index: Vec<String> = seen.iter().map(|p| p.name.clone()).collect();
    assert_eq!(pods, by_index, "pod names ordered by completion index");
    assert!(seen.iter().all(|p| p.ready));
    assert_eq!(
        seen[0].command,
        [
            "drill",
            "agent",
            "--listen",
            "0.0.0.0:7600",
            "--idle-timeout",
            "10s"
        ]
    );
    for (i, pod) in pods.iter().enumerate() {
        let body = format!("{{\"ack\":{i}}}").into_bytes();
        let answer = proxy_post(&proxy, NS, pod, AGENT_PORT, "/v1/poll", body)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["pod"], json!(pod), "answered by the pod's own process");
        assert_eq!(v["index"], i);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/v1/poll");
        assert_eq!(v["body"], format!("{{\"ack\":{i}}}"));
    }
    let proxied: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.uri.contains("/proxy/"))
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect();
    assert_eq!(
        proxied[0],
        format!(
            "POST /api/v1/namespaces/{NS}/pods/{}:7600/proxy/v1/poll",
            pods[0]
        )
    );
    assert_eq!(fake.agent_calls().len(), 3);
    // A port the agent does not listen on: the API server's 503, as an
    // error at once (not after kube's retries: one request reached it).
    let before = fake.requests().len();
    let err = proxy_post(&proxy, NS, &pods[0], 7601, "v1/hello", b"{}".to_vec())
        .await
        .unwrap_err();
    assert_eq!(fake.requests().len(), before + 1);
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 503);
            assert!(s.message.contains("connection refused"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_named_with_the_job_when_waiting_ends() {
    let (fake, c) = cluster().await;
    fake.unpullable("registry.example/drill:typo");
    let job = create(
        &c,
        NS,
        RUN,
        "primary",
        2,
        "registry.example/drill:typo",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let err = wait_ready(&c, &job, Duration::from_millis(300), POLL)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, AgentJobError::NotReady { ready: 0, .. }),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "agent Job `{NS}/{}` on context `primary`: 0 of 2",
            job.name
        )),
        "{msg}"
    );
    assert!(msg.contains("ImagePullBackOff"), "{msg}");
    assert!(msg.contains("registry.example/drill:typo"), "{msg}");
}

#[tokio::test]
async fn delete_takes_the_pods_with_the_job_and_a_job_already_gone_is_fine() {
    let (fake, c) = cluster().await;
    let (job, _) = started(&c, "primary", 2).await;
    let port_probe = fake.job_pods(NS, &job.name);
    assert_eq!(port_probe.len(), 2);
    delete(&c, NS, &job.name, RUN).await.unwrap();
    assert!(fake.jobs(NS).is_empty());
    assert!(
        fake.job_pods(NS, &job.name).is_empty(),
        "the pods went with the Job (the Job API's default would orphan them)"
    );
    let del = fake
        .mutations()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    let body: Value = serde_json::from_str(&del.body).unwrap();
    assert_eq!(body["propagationPolicy"], "Background");
    assert_eq!(body["preconditions"]["uid"], json!(job.uid));
    // Again (cleanup after the run's own delete): already gone is done.
    delete(&c, NS, &job.name, RUN).await.unwrap();
}

#[tokio::test]
async fn a_job_of_that_name_from_another_run_is_left_alone() {
    let (fake, c) = cluster().await;
    let other = create(
        &c,
        NS,
        "another-run",
        "primary",
        1,
        IMAGE,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // The journal of RUN names the other run's Job (a name clash): not ours.
    delete(&c, NS, &other.name, RUN).await.unwrap();
    assert_eq!(fake.jobs(NS).len(), 1);
    assert!(!fake.mutations().iter().any(|r| r.method == "DELETE"));
}

#[tokio::test]
async fn a_denied_delete_is_an_error_naming_the_job() {
    let (fake, c) = cluster().await;
    let (job, _) = started(&c, "primary", 1).await;
    fake.fail("DELETE", "/jobs/", 403, 1);
    let err = delete(&c, NS, &job.name, RUN)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("delete job `{NS}/{}`: forbidden", job.name)),
        "{err}"
    );
    assert_eq!(fake.jobs(NS).len(), 1);
}

/// The run's own sequence: journalled before the create, journalled
/// deleted after it; a failed delete stays outstanding for `drill cleanup`.
#[tokio::test]
async fn the_job_is_journalled_before_it_is_created_and_closed_when_deleted() {
    let (fake, c) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let run = Entry::Run {
        run_id: RUN.into(),
        pid: std::process::id(),
        scenario: "region-outage".into(),
        target: "production".into(),
        started_at: "2026-11-21T05:00:00Z".into(),
    };
    std::fs::write(&path, format!("{}\n", serde_json::to_string(&run).unwrap())).unwrap();
    let mut j = Journal::reopen(&path).unwrap();
    let kubeconfig = vec![dir.path().join("kubeconfig")];
    let mut made = Vec::new();
    for (i, vantage) in ["primary", "secondary"].iter().enumerate() {
        let plan = jobs::plan(&kubeconfig, "primary", NS, RUN, vantage);
        let id = jobs::journal_id(i);
        jobs::record(&mut j, id, vantage, &plan).unwrap();
        // On disk before the Job exists.
        let open = journal::read(&path).unwrap();
        assert_eq!(open.outstanding.len(), i + 1);
        assert_eq!(open.outstanding[i].1, format!("agents `{vantage}`"));
        assert!(
            !fake
                .jobs(NS)
                .iter()
                .any(|x| x["metadata"]["name"] == json!(job_name(RUN, vantage)))
        );
        create(&c, NS, RUN, vantage, 1, IMAGE, Duration::from_secs(60))
            .await
            .unwrap();
        made.push((id, plan));
    }
    fake.fail("DELETE", "/jobs/", 403, 1);
    let (id0, plan0) = &made[0];
    let err = jobs::remove(&mut j, *id0, &c, plan0).await.unwrap_err();
    assert!(err.contains("forbidden"), "{err}");
    let manual = jobs::manual_instruction(plan0, &err, RUN);
    let name = job_name(RUN, "primary");
    assert!(
        manual.contains(&format!(
            "kubectl --context primary -n {NS} delete job {name} --cascade=background"
        )),
        "{manual}"
    );
    assert!(
        manual.contains(&format!("drill cleanup --resolved {RUN}")),
        "{manual}"
    );
    let (id1, plan1) = &made[1];
    jobs::remove(&mut j, *id1, &c, plan1).await.unwrap();
    assert_eq!(
        j.outstanding(),
        1,
        "the Job not deleted keeps the journal open"
    );
    let open = journal::read(&path).unwrap();
    assert_eq!(open.outstanding.len(), 1);
    assert_eq!(open.outstanding[0].2, *plan0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"type\":\"agents\""), "{text}");
    assert!(text.contains("\"kind\":\"agent-job\""), "{text}");
    assert_eq!(fake.jobs(NS).len(), 1);
    jobs::remove(&mut j, *id0, &c, plan0).await.unwrap();
    assert_eq!(j.outstanding(), 0);
    assert!(fake.jobs(NS).is_empty());
}

/// Stands in for `drill agent` here (a unit test cannot name drill's binary;
/// tests/k8s_agents.rs runs the real one as the pods' process): the same
/// arguments and `listening on` line, a process of its own that answers
/// each POST with its argv, index, pid, path and body.
const STAND_IN: &str = r#"
import http.server, json, os, sys
args = sys.argv[1:]
host, port = args[args.index("--listen") + 1].rsplit(":", 1)
class Agent(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        out = json.dumps({"argv": args, "index": int(os.environ["JOB_COMPLETION_INDEX"]),
                          "pod": os.environ["HOSTNAME"], "pid": os.getpid(),
                          "path": self.path, "body": body}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
server = http.server.HTTPServer((host, int(port)), Agent)
print(f"listening on {host}:{server.server_address[1]}", flush=True)
server.serve_forever()
"#;

#[tokio::test]
async fn the_proxy_reaches_the_process_the_kubelet_ran_from_the_jobs_command() {
    let (fake, c, proxy) = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("agent.py");
    std::fs::write(&script, STAND_IN).unwrap();
    fake.kubelet_runs("python3", &[script.to_str().unwrap()]);
    let (job, pods) = started(&c, "primary", 2).await;
    let mut pids = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let answer = proxy_post(&proxy, NS, pod, AGENT_PORT, "/v1/hello", b"{}".to_vec())
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            v["argv"],
            json!(["agent", "--listen", "127.0.0.1:0", "--idle-timeout", "10s"]),
            "the Job's args, listening on loopback"
        );
        assert_eq!(v["index"], i, "JOB_COMPLETION_INDEX of its pod");
        assert_eq!(v["pod"], json!(pod));
        assert_eq!(v["path"], "/v1/hello");
        assert_eq!(v["body"], "{}");
        let pid = v["pid"].as_u64().unwrap() as u32;
        assert_ne!(pid, std::process::id(), "a process of its own");
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
    delete(&c, NS, &job.name, RUN).await.unwrap();
    // The processes end with their pods.
    let gone = async {
        while pids.iter().any(|&p| journal::pid_alive(p)) {
            tokio::time::sleep(POLL).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("the pods' processes were killed with the Job");
    let err = proxy_post(&proxy, NS, &pods[0], AGENT_PORT, "/v1/poll", b"{}".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

/// The runner's call: journalled first, then up and reachable; a launch
/// that fails still hands back what it journalled, and removing both
/// leaves no Job and nothing outstanding.
#[tokio::test]
async fn launch_journals_first_and_whatever_it_journalled_is_removed() {
    let (fake, c) = cluster().await;
    fake.unpullable("registry.example/drill:missing");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "clusters: [{{name: c, cluster: {{server: '{}'}}}}]\n\
             contexts: [{{name: primary, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n",
            fake.url()
        ),
    )
    .unwrap();
    let path = dir.path().join("run.jsonl");
    let run = Entry::Run {
        run_id: RUN.into(),
        pid: std::process::id(),
        scenario: "region-outage".into(),
        target: "production".into(),
        started_at: "2026-11-21T05:00:00Z".into(),
    };
    std::fs::write(&path, format!("{}\n", serde_json::to_string(&run).unwrap())).unwrap();
    let mut j = Journal::reopen(&path).unwrap();
    let kc = [kubeconfig];
    let good = jobs::VantageJob {
        vantage: "primary",
        namespace: NS,
        agents: 2,
        image: IMAGE,
        planned: Duration::from_secs(60),
    };
    let (first, up) = jobs::launch(&mut j, 0, &kc, &c, RUN, &good, Duration::from_secs(10)).await;
    let up = up.unwrap();
    assert_eq!(up.pods.len(), 2);
    let answer = proxy_post(
        &up.proxy,
        NS,
        &up.pods[1],
        AGENT_PORT,
        "/v1/hello",
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).unwrap()["index"],
        1
    );
    let bad = jobs::VantageJob {
        vantage: "secondary",
        image: "registry.example/drill:missing",
        ..good
    };
    let (second, down) =
        jobs::launch(&mut j, 1, &kc, &c, RUN, &bad, Duration::from_millis(300)).await;
    let err = down.err().unwrap();
    assert!(err.contains("ImagePullBackOff"), "{err}");
    assert_eq!(j.outstanding(), 2, "both Jobs journalled");
    assert_eq!(fake.jobs(NS).len(), 2);
    for journalled in [first.unwrap(), second.unwrap()] {
        jobs::remove(&mut j, journalled.id, &c, &journalled.plan)
            .await
            .unwrap();
    }
    assert_eq!(j.outstanding(), 0);
    assert!(fake.jobs(NS).is_empty());
}

#[tokio::test]
async fn a_job_the_controller_failed_ends_the_wait_with_its_reason() {
    let (fake, c) = cluster().await;
    fake.unpullable("registry.example/drill:slow");
    let job = create(
        &c,
        NS,
        RUN,
        "primary",
        1,
        "registry.example/drill:slow",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    fake.fail_job(
        NS,
        &job.name,
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    );
    // Long before the timeout: a failed Job never becomes ready.
    let err = wait_ready(&c, &job, Duration::from_secs(600), POLL)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AgentJobError::Failed { .. }), "{msg}");
    assert!(
        msg.contains(&format!(
            "agent Job `{NS}/{}` on context `primary` failed: DeadlineExceeded: Job was active longer than specified deadline",
            job.name
        )),
        "{msg}"
    );
}
