//! `results.json`: the result exactly as the model serialises it
//! (`drill.results/v1`), for tools that post-process drills.

use crate::results::DrillResult;

/// Pretty JSON of one drill, ending in a newline. Non-finite numbers
/// (which JSON cannot hold) come out as `null`.
pub(crate) fn render(r: &DrillResult) -> String {
    // Only string-keyed maps and plain values: serialisation cannot fail.
    let mut s = serde_json::to_string_pretty(r).expect("DrillResult serialises to JSON");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SCHEMA;
    use crate::results::testdata::{sample_aborted, sample_result};
    use serde_json::Value;

    #[test]
    fn round_trips_and_has_the_documented_fields() {
        let r = sample_result();
        let json = render(&r);
        let back: DrillResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);

        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["checks"][3]["status"], "fail");
        assert_eq!(v["faults"][1]["rto_s"], Value::Null);
        assert_eq!(v["phases"]["baseline"]["requests"], 800);
        assert_eq!(v["rpo"]["lost_ranges"][0], serde_json::json!([1042, 1057]));
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn seed_is_a_string_that_reads_back_exactly() {
        let r = sample_result();
        let json = render(&r);
        let v: Value = serde_json::from_str(&json).unwrap();
        // Above 2^53: as a JSON number, jq and JavaScript would round it.
        assert_eq!(v["seed"], "5280703954370554100");
        assert_eq!(v["seed"].as_str().unwrap().parse::<u64>().unwrap(), r.seed);
        assert_eq!(v["drill_version"], "0.1.0");
        // Files written before the seed became a string still read.
        let mut old = v.clone();
        old["seed"] = serde_json::json!(42u64);
        let back: DrillResult = serde_json::from_value(old).unwrap();
        assert_eq!(back.seed, 42);
        let mut bad = v;
        bad["seed"] = serde_json::json!("-1");
        let err = serde_json::from_value::<DrillResult>(bad).unwrap_err();
        assert!(err.to_string().contains("seed `-1`"), "{err}");
    }

    #[test]
    fn fractions_are_ratios_and_percentages_say_so() {
        let v: Value = serde_json::from_str(&render(&sample_result())).unwrap();
        let availability = &v["checks"][1];
        assert_eq!(availability["unit"], "ratio");
        assert_eq!(availability["measured"], 0.99875);
        assert_eq!(v["phases"]["baseline"]["availability"], 0.99875);
        assert_eq!(v["checks"][6]["unit"], "%");
        let (check, budget) = (
            &v["checks"][6]["measured"],
            &v["error_budget"]["consumed_pct"],
        );
        assert!((check.as_f64().unwrap() - budget.as_f64().unwrap()).abs() < 1e-3);
    }

    #[test]
    fn rpo_is_absent_without_a_database_fault() {
        let v: Value = serde_json::from_str(&render(&sample_aborted())).unwrap();
        assert_eq!(v["verdict"], "aborted");
        assert!(v.get("rpo").is_none());
    }

    #[test]
    fn non_finite_numbers_still_give_valid_json() {
        let mut r = sample_result();
        r.checks[0].measured = Some(f64::NAN);
        r.duration_s = f64::INFINITY;
        let v: Value = serde_json::from_str(&render(&r)).unwrap();
        assert_eq!(v["checks"][0]["measured"], Value::Null);
        assert_eq!(v["duration_s"], Value::Null);
    }
}
