//! Stop guards (`[[guard]]`): what production says is "enough". A guard
//! watches something the drill was *not* meant to break — an alert that is
//! not expected, a PromQL expression over another service — and when it
//! breaches, the drill reverts every active fault and stops (exit 3).
//! This file holds the guard as written and as resolved; validation is in
//! `validate_guards.rs`, the judging in `observe::guard`, the watching in
//! `run::guards`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::base::units::Dur;

/// How often a PromQL guard is evaluated when the scenario does not say.
pub(crate) const DEFAULT_INTERVAL: Dur = Dur::secs(1);

/// One `[[guard]]` table as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Shown in reports and as the JUnit case `guard:<name>`.
    pub name: Option<Spanned<String>>,
    /// Stop when this alert fires and is not one the drill expects.
    pub alert: Option<Spanned<String>>,
    /// Stop when this expression's value breaches `above`/`below` for `for`.
    pub promql: Option<Spanned<String>>,
    /// Stop on any alert of `severity` that the drill does not expect.
    pub any_unexpected_alert: Option<Spanned<bool>>,
    /// Labels an alert must carry to count (alert guards).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `any_unexpected_alert`: the severities that count (default critical).
    pub severity: Option<Spanned<Severities>>,
    pub above: Option<Spanned<f64>>,
    pub below: Option<Spanned<f64>>,
    /// How long the expression must breach (default: one reading).
    #[serde(rename = "for")]
    pub for_: Option<Spanned<Dur>>,
    /// How often drill evaluates the expression (default 1s).
    pub interval: Option<Spanned<Dur>>,
    /// `stop` (default: fail safe) or `continue` when the guard's data
    /// source cannot be read.
    pub on_unreachable: Option<Spanned<String>>,
}

/// `severity = "critical"` or `severity = ["critical", "page"]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Severities {
    One(String),
    Many(Vec<String>),
}

impl Severities {
    pub fn list(&self) -> Vec<String> {
        match self {
            Severities::One(s) => vec![s.clone()],
            Severities::Many(v) => v.clone(),
        }
    }
}

/// One guard, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardPlan {
    pub name: String,
    pub watch: GuardWatch,
    /// Stop the drill (true, the default) when the data source cannot be read.
    pub stop_on_unreachable: bool,
    /// Where the guard is written (`file:line:col`), for errors found only
    /// at run time (a query the configured Prometheus rejects).
    pub at: String,
}

/// What a guard watches.
#[derive(Clone, Debug, PartialEq)]
pub enum GuardWatch {
    /// An alert (by name and labels) in Alertmanager.
    Alert {
        name: String,
        labels: BTreeMap<String, String>,
    },
    /// Any alert of these severities (and labels) in Alertmanager.
    AnyUnexpectedAlert {
        severities: Vec<String>,
        labels: BTreeMap<String, String>,
    },
    /// A PromQL expression read from Prometheus every `interval`.
    Promql {
        query: String,
        limit: Limit,
        for_: Dur,
        interval: Dur,
    },
}

/// The comparison a PromQL guard makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Above(f64),
    Below(f64),
}

impl Limit {
    pub fn breached(self, v: f64) -> bool {
        match self {
            Limit::Above(l) => v > l,
            Limit::Below(l) => v < l,
        }
    }
    pub fn value(self) -> f64 {
        match self {
            Limit::Above(l) | Limit::Below(l) => l,
        }
    }
    /// `> 0.01`, `< 2`.
    pub fn describe(self) -> String {
        match self {
            Limit::Above(l) => format!("> {l}"),
            Limit::Below(l) => format!("< {l}"),
        }
    }
    /// Of two breaching values, the one further past the limit.
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match self {
            Limit::Above(_) => a.max(b),
            Limit::Below(_) => a.min(b),
        }
    }
}

fn labels_display(labels: &BTreeMap<String, String>) -> String {
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    if l.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", l.join(","))
    }
}

impl GuardWatch {
    /// `alert`, `promql` or `any-unexpected-alert`.
    pub fn kind(&self) -> &'static str {
        match self {
            GuardWatch::Alert { .. } => "alert",
            GuardWatch::AnyUnexpectedAlert { .. } => "any-unexpected-alert",
            GuardWatch::Promql { .. } => "promql",
        }
    }

    /// The condition in one line: `HighErrorRate{service="checkout"} fires`,
    /// `sum(...) > 0.01 for 30s (every 1s)`.
    pub fn condition(&self) -> String {
        match self {
            GuardWatch::Alert { name, labels } => {
                format!(
                    "{name}{} fires, not expected by this drill",
                    labels_display(labels)
                )
            }
            GuardWatch::AnyUnexpectedAlert { severities, labels } => format!(
                "any alert{} with severity {} fires, not expected by this drill",
                labels_display(labels),
                severities.join("|")
            ),
            GuardWatch::Promql {
                query,
                limit,
                for_,
                interval,
            } => {
                let held = if for_.0.is_zero() {
                    "on one reading".to_string()
                } else {
                    format!("for {for_}")
                };
                format!(
                    "{query} {} {held} (read every {interval})",
                    limit.describe()
                )
            }
        }
    }

    /// Whether it reads Alertmanager (else Prometheus).
    pub fn reads_alertmanager(&self) -> bool {
        !matches!(self, GuardWatch::Promql { .. })
    }
}

impl GuardPlan {
    /// One line for `drill plan`: what it watches and what it would do.
    pub fn describe(&self) -> String {
        let source = if self.watch.reads_alertmanager() {
            "Alertmanager"
        } else {
            "Prometheus"
        };
        format!(
            "guard `{}`: from preflight to the end of recovery, when {} → revert every active fault at once and stop (exit 3); already breaching at preflight → refuse to start; {source} unreachable → {}",
            self.name,
            self.watch.condition(),
            if self.stop_on_unreachable {
                "stop (fail safe)"
            } else {
                "continue (on_unreachable = \"continue\")"
            }
        )
    }
}

/// The guards of a validated scenario, resolved.
pub(crate) fn resolve(l: &super::Loaded) -> Vec<GuardPlan> {
    l.scenario
        .guard
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let at =
                super::Diagnostic::at(&l.path, &l.src, Some(g.span()), String::new()).location();
            resolve_one(i, g.get_ref(), at)
        })
        .collect()
}

/// The name a guard gets when it has none: its alert's name, else
/// `any-unexpected-alert`, else `guard-N` (1-based, in file order).
pub(crate) fn default_name(i: usize, g: &Guard) -> String {
    if let Some(a) = &g.alert {
        return a.get_ref().clone();
    }
    if g.any_unexpected_alert
        .as_ref()
        .is_some_and(|b| *b.get_ref())
    {
        return "any-unexpected-alert".into();
    }
    format!("guard-{}", i + 1)
}

fn resolve_one(i: usize, g: &Guard, at: String) -> GuardPlan {
    let name = g
        .name
        .as_ref()
        .map_or_else(|| default_name(i, g), |n| n.get_ref().clone());
    let watch = if let Some(a) = &g.alert {
        GuardWatch::Alert {
            name: a.get_ref().clone(),
            labels: g.labels.clone(),
        }
    } else if let Some(q) = &g.promql {
        GuardWatch::Promql {
            query: q.get_ref().clone(),
            limit: match (&g.above, &g.below) {
                (Some(a), _) => Limit::Above(*a.get_ref()),
                (None, Some(b)) => Limit::Below(*b.get_ref()),
                (None, None) => Limit::Above(0.0),
            },
            for_: g.for_.as_ref().map_or(Dur::default(), |d| *d.get_ref()),
            interval: g
                .interval
                .as_ref()
                .map_or(DEFAULT_INTERVAL, |d| *d.get_ref()),
        }
    } else {
        GuardWatch::AnyUnexpectedAlert {
            severities: g
                .severity
                .as_ref()
                .map_or_else(|| vec!["critical".to_string()], |s| s.get_ref().list()),
            labels: g.labels.clone(),
        }
    };
    GuardPlan {
        name,
        watch,
        stop_on_unreachable: g
            .on_unreachable
            .as_ref()
            .is_none_or(|u| u.get_ref() != "continue"),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(toml: &str) -> Vec<GuardPlan> {
        let src = format!("description = \"d\"\n{toml}");
        let l = crate::scenario::parse(std::path::Path::new("g.toml"), &src).expect("parses");
        resolve(&l)
    }

    #[test]
    fn each_kind_resolves_with_its_defaults() {
        let p = plans(
            "[[guard]]\nalert = \"HighErrorRate\"\nlabels = { service = \"checkout\" }\n\
             [[guard]]\npromql = 'sum(rate(x[5m]))'\nabove = 0.01\nfor = \"30s\"\non_unreachable = \"continue\"\n\
             [[guard]]\nany_unexpected_alert = true\n",
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "HighErrorRate");
        assert_eq!(p[0].at, "g.toml:2:1");
        assert!(p[0].stop_on_unreachable);
        assert_eq!(p[1].name, "guard-2");
        assert!(!p[1].stop_on_unreachable);
        assert_eq!(
            p[1].watch,
            GuardWatch::Promql {
                query: "sum(rate(x[5m]))".into(),
                limit: Limit::Above(0.01),
                for_: Dur::secs(30),
                interval: DEFAULT_INTERVAL,
            }
        );
        assert_eq!(p[2].name, "any-unexpected-alert");
        assert_eq!(
            p[2].watch,
            GuardWatch::AnyUnexpectedAlert {
                severities: vec!["critical".into()],
                labels: BTreeMap::new()
            }
        );
        let d = p[1].describe();
        assert!(
            d.contains("sum(rate(x[5m])) > 0.01 for 30s") && d.contains("continue"),
            "{d}"
        );
    }

    #[test]
    fn limits_compare_in_their_direction() {
        assert!(Limit::Above(1.0).breached(1.5));
        assert!(!Limit::Above(1.0).breached(1.0));
        assert!(Limit::Below(2.0).breached(1.0));
        assert!(!Limit::Below(2.0).breached(2.0));
        assert_eq!(Limit::Below(2.0).worse(1.0, 0.5), 0.5);
        assert_eq!(Limit::Above(2.0).worse(3.0, 4.0), 4.0);
    }
}
