//! Stop guards in the reports: each guard's result (results.json `guards`),
//! its Markdown section, and the figures a metrics exporter publishes.

use serde::{Deserialize, Serialize};

use super::model::DrillResult;

/// How a guard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardStatus {
    /// Read through the drill and never breached.
    Held,
    /// Breached: the drill stopped and reverted.
    Breached,
    /// Its source could not be read and it stops on that (fail safe).
    Unreachable,
    /// The drill stopped before the guards were read.
    NotEvaluated,
}

impl GuardStatus {
    pub fn name(self) -> &'static str {
        match self {
            GuardStatus::Held => "held",
            GuardStatus::Breached => "breached",
            GuardStatus::Unreachable => "unreachable",
            GuardStatus::NotEvaluated => "not evaluated",
        }
    }
}

/// One `[[guard]]` and what it saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardResult {
    pub name: String,
    /// `alert`, `promql` or `any-unexpected-alert`.
    pub kind: String,
    /// What it watches, in one line.
    pub condition: String,
    /// `stop` or `continue`.
    pub on_unreachable: String,
    pub status: GuardStatus,
    /// Successful reads.
    pub readings: u64,
    /// Reads that failed (counted, not fatal, with `on_unreachable = "continue"`).
    pub failed_reads: u64,
    /// The breaching value (PromQL guards).
    pub value: Option<f64>,
    /// The PromQL guard's limit.
    pub limit: Option<f64>,
    /// What breached: `HighErrorRate{service="checkout"} firing`, `0.034 > 0.01`.
    pub breach: Option<String>,
    /// The breach was found by the preflight reading: nothing was injected.
    pub at_preflight: bool,
    /// When the breach became visible in Prometheus/Alertmanager (run clock).
    pub visible_at_s: Option<f64>,
    /// The same, RFC 3339 UTC.
    pub visible_at: Option<String>,
    /// When drill read it.
    pub seen_at_s: Option<f64>,
    /// drill's first revert request after the breach (or, with nothing
    /// injected at the time, the start of the teardown).
    pub first_revert_at_s: Option<f64>,
    /// From the breach being visible to the first revert request.
    pub time_to_guard_s: Option<f64>,
    /// The last read error, if reads failed.
    pub last_error: Option<String>,
}

impl GuardResult {
    /// The `guard:<name>` check's message.
    pub fn message(&self) -> String {
        match self.status {
            GuardStatus::Held => format!(
                "guard {} held ({} readings{}): {}",
                self.name,
                self.readings,
                if self.failed_reads > 0 {
                    format!(", {} failed reads", self.failed_reads)
                } else {
                    String::new()
                },
                self.condition
            ),
            GuardStatus::NotEvaluated => format!(
                "guard {} not evaluated: the drill stopped before the guards were read",
                self.name
            ),
            GuardStatus::Breached | GuardStatus::Unreachable => {
                let what = self.breach.as_deref().unwrap_or("breached");
                let when = if self.at_preflight {
                    "at preflight, nothing injected".to_string()
                } else {
                    match self.time_to_guard_s {
                        Some(t) => format!("time to guard {t:.3}s"),
                        None => "time to guard unknown".into(),
                    }
                };
                format!("guard {} {}: {what}; {when}", self.name, self.status.name())
            }
        }
    }

    // Read by the Pushgateway push (built beside this), not yet by drill.
    #[allow(dead_code)]
    /// The figures a metrics exporter (the Pushgateway push) publishes per
    /// guard, each `(metric name, value)` with the label `guard=<name>`:
    /// whether it stopped the drill, and its time to guard when it did.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let stopped = matches!(
            self.status,
            GuardStatus::Breached | GuardStatus::Unreachable
        );
        let mut out = vec![("drill_guard_breached", if stopped { 1.0 } else { 0.0 })];
        if let Some(t) = self.time_to_guard_s {
            out.push(("drill_time_to_guard_seconds", t));
        }
        out
    }
}

/// `## Stop guards`: one row per guard; the breach and its time to guard.
pub fn section(md: &mut String, r: &DrillResult) {
    if r.guards.is_empty() {
        return;
    }
    md.push_str("\n## Stop guards\n\n");
    if let Some(g) = r.guards.iter().find(|g| g.breach.is_some()) {
        let what = g.breach.as_deref().unwrap_or_default();
        if g.at_preflight {
            md.push_str(&format!(
                "**Guard `{}` was already breaching at preflight** ({what}): the drill refused to start; nothing was injected.\n\n",
                g.name
            ));
        } else {
            md.push_str(&format!(
                "**Guard `{}` stopped the drill**: {what}, visible at t+{}s{}; every active fault was reverted, the first revert requested at t+{}s: **time to guard {}**.\n\n",
                g.name,
                opt(g.visible_at_s),
                g.visible_at.as_deref().map_or(String::new(), |w| format!(" ({w})")),
                opt(g.first_revert_at_s),
                g.time_to_guard_s
                    .map_or("unknown".to_string(), |t| format!("{t:.3}s"))
            ));
        }
    }
    md.push_str("| guard | watches | status | readings | value | time to guard |\n");
    md.push_str("|---|---|---|---:|---|---:|\n");
    for g in &r.guards {
        md.push_str(&format!(
            "| `{}` | {} | {} | {}{} | {} | {} |\n",
            g.name,
            cell(&g.condition),
            g.status.name(),
            g.readings,
            if g.failed_reads > 0 {
                format!(" ({} failed)", g.failed_reads)
            } else {
                String::new()
            },
            g.value.map_or("—".to_string(), |v| v.to_string()),
            g.time_to_guard_s
                .map_or("—".to_string(), |t| format!("{t:.3}s"))
        ));
    }
    md.push('\n');
}

fn opt(v: Option<f64>) -> String {
    v.map_or("?".to_string(), |v| format!("{v:.3}"))
}

/// A table cell: pipes escaped so a PromQL `or`/`|` cannot break the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breached() -> GuardResult {
        GuardResult {
            name: "checkout-errors".into(),
            kind: "promql".into(),
            condition: "ratio > 0.01 for 30s (read every 1s)".into(),
            on_unreachable: "stop".into(),
            status: GuardStatus::Breached,
            readings: 42,
            failed_reads: 0,
            value: Some(0.034),
            limit: Some(0.01),
            breach: Some("0.034 > 0.01".into()),
            at_preflight: false,
            visible_at_s: Some(31.5),
            visible_at: Some("2026-12-04T16:00:31.500Z".into()),
            seen_at_s: Some(31.9),
            first_revert_at_s: Some(32.0),
            time_to_guard_s: Some(0.5),
            last_error: None,
        }
    }

    #[test]
    fn a_breach_reads_with_its_value_and_time_to_guard() {
        let g = breached();
        assert_eq!(
            g.message(),
            "guard checkout-errors breached: 0.034 > 0.01; time to guard 0.500s"
        );
        assert_eq!(
            g.metrics(),
            vec![
                ("drill_guard_breached", 1.0),
                ("drill_time_to_guard_seconds", 0.5)
            ]
        );
        let mut r = crate::report::testdata::sample_aborted();
        r.guards = vec![g];
        let mut md = String::new();
        section(&mut md, &r);
        assert!(md.contains("## Stop guards"), "{md}");
        assert!(
            md.contains("**Guard `checkout-errors` stopped the drill**: 0.034 > 0.01"),
            "{md}"
        );
        assert!(md.contains("time to guard 0.500s"), "{md}");
        assert!(md.contains("| `checkout-errors` |"), "{md}");
    }

    #[test]
    fn a_preflight_refusal_says_nothing_was_injected() {
        let mut g = breached();
        g.at_preflight = true;
        assert!(g.message().ends_with("at preflight, nothing injected"));
        let mut r = crate::report::testdata::sample_aborted();
        r.guards = vec![g];
        let mut md = String::new();
        section(&mut md, &r);
        assert!(
            md.contains("refused to start; nothing was injected"),
            "{md}"
        );
    }
}
