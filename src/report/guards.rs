//! Stop guards in report.md: the `## Stop guards` section.

use crate::results::DrillResult;
#[cfg(test)]
use crate::results::guards::{GuardResult, GuardStatus};
/// `## Stop guards`: one row per guard; the breach and its time to guard.
pub(crate) fn section(md: &mut String, r: &DrillResult) {
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
        let mut r = crate::results::testdata::sample_aborted();
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
        let mut r = crate::results::testdata::sample_aborted();
        r.guards = vec![g];
        let mut md = String::new();
        section(&mut md, &r);
        assert!(
            md.contains("refused to start; nothing was injected"),
            "{md}"
        );
    }
}
