//! The closed vocabularies of `results.json`: how a fault's traffic
//! recovered, the unit of a check's figures, and check names. Each reads
//! and writes exactly the strings drill has always written, so a
//! results.json keeps its bytes and every file written before still reads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a fault's traffic came back (`recovery` of a fault in results.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Recovery {
    /// The traffic dipped and met the recovery criteria again: the RTO is
    /// the time from the inject to that moment.
    Recovered,
    /// The traffic never dipped: the RTO is 0.
    NoImpact,
    /// The traffic dipped and had not met the recovery criteria when the
    /// observation ended: no RTO.
    NotRecovered,
}

impl Recovery {
    #[cfg(test)]
    pub(crate) const ALL: [Recovery; 3] = [
        Recovery::Recovered,
        Recovery::NoImpact,
        Recovery::NotRecovered,
    ];

    /// The name results.json holds: `recovered`, `no-impact`, `not-recovered`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Recovery::Recovered => "recovered",
            Recovery::NoImpact => "no-impact",
            Recovery::NotRecovered => "not-recovered",
        }
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The unit of a check's `measured` and `threshold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Unit {
    /// A fraction 0..1 (`ratio`), shown as a percentage.
    #[serde(rename = "ratio")]
    Ratio,
    /// Seconds (`s`).
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds (`ms`).
    #[serde(rename = "ms")]
    Millis,
    /// A percentage (`%`): the error budget consumed, a regression's increase.
    #[serde(rename = "%")]
    Percent,
    /// A number of things (`count`), e.g. lost writes.
    #[serde(rename = "count")]
    Count,
    /// No unit (empty string): verdict-only checks, probes, and guards,
    /// whose expression's unit drill cannot know.
    #[serde(rename = "")]
    Unitless,
}

impl Unit {
    #[cfg(test)]
    pub(crate) const ALL: [Unit; 6] = [
        Unit::Ratio,
        Unit::Seconds,
        Unit::Millis,
        Unit::Percent,
        Unit::Count,
        Unit::Unitless,
    ];

    /// The name results.json holds: `ratio`, `s`, `ms`, `%`, `count` or ``.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Percent => "%",
            Unit::Count => "count",
            Unit::Unitless => "",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A check's stable name, as junit.xml, report.md and results.json show
/// it: `rto:kill-primary-ingress`, `availability:baseline`, `error-budget`.
///
/// A name the scenario gave a check is read like any other, so a
/// scenario's `name = "rto:primary"` counts as an RTO check of `primary`,
/// as it always has; a name that matches no pattern is [`CheckName::Custom`].
/// Reading and writing never fail and give back the same text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum CheckName {
    /// `steady-state`: the baseline before anything is injected.
    SteadyState,
    /// `rto:<fault>`.
    Rto(String),
    /// `outage:<fault>`.
    Outage(String),
    /// `config-sync:<fault>`.
    ConfigSync(String),
    /// `component-ready:<fault>`.
    ComponentReady(String),
    /// `availability:<phase>`.
    Availability(String),
    /// `latency-<percentile>:<phase>`, e.g. `latency-p99:fault`.
    Latency { percentile: String, phase: String },
    /// `error-budget`.
    ErrorBudget,
    /// `rpo`: data lost by a database fault.
    Rpo,
    /// `write-rto`: inject to the first write acknowledged by the new primary.
    WriteRto,
    /// `regression-<figure>`, e.g. `regression-rto:kill-primary-ingress`,
    /// `regression-p99:fault`, `regression-error-budget`.
    Regression(String),
    /// `alert:<alert>`: time to detect of an expected alert.
    Alert(String),
    /// `alert-resolved:<alert>`: time to resolve of an expected alert.
    AlertResolved(String),
    /// `probe:<probe>`: a metric probe's readings within its limits.
    Probe(String),
    /// `unexpected-alerts`: no alert fired that the drill did not expect.
    UnexpectedAlerts,
    /// `guard:<guard>`: a stop guard held.
    Guard(String),
    /// `faults-reverted`: every fault reverted or healed.
    FaultsReverted,
    /// Any other name: one the scenario gave, or a check kind alone
    /// (`rto`, `outage`) when the drill aborted before it had a subject.
    Custom(String),
}

impl CheckName {
    /// What the check looked at, named after the colon: the fault of
    /// `rto:<fault>`, the phase of `availability:<phase>`, the figure's
    /// subject of `regression-rto:<fault>`; none for drill-wide checks.
    pub fn subject(&self) -> Option<&str> {
        match self {
            CheckName::Rto(s)
            | CheckName::Outage(s)
            | CheckName::ConfigSync(s)
            | CheckName::ComponentReady(s)
            | CheckName::Availability(s)
            | CheckName::Alert(s)
            | CheckName::AlertResolved(s)
            | CheckName::Probe(s)
            | CheckName::Guard(s) => Some(s),
            CheckName::Latency { phase, .. } => Some(phase),
            CheckName::Regression(figure) | CheckName::Custom(figure) => {
                figure.split_once(':').map(|(_, s)| s)
            }
            CheckName::SteadyState
            | CheckName::ErrorBudget
            | CheckName::Rpo
            | CheckName::WriteRto
            | CheckName::UnexpectedAlerts
            | CheckName::FaultsReverted => None,
        }
    }
}

impl CheckName {
    /// A check of data lost by a database fault: `rpo`, `write-rto`, or a
    /// name the scenario gave that reads as one (`rpo:<fault>`, `write…`).
    pub fn is_data_loss(&self) -> bool {
        match self {
            CheckName::Rpo | CheckName::WriteRto => true,
            CheckName::Custom(n) => n.starts_with("rpo:") || n.starts_with("write"),
            _ => false,
        }
    }

    /// An RTO check: `rto:<fault>`, or a name the scenario gave that
    /// starts with `rto` (the bare kind name of an aborted drill too).
    pub fn is_rto(&self) -> bool {
        match self {
            CheckName::Rto(_) => true,
            CheckName::Custom(n) => n.starts_with("rto"),
            _ => false,
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckName::SteadyState => f.write_str("steady-state"),
            CheckName::Rto(x) => write!(f, "rto:{x}"),
            CheckName::Outage(x) => write!(f, "outage:{x}"),
            CheckName::ConfigSync(x) => write!(f, "config-sync:{x}"),
            CheckName::ComponentReady(x) => write!(f, "component-ready:{x}"),
            CheckName::Availability(x) => write!(f, "availability:{x}"),
            CheckName::Latency { percentile, phase } => write!(f, "latency-{percentile}:{phase}"),
            CheckName::ErrorBudget => f.write_str("error-budget"),
            CheckName::Rpo => f.write_str("rpo"),
            CheckName::WriteRto => f.write_str("write-rto"),
            CheckName::Regression(x) => write!(f, "regression-{x}"),
            CheckName::Alert(x) => write!(f, "alert:{x}"),
            CheckName::AlertResolved(x) => write!(f, "alert-resolved:{x}"),
            CheckName::Probe(x) => write!(f, "probe:{x}"),
            CheckName::UnexpectedAlerts => f.write_str("unexpected-alerts"),
            CheckName::Guard(x) => write!(f, "guard:{x}"),
            CheckName::FaultsReverted => f.write_str("faults-reverted"),
            CheckName::Custom(x) => f.write_str(x),
        }
    }
}

impl FromStr for CheckName {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(CheckName::from(s))
    }
}

impl From<&str> for CheckName {
    fn from(s: &str) -> Self {
        let with = |prefix: &str, make: fn(String) -> CheckName| {
            s.strip_prefix(prefix).map(|rest| make(rest.to_string()))
        };
        let exact = match s {
            "steady-state" => Some(CheckName::SteadyState),
            "error-budget" => Some(CheckName::ErrorBudget),
            "rpo" => Some(CheckName::Rpo),
            "write-rto" => Some(CheckName::WriteRto),
            "unexpected-alerts" => Some(CheckName::UnexpectedAlerts),
            "faults-reverted" => Some(CheckName::FaultsReverted),
            _ => None,
        };
        let latency = || {
            let (percentile, phase) = s.strip_prefix("latency-")?.split_once(':')?;
            Some(CheckName::Latency {
                percentile: percentile.into(),
                phase: phase.into(),
            })
        };
        exact
            .or_else(|| with("rto:", CheckName::Rto))
            .or_else(|| with("outage:", CheckName::Outage))
            .or_else(|| with("config-sync:", CheckName::ConfigSync))
            .or_else(|| with("component-ready:", CheckName::ComponentReady))
            .or_else(|| with("availability:", CheckName::Availability))
            .or_else(latency)
            .or_else(|| with("regression-", CheckName::Regression))
            .or_else(|| with("alert:", CheckName::Alert))
            .or_else(|| with("alert-resolved:", CheckName::AlertResolved))
            .or_else(|| with("probe:", CheckName::Probe))
            .or_else(|| with("guard:", CheckName::Guard))
            .unwrap_or_else(|| CheckName::Custom(s.to_string()))
    }
}

impl From<String> for CheckName {
    fn from(s: String) -> Self {
        CheckName::from(s.as_str())
    }
}

impl From<CheckName> for String {
    fn from(n: CheckName) -> Self {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn every_name() -> Vec<CheckName> {
        let s = |x: &str| x.to_string();
        vec![
            CheckName::SteadyState,
            CheckName::Rto(s("kill-primary-ingress")),
            CheckName::Outage(s("kill-primary-ingress")),
            CheckName::ConfigSync(s("istiod-down")),
            CheckName::ComponentReady(s("kill-primary-ingress")),
            CheckName::Availability(s("baseline")),
            CheckName::Latency {
                percentile: s("p99.9"),
                phase: s("fault"),
            },
            CheckName::ErrorBudget,
            CheckName::Rpo,
            CheckName::WriteRto,
            CheckName::Regression(s("rto:kill-primary-ingress")),
            CheckName::Regression(s("p99:fault")),
            CheckName::Regression(s("error-budget")),
            CheckName::Alert(s("IngressGatewayDown{region=\"primary\"}")),
            CheckName::AlertResolved(s("IngressGatewayDown")),
            CheckName::Probe(s("mesh-5xx")),
            CheckName::UnexpectedAlerts,
            CheckName::Guard(s("checkout-errors")),
            CheckName::FaultsReverted,
            CheckName::Custom(s("rto")),
            CheckName::Custom(s("my own check")),
        ]
    }

    /// Which variant a name is; a new variant fails to compile here until
    /// `every_name` has one.
    fn variant(n: &CheckName) -> usize {
        match n {
            CheckName::SteadyState => 0,
            CheckName::Rto(_) => 1,
            CheckName::Outage(_) => 2,
            CheckName::ConfigSync(_) => 3,
            CheckName::ComponentReady(_) => 4,
            CheckName::Availability(_) => 5,
            CheckName::Latency { .. } => 6,
            CheckName::ErrorBudget => 7,
            CheckName::Rpo => 8,
            CheckName::WriteRto => 9,
            CheckName::Regression(_) => 10,
            CheckName::Alert(_) => 11,
            CheckName::AlertResolved(_) => 12,
            CheckName::Probe(_) => 13,
            CheckName::UnexpectedAlerts => 14,
            CheckName::Guard(_) => 15,
            CheckName::FaultsReverted => 16,
            CheckName::Custom(_) => 17,
        }
    }

    /// Every variant writes the string drill has always written and reads
    /// back to itself.
    #[test]
    fn every_variant_round_trips_through_json() {
        let mut seen: Vec<usize> = every_name().iter().map(variant).collect();
        seen.dedup();
        assert_eq!(
            seen,
            (0..=17).collect::<Vec<_>>(),
            "every_name misses a variant"
        );
        for r in Recovery::ALL {
            let v = serde_json::to_value(r).unwrap();
            assert_eq!(v, Value::String(r.name().into()));
            assert_eq!(serde_json::from_value::<Recovery>(v).unwrap(), r);
        }
        let units: Vec<Value> = Unit::ALL
            .iter()
            .map(|u| serde_json::to_value(u).unwrap())
            .collect();
        assert_eq!(
            Value::Array(units.clone()),
            json!(["ratio", "s", "ms", "%", "count", ""])
        );
        for (u, v) in Unit::ALL.into_iter().zip(units) {
            assert_eq!(v, Value::String(u.name().into()));
            assert_eq!(serde_json::from_value::<Unit>(v).unwrap(), u);
        }
        for n in every_name() {
            let v = serde_json::to_value(&n).unwrap();
            assert_eq!(v, Value::String(n.to_string()));
            assert_eq!(serde_json::from_value::<CheckName>(v).unwrap(), n);
        }
    }

    /// The subject is what follows the first colon of the written name,
    /// as junit.xml has always placed a check (fault, phase or drill).
    #[test]
    fn the_subject_is_what_follows_the_colon() {
        for n in every_name() {
            let text = n.to_string();
            assert_eq!(n.subject(), text.split_once(':').map(|(_, s)| s), "{text}");
        }
    }

    #[test]
    fn names_read_as_the_checks_they_are() {
        let n = |s: &str| CheckName::from(s);
        assert_eq!(n("rto:a:b"), CheckName::Rto("a:b".into()));
        assert_eq!(
            n("latency-p99:baseline"),
            CheckName::Latency {
                percentile: "p99".into(),
                phase: "baseline".into()
            }
        );
        assert_eq!(n("latency-p99"), CheckName::Custom("latency-p99".into()));
        assert_eq!(
            n("writes:baseline"),
            CheckName::Custom("writes:baseline".into())
        );
        assert_eq!(n("rto:x").subject(), Some("x"));
        assert_eq!(n("regression-rto:x").subject(), Some("x"));
        assert_eq!(n("regression-error-budget").subject(), None);
        assert_eq!(n("latency-p50:fault").subject(), Some("fault"));
        assert_eq!(n("mine:fault").subject(), Some("fault"));
        assert_eq!(n("error-budget").subject(), None);
    }

    /// fixtures/golden/results.json was written by drill before these
    /// enums (the sample's strings): it reads into them, and the sample
    /// writes exactly those bytes again.
    #[test]
    fn an_old_results_json_reads_into_the_enums_and_writes_back_byte_identical() {
        use crate::results::testdata::{assert_golden, sample_result};
        use crate::results::{CheckResult, DrillResult};
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/golden/results.json");
        let old = std::fs::read_to_string(path).unwrap();
        let back: DrillResult = serde_json::from_str(&old).unwrap();
        assert_eq!(back, sample_result());
        let recoveries: Vec<Recovery> = back.faults.iter().map(|f| f.recovery).collect();
        assert_eq!(recoveries, [Recovery::Recovered, Recovery::NotRecovered]);
        let check = |c: &CheckResult| (c.name.clone(), c.unit);
        let checks: Vec<_> = back.checks.iter().map(check).collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            checks,
            [
                (CheckName::SteadyState, Unit::Ratio),
                (CheckName::Availability(s("baseline")), Unit::Ratio),
                (
                    CheckName::Latency {
                        percentile: s("p99"),
                        phase: s("baseline")
                    },
                    Unit::Millis
                ),
                (CheckName::Rto(s("kill-primary-ingress")), Unit::Seconds),
                (CheckName::Rto(s("switchover-database")), Unit::Seconds),
                (
                    CheckName::Custom(s("rpo:switchover-database")),
                    Unit::Seconds
                ),
                (CheckName::ErrorBudget, Unit::Percent),
                (CheckName::FaultsReverted, Unit::Count),
            ]
        );
        assert_golden("results.json", &crate::report::json::render(&back));
    }

    #[test]
    fn unknown_strings_are_refused_where_the_schema_closes_the_set() {
        assert!(serde_json::from_value::<Recovery>(json!("healed")).is_err());
        assert!(serde_json::from_value::<Unit>(json!("req/s")).is_err());
    }
}
