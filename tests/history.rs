//! Memory across runs through the binary: `drill history` over a folder of
//! monthly results flags the one regression and nothing else, and a
//! `regression` check in a real drill fails exactly when the figure is worse
//! than the history's median by more than allowed.

mod common;

use std::path::Path;

use common::{Sandbox, Service};

/// A minimal results.json of one monthly run.
fn month(dir: &Path, i: usize, rto: f64, verdict: &str) {
    let body = format!(
        r#"{{"schema":"drill.results/v1","scenario":"ingress-failover","run_id":"run-{i}",
"started_at":"2026-{:02}-01T03:00:00Z","verdict":"{verdict}",
"faults":[{{"name":"delete-primary-ingress","rto_s":{rto},"time_to_impact_s":0.05}}],
"phases":{{"fault":{{"requests":1000,"good":990,"p99_ms":120.0}}}},
"error_budget":{{"consumed_pct":1.0}}}}"#,
        i + 1
    );
    let folder = dir.join("ingress-failover");
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
    std::fs::remove_file(dir.join("ingress-failover/run-5.json")).unwrap();
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
                r#"{{"schema":"drill.results/v1","scenario":"http-regression","run_id":"old-{i}","started_at":"2026-0{}-01T00:00:00Z","verdict":"pass","faults":[],"phases":{{"fault":{{"requests":100,"good":100,"p99_ms":{p99_ms}}}}},"error_budget":{{"consumed_pct":0.0}}}}"#,
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
    // The report puts each figure beside the previous run's: the one before.
    let md = std::fs::read_to_string(sb.path("faster").join("report.md")).unwrap();
    let slower: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.path("slower").join("results.json")).unwrap(),
    )
    .unwrap();
    assert!(md.contains("## Versus the previous run"), "{md}");
    assert!(md.contains(slower["run_id"].as_str().unwrap()), "{md}");
    let kept = std::fs::read_dir(history.join("http-regression"))
        .unwrap()
        .count();
    assert_eq!(kept, 4, "the run was not kept in the history");
}
