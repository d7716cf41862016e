//! `drill history`: past runs of a drill from the history folder, per
//! scenario and target, each figure against the median of the passing runs
//! before it, regressions flagged; optionally a trend chart, JSON for
//! programs, and `--check` to gate on the latest run (exit 1).

use std::path::{Path, PathBuf};

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::Output;
use crate::base::error::CliError;
use crate::history::{self, Metric, Record, TrendPoint};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this scenario's runs (default: every scenario in the history).
    pub scenario: Option<String>,
    /// Only the runs on this target (default: every target, each its own
    /// series: a run is only ever compared with runs on the same target).
    #[arg(long, env = "DRILL_TARGET")]
    pub target: Option<String>,
    /// Exit 1 when the latest run of any scenario and target is a
    /// regression (the gate for a scheduled job); 0 otherwise.
    #[arg(long)]
    pub check: bool,
    /// `text` for people, `json` for programs.
    #[arg(short, long, value_enum, default_value_t, env = "DRILL_OUTPUT")]
    pub output: Output,
    /// The history folder `drill run` keeps results in.
    #[arg(long, value_name = "DIR", env = "DRILL_HISTORY")]
    pub history: Option<PathBuf>,
    /// Compare each run with the median of this many passing runs before it.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub runs: usize,
    /// A figure worse than that median by more than this is a regression.
    #[arg(long, default_value = "20%", value_name = "PERCENT", value_parser = parse_share)]
    pub threshold: f64,
    /// Write a trend chart (SVG) of one scenario to this file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
}

fn parse_share(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. 20%"))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("`{s}`: the threshold must be above 0%"));
    }
    Ok(n / 100.0)
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "run")]
    n: usize,
    #[tabled(rename = "started")]
    started: String,
    target: String,
    verdict: String,
    #[tabled(rename = "RTO per fault")]
    rto: String,
    availability: String,
    #[tabled(rename = "p99 fault")]
    p99: String,
    #[tabled(rename = "budget")]
    budget: String,
}

pub(super) fn run(a: Args) -> Result<i32, CliError> {
    if a.runs == 0 {
        return Err(CliError::usage(
            "--runs 0: nothing to compare with",
            "pass --runs 1 or more (default 5)",
        ));
    }
    let dir = a.history.clone().unwrap_or_else(history::default_dir);
    let (records, skipped) = history::load(&dir, a.scenario.as_deref(), a.target.as_deref())
        .map_err(|e| {
            CliError::Failed(format!("cannot read the history in {}: {e}", dir.display()))
        })?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    let mut series: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.scenario.as_str(), r.target.as_str()))
        .collect();
    series.dedup();
    if a.chart.is_some() && series.len() > 1 {
        return Err(CliError::usage(
            "--chart draws one scenario on one target",
            format!(
                "name them: drill history {} --target {} --chart FILE",
                series[0].0, series[0].1
            ),
        ));
    }
    let mut out = Vec::new();
    for (name, target) in series {
        let runs: Vec<Record> = records
            .iter()
            .filter(|r| r.scenario == name && r.target == target)
            .cloned()
            .collect();
        let trend = history::trend(&runs, a.runs, a.threshold);
        if let Some(path) = &a.chart {
            write_chart(path, &runs, &trend)?;
        }
        out.push((runs, trend));
    }
    // The gate judges each series' latest run: a regression months ago
    // that later runs recovered from is history, not a failing gate.
    let latest_regressed = out.iter().any(|(runs, trend)| {
        trend
            .iter()
            .any(|p| p.regression && p.run + 1 == runs.len())
    });
    match a.output {
        Output::Json => super::print_json(&json(&out, &dir, &a)),
        Output::Text if records.is_empty() => println!(
            "no runs in {}{}{}; `drill run` keeps each run's results there (--history DIR)",
            dir.display(),
            a.scenario
                .as_ref()
                .map_or(String::new(), |s| format!(" for `{s}`")),
            a.target
                .as_ref()
                .map_or(String::new(), |t| format!(" on `{t}`"))
        ),
        Output::Text => {
            for (runs, trend) in &out {
                print_scenario(runs, trend, a.runs, a.threshold);
            }
        }
    }
    if a.check && latest_regressed {
        eprintln!("drill history --check: the latest run regressed (exit 1)");
        return Ok(crate::base::exit::CHECK_FAILED);
    }
    Ok(0)
}

/// `-o json`: each series with its runs' figures and the regressions.
fn json(out: &[(Vec<Record>, Vec<TrendPoint>)], dir: &Path, a: &Args) -> serde_json::Value {
    use serde_json::json;
    let series: Vec<_> = out
        .iter()
        .map(|(runs, trend)| {
            let latest_regressed = trend
                .iter()
                .any(|p| p.regression && p.run + 1 == runs.len());
            json!({
                "scenario": runs[0].scenario,
                "target": runs[0].target,
                "latest_regressed": latest_regressed,
                "runs": runs.iter().map(|r| json!({
                    "run_id": r.run_id,
                    "started_at": r.started_at,
                    "verdict": r.verdict,
                    "faults": r.faults.iter().map(|f| json!({
                        "name": f.name,
                        "rto_s": f.rto_s,
                        "time_to_impact_s": f.time_to_impact_s,
                    })).collect::<Vec<_>>(),
                    "availability": r.availability,
                    "fault_p99_ms": r.fault_p99_ms,
                    "budget_consumed_pct": r.budget_pct,
                    "resolution_s": r.resolution_s,
                })).collect::<Vec<_>>(),
                "regressions": trend.iter().filter(|p| p.regression).map(|p| json!({
                    "run_id": runs[p.run].run_id,
                    "metric": p.metric.label(),
                    "unit": p.metric.unit(),
                    "value": p.value,
                    "baseline_median": p.baseline.map(|b| b.median),
                    "baseline_runs": p.baseline.map(|b| b.runs),
                    "change_pct": p.change.filter(|c| c.is_finite()).map(|c| c * 100.0),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "schema": "drill.history/v1",
        "history": dir.display().to_string(),
        "runs_compared": a.runs,
        "threshold_pct": a.threshold * 100.0,
        "series": series,
    })
}

fn print_scenario(runs: &[Record], trend: &[TrendPoint], n: usize, threshold: f64) {
    let target = match runs[0].target.as_str() {
        "" => "an unknown target (kept before drill recorded targets)",
        t => t,
    };
    println!("{} on {target}: {} run(s)", runs[0].scenario, runs.len());
    let change = |i: usize, m: &Metric| -> String {
        match trend
            .iter()
            .find(|p| p.run == i && &p.metric == m)
            .and_then(|p| p.change)
        {
            Some(c) if c.is_finite() => format!(" ({:+.0}%)", c * 100.0),
            Some(_) => " (new)".into(),
            None => String::new(),
        }
    };
    let rows: Vec<Row> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Row {
            n: i + 1,
            started: r.started_at.clone(),
            target: r.target.clone(),
            verdict: r.verdict.clone(),
            rto: r
                .faults
                .iter()
                .map(|f| {
                    let v = f
                        .rto_s
                        .map_or("not recovered".into(), |s| format!("{s:.3}s"));
                    format!("{}: {v}{}", f.name, change(i, &Metric::Rto(f.name.clone())))
                })
                .collect::<Vec<_>>()
                .join("\n"),
            availability: r
                .availability
                .map_or("—".into(), |a| format!("{:.3}%", a * 100.0)),
            p99: r.fault_p99_ms.map_or("—".into(), |v| {
                format!("{v:.1}ms{}", change(i, &Metric::FaultP99))
            }),
            budget: r.budget_pct.map_or("—".into(), |v| {
                format!("{v:.3}%{}", change(i, &Metric::Budget))
            }),
        })
        .collect();
    let width = super::term::width();
    println!(
        "{}",
        super::term::fit(Table::new(rows).with(Style::rounded()), width)
    );
    let flagged: Vec<&TrendPoint> = trend.iter().filter(|p| p.regression).collect();
    if flagged.is_empty() {
        println!(
            "no regression: no figure worse than the median of the last {n} passing run(s) by more than {:.0}% (and more than its resolution)",
            threshold * 100.0
        );
    }
    for p in flagged {
        let r = &runs[p.run];
        let b = p.baseline.expect("a regression has a baseline");
        println!(
            "REGRESSION run {} ({}): {} {:.3}{} vs median {:.3}{} of {} passing run(s) before it ({:+.0}%)",
            p.run + 1,
            r.started_at,
            p.metric.label(),
            p.value.unwrap_or(f64::NAN),
            p.metric.unit(),
            b.median,
            p.metric.unit(),
            b.runs,
            p.change.unwrap_or(0.0) * 100.0
        );
    }
    println!();
}

fn write_chart(path: &Path, runs: &[Record], trend: &[TrendPoint]) -> Result<(), CliError> {
    let metrics: Vec<Metric> = history::Metric::all_in(runs)
        .into_iter()
        .filter(|m| !matches!(m, Metric::TimeToImpact(_)))
        .collect();
    std::fs::write(path, history::chart(runs, trend, &metrics)).map_err(|e| {
        CliError::usage(
            format!("--chart {}: {e}", path.display()),
            "point --chart at a writable file",
        )
    })?;
    println!("trend chart: {}", path.display());
    Ok(())
}
