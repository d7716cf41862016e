//! `results.json`: the result exactly as the model serialises it
//! (`drill.results/v1`), for tools that post-process drills.

use super::model::DrillResult;

/// Pretty JSON of one drill, ending in a newline. Non-finite numbers
/// (which JSON cannot hold) come out as `null`.
pub fn render(r: &DrillResult) -> String {
    // Only string-keyed maps and plain values: serialisation cannot fail.
    let mut s = serde_json::to_string_pretty(r).expect("DrillResult serialises to JSON");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::SCHEMA;
    use crate::report::testdata::{sample_aborted, sample_result};
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
