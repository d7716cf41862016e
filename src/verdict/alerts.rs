//! The alert checks' facts: what Prometheus and Alertmanager showed during
//! the drill, turned into alert and probe results.

use std::collections::BTreeMap;

use crate::measure::Recorder;
use crate::observe::watch::{self, POLL_INTERVAL, Watch};
use crate::results::{AlertResult, FaultResult, MonitoringInfo, PhaseSpan, ProbeResult};
use crate::scenario::plan::PhaseScope;

/// What the assembly needs of the monitoring.
#[derive(Clone, Debug)]
pub(crate) struct MonitoringOutcome {
    pub watch: Watch,
    pub info: MonitoringInfo,
    /// Per expected alert that never fired: why, when known (e.g. its
    /// expression reads metrics that returned no series).
    pub never_fired: BTreeMap<String, String>,
}

/// The monitoring facts when nothing was read, with why.
pub(crate) fn info(skipped: Option<String>) -> MonitoringInfo {
    MonitoringInfo {
        skipped,
        prometheus: None,
        alertmanager: None,
        scrape_interval_s: None,
        evaluation_interval_s: None,
        poll_interval_s: POLL_INTERVAL.as_secs_f64(),
        for_factor: 1.0,
        silence_id: None,
        silence_expired: None,
    }
}

/// The alerts, probes and monitoring facts of a finished drill.
pub(crate) fn measured(
    f: &super::RunFacts,
    rec: &Recorder,
    faults: &[FaultResult],
    spans: &[PhaseSpan],
) -> (Vec<AlertResult>, Vec<ProbeResult>, Option<MonitoringInfo>) {
    let Some(mp) = f.plan.monitoring.as_ref() else {
        return (Vec::new(), Vec::new(), None);
    };
    let outcome = f.monitoring.clone().unwrap_or_else(|| MonitoringOutcome {
        watch: Watch::default(),
        info: info(Some(
            "the drill stopped before monitoring started".to_string(),
        )),
        never_fired: BTreeMap::new(),
    });
    let skipped = outcome.info.skipped.as_deref();
    let mut alerts = watch::alert_results(&outcome.watch, mp, faults, skipped);
    for a in alerts.iter_mut().filter(|a| a.expected) {
        if let Some(why) = outcome.never_fired.get(&a.alert) {
            a.note = Some(why.clone());
        }
    }
    let span = |p: PhaseScope| -> Option<(f64, f64)> {
        let find = |n: &str| spans.iter().find(|s| s.phase == n);
        match p {
            PhaseScope::Drill => Some((find("baseline")?.start_s, spans.last()?.end_s)),
            other => find(other.name()).map(|s| (s.start_s, s.end_s)),
        }
    };
    let client = |p: PhaseScope| {
        let s = super::checks::slice(rec, p);
        (s.all > 0).then(|| (s.all - s.good) as f64 / s.all as f64)
    };
    let probes = watch::probe_results(&outcome.watch, mp, span, client, skipped);
    (alerts, probes, Some(outcome.info))
}
