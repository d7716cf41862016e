//! The shipped alert rules (rules/drill-alerts.yml) checked by the real
//! `promtool` (Debian's `prometheus` package; ci/test.sh installs it), and
//! drills that measure alerts against real Prometheus and Alertmanager.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn rules(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .join(name)
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs (Debian's prometheus package; ci/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_accepts_the_seven_rules() {
    let file = rules("drill-alerts.yml");
    let (ok, text) = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("7 rules found"), "{text}");
}

#[test]
fn every_rule_fires_on_its_condition_and_stays_quiet_otherwise() {
    let file = rules("drill-alerts.test.yml");
    let (ok, text) = promtool(&["test", "rules", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    // Each alert has a firing case in the unit tests.
    let tests = std::fs::read_to_string(&file).unwrap();
    for alert in [
        "HighErrorRate",
        "IngressGatewayDown",
        "IstiodDown",
        "HighLatency",
        "CrossClusterConnectivityIssue",
        "CircuitBreakerTriggered",
        "HighConnectionPoolUsage",
    ] {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
    }
}

#[test]
fn a_rule_watching_a_wrong_metric_fails_its_unit_test() {
    // The unit tests can fail: the same tests against a rule file whose
    // IngressGatewayDown watches a metric nobody exports.
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(rules("drill-alerts.yml"))
        .unwrap()
        .replace(
            "up{app=\"istio-ingressgateway\"}",
            "upp{app=\"istio-ingressgateway\"}",
        );
    std::fs::write(dir.path().join("drill-alerts.yml"), broken).unwrap();
    std::fs::copy(
        rules("drill-alerts.test.yml"),
        dir.path().join("drill-alerts.test.yml"),
    )
    .unwrap();
    let test = dir.path().join("drill-alerts.test.yml");
    let (ok, text) = promtool(&["test", "rules", test.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("IngressGatewayDown"), "{text}");
}
