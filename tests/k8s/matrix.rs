//! The revert matrix: every Kubernetes fault action × every way out of a
//! drill, each run through the `drill` binary against its own two fake
//! clusters, each required to end with both clusters as they were (objects
//! compared without resourceVersion; drill's run annotation must be gone).
//! The entry point answers 503 while the primary is impaired, so checks and
//! abort conditions see the faults.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::process::Command;

use crate::Pair;
use crate::k8s_support::{FakeCluster, Timing, serve_while_healthy};

/// A fault action as the scenario writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Delete,
    Down,
    Latency,
    Abort,
    RegionOutage,
}

pub const ACTIONS: [Action; 5] = [
    Action::Delete,
    Action::Down,
    Action::Latency,
    Action::Abort,
    Action::RegionOutage,
];

/// How a drill ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WayOut {
    NormalEnd,
    FailedCheck,
    AbortCondition,
    Sigint,
    Sigterm,
    /// The API server refuses one of the inject's writes (403) midway.
    ApiError,
    /// kill -9 mid-fault, then `drill cleanup`.
    Kill9Cleanup,
    /// Someone else edits the touched objects (not drill's change) mid-fault.
    EditElsewhere,
    /// Someone else changes drill's own injected fault mid-fault.
    EditOwnFault,
}

/// Every way out where drill must restore both clusters by itself.
pub const WAYS_OUT: [WayOut; 8] = [
    WayOut::NormalEnd,
    WayOut::FailedCheck,
    WayOut::AbortCondition,
    WayOut::ApiError,
    WayOut::Sigint,
    WayOut::Sigterm,
    WayOut::Kill9Cleanup,
    WayOut::EditElsewhere,
];

const RUN_ANNOTATION: &str = "drill.dev/run-id";

impl Action {
    /// The fault's keys; `long` for runs the test ends itself.
    fn fault_toml(self, long: bool) -> String {
        let d = if long { "30s" } else { "1500ms" };
        match self {
            Action::Delete => "component = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\ncount = 1\nuntil = \"healed\"\ntimeout = \"30s\"".into(),
            Action::Down => format!("component = \"reviews\"\nregion = \"primary\"\naction = \"down\"\nduration = \"{d}\""),
            Action::Latency => format!("component = \"reviews\"\nregion = \"primary\"\naction = \"latency\"\ndelay = \"100ms\"\nduration = \"{d}\""),
            Action::Abort => format!("component = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nstatus = 503\nduration = \"{d}\""),
            Action::RegionOutage => format!("region = \"primary\"\naction = \"region-outage\"\nduration = \"{d}\""),
        }
    }

    /// Drill's change is all on the primary: the run is mid-fault.
    fn injected(self, c: &FakeCluster) -> bool {
        match self {
            Action::Delete => c.mutations().iter().any(|m| m.method == "DELETE"),
            // Deployments are scaled in name order; reviews-v3 comes last.
            Action::Down | Action::RegionOutage => c.replicas("bookinfo", "reviews-v3") == 0,
            Action::Latency | Action::Abort => {
                c.vs("bookinfo", "reviews").1.contains_key(RUN_ANNOTATION)
            }
        }
    }

    /// Makes the API server refuse the inject's last write: a region outage
    /// or down is then half injected and must be undone all the same.
    fn refuse_inject(self, c: &FakeCluster) {
        match self {
            Action::Delete => c.fail("DELETE", "/pods/", 403, 1),
            Action::Down | Action::RegionOutage => {
                c.fail("PUT", "deployments/reviews-v3/scale", 403, 1)
            }
            Action::Latency | Action::Abort => c.fail("PUT", "virtualservices/reviews", 403, 1),
        }
    }

    /// Someone else's edit of the touched objects, not of drill's change,
    /// and the primary's objects as they must end: `before` plus that edit.
    fn edit_elsewhere(self, c: &FakeCluster, before: &mut Objects) {
        match self {
            Action::Latency | Action::Abort => {
                c.edit_vs("bookinfo", "reviews", |s| {
                    s["http"][0]["retries"]["attempts"] = json!(5)
                });
                c.annotate_vs("bookinfo", "reviews", "owner", Some("team-reviews"));
                let vs = before.get_mut("virtualservice/bookinfo/reviews").unwrap();
                vs["spec"]["http"][0]["retries"]["attempts"] = json!(5);
                vs["annotations"]["owner"] = json!("team-reviews");
            }
            Action::Delete | Action::Down | Action::RegionOutage => {
                c.annotate_deployment_by_hand("bookinfo", "reviews-v2", "owner", "team-reviews");
                before.get_mut("deployment/bookinfo/reviews-v2").unwrap()["annotations"]["owner"] =
                    json!("team-reviews");
            }
        }
    }

    /// Someone else changes drill's own change; `None` for a delete, which
    /// has nothing of drill's left to change.
    fn edit_own(self, c: &FakeCluster) -> Option<&'static str> {
        match self {
            Action::Delete => None,
            Action::Down | Action::RegionOutage => {
                c.scale_by_hand("bookinfo", "reviews-v1", 2);
                Some("deployment bookinfo/reviews-v1")
            }
            Action::Latency => {
                c.edit_vs("bookinfo", "reviews", |s| {
                    s["http"][0]["fault"]["delay"]["fixedDelay"] = json!("9s")
                });
                Some("virtualservice bookinfo/reviews")
            }
            Action::Abort => {
                c.edit_vs("bookinfo", "reviews", |s| {
                    s["http"][0]["fault"]["abort"]["httpStatus"] = json!(418)
                });
                Some("virtualservice bookinfo/reviews")
            }
        }
    }

    /// What a person does after reading drill's instruction: puts the object
    /// back as it was before the drill (drill's annotation aside).
    fn restore_by_hand(self, c: &FakeCluster) {
        match self {
            Action::Delete => {}
            Action::Down | Action::RegionOutage => c.scale_by_hand("bookinfo", "reviews-v1", 1),
            Action::Latency | Action::Abort => c.edit_vs("bookinfo", "reviews", |s| {
                s["http"][0].as_object_mut().unwrap().remove("fault");
            }),
        }
    }
}

type Objects = std::collections::BTreeMap<String, serde_json::Value>;

impl WayOut {
    fn extra_toml(self) -> &'static str {
        match self {
            WayOut::FailedCheck => {
                "[[checks]]\nkind = \"availability\"\nphase = \"fault\"\nmin = \"99%\"\n"
            }
            WayOut::AbortCondition => {
                "[[abort]]\navailability_below = \"90%\"\nover = \"300ms\"\nafter = \"0s\"\n"
            }
            _ => "",
        }
    }

    fn long(self) -> bool {
        matches!(
            self,
            WayOut::Sigint | WayOut::Sigterm | WayOut::Kill9Cleanup | WayOut::AbortCondition
        )
    }

    fn exit_code(self) -> Option<i32> {
        match self {
            WayOut::NormalEnd | WayOut::EditElsewhere => Some(0),
            WayOut::FailedCheck => Some(1),
            WayOut::AbortCondition | WayOut::ApiError | WayOut::Sigint | WayOut::Sigterm => Some(3),
            WayOut::Kill9Cleanup => None,
            WayOut::EditOwnFault => Some(4),
        }
    }
}

pub fn scenario(action: Action, way: WayOut) -> String {
    format!(
        r#"description = "revert matrix: {action:?} x {way:?}"

[load]
path = "/productpage"
rate = 40
timeout = "1s"
# Six drills and their fake clusters share the machine: the matrix judges
# reverts and exit codes, not the generator's timing (tests/generator.rs).
max_send_lag = "2s"

[phases]
warmup = "200ms"
baseline = "600ms"
recovery = "500ms"

[recovery]
window = "100ms"
ratio = "99%"
hold = "200ms"

[[faults]]
name = "matrix"
{}

{}"#,
        action.fault_toml(way.long()),
        way.extra_toml()
    )
}

/// A fresh pair whose entry point follows the primary's health. Deleted
/// pods come back after 1.2 s, so a delete lasts long enough to be seen.
pub async fn pair() -> Pair {
    let timing = Timing {
        recreate_after: Duration::from_millis(1200),
        ready_after: Duration::from_millis(200),
    };
    Pair::start_with("", timing, |c| {
        format!("http://{}", serve_while_healthy(c.clone()))
    })
    .await
}

/// `drill run` of a scenario file on the pair's target.
pub fn drill_run(p: &Pair, state: &Path, scenario: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drill"));
    c.current_dir(p.dir.path())
        .env("DRILL_STATE_DIR", state)
        .args(["--targets", "drill.toml", "run"])
        .arg(scenario)
        .args(["--target", "two-regions", "--seed", "7", "--quiet"])
        .arg("--report-dir")
        .arg(state.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn cleanup(p: &Pair, state: &Path) -> Output {
    cleanup_with(p, state, &[]).await
}

/// `drill cleanup` with these arguments, on the pair's state directory.
pub async fn cleanup_with(p: &Pair, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drill"))
        .current_dir(p.dir.path())
        .env("DRILL_STATE_DIR", state)
        .arg("cleanup")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

fn journals(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default()
}

fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Runs one cell of the matrix; `Err` says what went wrong.
pub async fn run_case(action: Action, way: WayOut) -> Result<(), String> {
    let p = pair().await;
    let (mut want_p, want_s) = (p.primary.objects(), p.secondary.objects());
    let state = p.dir.path().join("state");
    let file = p.dir.path().join("case.toml");
    std::fs::write(&file, scenario(action, way)).unwrap();
    if way == WayOut::ApiError {
        action.refuse_inject(&p.primary);
    }
    let child = drill_run(&p, &state, &file).spawn().unwrap();
    let pid = child.id().unwrap() as i32;
    let mut own_object = None;
    let mid_fault = matches!(
        way,
        WayOut::Sigint
            | WayOut::Sigterm
            | WayOut::Kill9Cleanup
            | WayOut::EditElsewhere
            | WayOut::EditOwnFault
    );
    if mid_fault {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !action.injected(&p.primary) {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the fault was never injected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match way {
            // SAFETY: kill(2) on the drill child this case spawned.
            WayOut::Sigint => unsafe { libc::kill(pid, libc::SIGINT) },
            WayOut::Sigterm => unsafe { libc::kill(pid, libc::SIGTERM) },
            WayOut::Kill9Cleanup => unsafe { libc::kill(pid, libc::SIGKILL) },
            WayOut::EditElsewhere => {
                action.edit_elsewhere(&p.primary, &mut want_p);
                0
            }
            WayOut::EditOwnFault => {
                own_object = action.edit_own(&p.primary);
                0
            }
            _ => 0,
        };
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| "drill did not end within 60 s".to_string())?
        .unwrap();
    ensure!(
        out.status.code() == way.exit_code(),
        "expected exit {:?}; {}",
        way.exit_code(),
        shown(&out)
    );
    let open_dir = state.join("journal");
    if way == WayOut::Kill9Cleanup {
        ensure!(
            journals(&open_dir).len() == 1,
            "a killed run leaves its journal open: {:?}",
            journals(&open_dir)
        );
        if action != Action::Delete {
            ensure!(
                p.primary.objects() != want_p,
                "nothing should have reverted a killed run"
            );
        }
        let c = cleanup(&p, &state).await;
        ensure!(c.status.code() == Some(0), "cleanup: {}", shown(&c));
    }
    if way == WayOut::EditOwnFault {
        let object = own_object.expect("edit-own rows have an object");
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            stderr.contains("MANUAL ACTION REQUIRED") && stderr.contains(object),
            "the instruction names {object}: {}",
            shown(&out)
        );
        // [needs the journal fix] the failed revert keeps its entry open.
        ensure!(
            journals(&open_dir).len() == 1,
            "[needs the journal fix] journal still open after exit 4: open {:?}, done {:?}",
            journals(&open_dir),
            journals(&open_dir.join("done"))
        );
        // [needs the journal fix] cleanup retries, still cannot, says so.
        let c = cleanup(&p, &state).await;
        ensure!(
            c.status.code() == Some(4) && journals(&open_dir).len() == 1,
            "[needs the journal fix] cleanup before a person restored it: {}",
            shown(&c)
        );
        action.restore_by_hand(&p.primary);
        let c = cleanup(&p, &state).await;
        ensure!(
            c.status.code() == Some(0),
            "cleanup after a person restored it: {}",
            shown(&c)
        );
    }
    ensure!(
        journals(&open_dir).is_empty(),
        "journal left open: {:?}",
        journals(&open_dir)
    );
    // A deleted pod's replacement is awaited by the run (until = healed)
    // or, after kill -9, comes back by itself; the objects never changed.
    let now = p.primary.objects();
    ensure!(
        now == want_p,
        "primary not as it was:\n{}",
        diff(&want_p, &now)
    );
    ensure!(
        p.secondary.objects() == want_s,
        "the secondary changed:\n{}",
        diff(&want_s, &p.secondary.objects())
    );
    ensure!(
        p.other.requests().is_empty(),
        "the context the target does not name was contacted"
    );
    // Every way out releases the run's claims, an inject the API server
    // refused after the Lease was marked included: a Lease left marked
    // would refuse every later drill on these objects.
    let held: Vec<_> = [&p.primary, &p.secondary]
        .into_iter()
        .flat_map(|c| c.leases())
        .collect();
    ensure!(held.is_empty(), "claims left held: {held:?}");
    Ok(())
}

fn diff(want: &Objects, got: &Objects) -> String {
    want.iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "  {k}: want {v}\n  {k}:  got {}",
                got.get(k).map_or("(gone)".into(), |g| g.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the cells, a few at a time, and lists every one that failed.
pub async fn run_all(cells: Vec<(Action, WayOut)>) -> Vec<String> {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    let mut set = tokio::task::JoinSet::new();
    for (action, way) in cells {
        let gate = gate.clone();
        set.spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            (action, way, run_case(action, way).await)
        });
    }
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((a, w, Err(e))) => failed.push(format!("{a:?} x {w:?}: {e}")),
            Ok(_) => {}
            Err(e) => failed.push(format!("a case panicked: {e}")),
        }
    }
    failed.sort();
    failed
}

/// Every journal line a run's state directory holds (open and done).
fn journal_text(state: &Path) -> String {
    let dir = state.join("journal");
    journals(&dir)
        .into_iter()
        .chain(journals(&dir.join("done")))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// The concurrency column: two `drill run`s of the same fault on the same
/// objects, each with its own state directory, started together or the
/// second once the first has injected. Exactly one runs its fault; the other
/// exits 3 naming the holder, with no MANUAL ACTION and no journalled
/// inject; both clusters end exactly as they were and no claim is left.
pub async fn run_race(action: Action, mid_fault: bool) -> Result<(), String> {
    let p = pair().await;
    let (want_p, want_s) = (p.primary.objects(), p.secondary.objects());
    let file = p.dir.path().join("case.toml");
    std::fs::write(&file, scenario(action, WayOut::NormalEnd)).unwrap();
    let (sa, sb) = (p.dir.path().join("state-a"), p.dir.path().join("state-b"));
    let a = drill_run(&p, &sa, &file).spawn().unwrap();
    if mid_fault {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !action.injected(&p.primary) {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the first run never injected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let b = drill_run(&p, &sb, &file).spawn().unwrap();
    let wait = |c: tokio::process::Child| async move {
        tokio::time::timeout(Duration::from_secs(60), c.wait_with_output())
            .await
            .map_err(|_| "drill did not end within 60 s".to_string())
            .map(|o| o.unwrap())
    };
    let (oa, ob) = tokio::join!(wait(a), wait(b));
    let (oa, ob) = (oa?, ob?);
    let codes = (oa.status.code(), ob.status.code());
    // The winner passes, or is inconclusive (5) when a loaded machine
    // delays its load generator: what it measures is not the point here.
    let won = |c: Option<i32>| matches!(c, Some(0) | Some(5));
    let (loser, loser_state) = match codes {
        (a, Some(3)) if won(a) => (&ob, &sb),
        (Some(3), b) if won(b) && !mid_fault => (&oa, &sa),
        _ => {
            return Err(format!(
                "want one run 0 and one 3: a {}\nb {}",
                shown(&oa),
                shown(&ob)
            ));
        }
    };
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&loser.stdout),
        String::from_utf8_lossy(&loser.stderr)
    );
    ensure!(
        err.contains("held by drill run") && !err.contains("MANUAL ACTION"),
        "the refused run names the holder, and asks nothing of a person: {}",
        shown(loser)
    );
    ensure!(
        !journal_text(loser_state).contains("\"type\":\"inject\""),
        "the refused run journalled an inject: {}",
        journal_text(loser_state)
    );
    for s in [&sa, &sb] {
        ensure!(
            journals(&s.join("journal")).is_empty(),
            "journal left open in {}",
            s.display()
        );
    }
    let now = p.primary.objects();
    ensure!(
        now == want_p,
        "primary not as it was:\n{}",
        diff(&want_p, &now)
    );
    ensure!(
        p.secondary.objects() == want_s,
        "the secondary changed:\n{}",
        diff(&want_s, &p.secondary.objects())
    );
    ensure!(
        p.primary.leases().is_empty(),
        "claims left: {:?}",
        p.primary.leases()
    );
    Ok(())
}
