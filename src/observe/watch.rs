//! What drill saw of the alerts while a drill ran, and what that means:
//! Alertmanager is polled every `POLL_INTERVAL`; each alert's firing spells
//! (episodes) are kept on the run clock. Time to detect is the expected
//! alert's first firing after its fault's inject, minus the inject; time to
//! resolve is its resolution minus the moment traffic recovered (the RTO's
//! end). Both are known to within one poll interval. Pure: tested on
//! synthetic streams.

use std::collections::BTreeMap;
use std::time::Duration;

use super::api::Labels;
use crate::measure::Micros;
use crate::results::{AlertResult, FaultResult, ProbeResult};
use crate::scenario::plan::{AlertPlan, MonitoringPlan, PhaseScope};

/// How often Alertmanager (and the probes' queries) are read.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// One firing spell of one alert.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Episode {
    pub fired: Micros,
    pub resolved: Option<Micros>,
    pub suppressed: bool,
}

/// Everything observed, keyed by the alert's full label set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Watch {
    pub alerts: BTreeMap<Labels, Vec<Episode>>,
    /// Each probe's (time, value) readings, in plan order.
    pub probes: Vec<Vec<(Micros, f64)>>,
    /// Alerts already firing when watching began (not caused by the drill).
    pub firing_before: Vec<Labels>,
    /// The last read error, if reads failed.
    pub last_error: Option<String>,
}

impl Watch {
    /// Folds one poll in: `firing` is every alert Alertmanager holds now,
    /// with whether it is suppressed.
    pub(crate) fn observe(&mut self, at: Micros, firing: &[(Labels, bool)]) {
        for (labels, suppressed) in firing {
            let eps = self.alerts.entry(labels.clone()).or_default();
            match eps.last_mut() {
                Some(e) if e.resolved.is_none() => e.suppressed |= suppressed,
                _ => eps.push(Episode {
                    fired: at,
                    resolved: None,
                    suppressed: *suppressed,
                }),
            }
        }
        for (labels, eps) in self.alerts.iter_mut() {
            if let Some(e) = eps.last_mut()
                && e.resolved.is_none()
                && !firing.iter().any(|(l, _)| l == labels)
            {
                e.resolved = Some(at);
            }
        }
    }
}

/// Whether an alert's labels match an expected alert (name and every label
/// it names).
pub(crate) fn matches(plan: &AlertPlan, labels: &Labels) -> bool {
    labels.get("alertname") == Some(&plan.name)
        && plan.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn secs(us: Micros) -> f64 {
    (us as f64 / 1e6 * 1000.0).round() / 1000.0
}

fn display(labels: &Labels) -> String {
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

/// The expected alerts, measured, then every other alert that fired after
/// watching began (unexpected).
pub(crate) fn alert_results(
    w: &Watch,
    plan: &MonitoringPlan,
    faults: &[FaultResult],
    skipped: Option<&str>,
) -> Vec<AlertResult> {
    let mut out = Vec::new();
    for a in &plan.alerts {
        let fault = a
            .fault
            .as_ref()
            .and_then(|n| faults.iter().find(|f| &f.name == n));
        let mut r = AlertResult {
            alert: a.display(),
            expected: true,
            fault: a.fault.clone(),
            fired_at_s: None,
            time_to_detect_s: None,
            resolved_at_s: None,
            time_to_resolve_s: None,
            fire_within_s: Some(a.fire_within.0.as_secs_f64()),
            resolve_within_s: a.resolve_within.map(|d| d.0.as_secs_f64()),
            suppressed: false,
            note: skipped.map(str::to_string),
        };
        if skipped.is_none() {
            measure_one(w, a, fault, &mut r);
        }
        out.push(r);
    }
    for (labels, eps) in &w.alerts {
        if plan.alerts.iter().any(|a| matches(a, labels)) || w.firing_before.contains(labels) {
            continue;
        }
        let first = &eps[0];
        out.push(AlertResult {
            alert: display(labels),
            expected: false,
            fault: None,
            fired_at_s: Some(secs(first.fired)),
            time_to_detect_s: None,
            resolved_at_s: eps.last().and_then(|e| e.resolved).map(secs),
            time_to_resolve_s: None,
            fire_within_s: None,
            resolve_within_s: None,
            suppressed: eps.iter().any(|e| e.suppressed),
            note: None,
        });
    }
    out
}

fn measure_one(w: &Watch, a: &AlertPlan, fault: Option<&FaultResult>, r: &mut AlertResult) {
    let Some(f) = fault else {
        r.note = Some("its fault was never injected".into());
        return;
    };
    let inject = (f.injected_at_s * 1e6) as Micros;
    // The first spell that is still firing at or begins after the inject.
    let spell = w
        .alerts
        .iter()
        .filter(|(l, _)| matches(a, l))
        .flat_map(|(_, eps)| eps.iter())
        .filter(|e| e.resolved.is_none_or(|r| r > inject))
        .min_by_key(|e| e.fired);
    let Some(e) = spell else {
        r.note = Some("never fired".into());
        return;
    };
    if e.fired < inject {
        r.note = Some("already firing before the inject".into());
    }
    r.fired_at_s = Some(secs(e.fired));
    r.time_to_detect_s = Some(secs(e.fired.saturating_sub(inject)));
    r.suppressed = e.suppressed;
    if let Some(res) = e.resolved {
        r.resolved_at_s = Some(secs(res));
        let recovered = f
            .recovered_at_s
            .or(f.reverted_at_s)
            .unwrap_or(f.injected_at_s);
        r.time_to_resolve_s = Some(secs(res.saturating_sub((recovered * 1e6) as Micros)));
    }
}

/// Each probe's readings within its phase.
pub(crate) fn probe_results(
    w: &Watch,
    plan: &MonitoringPlan,
    span: impl Fn(PhaseScope) -> Option<(f64, f64)>,
    client_error_ratio: impl Fn(PhaseScope) -> Option<f64>,
    skipped: Option<&str>,
) -> Vec<ProbeResult> {
    plan.probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let within = span(p.phase);
            let vals: Vec<f64> = w
                .probes
                .get(i)
                .into_iter()
                .flatten()
                .filter(|(t, _)| within.is_some_and(|(a, b)| (a..=b).contains(&secs(*t))))
                .map(|(_, v)| *v)
                .filter(|v| v.is_finite())
                .collect();
            ProbeResult {
                name: p.name.clone(),
                query: p.query.clone(),
                phase: p.phase.name().into(),
                samples: vals.len() as u64,
                min: vals.iter().copied().reduce(f64::min),
                max: vals.iter().copied().reduce(f64::max),
                last: vals.last().copied(),
                limit_min: p.min,
                limit_max: p.max,
                client_error_ratio: client_error_ratio(p.phase),
                note: skipped.map(str::to_string).or_else(|| {
                    vals.is_empty()
                        .then(|| "the query returned no value during the phase".to_string())
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::units::Dur;
    use crate::results::FaultEnd;

    fn labels(name: &str, cluster: &str) -> Labels {
        [("alertname", name), ("cluster", cluster)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fault(injected: f64, recovered: Option<f64>) -> FaultResult {
        FaultResult {
            name: "kill".into(),
            component: "ingress-gateway".into(),
            region: Some("primary".into()),
            action: "delete".into(),
            injected_at_s: injected,
            reverted_at_s: None,
            injected_at: String::new(),
            reverted_at: None,
            rto_s: None,
            recovery: crate::results::Recovery::Recovered,
            time_to_impact_s: None,
            outage_s: 0.0,
            recovered_at_s: recovered,
            ended: FaultEnd::Reverted,
            extra: Default::default(),
        }
    }

    fn plan() -> MonitoringPlan {
        MonitoringPlan {
            alerts: vec![AlertPlan {
                name: "IngressGatewayDown".into(),
                labels: [("cluster".to_string(), "primary".to_string())].into(),
                fault: Some("kill".into()),
                fire_within: Dur::secs(30),
                resolve_within: Some(Dur::secs(30)),
            }],
            unexpected_fail: false,
            probes: vec![],
            silence: false,
            rules: None,
        }
    }

    #[test]
    fn detect_and_resolve_are_measured_from_inject_and_recovery() {
        let mut w = Watch::default();
        let down = labels("IngressGatewayDown", "primary");
        let other = labels("HighErrorRate", "primary");
        // Polls every 250 ms; inject at 20 s; firing seen at 24.25 s,
        // gone at 33.5 s; traffic recovered at 22 s.
        for step in 0..200u64 {
            let at = step * 250_000;
            let mut now = Vec::new();
            if (24_250_000..33_500_000).contains(&at) {
                now.push((down.clone(), step % 2 == 0));
            }
            if (25_000_000..26_000_000).contains(&at) {
                now.push((other.clone(), false));
            }
            w.observe(at, &now);
        }
        let r = alert_results(&w, &plan(), &[fault(20.0, Some(22.0))], None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].time_to_detect_s, Some(4.25));
        assert_eq!(r[0].fired_at_s, Some(24.25));
        assert_eq!(r[0].resolved_at_s, Some(33.5));
        assert_eq!(r[0].time_to_resolve_s, Some(11.5));
        assert!(r[0].suppressed);
        assert!(!r[1].expected);
        assert_eq!(r[1].alert, "HighErrorRate{cluster=\"primary\"}");
        assert_eq!(r[1].fired_at_s, Some(25.0));
    }

    #[test]
    fn a_label_mismatch_or_silence_in_alertmanager_means_never_fired() {
        let mut w = Watch::default();
        w.observe(
            21_000_000,
            &[(labels("IngressGatewayDown", "secondary"), false)],
        );
        w.observe(22_000_000, &[]);
        let r = alert_results(&w, &plan(), &[fault(20.0, None)], None);
        assert_eq!(r[0].time_to_detect_s, None);
        assert_eq!(r[0].note.as_deref(), Some("never fired"));
        assert!(!r[1].expected, "the secondary's alert is unexpected");
        let skipped = alert_results(&w, &plan(), &[fault(20.0, None)], Some("no prometheus"));
        assert_eq!(skipped[0].note.as_deref(), Some("no prometheus"));
        assert_eq!(skipped[0].time_to_detect_s, None);
    }
}
