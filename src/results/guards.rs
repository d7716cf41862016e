//! Stop guards in results.json: each guard's result, its check message,
//! and the figures a metrics exporter publishes.

use serde::{Deserialize, Serialize};

/// How a guard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum GuardStatus {
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
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct GuardResult {
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
    pub(crate) fn message(&self) -> String {
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
    pub(crate) fn metrics(&self) -> Vec<(&'static str, f64)> {
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
