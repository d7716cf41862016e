//! `report.md`: a drill's result for people, verdict first, written to read
//! well as a GitHub PR comment or job summary (GitHub-flavoured Markdown).
//! Also the suite index that links one such report per scenario.

use std::fmt::Write;

use super::units::{clock, ms, num, pct, secs, sig3, value};
use crate::results::{
    CheckResult, CheckStatus, DrillResult, FaultEnd, FaultResult, Observations, PhaseSummary,
    Recovery, Verdict,
};

/// The drill's report; `svg_file` is the timeline chart's path relative to
/// the report.
pub(crate) fn render(r: &DrillResult, svg_file: &str) -> String {
    let mut md = String::new();
    verdict(&mut md, r);
    checks(&mut md, &r.checks);
    super::guards::section(&mut md, r);
    faults(&mut md, r);
    versus_previous(&mut md, r);
    phases(&mut md, r);
    super::vantages_md::section(&mut md, r);
    budget(&mut md, r);
    rpo(&mut md, r);
    super::alerts_md::section(&mut md, r);
    timeline(&mut md, r, svg_file);
    events(&mut md, r);
    load(&mut md, r);
    settings(&mut md, r);
    let _ = writeln!(
        md,
        "---\n<sub>run `{}` · seed {} · started {} · duration {} · target {} ({}) · {}</sub>",
        r.run_id,
        r.seed,
        r.started_at,
        secs(r.duration_s),
        r.target,
        r.target_kind,
        r.schema
    );
    md
}

/// Each headline figure beside the previous run's (from the history), with
/// the change; higher is worse for every one but availability.
fn versus_previous(md: &mut String, r: &DrillResult) {
    let Some(p) = &r.previous else {
        return;
    };
    let _ = writeln!(
        md,
        "## Versus the previous run

Previous run `{}` ({}, {}).

| Figure | This run | Previous run | Change |\n|---|---:|---:|---:|",
        p.run_id, p.started_at, p.verdict
    );
    let change = |now: Option<f64>, before: Option<f64>| match (now, before) {
        (Some(n), Some(b)) if b != 0.0 => format!("{:+.0}%", (n - b) / b * 100.0),
        (Some(n), Some(b)) if n == b => "same".into(),
        _ => "—".into(),
    };
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("—".to_string(), f);
    for f in &r.faults {
        let before = p.rto_s.get(&f.name).copied().flatten();
        let _ = writeln!(
            md,
            "| RTO `{}` | {} | {} | {} |",
            cell(&f.name),
            opt(f.rto_s, &secs),
            opt(before, &secs),
            change(f.rto_s, before)
        );
    }
    let p99 = r.phases.get("fault").map(|ph| ph.p99_ms);
    let _ = writeln!(
        md,
        "| p99, fault phase | {} | {} | {} |",
        opt(p99, &ms),
        opt(p.fault_p99_ms, &ms),
        change(p99, p.fault_p99_ms)
    );
    let (good, all) = r
        .phases
        .values()
        .fold((0u64, 0u64), |(g, a), ph| (g + ph.good, a + ph.requests));
    let avail = (all > 0).then(|| good as f64 / all as f64);
    let _ = writeln!(
        md,
        "| Availability | {} | {} | {} |",
        opt(avail, &|v| pct(v * 100.0)),
        opt(p.availability, &|v| pct(v * 100.0)),
        change(avail, p.availability)
    );
    let used = Some(r.error_budget.consumed_pct);
    let _ = writeln!(
        md,
        "| Error budget consumed | {} | {} | {} |\n",
        opt(used, &pct),
        opt(p.budget_consumed_pct, &pct),
        change(used, p.budget_consumed_pct)
    );
}

/// Mermaid charts render inline wherever the Markdown is posted; the SVG,
/// with fault start and end marked, shows beside the report file.
fn timeline(md: &mut String, r: &DrillResult, svg_file: &str) {
    md.push_str("## Timeline\n\n");
    for chart in [
        super::mermaid::good_ratio_chart(r),
        super::mermaid::p99_chart(r),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(md, "{chart}");
    }
    let _ = writeln!(md, "![timeline]({})\n", link_target(svg_file));
}

/// A fault's target-side observations in words.
fn observations(o: &Observations) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = o.component_ready_s {
        out.push(format!(
            "the component served again {} after the fault",
            secs(v)
        ));
    }
    if let Some(v) = o.config_sync_s {
        out.push(format!(
            "the data plane applied the routing change {} after the control plane returned",
            secs(v)
        ));
    }
    if let Some(n) = o.cross_region_calls {
        out.push(format!("{n} cross-region calls during the fault"));
    }
    if let Some(n) = o.cross_region_failed {
        out.push(format!("{n} cross-region calls failed during the fault"));
    }
    if let Some(v) = o.ready_after_restore_s {
        out.push(format!(
            "the restored instances were ready {} after the restore",
            secs(v)
        ));
    }
    out
}

/// The suite summary: worst verdict first, then one row per drill linking to
/// its report (`entries`: result and path of its report.md, relative).
pub(crate) fn render_suite_index(entries: &[(DrillResult, String)]) -> String {
    let mut md = String::new();
    let Some(worst) = entries.iter().map(|(r, _)| r.verdict).max() else {
        return "# drill suite — no drills ran\n".into();
    };
    let _ = writeln!(md, "# drill suite — {}\n", verdict_badge(worst));
    let count = |v: Verdict| entries.iter().filter(|(r, _)| r.verdict == v).count();
    let _ = writeln!(
        md,
        "**{} drills: {} passed, {} failed, {} aborted, {} errored{}.**\n",
        entries.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Aborted),
        count(Verdict::Error),
        match count(Verdict::Inconclusive) {
            0 => String::new(),
            n => format!(", {n} inconclusive"),
        }
    );
    let manual: Vec<_> = entries
        .iter()
        .filter(|(r, _)| !r.manual_actions.is_empty())
        .collect();
    if !manual.is_empty() {
        let names: Vec<_> = manual
            .iter()
            .map(|(r, p)| format!("[{}]({})", r.scenario, link_target(p)))
            .collect();
        let _ = writeln!(
            md,
            "> [!CAUTION]\n> **⚠️ Manual action required**: a revert failed in {}; see those reports.\n",
            names.join(", ")
        );
    }
    md.push_str("| Scenario | Target | Verdict | Failed checks | Worst RTO | Report |\n");
    md.push_str("|---|---|---|---|---|---|\n");
    for (r, path) in entries {
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| format!("`{}`", cell(&c.name.to_string())))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | [report]({}) |",
            cell(&r.scenario),
            cell(&r.target),
            verdict_badge(r.verdict),
            if failed.is_empty() {
                "—".into()
            } else {
                failed.join(", ")
            },
            worst_rto(&r.faults),
            link_target(path)
        );
    }
    md
}

pub(super) fn verdict_badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS ✅",
        Verdict::Fail => "FAIL ❌",
        Verdict::Inconclusive => "INCONCLUSIVE ❔",
        Verdict::Aborted => "ABORTED ⚠️",
        Verdict::Error => "ERROR ⚠️",
    }
}

fn verdict(md: &mut String, r: &DrillResult) {
    let _ = writeln!(
        md,
        "# drill: {} on {} — {}\n",
        r.scenario,
        r.target,
        verdict_badge(r.verdict)
    );
    if !r.description.trim().is_empty() {
        let _ = writeln!(md, "{}\n", r.description.trim());
    }
    let total = r.checks.len();
    let of = |s: CheckStatus| {
        r.checks
            .iter()
            .filter(|c| c.status == s)
            .collect::<Vec<_>>()
    };
    let (failed, skipped) = (of(CheckStatus::Fail), of(CheckStatus::Skipped));
    let names = |cs: &[&CheckResult]| {
        cs.iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sentence = match r.verdict {
        Verdict::Pass if skipped.is_empty() => format!("**All {total} checks passed.**"),
        Verdict::Pass => format!(
            "**All evaluated checks passed** ({} of {total} skipped).",
            skipped.len()
        ),
        Verdict::Fail => format!(
            "**{} of {total} checks failed:** {}.",
            failed.len(),
            names(&failed)
        ),
        Verdict::Inconclusive => {
            "**The measurements cannot be trusted** (the load generator fell behind, or sent less than asked): \
             no check decides this drill."
                .into()
        }
        Verdict::Aborted => format!(
            "**The drill was aborted; {} of {total} checks were not evaluated.**",
            skipped.len()
        ),
        Verdict::Error => "**The drill stopped on an error; its numbers are incomplete.**".into(),
    };
    let _ = writeln!(md, "{sentence} Exit code {}.\n", r.exit_code());
    if let Some(reason) = &r.reason {
        let _ = writeln!(md, "**Reason:** {}\n", one_line(reason));
    }
    if !r.manual_actions.is_empty() {
        md.push_str("> [!CAUTION]\n> **⚠️ Manual action required**: a revert failed and the system may still be broken. Do this by hand:\n>\n");
        for (i, a) in r.manual_actions.iter().enumerate() {
            let _ = writeln!(md, "> {}. {}", i + 1, one_line(a));
        }
        md.push('\n');
    }
}

fn checks(md: &mut String, checks: &[CheckResult]) {
    md.push_str("## Checks\n\n");
    if checks.is_empty() {
        md.push_str("No checks were defined.\n\n");
        return;
    }
    md.push_str("| Check | Status | Measured | Threshold | Message |\n|---|---|--:|--:|---|\n");
    for c in checks {
        let status = match c.status {
            CheckStatus::Pass => "✅ pass",
            CheckStatus::Fail => "❌ **fail**",
            CheckStatus::Skipped => "⏭️ skipped",
        };
        let measured = match c.measured {
            Some(v) => value(v, c.unit),
            None if c.name.is_rto() && c.status != CheckStatus::Skipped => "not recovered".into(),
            None => "—".into(),
        };
        let threshold = c.threshold.map_or("—".into(), |v| value(v, c.unit));
        let _ = writeln!(
            md,
            "| `{}` | {status} | {} | {} | {} |",
            cell(&c.name.to_string()),
            cell(&measured),
            cell(&threshold),
            cell(&c.message)
        );
    }
    md.push('\n');
}

fn faults(md: &mut String, r: &DrillResult) {
    md.push_str("## Faults\n\n");
    if r.faults.is_empty() {
        md.push_str("No fault was injected.\n\n");
        return;
    }
    md.push_str(
        "| Fault | Component | Region | Action | Injected (t+s) | Ended (t+s, how) | Time to impact | Outage | RTO |\n\
         |---|---|---|---|---:|---|---:|---:|---:|\n",
    );
    for f in &r.faults {
        let how = if f.ended == FaultEnd::RevertFailed {
            format!("**{}** ⚠️", f.ended)
        } else {
            f.ended.to_string()
        };
        let ended = match f.reverted_at_s {
            Some(t) => format!("{} ({how})", clock(t)),
            None => format!("— ({how})"),
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&f.name),
            cell(&f.component),
            cell(f.region.as_deref().unwrap_or("—")),
            cell(&f.action),
            clock(f.injected_at_s),
            cell(&ended),
            f.time_to_impact_s.map_or("—".into(), secs),
            secs(f.outage_s),
            rto(f)
        );
    }
    let observed: Vec<_> = r
        .faults
        .iter()
        .flat_map(|f| {
            observations(&f.extra)
                .into_iter()
                .map(move |o| format!("`{}`: {o}", f.name))
        })
        .collect();
    if !observed.is_empty() {
        let _ = writeln!(md, "\nObserved on the target: {}.", observed.join("; "));
    }
    let rc = &r.recovery;
    let _ = writeln!(
        md,
        "\nRTO is measured from the start of the inject step to the start of the first {} stretch in which \
         every {} window has ≥ {} good requests; resolution {}.\n",
        secs(rc.hold_s),
        secs(rc.window_s),
        pct(rc.ratio * 100.0),
        secs(rc.resolution_s)
    );
}

fn rto(f: &FaultResult) -> String {
    match (f.recovery, f.rto_s) {
        (Recovery::NoImpact, _) => "no impact".into(),
        (_, Some(v)) => secs(v),
        (_, None) => "not recovered".into(),
    }
}

/// The longest RTO of a drill, "not recovered" beating any number.
pub(super) fn worst_rto(faults: &[FaultResult]) -> String {
    if let Some(f) = faults
        .iter()
        .find(|f| f.rto_s.is_none() && f.recovery != Recovery::NoImpact)
    {
        return format!("not recovered (`{}`)", cell(&f.name));
    }
    let impacted = faults.iter().filter(|f| f.recovery != Recovery::NoImpact);
    match impacted.max_by(|a, b| {
        a.rto_s
            .partial_cmp(&b.rto_s)
            .unwrap_or(std::cmp::Ordering::Equal)
    }) {
        Some(f) => format!("{} (`{}`)", rto(f), cell(&f.name)),
        None if faults.is_empty() => "—".into(),
        None => "no impact".into(),
    }
}

/// Phases in the order they happen, then any the runner added.
pub(super) fn phase_order(r: &DrillResult) -> Vec<(&str, &PhaseSummary)> {
    const KNOWN: [&str; 4] = ["warmup", "baseline", "fault", "recovery"];
    let rank = |name: &str| KNOWN.iter().position(|k| *k == name).unwrap_or(KNOWN.len());
    let mut phases: Vec<_> = r.phases.iter().map(|(k, v)| (k.as_str(), v)).collect();
    phases.sort_by_key(|(name, _)| rank(name));
    phases
}

fn phases(md: &mut String, r: &DrillResult) {
    md.push_str("## Phases\n\n");
    let phases = phase_order(r);
    if phases.is_empty() {
        md.push_str("No phase was measured.\n\n");
        return;
    }
    md.push_str(
        "| Phase | Requests | Good | Availability | p50 | p90 | p99 | p99.9 | max | Burn rate |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, p) in &phases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}× |",
            cell(name),
            p.requests,
            p.good,
            p.availability.map_or("—".into(), |a| pct(a * 100.0)),
            ms(p.p50_ms),
            ms(p.p90_ms),
            ms(p.p99_ms),
            ms(p.p999_ms),
            ms(p.max_ms),
            sig3(p.burn_rate)
        );
    }
    let service: Vec<_> = phases
        .iter()
        .map(|(n, p)| format!("{n} {}", ms(p.service_p99_ms)))
        .collect();
    let _ = writeln!(
        md,
        "\nLatency counts from each request's intended send time, so stalls are not hidden; \
         service-time p99 (from the actual send): {}.",
        service.join(", ")
    );
    let causes: Vec<_> = phases
        .iter()
        .filter(|(_, p)| p.bad_by_cause.values().any(|n| *n > 0))
        .map(|(n, p)| {
            let by: Vec<_> = p
                .bad_by_cause
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| format!("{} {n}", cause_label(c)))
                .collect();
            format!("{n}: {}", by.join(", "))
        })
        .collect();
    if !causes.is_empty() {
        let _ = writeln!(md, "\nBad requests by cause: {}.", causes.join("; "));
    }
    if r.load.generator_behind {
        md.push_str("\n⚠️ The load generator fell behind, so these latencies are overstated (see [Load generator](#load-generator)).\n");
    }
    md.push('\n');
}

fn budget(md: &mut String, r: &DrillResult) {
    let b = &r.error_budget;
    let days = b.period_s / 86_400.0;
    let period = if days >= 1.0 && days.fract() == 0.0 {
        format!("{days}-day")
    } else {
        format!("{} period's", secs(b.period_s))
    };
    let _ = writeln!(
        md,
        "## Error budget\n\nConsumed **{}** of the {period} budget for a {} SLO ({} bad of {} requests over {}); burn rate {}×.\n",
        pct(b.consumed_pct),
        pct(b.slo * 100.0),
        b.bad,
        b.requests,
        secs(b.drill_s),
        sig3(b.burn_rate)
    );
}

fn rpo(md: &mut String, r: &DrillResult) {
    let Some(p) = &r.rpo else { return };
    // A long loss would otherwise flood a PR comment.
    const SHOWN: usize = 20;
    let mut ranges: Vec<_> = p
        .lost_ranges
        .iter()
        .take(SHOWN)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect();
    if p.lost_ranges.len() > SHOWN {
        ranges.push(format!("… {} more ranges", p.lost_ranges.len() - SHOWN));
    }
    let lost = if p.lost_writes == 0 {
        "0".into()
    } else {
        format!("{} (sequence {})", p.lost_writes, ranges.join(", "))
    };
    let write_rto = |v: Option<f64>| v.map_or("not recovered".into(), secs);
    let _ = writeln!(
        md,
        "## Data loss (RPO)\n\n\
         - **Lost writes:** {lost} of {} acknowledged\n\
         - **RPO:** {} (acknowledgement time of the last lost write minus that of the last surviving write before it)\n\
         - **Indeterminate:** {} (in flight at the fault, not acknowledged; not counted as lost)\n\
         - **Write RTO:** {} to the first successful write on the new primary; {} until writes kept succeeding\n",
        p.acknowledged,
        secs(p.rpo_s),
        p.indeterminate,
        write_rto(p.write_rto_s),
        write_rto(p.write_rto_sustained_s)
    );
    if let Some(rd) = &p.reads {
        let _ = writeln!(
            md,
            "- **Reads (any node):** {} of {} succeeded; read RTO {}\n",
            rd.ok,
            rd.reads,
            rd.read_rto_s
                .map_or("not recovered".into(), |v| if v == 0.0 {
                    "0 (no read failed)".into()
                } else {
                    secs(v)
                })
        );
    }
}

fn events(md: &mut String, r: &DrillResult) {
    md.push_str("## Fault timeline\n\n");
    if r.events.is_empty() {
        md.push_str("No events were recorded.\n\n");
        return;
    }
    md.push_str("| Run clock | Wall clock (UTC) | Event |\n|---:|---|---|\n");
    for e in &r.events {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            clock(e.t_s),
            cell(&e.at),
            cell(&e.what)
        );
    }
    md.push('\n');
}

fn load(md: &mut String, r: &DrillResult) {
    let l = &r.load;
    if l.rate <= 0.0 {
        let _ = writeln!(
            md,
            "## Load generator\n\nNo HTTP load: this drill measured database writes only.\n"
        );
        return;
    }
    let _ = writeln!(
        md,
        "## Load generator\n\n`{} {}` open-loop at {} req/s asked, {} req/s achieved (requests actually sent \
         over the time they were actually sent, measured phases); {} sent, timeout {}, keep-alive {}, \
         {} worker(s), at most {} in flight, tick {} (a request waits at most one tick to be sent). \
         Generator lag (actual minus intended send time, measured phases): p99 {} (bound {}), max {}.\n",
        l.method,
        l.url,
        num(l.rate, 2),
        num(l.achieved_rate, 2),
        l.sent,
        secs(l.timeout_s),
        if l.keep_alive { "on" } else { "off" },
        l.workers,
        l.max_in_flight,
        ms(l.tick_ms),
        ms(l.lag_p99_ms),
        ms(l.max_send_lag_ms),
        ms(l.lag_max_ms)
    );
    if l.not_sent > 0 {
        let _ = writeln!(
            md,
            "{} requests were due while {} were in flight and were not sent (counted as bad, \"not sent: in-flight limit\"); \
             raise `[load] max_in_flight` (and the open-file limit) to measure them.\n",
            l.not_sent, l.max_in_flight
        );
    }
    if let Some(why) = l.distrust() {
        let _ = writeln!(
            md,
            "> [!WARNING]\n> **The measurements cannot be trusted** (this machine, not the target): {why}. \
             Latency is counted from the intended send time, so a late generator overstates it. \
             Rerun with a lower rate, more `workers`, or on a less loaded machine.\n"
        );
    }
}

/// A cause as people read it (results.json keeps the short key).
fn cause_label(key: &str) -> &str {
    match key {
        "saturated" => "not sent: in-flight limit",
        "too-many-headers" => "answer with too many headers",
        "head-too-long" => "answer head too long",
        "bad-answer" => "unparseable answer head",
        "bad-length" => "bad Content-Length",
        "bad-chunk" => "bad chunked body",
        "tls" => "TLS refused",
        other => other,
    }
}

fn settings(md: &mut String, r: &DrillResult) {
    if r.settings.is_empty() {
        return;
    }
    md.push_str("## Settings\n\n| Setting | Value |\n|---|---|\n");
    for (k, v) in &r.settings {
        let _ = writeln!(md, "| `{}` | `{}` |", cell(k), cell(v));
    }
    md.push('\n');
}

/// Text safe inside a table cell: a `|` would end the cell, a newline the row.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A relative path as a Markdown link target: spaces and parentheses would
/// end the link early.
fn link_target(path: &str) -> String {
    path.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testdata::{sample_aborted, sample_pass, sample_result};

    fn row<'a>(md: &'a str, first_cell: &str) -> &'a str {
        md.lines()
            .find(|l| l.starts_with(&format!("| {first_cell} |")))
            .unwrap_or_else(|| panic!("no row {first_cell} in\n{md}"))
    }

    #[test]
    fn golden_report() {
        crate::results::testdata::assert_golden(
            "report.md",
            &render(&sample_result(), "timeline.svg"),
        );
    }

    #[test]
    fn starts_with_the_verdict_line() {
        let md = render(&sample_result(), "timeline.svg");
        assert!(
            md.starts_with("# drill: region-failover on lab — FAIL ❌\n"),
            "{md}"
        );
        assert!(md.contains("**2 of 8 checks failed:** `rto:kill-primary-ingress`, `rto:switchover-database`. Exit code 1."));
        let pass = render(&sample_pass(), "timeline.svg");
        assert!(pass.starts_with("# drill: region-failover on lab — PASS ✅\n"));
        assert!(pass.contains("**All 8 checks passed.**"));
        let aborted = render(&sample_aborted(), "timeline.svg");
        assert!(aborted.starts_with("# drill: region-failover on lab — ABORTED ⚠️\n"));
        assert!(
            aborted
                .contains("**Reason:** steady state not met: baseline availability 97.1% < 99.5%")
        );
        assert!(aborted.contains("No fault was injected."));
    }

    #[test]
    fn checks_table_shows_measured_against_threshold() {
        let md = render(&sample_result(), "timeline.svg");
        assert_eq!(
            row(&md, "`rto:kill-primary-ingress`"),
            "| `rto:kill-primary-ingress` | ❌ **fail** | 41.2 s | 30 s | rto 41.2s > 30s |"
        );
        assert!(
            row(&md, "`rto:switchover-database`")
                .starts_with("| `rto:switchover-database` | ❌ **fail** | not recovered | 30 s |")
        );
        assert!(row(&md, "`availability:baseline`").contains("| 99.875 % | 99.5 % |"));
        assert!(row(&md, "`latency-p99:baseline`").contains("| 6.4 ms | 50 ms |"));
        assert!(row(&md, "`faults-reverted`").contains("| 0 | 0 |"));
        // Checks come before the faults and phases.
        assert!(md.find("## Checks").unwrap() < md.find("## Faults").unwrap());
    }

    #[test]
    fn faults_show_rto_or_why_there_is_none() {
        let mut r = sample_result();
        let md = render(&r, "timeline.svg");
        let killed = row(&md, "`kill-primary-ingress`");
        assert!(
            killed.contains("| t+8.000 s | t+44.000 s (healed) | 0.004 s | 35.6 s | 41.2 s |"),
            "{killed}"
        );
        assert!(row(&md, "`switchover-database`").ends_with("| not recovered |"));
        assert!(md.contains("every 1 s window has ≥ 99 % good requests; resolution 0.1 s."));
        assert!(
            md.contains(
                "`kill-primary-ingress`: the component served again 43.5 s after the fault"
            ),
            "{md}"
        );

        r.faults[1].recovery = Recovery::NoImpact;
        r.faults[1].rto_s = Some(0.0);
        r.faults[0].reverted_at_s = None;
        r.faults[0].ended = FaultEnd::RevertFailed;
        let md = render(&r, "timeline.svg");
        assert!(row(&md, "`switchover-database`").ends_with("| no impact |"));
        assert!(row(&md, "`kill-primary-ingress`").contains("| — (**revert-failed** ⚠️) |"));
    }

    #[test]
    fn phases_in_run_order_with_percentiles() {
        let mut r = sample_result();
        r.phases.insert("cooldown".into(), PhaseSummary::default());
        r.phases.insert("warmup".into(), PhaseSummary::default());
        let md = render(&r, "timeline.svg");
        let order: Vec<_> = ["warmup", "baseline", "fault", "recovery", "cooldown"]
            .iter()
            .map(|p| md.find(&format!("\n| {p} |")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(row(&md, "baseline").starts_with("| baseline | 800 | 799 | 99.875 % | 2.1 ms | 3.4 ms | 6.4 ms | 9.8 ms | 12.1 ms | 2.5× |"));
        assert!(row(&md, "fault").contains("| 2000 ms | 2000 ms | 2001 ms |"));
        assert!(md.contains("Bad requests by cause: baseline: 5xx 1; fault: "));
        assert!(
            !md.contains("warmup: "),
            "phases without bad requests are not listed"
        );
    }

    #[test]
    fn error_budget_sentence() {
        let md = render(&sample_result(), "timeline.svg");
        let b = sample_result().error_budget;
        let expected = format!(
            "Consumed **{} %** of the 30-day budget for a 99.95 % SLO ({} bad of 6000 requests over 60 s); burn rate {}×.",
            num(b.consumed_pct, 3),
            b.bad,
            sig3(b.burn_rate)
        );
        assert!(md.contains(&expected), "{expected}\n{md}");
    }

    #[test]
    fn rpo_only_with_a_database_fault() {
        let md = render(&sample_result(), "timeline.svg");
        assert!(md.contains(
            "- **Lost writes:** 18 (sequence 1042–1057, 1060–1061) of 5210 acknowledged"
        ));
        assert!(md.contains("- **RPO:** 0.84 s"));
        assert!(md.contains("- **Indeterminate:** 3 "));
        assert!(md.contains("- **Write RTO:** 4.6 s"));
        assert!(!render(&sample_aborted(), "timeline.svg").contains("RPO"));
    }

    #[test]
    fn charts_render_inline_as_well_formed_mermaid() {
        let md = render(&sample_result(), "timeline.svg");
        let blocks: Vec<&str> = md
            .match_indices("```mermaid\n")
            .map(|(i, _)| &md[i..i + md[i..].find("\n```\n").unwrap() + 4])
            .collect();
        assert_eq!(blocks.len(), 2, "{md}");
        let good = crate::report::mermaid::tests::parse_xychart(blocks[0]);
        let p99 = crate::report::mermaid::tests::parse_xychart(blocks[1]);
        assert_eq!(good.last().unwrap().1.len(), sample_result().timeline.len());
        assert_eq!(p99[0].1.len(), sample_result().timeline.len());
        // Fences balance: nothing after the charts is swallowed into a block.
        assert_eq!(md.matches("```").count() % 2, 0);
    }

    #[test]
    fn links_the_chart_and_lists_events() {
        let md = render(&sample_result(), "timeline.svg");
        assert!(md.contains("![timeline](timeline.svg)"));
        assert!(
            render(&sample_result(), "charts/a b.svg").contains("![timeline](charts/a%20b.svg)")
        );
        assert!(md.contains("| t+49.200 s | 2026-03-14T09:30:49.200Z | traffic recovered after kill-primary-ingress (rto 41.2 s) |"));
    }

    #[test]
    fn pipes_in_cells_do_not_break_tables() {
        let mut r = sample_result();
        r.checks[0].message = "a | b\nc".into();
        let md = render(&r, "timeline.svg");
        assert!(md.contains("| `load.success` | `200\\|204` |"));
        assert!(row(&md, "`steady-state`").ends_with("| a \\| b c |"));
        // Every table row has as many unescaped pipes as its header.
        let mut columns = 0;
        for line in md.lines() {
            let pipes = line.replace("\\|", "").matches('|').count();
            match line {
                l if l.starts_with("|---") || l.starts_with("|--:") => {}
                l if l.starts_with('|') && columns == 0 => columns = pipes,
                l if l.starts_with('|') => assert_eq!(pipes, columns, "{line}"),
                _ => columns = 0,
            }
        }
    }

    #[test]
    fn manual_actions_come_right_after_the_verdict() {
        let mut r = sample_result();
        r.manual_actions =
            vec!["kubectl -n istio-system scale deploy/istio-ingressgateway --replicas=2".into()];
        let md = render(&r, "timeline.svg");
        let caution = md.find("**⚠️ Manual action required**").unwrap();
        assert!(caution < md.find("## Checks").unwrap());
        assert!(md.contains(
            "> 1. kubectl -n istio-system scale deploy/istio-ingressgateway --replicas=2\n"
        ));
        assert!(md.contains("Exit code 4."));
        assert!(!render(&sample_result(), "t.svg").contains("Manual action"));
    }

    #[test]
    fn warns_when_the_generator_fell_behind() {
        let mut r = sample_result();
        assert!(!render(&r, "t.svg").contains("fell behind"));
        r.load.generator_behind = true;
        r.load.lag_p99_ms = 191.0;
        r.load.max_send_lag_ms = 5.0;
        r.verdict = Verdict::Inconclusive;
        let md = render(&r, "t.svg");
        assert!(md.contains("INCONCLUSIVE ❔"), "{md}");
        assert!(md.contains(
            "**The measurements cannot be trusted** (this machine, not the target): \
             the load generator fell behind: send lag p99 191.00ms > 5ms (max_send_lag)"
        ));
        assert!(md.contains("latencies are overstated"));
        assert!(md.contains("Exit code 5."));
    }

    #[test]
    fn requests_not_sent_are_shown_with_their_cause() {
        let mut r = sample_result();
        r.phases
            .get_mut("fault")
            .unwrap()
            .bad_by_cause
            .insert("saturated".into(), 120);
        r.load.not_sent = 120;
        r.load.max_in_flight = 10_000;
        let md = render(&r, "t.svg");
        assert!(md.contains("not sent: in-flight limit 120"), "{md}");
        assert!(md.contains("120 requests were due while 10000 were in flight and were not sent"));
    }

    #[test]
    fn suite_index_shows_the_worst_verdict_and_links_reports() {
        let mut aborted = sample_aborted();
        aborted.scenario = "mesh-partition".into();
        let entries = vec![
            (sample_pass(), "region-failover/report.md".to_string()),
            (sample_result(), "region-failover-2/report.md".to_string()),
            (aborted, "mesh-partition/report.md".to_string()),
        ];
        let md = render_suite_index(&entries);
        assert!(md.starts_with("# drill suite — ABORTED ⚠️\n"), "{md}");
        assert!(md.contains("**3 drills: 1 passed, 1 failed, 1 aborted, 0 errored.**"));
        assert!(md.contains(
            "| region-failover | lab | FAIL ❌ | `rto:kill-primary-ingress`, `rto:switchover-database` | not recovered (`switchover-database`) | [report](region-failover-2/report.md) |"
        ));
        assert!(md.contains("| region-failover | lab | PASS ✅ | — | 3.2 s (`kill-primary-ingress`) | [report](region-failover/report.md) |"));
        assert!(md.contains("| mesh-partition | lab | ABORTED ⚠️ | `steady-state` | — | [report](mesh-partition/report.md) |"));
        assert_eq!(render_suite_index(&[]), "# drill suite — no drills ran\n");
    }

    /// With a previous run in the history, each headline figure sits
    /// beside the previous run's with the change.
    #[test]
    fn shows_each_figure_against_the_previous_run() {
        let mut r = sample_result();
        assert!(!render(&r, "t.svg").contains("Versus the previous run"));
        let name = r.faults[0].name.clone();
        r.faults[0].rto_s = Some(45.0);
        r.previous = Some(crate::results::PreviousRun {
            run_id: "run-before".into(),
            started_at: "2026-10-01T03:00:00Z".into(),
            verdict: "pass".into(),
            rto_s: [(name.clone(), Some(30.0))].into_iter().collect(),
            availability: Some(0.999),
            fault_p99_ms: None,
            budget_consumed_pct: Some(1.0),
        });
        let md = render(&r, "t.svg");
        assert!(md.contains("## Versus the previous run"), "{md}");
        assert!(md.contains("run-before"), "{md}");
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| RTO `{name}`")))
            .expect("an RTO row");
        assert!(
            row.contains("45 s") && row.contains("30 s") && row.contains("+50%"),
            "{row}"
        );
    }
}
