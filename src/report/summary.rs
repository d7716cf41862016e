//! The short form of a drill's result, for a PR comment or a CI job summary
//! (`drill run --summary FILE`): verdict, failed checks, key figures and one
//! chart, so it reads at a glance; the full report.md is a link away.

use std::fmt::Write;

use super::markdown::{cell, one_line, phase_order, verdict_badge, worst_rto};
use super::units::{ms, pct, secs, value};
use crate::results::{CheckStatus, DrillResult, Verdict};

/// At most this many failed checks are listed; the rest are counted.
const MAX_FAILED_ROWS: usize = 8;

/// The summary of one drill; `report` is where its full report.md is, as
/// the reader will see the path (or link).
pub(crate) fn render(r: &DrillResult, report: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### drill: {} on {} — {}\n",
        r.scenario,
        r.target,
        verdict_badge(r.verdict)
    );
    let failed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    let skipped = r
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Skipped)
        .count();
    let total = r.checks.len();
    let sentence = match r.verdict {
        Verdict::Pass => format!("All {} of {total} evaluated checks passed", total - skipped),
        Verdict::Fail => format!("{} of {total} checks failed", failed.len()),
        Verdict::Aborted => format!("Aborted; {skipped} of {total} checks not evaluated"),
        Verdict::Error => "Stopped on an error; the numbers are incomplete".into(),
        Verdict::Inconclusive => {
            "Inconclusive: the load generator's measurements cannot be trusted".into()
        }
    };
    let _ = writeln!(md, "**{sentence}.** Exit code {}.\n", r.exit_code());
    if let Some(reason) = &r.reason {
        let _ = writeln!(md, "**Reason:** {}\n", cell(&one_line(reason)));
    }
    if !r.manual_actions.is_empty() {
        let _ = writeln!(
            md,
            "> [!CAUTION]\n> **⚠️ Manual action required**: {} revert(s) failed; the system may still be broken. See the full report.\n",
            r.manual_actions.len()
        );
    }
    if !failed.is_empty() {
        md.push_str("| Failed check | Measured | Threshold | Result |\n|---|--:|--:|---|\n");
        for c in failed.iter().take(MAX_FAILED_ROWS) {
            let measured = match c.measured {
                Some(v) => value(v, c.unit),
                None => "—".into(),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} |",
                cell(&c.name.to_string()),
                cell(&measured),
                c.threshold.map_or("—".into(), |v| value(v, c.unit)),
                cell(&one_line(&c.message))
            );
        }
        if failed.len() > MAX_FAILED_ROWS {
            let _ = writeln!(
                md,
                "\n…and {} more in the full report.",
                failed.len() - MAX_FAILED_ROWS
            );
        }
        md.push('\n');
    }
    let figures = key_figures(r);
    if !figures.is_empty() {
        let _ = writeln!(md, "{}\n", figures.join(" · "));
    }
    if let Some(chart) = super::mermaid::good_ratio_chart(r) {
        let _ = writeln!(md, "{chart}");
    }
    let _ = writeln!(
        md,
        "<sub>run `{}` · seed {} · {} · full report: {}</sub>\n",
        r.run_id,
        r.seed,
        secs(r.duration_s),
        report
    );
    md
}

/// RTO, availability and p99 while faults were active, error budget, data
/// loss: the numbers a reviewer looks for first.
fn key_figures(r: &DrillResult) -> Vec<String> {
    let mut out = Vec::new();
    if !r.faults.is_empty() && r.load.rate > 0.0 {
        out.push(format!("**Worst RTO** {}", worst_rto(&r.faults)));
    }
    // While faults were active; before any was injected, the baseline.
    let phases = phase_order(r);
    let wanted = if r.faults.is_empty() {
        "baseline"
    } else {
        "fault"
    };
    if let Some((name, p)) = phases.iter().find(|(n, _)| *n == wanted).or(phases.last())
        && let Some(a) = p.availability
    {
        out.push(format!("**Availability ({name})** {}", pct(a * 100.0)));
        out.push(format!("**p99 ({name})** {}", ms(p.p99_ms)));
    }
    if r.error_budget.requests > 0 {
        out.push(format!(
            "**Error budget consumed** {}",
            pct(r.error_budget.consumed_pct)
        ));
    }
    if let Some(rpo) = &r.rpo {
        out.push(format!(
            "**Lost writes** {} (RPO {})",
            rpo.lost_writes,
            secs(rpo.rpo_s)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::mermaid::tests::parse_xychart;
    use crate::results::testdata::{sample_aborted, sample_pass, sample_result};

    #[test]
    fn says_the_verdict_failed_checks_and_key_figures() {
        let md = render(&sample_result(), "reports/x/report.md");
        assert!(md.starts_with("### drill: region-failover on lab — FAIL ❌\n\n**2 of 8 checks failed.** Exit code 1.\n"), "{md}");
        assert!(
            md.contains("| `rto:kill-primary-ingress` | 41.2 s | 30 s | rto 41.2s > 30s |"),
            "{md}"
        );
        assert!(
            md.contains("**Worst RTO** not recovered (`switchover-database`)"),
            "{md}"
        );
        assert!(md.contains("**Availability (fault)** 63.292 %"), "{md}");
        assert!(md.contains("**Lost writes** 18 (RPO 0.84 s)"), "{md}");
        assert!(md.contains("seed 5280703954370554100"), "{md}");
        assert!(md.contains("full report: reports/x/report.md"), "{md}");
        // The one chart is a well-formed Mermaid block.
        let start = md.find("```mermaid").unwrap();
        let end = start + md[start..].find("\n```\n").unwrap() + 4;
        assert_eq!(parse_xychart(&md[start..end]).len(), 2);
    }

    #[test]
    fn passing_and_aborted_drills_read_at_a_glance() {
        let pass = render(&sample_pass(), "report.md");
        assert!(
            pass.contains("**All 8 of 8 evaluated checks passed.** Exit code 0."),
            "{pass}"
        );
        assert!(!pass.contains("| Failed check |"), "{pass}");
        let aborted = render(&sample_aborted(), "report.md");
        assert!(
            aborted.contains("**Aborted; 7 of 8 checks not evaluated.** Exit code 3."),
            "{aborted}"
        );
        assert!(
            aborted.contains("**Reason:** steady state not met"),
            "{aborted}"
        );
        // Nothing was injected: the figures are the baseline's.
        assert!(
            aborted.contains("**Availability (baseline)** "),
            "{aborted}"
        );
        assert!(!aborted.contains("Worst RTO"), "{aborted}");
    }

    #[test]
    fn stays_short_however_many_checks_fail() {
        let mut r = sample_result();
        let template = r.checks[3].clone();
        for i in 0..40 {
            let mut c = template.clone();
            c.name = crate::results::CheckName::Rto(format!("fault-{i}"));
            r.checks.push(c);
        }
        r.manual_actions = vec!["scale it back".into(); 10];
        let md = render(&r, "report.md");
        assert!(md.contains("…and 34 more in the full report."), "{md}");
        assert!(
            md.lines().count() <= 40,
            "{} lines:\n{md}",
            md.lines().count()
        );
        // A PR comment stays far below GitHub's 65536-character limit.
        assert!(md.len() < 6000, "{} bytes", md.len());
        let full = super::super::markdown::render(&r, "timeline.svg");
        assert!(md.len() * 2 < full.len());
    }
}
