//! The safety promise end to end on the lab: every fault action × every way
//! out ends with nothing injected and the journal closed; a failed revert
//! keeps its journal entry open until `drill cleanup` (or a person) restores
//! it; an unwritable report folder stops the drill before anything starts.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Sandbox, fixture_arg, journal_entries, lab_lock, lab_processes, run_id_of, wait_until,
};
use serde_json::Value;

const FAULTS: [&str; 6] = ["cmd", "slow", "errors", "down", "kill", "outage"];

fn matrix() -> String {
    fixture_arg("../safety/matrix.toml")
}

/// Number of `kind` entries (`inject`, `injected`) in the run's open journal.
fn entries(sb: &Sandbox, kind: &str) -> usize {
    sb.open_journals().first().map_or(0, |j| {
        journal_entries(j)
            .iter()
            .filter(|e| e["type"] == kind)
            .count()
    })
}

/// After a drill: nothing of it is left anywhere a user would look.
fn assert_left_nothing(sb: &Sandbox, run_id: &str, how: &str) {
    assert!(
        !sb.path("cmd-broken").exists(),
        "{how}: the command fault was left injected"
    );
    assert!(
        sb.open_journals().is_empty(),
        "{how}: a journal was left open"
    );
    assert_eq!(
        lab_processes(run_id),
        Vec::<u32>::new(),
        "{how}: lab processes left"
    );
}

/// Every fault that started ended restored (a self-healing one may have
/// been cut short by the stop: the lab goes with the run).
fn assert_faults_restored(r: &Value, how: &str) {
    for f in r["faults"].as_array().expect("faults") {
        let ended = f["ended"].as_str().unwrap_or_default();
        assert!(
            matches!(
                ended,
                "reverted" | "healed" | "not-healed" | "inject-failed, reverted"
            ),
            "{how}: fault {} ended `{ended}`",
            f["name"]
        );
    }
}

/// Signals the run while the `k`-th fault (1-based) is in place: its inject
/// returned (journalled `injected`). A signal between the journal line and
/// the end of the inject is `kill_9_during_an_inject_command_...`'s case.
fn stop_during(k: usize, sig: i32) -> (Sandbox, common::Outcome, String) {
    let sb = Sandbox::new();
    let mut run = sb.spawn(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &matrix(),
    ]);
    let run_id = sb.wait_for_run_id(&mut run);
    wait_until(
        Duration::from_secs(60),
        "the fault to be journalled",
        || {
            run.assert_running("before the fault");
            entries(&sb, "injected") >= k
        },
    );
    run.signal(sig);
    let out = run.wait(Duration::from_secs(60));
    (sb, out, run_id)
}

#[test]
fn every_lab_fault_is_reverted_on_sigint_and_sigterm() {
    let _lab = lab_lock();
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        for (k, fault) in FAULTS.iter().enumerate() {
            let how = format!("{name} during `{fault}`");
            let (sb, out, run_id) = stop_during(k + 1, sig);
            assert_eq!(out.code, Some(3), "{how}\n{out}");
            let r = sb.results();
            assert_eq!(r["verdict"], "aborted", "{how}");
            assert_eq!(r["faults"].as_array().map(Vec::len), Some(k + 1), "{how}");
            assert_faults_restored(&r, &how);
            assert_left_nothing(&sb, &run_id, &how);
        }
    }
}

#[test]
fn every_lab_fault_is_reverted_by_cleanup_after_kill_9() {
    let _lab = lab_lock();
    for (k, fault) in FAULTS.iter().enumerate() {
        let how = format!("kill -9 during `{fault}`");
        let (sb, out, run_id) = stop_during(k + 1, libc::SIGKILL);
        assert_eq!(out.code, None, "{how}\n{out}");
        assert_eq!(
            sb.open_journals().len(),
            1,
            "{how}: the journal must outlive the run"
        );
        wait_until(
            Duration::from_secs(5),
            "the lab to exit with its runner",
            || lab_processes(&run_id).is_empty(),
        );
        let clean = sb.run(&["cleanup"]);
        assert_eq!(clean.code, Some(0), "{how}\n{clean}");
        assert_left_nothing(&sb, &run_id, &how);
        assert_eq!(sb.done_journals().len(), 1, "{how}");
    }
}

#[test]
fn every_lab_fault_is_reverted_at_a_normal_end_a_failed_check_and_an_abort() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let plain = std::fs::read_to_string(common::fixture("../safety/matrix.toml")).unwrap();
    let failing = format!(
        "{plain}\n[[checks]]\nkind = \"latency\"\nphase = \"fault\"\npercentile = \"p50\"\nmax = \"1ms\"\n"
    );
    // The abort fault first, at 100%, with an abort condition it must trip.
    let aborting = plain.replace("percent = \"50%\"", "percent = \"100%\"").replace(
        "[[faults]]\nname = \"cmd\"",
        "[[abort]]\navailability_below = \"90%\"\nover = \"500ms\"\nafter = \"0s\"\n\n[[faults]]\nname = \"cmd\"",
    );
    for (file, body, codes, how) in [
        ("normal.toml", plain.clone(), &[0, 1][..], "normal end"),
        ("failing.toml", failing, &[1][..], "failed check"),
        ("aborting.toml", aborting, &[3][..], "abort condition"),
    ] {
        let path = sb.write(file, &body);
        let report = sb.path(&format!("report-{file}"));
        let out = sb.run(&[
            "run",
            "--quiet",
            "--report-dir",
            report.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(codes.contains(&out.code.unwrap_or(-1)), "{how}\n{out}");
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
                .unwrap();
        if how == "abort condition" {
            let reason = r["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("abort condition"), "{how}: {reason}");
        } else {
            assert_eq!(r["faults"].as_array().map(Vec::len), Some(6), "{how}");
        }
        assert_faults_restored(&r, how);
        let run_id = r["run_id"].as_str().unwrap().to_string();
        assert_left_nothing(&sb, &run_id, how);
    }
}

#[test]
fn an_inject_that_fails_is_reverted_and_aborts() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let body = std::fs::read_to_string(common::fixture("../safety/matrix.toml"))
        .unwrap()
        .replace(
            "inject = \"touch cmd-broken\"",
            "inject = \"touch cmd-broken; exit 9\"",
        );
    let path = sb.write("inject-fails.toml", &body);
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let r = sb.results();
    assert_eq!(
        r["faults"][0]["ended"], "inject-failed, reverted",
        "{:#}",
        r["faults"]
    );
    assert_left_nothing(&sb, r["run_id"].as_str().unwrap(), "inject failed");
}

/// kill -9 while a command fault's inject is still running: the journal
/// holds the inject and no `injected`. The revert (`rm cmd-broken`) fails
/// since the inject never made the file; cleanup keeps the journal open and
/// exits 4 (drill cannot know), but says the fault may never have taken
/// effect, and the person closes it with `--resolved`.
#[test]
fn kill_9_during_an_inject_command_leaves_a_cleanup_that_says_it_may_never_have_run() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let plain = std::fs::read_to_string(common::fixture("../safety/matrix.toml")).unwrap();
    let slow = plain.replace(
        "inject = \"touch cmd-broken\"",
        "inject = \"sleep 2 && echo late > inject-ended\"",
    );
    assert_ne!(slow, plain);
    let file = sb.write("slow-inject.toml", &slow);
    let mut run = sb.spawn(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        file.to_str().unwrap(),
    ]);
    let run_id = sb.wait_for_run_id(&mut run);
    wait_until(
        Duration::from_secs(60),
        "the inject to be journalled",
        || {
            run.assert_running("before the inject");
            entries(&sb, "inject") >= 1
        },
    );
    run.signal(libc::SIGKILL);
    run.wait(Duration::from_secs(10));
    assert_eq!(entries(&sb, "injected"), 0, "the inject had not returned");
    wait_until(
        Duration::from_secs(5),
        "the lab to exit with its runner",
        || lab_processes(&run_id).is_empty(),
    );
    let clean = sb.run(&["cleanup"]);
    assert_eq!(clean.code, Some(4), "{clean}");
    assert!(
        clean.stdout.contains("FAILED to revert `cmd`")
            && clean.stdout.contains("no record that this inject finished")
            && clean.stdout.contains("may never have taken effect"),
        "{clean}"
    );
    assert_eq!(sb.open_journals().len(), 1, "{clean}");
    let done = sb.run(&["cleanup", "--resolved", &run_id]);
    assert_eq!(done.code, Some(0), "{done}");
    assert!(sb.open_journals().is_empty());
    // The inject command was not drill's to stop once drill was gone: it
    // ends by itself (docs/safety.md says so).
    wait_until(
        Duration::from_secs(10),
        "the orphaned inject to end",
        || sb.path("inject-ended").exists(),
    );
}

/// Defect: a failed revert used to move the journal to done/, so cleanup
/// said "nothing to clean up" with the fault still in place.
#[test]
fn a_failed_revert_keeps_the_journal_open_until_cleanup_restores_it() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("../safety/revert-fails.toml"),
    ]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("MANUAL ACTION REQUIRED"), "{out}");
    assert!(sb.path("broken").exists());
    let r = sb.results();
    assert_eq!(r["faults"][0]["ended"], "revert-failed");
    let run_id = r["run_id"].as_str().unwrap().to_string();
    let open = sb.open_journals();
    assert_eq!(
        open.len(),
        1,
        "the journal closed with the fault still injected"
    );
    assert_eq!(run_id_of(&open[0]), run_id);

    let dry = sb.run(&["cleanup", "--dry-run"]);
    assert!(dry.stdout.contains("would revert `stuck`"), "{dry}");
    // Still failing: cleanup says so, exits 4 and keeps the journal.
    let again = sb.run(&["cleanup"]);
    assert_eq!(again.code, Some(4), "{again}");
    assert_eq!(sb.open_journals().len(), 1, "{again}");
    // Once the revert can work, cleanup restores it and closes the journal.
    sb.write("allow-revert", "");
    let fixed = sb.run(&["cleanup"]);
    assert_eq!(fixed.code, Some(0), "{fixed}");
    assert!(!sb.path("broken").exists(), "{fixed}");
    assert!(sb.open_journals().is_empty());
    assert_eq!(sb.done_journals().len(), 1);
}

#[test]
fn a_person_closes_a_journal_they_restored_by_hand() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        &fixture_arg("../safety/revert-fails.toml"),
    ]);
    assert_eq!(out.code, Some(4), "{out}");
    let run_id = sb.results()["run_id"].as_str().unwrap().to_string();
    std::fs::remove_file(sb.path("broken")).unwrap();
    let unknown = sb.run(&["cleanup", "--resolved", "no-such-run"]);
    assert_eq!(unknown.code, Some(2), "{unknown}");
    let done = sb.run(&["cleanup", "--resolved", &run_id]);
    assert_eq!(done.code, Some(0), "{done}");
    assert!(done.stdout.contains("`stuck` marked resolved"), "{done}");
    assert!(sb.open_journals().is_empty());
    let entries = journal_entries(&sb.done_journals()[0]);
    assert!(
        entries.iter().any(|e| e["type"] == "resolved"),
        "{entries:#?}"
    );
}

/// Defect: `--report-dir` at a file ran the whole drill, injected, and only
/// then failed (exit 3).
#[test]
fn an_unwritable_report_folder_stops_before_anything_starts() {
    let sb = Sandbox::new();
    let file = sb.write("not-a-folder", "x");
    let ro = sb.path("read-only");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    let cases = [file.clone(), file.join("sub"), ro.join("reports")];
    for dir in &cases {
        // Root ignores permissions: skip the read-only case there.
        if dir.starts_with(&ro) && unsafe { libc::geteuid() } == 0 {
            continue;
        }
        let out = sb.run(&[
            "run",
            "--quiet",
            "--report-dir",
            dir.to_str().unwrap(),
            &fixture_arg("command-fault.toml"),
        ]);
        assert_eq!(out.code, Some(2), "{}\n{out}", dir.display());
        assert!(out.stderr.contains("--report-dir"), "{out}");
        assert!(out.stderr.contains("hint:"), "{out}");
        assert!(!sb.path("broken").exists(), "a fault was injected");
        assert!(
            sb.open_journals().is_empty() && sb.done_journals().is_empty(),
            "a journal was written"
        );
    }
    assert!(Path::new(&file).is_file());
}
