//! Memory across runs through the binary: `drill history` over a folder of
//! monthly results flags the one regression and nothing else, and a
//! `regression` check in a real drill fails exactly when the figure is worse
//! than the history's median by more than allowed. A history is per
//! scenario and target, gates with `--check`, and reads as JSON.

mod common;

use std::path::Path;

use common::{Sandbox, Service};

/// A minimal results.json of one monthly run on `production`.
fn month(dir: &Path, i: usize, rto: f64, verdict: &str) {
    month_on(dir, "production", i, rto, verdict)
}

fn month_on(dir: &Path, target: &str, i: usize, rto: f64, verdict: &str) {
    let body = format!(
        r#"{{"schema":"drill.results/v1","scenario":"ingress-failover","target":"{target}","run_id":"{target}-{i}",
"recovery":{{"resolution_s":0.1}},
"started_at":"2026-{:02}-01T03:00:00Z","verdict":"{verdict}",
"faults":[{{"name":"delete-primary-ingress","rto_s":{rto},"time_to_impact_s":0.05}}],
"phases":{{"fault":{{"requests":1000,"good":990,"p99_ms":120.0}}}},
"error_budget":{{"consumed_pct":1.0}}}}"#,
        i + 1
    );
    let folder = dir.join("ingress-failover").join(target);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(format!("run-{i}.json")), body).unwrap();
}

#[test]
fn history_flags_the_one_regression_and_nothing_else() {
    let sb = Sandbox::new();
    let dir = sb.path("history");
    for (i, rto) in [3.0, 3.1, 2.9, 3.0, 3.2, 4.5].into_iter().enumerate() {
        month(&dir, i, rto, "pass");
    }
    let chart = sb.path("trend.svg");
    let out = sb.run(&[
        "history",
        "ingress-failover",
        "--history",
        dir.to_str().unwrap(),
        "--chart",
        chart.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let flagged: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("REGRESSION"))
        .collect();
    assert_eq!(flagged.len(), 1, "{out}");
    assert!(flagged[0].contains("run 6"), "{}", flagged[0]);
    assert!(
        flagged[0].contains("rto:delete-primary-ingress 4.500s"),
        "{}",
        flagged[0]
    );
    assert!(flagged[0].contains("+50%"), "{}", flagged[0]);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("(regression)").count(), 1, "one red point");

    // Without the sixth month nothing is flagged.
    std::fs::remove_file(dir.join("ingress-failover/production/run-5.json")).unwrap();
    let out = sb.run(&["history", "--history", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("REGRESSION"), "{out}");
    assert!(out.stdout.contains("no regression"), "{out}");
}

/// A drill whose history says its fault-phase p99 was far lower fails its
/// regression check (exit 1); one whose history says far higher passes; the
/// run itself joins the history.
#[test]
fn a_regression_check_judges_a_real_drill_against_its_history() {
    let _lab = common::lab_lock();
    let sb = Sandbox::new();
    let svc = Service::start();
    let targets = sb.http_targets("svc", &svc.url());
    let scenario = std::fs::read_to_string(common::fixture("http-command.toml")).unwrap()
        + "\n[[checks]]\nkind = \"regression\"\nmetric = \"p99\"\nruns = 3\nmax = \"20%\"\n";
    let scenario = sb.write("http-regression.toml", &scenario);
    let history = sb.path("history");
    let past = |p99_ms: f64| {
        let folder = history.join("http-regression");
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..3 {
            let body = format!(
                r#"{{"schema":"drill.results/v1","scenario":"http-regression","target":"svc","run_id":"old-{i}","started_at":"2026-0{}-01T00:00:00Z","verdict":"pass","faults":[],"phases":{{"fault":{{"requests":100,"good":100,"p99_ms":{p99_ms}}}}},"error_budget":{{"consumed_pct":0.0}}}}"#,
                i + 1
            );
            std::fs::write(folder.join(format!("old-{i}.json")), body).unwrap();
        }
    };
    let run = |report: &str| {
        sb.run(&[
            "--targets",
            targets.to_str().unwrap(),
            "run",
            "--target",
            "svc",
            "--quiet",
            "--history",
            history.to_str().unwrap(),
            "--report-dir",
            sb.path(report).to_str().unwrap(),
            scenario.to_str().unwrap(),
        ])
    };
    let check = |report: &str| -> serde_json::Value {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sb.path(report).join("results.json")).unwrap(),
        )
        .unwrap();
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "regression-p99:fault")
            .cloned()
            .unwrap_or_else(|| panic!("no regression check: {:#}", r["checks"]))
    };

    past(0.001);
    let out = run("slower");
    assert_eq!(out.code, Some(1), "{out}");
    let c = check("slower");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("median 0.001ms of the last 3 passing run(s)"),
        "{c:#}"
    );

    past(60_000.0);
    let out = run("faster");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(check("faster")["status"], "pass");
    // The report puts each figure beside the previous run's: the latest in
    // the history before this run (the seeded `old-2`).
    let md = std::fs::read_to_string(sb.path("faster").join("report.md")).unwrap();
    assert!(md.contains("## Versus the previous run"), "{md}");
    assert!(md.contains("Previous run `old-2`"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| p99, fault phase"))
        .expect("p99 row");
    assert!(row.contains("60000 ms") && row.contains("-100%"), "{row}");
    let kept = std::fs::read_dir(history.join("http-regression"))
        .unwrap()
        .count();
    assert_eq!(kept, 4, "the run was not kept in the history");
}

/// `--check` gates on the latest run: exit 1 when it regressed, 0 when it
/// did not; the table and the JSON name the target; a run on another
/// target is a series of its own, never judged against this one's.
#[test]
fn history_check_fails_on_a_regressed_latest_run_of_its_target() {
    let sb = Sandbox::new();
    let dir = sb.path("history");
    for (i, rto) in [3.0, 3.1, 2.9, 3.0, 3.2].into_iter().enumerate() {
        month(&dir, i, rto, "pass");
    }
    // The lab fails over in 0.5 s; production's 3 s is not a regression
    // of the lab's, nor the lab's of production's.
    for i in 0..3 {
        month_on(&dir, "lab", i, 0.5, "pass");
    }
    let h = dir.to_str().unwrap();
    let out = sb.run(&["history", "--history", h, "--check"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("ingress-failover on production: 5 run(s)"),
        "{out}"
    );
    assert!(
        out.stdout.contains("ingress-failover on lab: 3 run(s)"),
        "{out}"
    );
    assert!(!out.stdout.contains("REGRESSION"), "{out}");

    month(&dir, 5, 4.5, "pass");
    let out = sb.run(&["history", "--history", h, "--check"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("REGRESSION run 6"), "{out}");
    // Only the lab's series: nothing regressed there.
    let out = sb.run(&["history", "--history", h, "--check", "--target", "lab"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("production"), "{out}");

    let out = sb.run(&["history", "--history", h, "-o", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["schema"], "drill.history/v1");
    let series = v["series"].as_array().unwrap();
    let prod = series.iter().find(|s| s["target"] == "production").unwrap();
    assert_eq!(prod["latest_regressed"], true);
    assert_eq!(prod["runs"].as_array().unwrap().len(), 6);
    assert_eq!(
        prod["regressions"][0]["metric"],
        "rto:delete-primary-ingress"
    );
    assert_eq!(prod["regressions"][0]["value"], 4.5);
    let lab = series.iter().find(|s| s["target"] == "lab").unwrap();
    assert_eq!(lab["latest_regressed"], false);

    // A later run back at 3 s: the gate passes again, the old regression
    // is still listed.
    month(&dir, 6, 3.0, "pass");
    let out = sb.run(&["history", "--history", h, "--check"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("REGRESSION run 6"), "{out}");
}

/// A figure that moved by less than the measurement's resolution is no
/// regression, however large in percent: 0.02 s → 0.09 s RTO at 0.1 s.
#[test]
fn a_change_within_the_resolution_is_not_flagged() {
    let sb = Sandbox::new();
    let dir = sb.path("history");
    for (i, rto) in [0.02, 0.02, 0.02, 0.09].into_iter().enumerate() {
        month(&dir, i, rto, "pass");
    }
    let out = sb.run(&["history", "--history", dir.to_str().unwrap(), "--check"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("REGRESSION"), "{out}");
    assert!(
        out.stdout.contains("(+350%)"),
        "the change is still shown: {out}"
    );
}

/// A history folder drill cannot write stops the run before anything
/// starts (exit 2), as a report folder does.
#[test]
fn an_unwritable_history_folder_is_refused_up_front() {
    let sb = Sandbox::new();
    let file = sb.write("not-a-folder", "x");
    let out = sb.run(&[
        "run",
        "--quiet",
        "--history",
        file.to_str().unwrap(),
        "--report-dir",
        sb.path("r").to_str().unwrap(),
        "ingress-failover",
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("history folder"), "{out}");
    assert!(
        out.stderr.contains("nothing was started or injected"),
        "{out}"
    );
    assert!(!sb.path("r").join("results.json").exists());
}
