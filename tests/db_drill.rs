//! Database drills through the binary against the lab's real PostgreSQL
//! pair: what a user running `drill run db-switchover` sees.

mod common;

use common::{Sandbox, lab_lock};
use serde_json::Value;
use std::time::Duration;

fn db_fixture(name: &str) -> String {
    format!("{}/fixtures/db/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn drill(sb: &Sandbox, scenario: &str, target: &str) -> (Option<i32>, String) {
    let out = sb.run(&[
        "--targets",
        &db_fixture("targets.toml"),
        "run",
        &db_fixture(&format!("{scenario}.toml")),
        "--target",
        target,
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
    ]);
    (out.code, out.to_string())
}

fn check<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn switchover_loses_nothing_and_reports_rpo_zero() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, out) = drill(&sb, "switchover", "async-lab");
    assert_eq!(code, Some(0), "{out}");
    let r = sb.results();
    let rpo = &r["rpo"];
    assert_eq!(rpo["lost_writes"], 0, "{rpo:#}");
    assert_eq!(rpo["rpo_s"], 0.0, "{rpo:#}");
    assert!(
        rpo["acknowledged"].as_u64().unwrap() > 200,
        "writes flowed: {rpo:#}"
    );
    let w = rpo["write_rto_s"]
        .as_f64()
        .expect("writes resumed on the new primary");
    assert!(w > 0.0 && w < 10.0, "write rto {w}");
    assert_eq!(
        check(&r, "rpo")["message"]
            .as_str()
            .unwrap()
            .split(' ')
            .take(4)
            .collect::<Vec<_>>()
            .join(" "),
        "lost writes 0 ≤"
    );
    assert_eq!(r["faults"][0]["ended"], "completed");
    let md = std::fs::read_to_string(sb.report_dir().join("report.md")).unwrap();
    assert!(md.contains("RPO"), "the report has an RPO section");
}

#[test]
fn synchronous_failover_loses_nothing() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, out) = drill(&sb, "failover", "sync-lab");
    assert_eq!(code, Some(0), "{out}");
    let r = sb.results();
    assert_eq!(r["rpo"]["lost_writes"], 0, "{:#}", r["rpo"]);
    assert!(r["rpo"]["write_rto_s"].as_f64().is_some());
    assert_eq!(r["settings"]["target.lab.database.synchronous"], "true");
    // The reader probe ran beside the writes and came back after the failover.
    let reads = &r["rpo"]["reads"];
    assert!(reads["ok"].as_u64().unwrap() > 50, "{reads:#}");
    let rr = reads["read_rto_s"].as_f64().expect("reads came back");
    assert!((0.0..10.0).contains(&rr), "read rto {rr}");
}

#[test]
fn missing_postgres_binaries_exit_2_with_the_install_hint() {
    let sb = Sandbox::new();
    let empty = sb.path("no-pg");
    std::fs::create_dir_all(&empty).unwrap();
    let out = sb
        .command(&[
            "--targets",
            &db_fixture("targets.toml"),
            "run",
            &db_fixture("failover.toml"),
            "--target",
            "async-lab",
            "--quiet",
        ])
        .env("DRILL_PG_BIN", &empty)
        .output()
        .expect("run drill");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("apt-get install -y postgresql"), "{err}");
    assert!(
        sb.open_journals().is_empty(),
        "nothing was started or injected"
    );
}

#[test]
fn a_promotion_that_times_out_exits_4_with_what_to_do() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, out) = drill(&sb, "failover", "slow-promote");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("MANUAL ACTION REQUIRED"), "{out}");
    let r = sb.results();
    assert!(!r["manual_actions"].as_array().unwrap().is_empty(), "{r:#}");
}

#[test]
fn the_writer_runs_alone_without_http_load() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, out) = drill(&sb, "writes-only", "async-lab");
    assert_eq!(code, Some(0), "{out}");
    let r = sb.results();
    assert_eq!(r["load"]["sent"], 0, "no HTTP requests: {:#}", r["load"]);
    let ss = check(&r, "steady-state");
    assert!(
        ss["message"]
            .as_str()
            .unwrap()
            .starts_with("baseline writes: "),
        "steady state is judged on the writes: {ss:#}"
    );
    assert!(
        r["rpo"]["acknowledged"].as_u64().unwrap() > 500,
        "{:#}",
        r["rpo"]
    );
    assert!(
        out.contains("database: "),
        "the summary gives the database figures: {out}"
    );
}

#[test]
fn http_checks_without_http_load_are_input_errors() {
    let sb = Sandbox::new();
    let src = std::fs::read_to_string(db_fixture("writes-only.toml")).unwrap()
        + "\n[[checks]]\nkind = \"availability\"\nphase = \"fault\"\nmin = \"99%\"\n";
    let path = sb.write("bad.toml", &src);
    let out = sb.run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr
            .contains("measures HTTP traffic, and the scenario has no [load]"),
        "{out}"
    );
    assert!(out.stderr.contains("bad.toml:"), "{out}");
}

/// A user's own database (targets file `database` table) whose DSN is wrong
/// or unreachable: nothing is injected, and the exit code says which.
fn external_db(sb: &Sandbox, dsn: &str) -> common::Outcome {
    let targets = sb.write(
        "targets.toml",
        "[targets.prod]\nkind = \"http\"\nurl = \"http://127.0.0.1:9\"\n\
         [targets.prod.database]\ndsn_env = \"DRILL_TEST_DSN\"\nfailover = \"touch failed-over\"\n",
    );
    let out = sb
        .command(&[
            "--targets",
            targets.to_str().unwrap(),
            "run",
            &db_fixture("writes-only.toml"),
            "--target",
            "prod",
            "--quiet",
            "--report-dir",
            &sb.report_arg(),
        ])
        .env("DRILL_TEST_DSN", dsn)
        .output()
        .expect("run drill");
    common::Outcome::of(out)
}

#[test]
fn a_malformed_dsn_exits_2_and_an_unreachable_one_exits_3_with_nothing_injected() {
    let sb = Sandbox::new();
    let out = external_db(
        &sb,
        "host=127.0.0.1 port=notaport user=drill password=s3cret",
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(!sb.path("failed-over").exists(), "nothing was injected");
    assert!(
        !out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"),
        "the password is never shown: {out}"
    );
    let report = std::fs::read_to_string(sb.report_dir().join("results.json")).unwrap();
    assert!(!report.contains("s3cret"), "nor written to the report");

    let sb = Sandbox::new();
    let out = external_db(
        &sb,
        "host=127.0.0.1 port=1 user=drill dbname=app connect_timeout=1",
    );
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.contains("database preflight failed"), "{out}");
    assert!(!sb.path("failed-over").exists(), "nothing was injected");
}

#[test]
fn synchronous_switchover_loses_nothing_either() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let (code, out) = drill(&sb, "switchover", "sync-lab");
    assert_eq!(code, Some(0), "{out}");
    let r = sb.results();
    assert_eq!(r["rpo"]["lost_writes"], 0, "{:#}", r["rpo"]);
    assert_eq!(r["rpo"]["rpo_s"], 0.0);
    assert!(r["rpo"]["acknowledged"].as_u64().unwrap() > 200);
}

/// The concurrency column on a user's own database, through the binary:
/// whole drills on one database. In even repetitions two start at the same
/// instant; in odd ones the second starts while the first's fault is on.
/// Each time exactly one injects (its failover command runs once), and the
/// other exits 3 before injecting anything, names the run that holds the
/// database, keeps no open journal and gives no MANUAL ACTION (it changed
/// nothing). The database lock itself is raced 20 times in tests/db.rs;
/// here 6 pairs of whole drills (about 8 s each) show the runs use it.
#[test]
fn two_drills_on_one_database_one_injects_and_the_other_is_refused() {
    let _lab = lab_lock();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut db = rt
        .block_on(drill::db::cluster::start(&drill::db::DbSettings {
            synchronous: false,
            promote_timeout: drill::base::units::Dur::secs(30),
        }))
        .unwrap_or_else(|e| panic!("cannot start the lab database: {e}"));
    let dsn = db.writer_dsn();
    for rep in 0..6 {
        let sb = Sandbox::new();
        let injected = sb.path("injected");
        let targets = sb.write(
            "targets.toml",
            &format!(
                "[targets.prod]\nkind = \"http\"\nurl = \"http://127.0.0.1:9\"\n\
                 [targets.prod.database]\ndsn_env = \"DRILL_TEST_DSN\"\n\
                 failover = \"echo once >> {}\"\n",
                injected.display()
            ),
        );
        let start = |name: &str| {
            let report = sb.path(name);
            let args = [
                "--targets",
                targets.to_str().unwrap(),
                "run",
                &db_fixture("writes-only.toml"),
                "--target",
                "prod",
                "--quiet",
                "--no-history",
                "--report-dir",
                report.to_str().unwrap(),
            ];
            sb.command(&args)
                .env("DRILL_TEST_DSN", &dsn)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start drill")
        };
        let a = start("a");
        if rep % 2 == 1 {
            common::wait_until(Duration::from_secs(30), "the first run's inject", || {
                injected.exists()
            });
        }
        let b = start("b");
        let outs = [a, b].map(|c| common::Outcome::of(c.wait_with_output().expect("drill")));
        let (won, lost) = match (outs[0].code, outs[1].code) {
            (Some(3), Some(c)) if c != 3 => (&outs[1], &outs[0]),
            (Some(c), Some(3)) if c != 3 => (&outs[0], &outs[1]),
            _ => panic!(
                "rep {rep}: exactly one run refused with 3:\n{}\n{}",
                outs[0], outs[1]
            ),
        };
        assert_eq!(
            won.code,
            Some(0),
            "rep {rep}: the holder's drill passes: {won}"
        );
        let text = format!("{}{}", lost.stdout, lost.stderr);
        assert!(text.contains("held by drill run"), "rep {rep}: {lost}");
        assert!(text.contains("nothing was injected"), "rep {rep}: {lost}");
        assert!(!text.contains("MANUAL ACTION"), "rep {rep}: {lost}");
        let lines = std::fs::read_to_string(&injected).expect("the failover ran");
        assert_eq!(lines.lines().count(), 1, "rep {rep}: one inject in all");
        assert!(
            sb.open_journals().is_empty(),
            "rep {rep}: nothing left open"
        );
    }
    rt.block_on(db.stop());
}
