//! drill as a CI job drives it: options from the environment, `-o json`
//! for list/plan/validate, diagnostics on stderr through `tracing`, the
//! short summary, and the JSON Schemas in schemas/ checked against every
//! shipped scenario and a real results.json by `check-jsonschema` (PyPI;
//! ci/test.sh installs it), a validator that is not drill's own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Outcome, Sandbox, Service, fixture_arg, lab_lock};
use serde_json::Value;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `check-jsonschema --schemafile SCHEMA FILES…`: its outcome.
fn check_jsonschema(schema: &str, files: &[PathBuf]) -> Outcome {
    let out = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(repo(schema))
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "check-jsonschema not found ({e}): pip install check-jsonschema (ci/test.sh does)"
            )
        });
    Outcome::of(out)
}

fn json(out: &Outcome) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn every_shipped_scenario_matches_the_scenario_schema() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for dir in ["fixtures/lab", "fixtures/spine"] {
        files.extend(
            std::fs::read_dir(repo(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "toml") && !p.ends_with("targets.toml")
                }),
        );
    }
    let out = check_jsonschema("schemas/scenario.schema.json", &files);
    assert_eq!(out.code, Some(0), "{out}");

    // The schema rejects what drill rejects: an unknown key, a duration
    // without a unit, an unknown action.
    let sb = Sandbox::new();
    for (name, bad) in [
        (
            "typo.toml",
            "description = \"x\"\n[phases]\nbaselin = \"5s\"\n",
        ),
        (
            "unitless.toml",
            "description = \"x\"\n[phases]\nbaseline = 5\n",
        ),
        (
            "action.toml",
            "description = \"x\"\n[[faults]]\naction = \"explode\"\n",
        ),
    ] {
        let file = sb.write(name, bad);
        let schema = check_jsonschema("schemas/scenario.schema.json", std::slice::from_ref(&file));
        assert_eq!(schema.code, Some(1), "{name}: {schema}");
        let drill = sb.run(&["validate", file.to_str().unwrap()]);
        assert_eq!(drill.code, Some(2), "{name}: {drill}");
    }
}

#[test]
fn list_plan_and_validate_print_json_on_request() {
    let sb = Sandbox::new();
    let list = sb.run(&["list", "-o", "json"]);
    assert_eq!(list.code, Some(0), "{list}");
    let v = json(&list);
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"db-failover") && names.contains(&"ingress-failover"),
        "{names:?}"
    );
    assert!(
        v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["valid"] == true)
    );

    // DRILL_OUTPUT does what -o does, for a job that wants JSON throughout.
    let plan = Outcome::of(
        sb.command(&["plan", "ingress-failover"])
            .env("DRILL_OUTPUT", "json")
            .output()
            .unwrap(),
    );
    assert_eq!(plan.code, Some(0), "{plan}");
    let p = json(&plan);
    assert_eq!(p["target"], "lab");
    let steps = p["steps"].as_array().unwrap();
    let inject = steps
        .iter()
        .find(|s| s["what"].as_str().unwrap().starts_with("inject "))
        .expect("an inject step");
    // Warmup 3 s + baseline 12 s (scenarios/ingress-failover.toml).
    assert_eq!(inject["at_s"], 15.0);
    assert!(!p["checks"].as_array().unwrap().is_empty());

    let bad = sb.write(
        "bad.toml",
        "description = \"x\"\n[load]\npath = \"/\"\nrate = \"fast\"\n",
    );
    let val = sb.run(&[
        "validate",
        "-o",
        "json",
        bad.to_str().unwrap(),
        "ingress-failover",
    ]);
    assert_eq!(val.code, Some(2), "{val}");
    let v = json(&val);
    assert_eq!(v["valid"], false);
    let d = &v["files"][0]["diagnostics"][0];
    assert_eq!(d["file"], bad.to_str().unwrap());
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(4), Some(8)),
        "{d:#}"
    );
    assert!(d["message"].as_str().unwrap().contains("fast"), "{d:#}");
    assert!(d["hint"].is_string(), "{d:#}");
    assert_eq!(v["files"][1]["valid"], true);
    assert_eq!(v["files"][1]["target"], "lab");
    // Text stays the default.
    let text = sb.run(&["validate", "ingress-failover"]);
    assert!(text.stdout.starts_with("ok: "), "{text}");
}

#[test]
fn environment_sets_what_flags_set_and_help_says_so() {
    let sb = Sandbox::new();
    let help = sb.run(&["run", "--help"]);
    for var in [
        "DRILL_TARGET",
        "DRILL_TARGETS",
        "DRILL_REPORT_DIR",
        "DRILL_SEED",
        "DRILL_QUIET",
        "DRILL_SUITE",
        "DRILL_SUMMARY",
    ] {
        assert!(
            help.stdout.contains(&format!("[env: {var}=")),
            "{var}: {help}"
        );
    }
    // An unknown target from the environment is reported like the flag.
    let out = Outcome::of(
        sb.command(&["validate", "ingress-failover"])
            .env("DRILL_TARGET", "nowhere")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("--target nowhere: unknown target"),
        "{out}"
    );
    // A seed that is not a u64 is a usage error naming the flag.
    let out = Outcome::of(
        sb.command(&["run", "ingress-failover"])
            .env("DRILL_SEED", "-5")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--seed"), "{out}");
}

/// A whole drill configured only through the environment, as a CI job
/// would: its reports, the summary file, the diagnostics on stderr, and
/// its results.json against the results schema.
#[test]
fn a_drill_driven_by_the_environment_writes_schema_valid_results_and_a_summary() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let svc = Service::start();
    let targets = sb.http_targets("svc", &svc.url());
    let summary = sb.write("summary.md", "# earlier step\n");
    let out = Outcome::of(
        sb.command(&["-v", "run", &fixture_arg("http-command.toml")])
            .env("DRILL_TARGETS", &targets)
            .env("DRILL_TARGET", "svc")
            .env("DRILL_REPORT_DIR", sb.report_dir())
            .env("DRILL_SEED", "18446744073709551557")
            .env("DRILL_QUIET", "1")
            .env("DRILL_SUMMARY", &summary)
            .env_remove("RUST_LOG")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    assert_eq!(r["target"], "svc");
    // The seed survives the trip through JSON digit for digit.
    assert_eq!(r["seed"], "18446744073709551557");
    assert_eq!(r["drill_version"], env!("CARGO_PKG_VERSION"));
    let schema = check_jsonschema(
        "schemas/results.schema.json",
        &[sb.report_dir().join("results.json")],
    );
    assert_eq!(schema.code, Some(0), "{schema}");

    // -v: each step on stderr through tracing, never on stdout.
    for step in [
        "starting target",
        "preflight passed",
        "injected",
        "reverted",
    ] {
        let logged = out
            .stderr
            .lines()
            .any(|l| l.contains(" INFO ") && l.contains(step));
        assert!(logged, "{step:?} not logged:\n{out}");
    }
    assert!(
        !out.stdout.contains(" INFO "),
        "diagnostics on stdout:\n{out}"
    );
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(
        s.starts_with("# earlier step\n### drill: http-command on svc — PASS ✅"),
        "{s}"
    );
    assert!(s.contains("```mermaid\nxychart-beta\n"), "{s}");
    assert!(s.contains("report.md"), "{s}");
    // The JUnit of a real drill carries its run's properties and times.
    let xml = std::fs::read_to_string(sb.report_dir().join("junit.xml")).unwrap();
    assert!(
        xml.contains("<property name=\"seed\" value=\"18446744073709551557\"/>"),
        "{xml}"
    );
    let time_of = |case: &str| -> f64 {
        let line = xml
            .lines()
            .find(|l| l.contains(&format!("<testcase name=\"{case}\"")))
            .unwrap_or_else(|| panic!("no {case} in {xml}"));
        let t = line.split("time=\"").nth(1).unwrap();
        t[..t.find('"').unwrap()].parse().unwrap()
    };
    // steady-state judged the 3 s baseline, faults-reverted the whole run
    // (fixtures/spine/http-command.toml): scaled so the cases add up to no
    // more than the suite's time, the longer span still the longer time.
    let suite_time: f64 = {
        let line = xml.lines().find(|l| l.contains("<testsuite ")).unwrap();
        let t = line.split(" time=\"").nth(1).unwrap();
        t[..t.find('"').unwrap()].parse().unwrap()
    };
    let sum: f64 = ["steady-state", "rto:flip", "faults-reverted"]
        .iter()
        .map(|c| time_of(c))
        .sum();
    assert!(sum <= suite_time + 1e-9 && sum > suite_time - 0.01, "{xml}");
    assert!(
        time_of("faults-reverted") > 1.5 * time_of("steady-state"),
        "{xml}"
    );
    assert!(time_of("steady-state") > 0.5, "{xml}");
}

/// The monthly schedule (docs/reference-system.md): week 1 ingress failover, week 2
/// database failover, week 3 east-west / pod failure, week 4 region outage;
/// every drill it names validates on the lab. (Running the suite takes
/// minutes; each drill runs end to end in tests/lab.rs, tests/db_drill.rs.)
#[test]
fn the_monthly_suite_follows_the_schedule_and_validates() {
    let suite: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo("scenarios/suites/monthly.toml")).unwrap())
            .unwrap();
    let names: Vec<&str> = suite["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ingress-failover",
            "db-failover",
            "eastwest-failover",
            "pod-failure",
            "region-outage"
        ]
    );
    let sb = Sandbox::new();
    let mut args = vec!["validate", "-o", "json"];
    args.extend(&names);
    let out = sb.run(&args);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(json(&out)["valid"], true);
}

/// A junit.xml as PyPI's junitparser reads it: root totals, and per suite
/// its time, properties and cases (name, time, [(kind, message, text)]).
fn junitparser(file: &Path) -> Value {
    let script = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
out = {"root": [xml.tests, xml.failures, xml.errors, xml.skipped, xml.time], "suites": []}
for s in xml:
    cases = [[c.name, c.time, [[type(r).__name__, r.message, r.text] for r in c.result]] for c in s]
    out["suites"].append({"time": s.time, "props": {p.name: p.value for p in s.properties()}, "cases": cases})
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3 runs");
    let out = Outcome::of(out);
    assert_eq!(
        out.code,
        Some(0),
        "junitparser could not read {} (pip install junitparser; ci/test.sh does): {out}",
        file.display()
    );
    json(&out)
}

fn case<'a>(suite: &'a Value, name: &str) -> &'a Value {
    suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == name)
        .unwrap_or_else(|| panic!("no testcase {name} in {suite:#}"))
}

/// Real drills, failing and aborted, read back by an independent JUnit
/// parser: what GitLab or Jenkins would show.
#[test]
fn junit_of_real_failing_and_aborted_drills_reads_back_with_junitparser() {
    let _lab = lab_lock();
    let sb = Sandbox::new();
    let svc = Service::start();
    let targets = sb.http_targets("svc", &svc.url());
    // The command-fault drill with a p50 limit no HTTP round trip meets,
    // on the recovery phase (a baseline check would be the steady state).
    // The fixture sets its send-lag bound (1s) apart from that impossible
    // limit, which would otherwise lower it to 1 ms: inconclusive, not failed.
    let failing = std::fs::read_to_string(common::fixture("http-command.toml")).unwrap()
        + "\n[[checks]]\nkind = \"latency\"\nphase = \"recovery\"\npercentile = \"p50\"\nmax = \"1us\"\n";
    let file = sb.write("failing.toml", &failing);
    let out = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        "--target",
        "svc",
        "--quiet",
        "--seed",
        "99",
        "--report-dir",
        &sb.report_arg(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(1), "{out}");
    let j = junitparser(&sb.report_dir().join("junit.xml"));
    assert_eq!(j["root"][1], 1, "{j:#}");
    let suite = &j["suites"][0];
    assert_eq!(suite["props"]["seed"], "99");
    assert_eq!(suite["props"]["target"], "svc");
    assert!(suite["time"].as_f64().unwrap() > 5.0, "{suite:#}");
    let latency = case(suite, "latency-p50:recovery");
    // Timed by the 1 s recovery phase it judged.
    assert!(
        (latency[1].as_f64().unwrap() - 1.0).abs() < 0.5,
        "{latency:#}"
    );
    let (kind, message, text) = (&latency[2][0][0], &latency[2][0][1], &latency[2][0][2]);
    assert_eq!(kind, "Failure");
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("in phase `recovery`; see report.md § Phases"),
        "{message}"
    );
    assert!(
        text.as_str().unwrap().contains("threshold: 0.001 ms"),
        "{text}"
    );

    // Steady state cannot hold: aborted, the checks skipped with the reason.
    let aborted_dir = sb.path("aborted");
    let broken = std::fs::read_to_string(common::fixture("broken-baseline.toml")).unwrap()
        + "\n[[checks]]\nkind = \"availability\"\nphase = \"fault\"\nmin = \"99%\"\n";
    let broken = sb.write("broken.toml", &broken);
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        aborted_dir.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    let j = junitparser(&aborted_dir.join("junit.xml"));
    let suite = &j["suites"][0];
    assert_eq!(suite["props"]["verdict"], "aborted");
    let drill = case(suite, "drill");
    assert_eq!(drill[2][0][0], "Error");
    assert!(
        drill[2][0][1].as_str().unwrap().contains("steady state"),
        "{drill:#}"
    );
    let skipped: Vec<&Value> = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c[2].get(0).is_some_and(|r| r[0] == "Skipped"))
        .collect();
    assert!(!skipped.is_empty(), "{suite:#}");
    for c in skipped {
        let why = c[2][0][1].as_str().unwrap_or("");
        assert!(why.starts_with("not evaluated"), "{c:#}");
    }
}

/// `drill ARGS` on a terminal: script(1) (util-linux, in every Debian)
/// gives it a pseudo-terminal, whose output (stdout and stderr together)
/// is returned with the exit code.
fn on_a_terminal(sb: &Sandbox, args: &str, no_color: Option<&str>) -> (Vec<u8>, Option<i32>) {
    let line = format!("{} {args}", env!("CARGO_BIN_EXE_drill"));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(sb.work())
        .env("DRILL_STATE_DIR", sb.state())
        .env_remove("NO_COLOR")
        .env_remove("CI");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.output().expect("script(1) runs");
    (out.stdout, out.status.code())
}

/// https://no-color.org: with NO_COLOR set and not empty, nothing drill
/// prints carries an escape, even on a terminal (usage errors, help,
/// diagnostics, a validation error). Without it, the same usage error on
/// a terminal is coloured: the check below can see colour.
#[test]
fn no_color_means_no_escape_even_on_a_terminal() {
    let sb = Sandbox::new();
    let bad = sb.write("bad.toml", "name = \"x\"\n[load]\nrate = \"fast\"\n");
    // A drill whose target refuses connections: `-v` logs the target's
    // start through tracing, then the preflight stops it (exit 3).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let targets = sb.http_targets("svc", &url);
    let refused = format!(
        "-v --targets {} run --target svc --report-dir {} {}",
        targets.display(),
        sb.report_dir().display(),
        fixture_arg("http-command.toml")
    );
    for args in ["--bogus", refused.as_str()] {
        let (coloured, _) = on_a_terminal(&sb, args, None);
        assert!(
            coloured.contains(&0x1b),
            "{args}: coloured on a terminal without NO_COLOR: {}",
            String::from_utf8_lossy(&coloured)
        );
    }
    let (out, code) = on_a_terminal(&sb, &refused, Some("1"));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("starting target"), "{text}");
    assert!(text.contains("verdict: ABORTED"), "exit {code:?}: {text}");
    for args in [
        refused.clone(),
        "--bogus".to_string(),
        "--help".to_string(),
        "run --help".to_string(),
        format!("-vv validate {}", bad.display()),
        "-vv validate ingress-failover".to_string(),
        "-vv list".to_string(),
    ] {
        let (out, code) = on_a_terminal(&sb, &args, Some("1"));
        let text = String::from_utf8_lossy(&out);
        assert!(!text.trim().is_empty(), "{args}: no output at all");
        assert!(
            !out.contains(&0x1b),
            "{args} (exit {code:?}): ESC in {text:?}"
        );
    }
}
