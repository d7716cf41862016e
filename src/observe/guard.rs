//! Judging stop guards from what Alertmanager and Prometheus answer. Pure:
//! the watching task (run/guards.rs) feeds it readings on the run clock.
//!
//! When a breach is *visible*, the origin of time to guard:
//! - an alert guard: the alert's `startsAt` in Alertmanager (when
//!   Prometheus found it firing), never later than when drill saw it;
//! - a PromQL guard: the first reading of the breaching spell plus `for`
//!   (the moment the condition had held long enough, as far as readings
//!   every `interval` can tell).

use super::api::{Labels, Sample};
use super::watch::matches;
use crate::measure::Micros;
use crate::scenario::guard::{GuardWatch, Limit};
use crate::scenario::plan::AlertPlan;

/// An alert Alertmanager holds, as a guard reads it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AlertSeen {
    pub labels: Labels,
    /// Its `startsAt` on the run clock, when Alertmanager gave one.
    pub starts_at: Option<Micros>,
}

/// What a breaching reading showed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Breaching {
    /// The breaching value (PromQL guards); alert guards have none.
    pub value: Option<f64>,
    /// One line: `HighErrorRate{service="checkout"} firing`, `0.034 > 0.01`.
    pub what: String,
    /// When the breach became visible (run clock).
    pub visible_at: Micros,
}

/// `Name{k="v",...}`.
pub(crate) fn display(labels: &Labels) -> String {
    let name = labels.get("alertname").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if rest.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(","))
    }
}

/// The first alert (by `startsAt`) that breaches an alert guard: it matches
/// the guard and no alert this drill expects. Alertmanager's silenced
/// alerts count too: drill silences only expected alerts, and an alert the
/// drill did not expect stops it whoever silenced it. `seen_at`: when drill
/// read them.
pub(crate) fn alert_breach(
    watch: &GuardWatch,
    expected: &[AlertPlan],
    alerts: &[AlertSeen],
    seen_at: Micros,
) -> Option<Breaching> {
    let counts = |l: &Labels| -> bool {
        let wanted = match watch {
            GuardWatch::Alert { name, labels } => {
                l.get("alertname") == Some(name) && labels.iter().all(|(k, v)| l.get(k) == Some(v))
            }
            GuardWatch::AnyUnexpectedAlert { severities, labels } => {
                l.get("severity").is_some_and(|s| severities.contains(s))
                    && labels.iter().all(|(k, v)| l.get(k) == Some(v))
            }
            GuardWatch::Promql { .. } => false,
        };
        wanted && !expected.iter().any(|a| matches(a, l))
    };
    alerts
        .iter()
        .filter(|a| counts(&a.labels))
        .map(|a| (a.starts_at.unwrap_or(seen_at).min(seen_at), a))
        .min_by_key(|(at, _)| *at)
        .map(|(visible_at, a)| Breaching {
            value: None,
            what: format!("{} firing", display(&a.labels)),
            visible_at,
        })
}

/// A PromQL guard's breaching spell across readings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Spell {
    /// The first reading of the current breaching spell.
    since: Option<Micros>,
}

impl Spell {
    /// Folds in one reading taken at `at`. Returns the breach once every
    /// reading since the spell began has breached for at least `for_us`.
    /// No series is no breach (`or vector(0)` makes a missing series count).
    pub(crate) fn reading(
        &mut self,
        limit: Limit,
        for_us: Micros,
        at: Micros,
        samples: &[Sample],
    ) -> Option<Breaching> {
        let worst = samples
            .iter()
            .filter(|s| limit.breached(s.value))
            .reduce(|a, b| {
                if limit.worse(a.value, b.value) == a.value {
                    a
                } else {
                    b
                }
            });
        let Some(worst) = worst else {
            self.since = None;
            return None;
        };
        let since = *self.since.get_or_insert(at);
        if at - since < for_us {
            return None;
        }
        let series = if worst.labels.is_empty() {
            String::new()
        } else {
            let l: Vec<String> = worst
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            format!(" ({{{}}})", l.join(","))
        };
        Some(Breaching {
            value: Some(worst.value),
            what: format!("{} {}{series}", worst.value, limit.describe()),
            visible_at: since + for_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::units::Dur;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expected() -> Vec<AlertPlan> {
        vec![AlertPlan {
            name: "HighErrorRate".into(),
            labels: [("service".to_string(), "reviews".to_string())].into(),
            fault: None,
            fire_within: Dur::secs(30),
            resolve_within: None,
        }]
    }

    #[test]
    fn an_expected_alert_never_breaches_and_an_unexpected_one_does() {
        let guard = GuardWatch::Alert {
            name: "HighErrorRate".into(),
            labels: BTreeMap::new(),
        };
        let reviews = AlertSeen {
            labels: labels(&[
                ("alertname", "HighErrorRate"),
                ("service", "reviews"),
                ("severity", "critical"),
            ]),
            starts_at: Some(1_000_000),
        };
        assert_eq!(
            alert_breach(
                &guard,
                &expected(),
                std::slice::from_ref(&reviews),
                2_000_000
            ),
            None,
            "the drill expects it"
        );
        let checkout = AlertSeen {
            labels: labels(&[("alertname", "HighErrorRate"), ("service", "checkout")]),
            starts_at: Some(1_500_000),
        };
        let b = alert_breach(&guard, &expected(), &[reviews, checkout], 2_000_000).unwrap();
        assert_eq!(b.visible_at, 1_500_000);
        assert_eq!(b.what, "HighErrorRate{service=\"checkout\"} firing");
        // A clock ahead of ours never makes the breach visible after we saw it.
        let ahead = AlertSeen {
            labels: labels(&[("alertname", "HighErrorRate")]),
            starts_at: Some(9_000_000),
        };
        let b = alert_breach(&guard, &expected(), &[ahead], 2_000_000).unwrap();
        assert_eq!(b.visible_at, 2_000_000);
    }

    #[test]
    fn any_unexpected_alert_filters_by_severity() {
        let guard = GuardWatch::AnyUnexpectedAlert {
            severities: vec!["critical".into()],
            labels: BTreeMap::new(),
        };
        let warn = AlertSeen {
            labels: labels(&[("alertname", "HighLatency"), ("severity", "warning")]),
            starts_at: None,
        };
        assert_eq!(
            alert_breach(&guard, &[], std::slice::from_ref(&warn), 5),
            None
        );
        let crit = AlertSeen {
            labels: labels(&[("alertname", "IstiodDown"), ("severity", "critical")]),
            starts_at: None,
        };
        let b = alert_breach(&guard, &[], &[warn, crit], 5).unwrap();
        assert_eq!(b.visible_at, 5, "no startsAt: seen is visible");
        assert!(b.what.starts_with("IstiodDown"), "{}", b.what);
    }

    fn sample(v: f64) -> Vec<Sample> {
        vec![Sample {
            labels: Labels::new(),
            value: v,
        }]
    }

    #[test]
    fn a_promql_breach_must_hold_for_its_for_on_every_reading() {
        let mut s = Spell::default();
        let lim = Limit::Above(0.01);
        let for_us = 2_000_000;
        assert_eq!(s.reading(lim, for_us, 0, &sample(0.02)), None);
        assert_eq!(s.reading(lim, for_us, 1_000_000, &sample(0.005)), None);
        // The spell restarts at 2 s.
        assert_eq!(s.reading(lim, for_us, 2_000_000, &sample(0.02)), None);
        assert_eq!(s.reading(lim, for_us, 3_000_000, &sample(0.03)), None);
        let b = s.reading(lim, for_us, 4_000_000, &sample(0.04)).unwrap();
        assert_eq!(b.visible_at, 4_000_000);
        assert_eq!(b.value, Some(0.04));
        assert_eq!(b.what, "0.04 > 0.01");
        // No series is no breach.
        let mut s = Spell::default();
        assert_eq!(s.reading(Limit::Below(1.0), 0, 7, &[]), None);
        let two = vec![
            Sample {
                labels: labels(&[("cluster", "primary")]),
                value: 0.0,
            },
            Sample {
                labels: labels(&[("cluster", "secondary")]),
                value: 2.0,
            },
        ];
        let b = s.reading(Limit::Below(1.0), 0, 7, &two).unwrap();
        assert_eq!(b.visible_at, 7);
        assert_eq!(b.what, "0 < 1 ({cluster=\"primary\"})");
    }
}
