//! `drill history`: past runs of a drill from the history folder, each
//! figure against the median of the passing runs before it, regressions
//! flagged; optionally a trend chart.

use std::path::{Path, PathBuf};

use tabled::settings::Style;
use tabled::{Table, Tabled};

use crate::error::CliError;
use crate::history::{self, Metric, Record, TrendPoint};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this scenario's runs (default: every scenario in the history).
    pub scenario: Option<String>,
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
    verdict: String,
    #[tabled(rename = "RTO per fault")]
    rto: String,
    availability: String,
    #[tabled(rename = "p99 fault")]
    p99: String,
    #[tabled(rename = "budget")]
    budget: String,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    if a.runs == 0 {
        return Err(CliError::usage(
            "--runs 0: nothing to compare with",
            "pass --runs 1 or more (default 5)",
        ));
    }
    let dir = a.history.clone().unwrap_or_else(history::default_dir);
    let (records, skipped) = history::load(&dir, a.scenario.as_deref()).map_err(|e| {
        CliError::Failed(format!("cannot read the history in {}: {e}", dir.display()))
    })?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    if records.is_empty() {
        println!(
            "no runs in {}{}; `drill run` keeps each run's results there (--history DIR)",
            dir.display(),
            a.scenario
                .as_ref()
                .map_or(String::new(), |s| format!(" for `{s}`"))
        );
        return Ok(0);
    }
    let mut scenarios: Vec<&str> = records.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    if a.chart.is_some() && scenarios.len() > 1 {
        return Err(CliError::usage(
            "--chart draws one scenario",
            format!("name one: drill history {} --chart FILE", scenarios[0]),
        ));
    }
    for name in scenarios {
        let runs: Vec<Record> = records
            .iter()
            .filter(|r| r.scenario == name)
            .cloned()
            .collect();
        let trend = history::trend(&runs, a.runs, a.threshold);
        print_scenario(name, &runs, &trend, a.runs, a.threshold);
        if let Some(path) = &a.chart {
            write_chart(path, &runs, &trend)?;
        }
    }
    Ok(0)
}

fn print_scenario(name: &str, runs: &[Record], trend: &[TrendPoint], n: usize, threshold: f64) {
    println!("{name}: {} run(s)", runs.len());
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
    println!("{}", Table::new(rows).with(Style::rounded()));
    let flagged: Vec<&TrendPoint> = trend.iter().filter(|p| p.regression).collect();
    if flagged.is_empty() {
        println!(
            "no regression: no figure worse than the median of the last {n} passing run(s) by more than {:.0}%",
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
