//! The report's "Vantage points" section: when the load came from agents,
//! each vantage point's figures side by side with the merged ones (a
//! failover seen differently from each side is the finding), each agent's
//! clock bound, and any agent whose share went missing.

use std::fmt::Write;

use super::units::{ms, pct, secs};
use crate::results::{DrillResult, VantageResult};

fn cell(x: &str) -> String {
    x.replace('|', "\\|").replace('\n', " ")
}

fn s(v: Option<f64>) -> String {
    v.map_or("—".into(), secs)
}

fn avail(v: Option<f64>) -> String {
    v.map_or("—".into(), |a| pct(a * 100.0))
}

pub(super) fn section(md: &mut String, r: &DrillResult) {
    if r.vantages.is_empty() {
        return;
    }
    md.push_str("## Vantage points\n\n");
    let vs = &r.vantages;
    let mut head = String::from("| | merged |");
    let mut rule = String::from("|---|---:|");
    for v in vs {
        let _ = write!(head, " {} |", cell(&v.name));
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    let mut row = |label: String, merged: String, each: &dyn Fn(&VantageResult) -> String| {
        let _ = write!(md, "| {} | {merged} |", cell(&label));
        for v in vs {
            let _ = write!(md, " {} |", each(v));
        }
        md.push('\n');
    };
    let agents: usize = vs.iter().map(|v| v.agents.len()).sum();
    row("agents".into(), agents.to_string(), &|v| {
        v.agents.len().to_string()
    });
    let measured: Vec<_> = ["baseline", "fault", "recovery"]
        .into_iter()
        .filter(|p| r.phases.contains_key(*p))
        .collect();
    let (good, all) = measured.iter().fold((0, 0), |(g, a), p| {
        (g + r.phases[*p].good, a + r.phases[*p].requests)
    });
    row(
        "availability (measured phases)".into(),
        avail((all > 0).then(|| good as f64 / all as f64)),
        &|v| avail(v.availability),
    );
    for f in &r.faults {
        let find = |v: &VantageResult| v.faults.iter().find(|x| x.name == f.name).cloned();
        row(format!("RTO `{}`", f.name), s(f.rto_s), &|v| {
            find(v).map_or("—".into(), |x| s(x.rto_s))
        });
        row(
            format!("time to impact `{}`", f.name),
            s(f.time_to_impact_s),
            &|v| find(v).map_or("—".into(), |x| s(x.time_to_impact_s)),
        );
    }
    for p in &measured {
        let m = &r.phases[*p];
        row(format!("{p} requests"), m.requests.to_string(), &|v| {
            v.phases
                .get(*p)
                .map_or("—".into(), |x| x.requests.to_string())
        });
        row(
            format!("{p} p50 / p99"),
            format!("{} / {}", ms(m.p50_ms), ms(m.p99_ms)),
            &|v| {
                v.phases.get(*p).map_or("—".into(), |x| {
                    format!("{} / {}", ms(x.p50_ms), ms(x.p99_ms))
                })
            },
        );
    }
    md.push('\n');
    agents_list(md, vs);
}

/// Each agent's clock bound, and the shares that went missing.
fn agents_list(md: &mut String, vs: &[VantageResult]) {
    let bounds: Vec<String> = vs
        .iter()
        .flat_map(|v| &v.agents)
        .map(|a| format!("{} ±{}", a.name, ms(a.clock_bound_ms)))
        .collect();
    let _ = writeln!(
        md,
        "Each agent's clock is aligned with the runner's by the hello with the shortest round trip; \
         the bound (half that round trip) only limits which phase a request due within it of a \
         phase boundary is counted in — latencies are measured on one clock: {}.\n",
        bounds.join(", ")
    );
    for v in vs {
        for a in &v.agents {
            if let Some(from) = a.missing_from_s {
                let _ = writeln!(
                    md,
                    "⚠️ Agent **{}** is missing from t+{}: its share of the load after that is absent \
                     from every figure ({}). The drill cannot pass.\n",
                    cell(&a.name),
                    secs(from),
                    cell(a.missing_reason.as_deref().unwrap_or("no reason given"))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testdata::sample_result;
    use crate::results::{AgentResult, Recovery, VantageFault, VantagePhase};

    fn vantage(name: &str, rto: Option<f64>, missing: Option<f64>) -> VantageResult {
        VantageResult {
            name: name.into(),
            agents: vec![AgentResult {
                name: format!("{name}/0"),
                clock_offset_ms: -3.0,
                clock_bound_ms: 0.25,
                missing_from_s: missing,
                missing_reason: missing.map(|_| "no answer for 2.0s".into()),
            }],
            availability: Some(0.9),
            phases: [(
                "fault".to_string(),
                VantagePhase {
                    requests: 100,
                    availability: Some(0.9),
                    p50_ms: 12.0,
                    p99_ms: 900.0,
                },
            )]
            .into(),
            faults: vec![VantageFault {
                name: "kill-primary-ingress".into(),
                rto_s: rto,
                recovery: if rto.is_some() {
                    Recovery::Recovered
                } else {
                    Recovery::NotRecovered
                },
                time_to_impact_s: Some(0.1),
                outage_s: 1.0,
            }],
            good_ratio: vec![Some(1.0)],
        }
    }

    /// Two vantage points side by side: a failover seen in 0.4 s from one
    /// side and never recovered from the other, and a missing agent named
    /// with its time.
    #[test]
    fn vantage_points_are_side_by_side_and_a_missing_agent_is_named() {
        let mut r = sample_result();
        r.faults.truncate(1);
        r.faults[0].name = "kill-primary-ingress".into();
        r.vantages = vec![
            vantage("primary", None, Some(12.5)),
            vantage("secondary", Some(0.4), None),
        ];
        let mut md = String::new();
        section(&mut md, &r);
        assert!(md.contains("| | merged | primary | secondary |"), "{md}");
        let rto = md
            .lines()
            .find(|l| l.starts_with("| RTO `kill-primary-ingress`"))
            .unwrap();
        assert!(rto.ends_with("| — | 0.4 s |"), "{rto}");
        assert!(md.contains("primary/0 ±0.25 ms"), "{md}");
        assert!(
            md.contains("Agent **primary/0** is missing from t+12.5 s"),
            "{md}"
        );
        let mut none = String::new();
        r.vantages.clear();
        section(&mut none, &r);
        assert!(none.is_empty());
    }
}
