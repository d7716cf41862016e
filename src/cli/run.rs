//! `drill run`: validate every scenario named, then run them in turn, write
//! each drill's reports (and a suite index when there are several) and exit
//! with the worst code.

use std::path::{Path, PathBuf};

use tabled::settings::Style;
use tabled::{Table, Tabled};

use crate::base::error::CliError;
use crate::base::exit;
use crate::results::{CheckStatus, DrillResult, Recovery};
use crate::run::{self, Options, signals::Interrupt};
use crate::scenario::Plan;
use crate::targets::{TargetDef, Targets};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario names (in ./scenarios or built in) or paths to .toml files.
    /// Several run one after another as a suite.
    #[arg(required_unless_present = "suite", value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// Run a suite: a name in ./scenarios/suites (or built in, e.g.
    /// `monthly`) or a path to a suite file listing scenarios.
    #[arg(long, value_name = "SUITE", env = "DRILL_SUITE")]
    pub suite: Option<String>,
    /// Target to run on: `lab` (built in, default) or a name from the
    /// targets file. Overrides the scenario's own `target`.
    #[arg(long, env = "DRILL_TARGET")]
    pub target: Option<String>,
    /// Where to write the reports (default reports/<scenario>/<UTC timestamp>/).
    #[arg(long, value_name = "DIR", env = "DRILL_REPORT_DIR")]
    pub report_dir: Option<PathBuf>,
    /// Seed for every random choice (which pods a `delete` takes); in the
    /// report and results.json (`"seed": "…"`), so a run can be replayed.
    #[arg(long, env = "DRILL_SEED")]
    pub seed: Option<u64>,
    /// No live status line or progress; only the summary.
    #[arg(
        long,
        short,
        env = "DRILL_QUIET",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub quiet: bool,
    /// Keep every run's results.json here, and compare `regression` checks
    /// with the runs before (default reports/history).
    #[arg(long, value_name = "DIR", env = "DRILL_HISTORY")]
    pub history: Option<PathBuf>,
    /// Neither read nor keep history for this run.
    #[arg(long, conflicts_with = "history")]
    pub no_history: bool,
    /// Also write a short Markdown summary (verdict, failed checks, key
    /// figures, one chart) to FILE, for a PR comment or a CI job summary
    /// (e.g. `--summary "$GITHUB_STEP_SUMMARY"`; appended to, as GitHub
    /// expects, when the file exists).
    #[arg(long, value_name = "FILE", env = "DRILL_SUMMARY")]
    pub summary: Option<PathBuf>,
    /// Push each run's results (verdict, RTO per fault, availability, error
    /// budget, time to detect, duration, last success) to this Prometheus
    /// Pushgateway, one group per scenario and target (overrides the
    /// targets file's `[pushgateway] url`). A failed push is a warning.
    #[arg(long, value_name = "URL", env = "DRILL_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
    /// Load generator threads, each sending its share of the schedule
    /// (overrides the scenario's `[load] workers`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Send the load from N local `drill agent` processes (each r/N of the
    /// rate, merged exactly) instead of one generator in this process; the
    /// report adds the vantage point `local`. Overrides the target's
    /// `vantage` points.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub agents: Option<u16>,
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "check")]
    name: String,
    #[tabled(rename = "status")]
    status: String,
    #[tabled(rename = "result")]
    message: String,
}

pub(super) fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let targets = super::validate::load_targets(targets_file)?;
    let push_to = super::push::PushTo::resolve(a.pushgateway.as_deref(), &targets)?;
    // Everything is validated before anything runs.
    let prepared = prepare_all(&a, &targets)?;
    let seed = a.seed.unwrap_or_else(rand::random);
    let rt = super::runtime()?;
    let suite = prepared.len() > 1 || a.suite.is_some();
    let stamp = crate::base::clock::Clock::start().stamp();
    let suite_dir = a
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join("suite").join(&stamp));
    let dirs = report_dirs(&a, &prepared, suite, &stamp, &suite_dir)?;
    let history_dir = history_folder(&a)?;
    let mut done: Vec<(DrillResult, PathBuf)> = Vec::new();
    let crashed = rt.block_on(run_drills(
        &a,
        &targets,
        &prepared,
        &dirs,
        seed,
        history_dir.as_deref(),
        &mut done,
    ));
    // Tear down the runtime (and with it every lab process) before exiting.
    drop(rt);
    if let Some(code) = crashed {
        return Ok(code);
    }

    keep_results(&done, history_dir.as_deref())?;
    if let Some(to) = &push_to {
        let runs: Vec<(&DrillResult, Option<bool>)> = done
            .iter()
            .map(|(r, _)| (r, super::push::regressed(history_dir.as_deref(), r)))
            .collect();
        super::push::push_all(to, &runs);
    }
    // A summary that cannot be written must not hide the drill's verdict.
    if let Some(file) = &a.summary
        && let Err(e) = write_short_summary(file, &done)
    {
        eprintln!("{e}");
    }
    if suite {
        write_suite_report(&suite_dir, &done)?;
    }
    Ok(exit_code(done, prepared.len()))
}

/// Loads and validates every scenario named (and every scenario of
/// `--suite`), against its target, before anything runs: the first invalid
/// one is the error (exit 2).
fn prepare_all(a: &Args, targets: &Targets) -> Result<Vec<(Plan, TargetDef)>, CliError> {
    let mut names = a.scenarios.clone();
    if let Some(suite) = &a.suite {
        let (_, suite) = crate::scenario::load_suite(suite)?;
        names.extend(suite.scenarios.into_iter().map(|s| s.into_inner()));
    }
    let mut prepared = Vec::new();
    for s in &names {
        prepared.push(super::validate::prepare(s, a.target.as_deref(), targets)?);
    }
    Ok(prepared)
}

/// Each drill's report folder: `--report-dir`, or a folder per scenario
/// under the suite's, or reports/<scenario>/<stamp>/. The report folders
/// are part of preflight: a folder that cannot be written fails here,
/// exit 2, before anything is started or injected.
fn report_dirs(
    a: &Args,
    prepared: &[(Plan, TargetDef)],
    suite: bool,
    stamp: &str,
    suite_dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    let dirs: Vec<PathBuf> = prepared
        .iter()
        .map(|(l, _)| match (&a.report_dir, suite) {
            (_, true) => suite_dir.join(&l.name),
            (Some(d), false) => d.clone(),
            (None, false) => PathBuf::from("reports").join(&l.name).join(stamp),
        })
        .collect();
    for dir in dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(suite.then_some(suite_dir))
    {
        writable(dir, a.report_dir.is_some())?;
    }
    Ok(dirs)
}

/// Runs the drills one after another (stopping at an interrupt), each in
/// its own task so that a panic comes back here as an error and every
/// fault is still reverted. Results go to `done`; a crash returns its exit
/// code.
async fn run_drills(
    a: &Args,
    targets: &Targets,
    prepared: &[(Plan, TargetDef)],
    dirs: &[PathBuf],
    seed: u64,
    history_dir: Option<&Path>,
    done: &mut Vec<(DrillResult, PathBuf)>,
) -> Option<i32> {
    let interrupt = Interrupt::install();
    for ((l, def), dir) in prepared.iter().zip(dirs) {
        if interrupt.requested() {
            break;
        }
        if !a.quiet {
            eprintln!("drill: {} on {} — {}", l.name, def.name(), l.description);
        }
        // The drill runs in its own task so that a panic comes back here
        // as an error, and the journal still gets every fault reverted.
        let (l2, def2, int2, quiet) = (l.clone(), def.clone(), interrupt.clone(), a.quiet);
        let history = past_runs(history_dir, &l.name, def.name());
        let workers = a.workers.map(usize::from);
        let agents = a.agents.map(usize::from);
        let opts = Options {
            seed,
            quiet,
            history,
            workers,
            agents,
            vantages: targets.vantages(def.name()).to_vec(),
        };
        let task = tokio::spawn(async move { run::run(&l2, &def2, &opts, int2).await });
        let fin = match task.await {
            Ok(fin) => fin,
            Err(e) => return Some(revert_after_crash(&e.to_string()).await),
        };
        done.push((fin.result, dir.clone()));
    }
    None
}

/// Writes each drill's reports, prints its summary, and keeps it in the
/// history (a history that cannot be written is a warning; reports that
/// cannot be written are an error).
fn keep_results(
    done: &[(DrillResult, PathBuf)],
    history_dir: Option<&Path>,
) -> Result<(), CliError> {
    for (r, dir) in done {
        crate::report::write_all(dir, r).map_err(|e| {
            CliError::Failed(format!("cannot write reports to {}: {e}", dir.display()))
        })?;
        print_summary(r, dir);
        if let Some(h) = history_dir
            && let Err(e) = crate::history::store(
                h,
                &r.scenario,
                &r.target,
                &r.run_id,
                &crate::report::json::render(r),
            )
        {
            eprintln!(
                "warning: cannot keep this run in the history {}: {e}",
                h.display()
            );
        }
    }
    Ok(())
}

/// A suite's junit.xml and report.md index (linking each drill's
/// report.md) in the suite folder; prints where the index is.
fn write_suite_report(suite_dir: &Path, done: &[(DrillResult, PathBuf)]) -> Result<(), CliError> {
    let results: Vec<DrillResult> = done.iter().map(|(r, _)| r.clone()).collect();
    std::fs::create_dir_all(suite_dir).map_err(|e| CliError::Failed(e.to_string()))?;
    std::fs::write(
        suite_dir.join("junit.xml"),
        crate::report::junit::render(&results),
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let entries: Vec<(DrillResult, String)> = done
        .iter()
        .map(|(r, d)| {
            (
                r.clone(),
                rel(suite_dir, d).join("report.md").display().to_string(),
            )
        })
        .collect();
    std::fs::write(
        suite_dir.join("report.md"),
        crate::report::markdown::render_suite_index(&entries),
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("suite report: {}", suite_dir.join("report.md").display());
    Ok(())
}

/// The worst drill's exit code; when an interrupt stopped the run before
/// every drill ran, says so and exits at least ABORTED.
fn exit_code(done: Vec<(DrillResult, PathBuf)>, planned: usize) -> i32 {
    let results: Vec<DrillResult> = done.into_iter().map(|(r, _)| r).collect();
    if results.len() < planned {
        eprintln!("interrupted: {} of {} drills ran", results.len(), planned);
        return exit::worst(crate::results::for_results(&results), exit::ABORTED);
    }
    crate::results::for_results(&results)
}

/// The history folder (none with --no-history), checked writable before
/// anything starts: a run that cannot keep its results leaves the next
/// run's regression check blind.
fn history_folder(a: &Args) -> Result<Option<PathBuf>, CliError> {
    let Some(h) = (!a.no_history).then(|| {
        a.history
            .clone()
            .unwrap_or_else(crate::history::default_dir)
    }) else {
        return Ok(None);
    };
    crate::base::fs::prove_writable(&h).map_err(|e| {
        CliError::usage(
            format!(
                "history folder {}: {e}; nothing was started or injected",
                h.display()
            ),
            "point --history (or DRILL_HISTORY) at a writable folder (in a CronJob: a PersistentVolumeClaim), or pass --no-history",
        )
    })?;
    Ok(Some(h))
}

/// Earlier runs of a drill on this target from the history folder, oldest
/// first. A history that cannot be read is said, and the drill runs without it.
fn past_runs(dir: Option<&Path>, scenario: &str, target: &str) -> Vec<crate::history::Record> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    match crate::history::load(dir, Some(scenario), Some(target)) {
        Ok((records, skipped)) => {
            for s in skipped {
                eprintln!("warning: history: skipped {s}");
            }
            records
        }
        Err(e) => {
            eprintln!("warning: cannot read the history in {}: {e}", dir.display());
            Vec::new()
        }
    }
}

/// `--summary FILE`: each drill's short form, appended, since CI summary
/// files (GitHub's `$GITHUB_STEP_SUMMARY`) collect several steps' output.
fn write_short_summary(file: &Path, done: &[(DrillResult, PathBuf)]) -> Result<(), CliError> {
    use std::io::Write;
    let body: String = done
        .iter()
        .map(|(r, dir)| {
            crate::report::summary::render(r, &format!("`{}`", dir.join("report.md").display()))
        })
        .collect();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(body.as_bytes()))
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot write the summary to {}: {e}",
                file.display()
            ))
        })
}

/// After a drill task panicked: revert what its journal says is outstanding.
async fn revert_after_crash(what: &str) -> i32 {
    eprintln!(
        "internal error: the drill crashed ({what}); reverting its outstanding faults from the journal"
    );
    match crate::fault::cleanup::revert_outstanding(crate::fault::cleanup::Scope::OwnRuns, false)
        .await
    {
        Ok(out) if out.failed.is_empty() => {
            out.lines.iter().for_each(|x| eprintln!("{x}"));
            exit::ABORTED
        }
        Ok(out) => {
            out.failed
                .iter()
                .for_each(|x| eprintln!("MANUAL ACTION REQUIRED: {x}"));
            exit::REVERT_FAILED
        }
        Err(e) => {
            eprintln!("MANUAL ACTION REQUIRED: cannot read the journal ({e}); run `drill cleanup`");
            exit::REVERT_FAILED
        }
    }
}

/// Creates `dir` and proves a file can be written in it, so that a drill
/// never injects a fault whose report it then cannot write.
fn writable(dir: &Path, from_flag: bool) -> Result<(), CliError> {
    crate::base::fs::prove_writable(dir).map_err(|e| {
        let why = if dir.exists() && !dir.is_dir() {
            "exists and is not a folder".to_string()
        } else {
            e.to_string()
        };
        let (what, hint) = if from_flag {
            (
                "--report-dir",
                "point --report-dir (or DRILL_REPORT_DIR) at a folder drill can create and write",
            )
        } else {
            (
                "report folder",
                "run from a writable folder, or pass --report-dir <DIR>",
            )
        };
        CliError::usage(
            format!(
                "{what} {}: {why}; nothing was started or injected",
                dir.display()
            ),
            hint,
        )
    })
}

fn rel(base: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

fn print_summary(r: &DrillResult, dir: &Path) {
    println!("{}", checks_table(r, super::term::width()));
    print_figures(r, dir);
}

/// The checks as a table at most `width` columns wide.
fn checks_table(r: &DrillResult, width: usize) -> String {
    let rows: Vec<Row> = r
        .checks
        .iter()
        .map(|c| Row {
            name: c.name.to_string(),
            status: match c.status {
                CheckStatus::Pass => "pass".into(),
                CheckStatus::Fail => "FAIL".into(),
                CheckStatus::Skipped => "skipped".into(),
            },
            message: c.message.clone(),
        })
        .collect();
    super::term::fit(Table::new(rows).with(Style::rounded()), width).to_string()
}

/// The figures under the table: each fault's RTO, the verdict, the reports.
fn print_figures(r: &DrillResult, dir: &Path) {
    for f in r.faults.iter().filter(|_| r.load.rate > 0.0) {
        let rto = match (f.rto_s, f.recovery) {
            (_, Recovery::NoImpact) => "no impact".to_string(),
            (Some(s), _) => format!("{s:.3}s"),
            (None, _) => "not recovered".to_string(),
        };
        let tti = f
            .time_to_impact_s
            .map_or("-".into(), |t| format!("{t:.3}s"));
        println!(
            "fault {}: RTO {rto} (±{:.1}s), time to impact {tti}, outage {:.1}s, {}",
            f.name, r.recovery.resolution_s, f.outage_s, f.ended
        );
    }
    if let Some(rpo) = &r.rpo {
        let ranges: Vec<String> = rpo
            .lost_ranges
            .iter()
            .take(5)
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        println!(
            "database: {} acknowledged, {} lost{}, {} indeterminate; RPO {:.3}s; write RTO {}",
            rpo.acknowledged,
            rpo.lost_writes,
            if ranges.is_empty() {
                String::new()
            } else {
                format!(" (seq {})", ranges.join(", "))
            },
            rpo.indeterminate,
            rpo.rpo_s,
            rpo.write_rto_s
                .map_or("—".to_string(), |w| format!("{w:.3}s"))
        );
    }
    if let Some(why) = r.load.distrust() {
        println!("inconclusive: {why}; the measurements cannot be trusted");
    }
    println!(
        "verdict: {}{}",
        r.verdict.name().to_uppercase(),
        r.reason
            .as_ref()
            .map_or(String::new(), |x| format!(" — {x}"))
    );
    for m in &r.manual_actions {
        eprintln!("MANUAL ACTION REQUIRED: {m}");
    }
    println!("report: {}", dir.join("report.md").display());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widest(table: &str) -> usize {
        table.lines().map(|l| l.chars().count()).max().unwrap_or(0)
    }

    /// A check whose message is a long sentence made the table ~210
    /// columns wide, each row wrapping into three at 100 columns.
    #[test]
    fn the_checks_table_fits_the_width_and_keeps_every_word() {
        let mut r = crate::results::testdata::sample_result();
        let long = "expected alert HighErrorRate{cluster=\"primary\", service=\"checkout\"} \
                    fired 3.2 s after the inject of kill-primary-ingress (limit 30 s) and \
                    resolved 12.5 s after traffic recovered (limit 60 s)";
        r.checks[1].name = "alert:HighErrorRate:kill-primary-ingress".into();
        r.checks[1].message = long.into();
        assert!(
            widest(&checks_table(&r, usize::MAX)) > 150,
            "the case needs a wide table"
        );
        for width in [100, 80] {
            let t = checks_table(&r, width);
            assert!(widest(&t) <= width, "wider than {width}:\n{t}");
            for word in long
                .split_whitespace()
                .chain(["FAIL", "rto:kill-primary-ingress"])
            {
                assert!(t.contains(word), "{word:?} lost at {width}:\n{t}");
            }
        }
    }
}
