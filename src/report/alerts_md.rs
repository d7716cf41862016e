//! The report's "What on-call saw" section: each alert (expected or not)
//! with when it fired and resolved, time to detect and to resolve against
//! the scenario's limits; each metric probe beside drill's own client-side
//! view, flagged when the two disagree; and how the monitoring ran.

use std::fmt::Write;

use crate::results::{AlertResult, DrillResult, MonitoringInfo, ProbeResult};

/// Client-side and mesh-side error ratios further apart than this factor
/// (and than one point of percentage) are flagged as a disagreement.
const DISAGREEMENT_FACTOR: f64 = 5.0;

fn s(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}s"))
}

fn cell(x: &str) -> String {
    x.replace('|', "\\|").replace('\n', " ")
}

pub(super) fn section(md: &mut String, r: &DrillResult) {
    let Some(info) = &r.monitoring else {
        return;
    };
    md.push_str("## What on-call saw\n\n");
    if let Some(why) = &info.skipped {
        let _ = writeln!(
            md,
            "Alerts and probes were **not measured**: {}. Their checks are skipped, not passed.\n",
            cell(why)
        );
    }
    alerts(md, &r.alerts, info);
    probes(md, &r.probes);
    how(md, info);
}

fn alerts(md: &mut String, alerts: &[AlertResult], info: &MonitoringInfo) {
    if alerts.is_empty() {
        return;
    }
    md.push_str(
        "| Alert | Expected | Fired at | Time to detect | Resolved at | Time to resolve | SLO | Note |\n\
         |---|---|--:|--:|--:|--:|---|---|\n",
    );
    for a in alerts {
        let slo = match (a.fire_within_s, a.resolve_within_s) {
            (Some(f), Some(r)) => format!("detect ≤ {f}s, resolve ≤ {r}s"),
            (Some(f), None) => format!("detect ≤ {f}s"),
            _ => "—".into(),
        };
        let mut note = a.note.clone().unwrap_or_default();
        if a.suppressed {
            note = format!("silenced (still seen as suppressed) {note}");
        }
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            cell(&a.alert),
            if a.expected { "yes" } else { "**no**" },
            s(a.fired_at_s),
            s(a.time_to_detect_s),
            s(a.resolved_at_s),
            s(a.time_to_resolve_s),
            slo,
            cell(note.trim())
        );
    }
    let _ = writeln!(
        md,
        "\nTime to detect runs from the fault's inject to the alert's first appearance in \
         Alertmanager; time to resolve from the moment traffic recovered (RTO) to its \
         disappearance. Both are known to within the polling interval ({}s).\n",
        info.poll_interval_s
    );
}

fn probes(md: &mut String, probes: &[ProbeResult]) {
    if probes.is_empty() {
        return;
    }
    md.push_str(
        "| Probe | Phase | Readings | Min | Max | Limits | drill's client-side error ratio |\n\
         |---|---|--:|--:|--:|---|--:|\n",
    );
    for p in probes {
        let limits = match (p.limit_min, p.limit_max) {
            (Some(a), Some(b)) => format!("{a} … {b}"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => "—".into(),
        };
        let num = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.4}"));
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            cell(&p.name),
            p.phase,
            p.samples,
            num(p.min),
            num(p.max),
            limits,
            p.client_error_ratio
                .map_or("—".into(), |v| format!("{:.2}%", v * 100.0))
        );
    }
    md.push('\n');
    for p in probes {
        if let Some(d) = disagreement(p) {
            let _ = writeln!(md, "⚠️ {d}\n");
        }
    }
}

/// A probe that reads an error ratio (0..1) far from what users saw.
pub(super) fn disagreement(p: &ProbeResult) -> Option<String> {
    let (mesh, users) = (p.max?, p.client_error_ratio?);
    if !(0.0..=1.0).contains(&mesh) {
        return None;
    }
    let far = (mesh - users).abs() > 0.01
        && (mesh.max(users) / mesh.min(users).max(1e-9)) > DISAGREEMENT_FACTOR;
    far.then(|| {
        format!(
            "`{}`: users saw {:.2}% errors during {}, the mesh recorded at most {:.2}%",
            p.name,
            users * 100.0,
            p.phase,
            mesh * 100.0
        )
    })
}

fn how(md: &mut String, info: &MonitoringInfo) {
    let Some(prom) = &info.prometheus else {
        return;
    };
    let every = |s: Option<f64>| {
        s.map_or("at an interval it did not report".to_string(), |s| {
            format!("every {s}s")
        })
    };
    let _ = writeln!(
        md,
        "Prometheus {prom} scraped {} and evaluated rules {}; {}; {}.{}\n",
        every(info.scrape_interval_s),
        every(info.evaluation_interval_s),
        if info.for_factor == 1.0 {
            "each rule's `for` as written".to_string()
        } else {
            format!(
                "each rule's `for` was divided by {} on the lab",
                info.for_factor
            )
        },
        match &info.alertmanager {
            Some(am) => format!(
                "Alertmanager {am} was polled every {}s",
                info.poll_interval_s
            ),
            None => "no Alertmanager was read (the target names none)".to_string(),
        },
        match (&info.silence_id, info.silence_expired) {
            (Some(id), Some(true)) =>
                format!(" Silence `{id}` covered the expected alerts and was expired at the end."),
            (Some(id), Some(false)) => format!(
                " Silence `{id}` covered the expected alerts and was **not** expired: run `drill cleanup`."
            ),
            (Some(id), None) => format!(
                " Silence `{id}` covered the expected alerts; whether it was expired could not be checked (the Alertmanager did not answer at the end)."
            ),
            _ => String::new(),
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(max: f64, users: f64) -> ProbeResult {
        ProbeResult {
            name: "mesh-5xx".into(),
            query: "q".into(),
            phase: "fault".into(),
            samples: 5,
            min: Some(0.0),
            max: Some(max),
            last: Some(max),
            limit_min: None,
            limit_max: Some(0.5),
            client_error_ratio: Some(users),
            note: None,
        }
    }

    #[test]
    fn a_large_disagreement_between_users_and_mesh_is_flagged() {
        let d = disagreement(&probe(0.001, 0.36)).expect("flagged");
        assert!(d.contains("users saw 36.00%"), "{d}");
        assert!(d.contains("at most 0.10%"), "{d}");
        assert!(disagreement(&probe(0.30, 0.36)).is_none());
        assert!(
            disagreement(&probe(0.0, 0.002)).is_none(),
            "both negligible"
        );
    }
}
