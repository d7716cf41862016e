//! The command line: parse, dispatch to one file per subcommand, map errors
//! to exit codes (src/error.rs).

mod agent;
mod cleanup;
mod history;
mod lab;
mod list;
mod plan;
mod push;
mod rbac;
mod run;
mod term;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::base::error::CliError;

#[derive(Parser, Debug)]
#[command(
    name = "drill",
    version,
    about = "Run disaster-recovery drills and chaos tests; prove with numbers whether SLOs hold",
    long_about = "drill runs a scenario (a TOML file: load, faults, recovery criteria, SLO checks) against a \
target — the built-in two-region lab by default — measures RTO, availability, latency percentiles and \
error budget, and writes junit.xml, report.md (+ timeline.svg) and results.json.\n\n\
Exit codes: 0 all checks passed · 1 a check failed · 2 invalid input, nothing injected · \
3 aborted (preflight, steady state, abort condition, interrupt), faults reverted · \
4 a revert failed: the system may still be broken (see the report and stderr) · \
5 inconclusive: the measurements cannot be trusted (the load generator fell behind, or sent less than asked)."
)]
pub struct Cli {
    /// Targets file (default: ./drill.toml when present). Declares named
    /// targets besides the built-in `lab`.
    #[arg(long, global = true, value_name = "FILE", env = "DRILL_TARGETS")]
    pub targets: Option<PathBuf>,
    /// More diagnostics on stderr: -v drill's steps (target start,
    /// preflight, each inject and revert), -vv also kube and HTTP client
    /// debugging. RUST_LOG (tracing's filter syntax) overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// How `list`, `plan` and `validate` print: for people or for programs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Prints one JSON document on stdout.
fn print_json(v: &impl serde::Serialize) {
    // Only string-keyed maps and plain values: serialisation cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("serialises to JSON")
    );
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one or more drills and write their reports.
    #[command(after_help = "Examples:
  drill run ingress-failover                      the built-in lab; reports in reports/ingress-failover/<UTC stamp>/
  drill run ingress-failover --target staging     a target from ./drill.toml (kind http or kubernetes)
  drill run db-failover --report-dir out --seed 7
  drill run --suite monthly                       several drills: one junit.xml with a testsuite each, a report.md index

Shipped scenarios: `drill list`; what a drill will do: `drill plan <scenario>`.
Every option can come from the environment (DRILL_TARGET, DRILL_SUITE, DRILL_REPORT_DIR, DRILL_SEED,
DRILL_QUIET, DRILL_SUMMARY, DRILL_TARGETS; shown beside each option). Also: DRILL_STATE_DIR (fault
journals; default ~/.local/state/drill), DRILL_PG_BIN (PostgreSQL binaries for database drills),
SSL_CERT_FILE (CA bundle for https entry points), CI (no live status line), RUST_LOG (diagnostics).
Ctrl-C stops the drill and reverts every fault; a second Ctrl-C skips the waits, never the revert.")]
    Run(run::Args),
    /// List the scenarios drill can find (./scenarios and built-ins).
    List(list::Args),
    /// Check scenario files: syntax, units, and meaning against the target.
    Validate(validate::Args),
    /// Print a drill's timeline of actions; touches nothing.
    Plan(plan::Args),
    /// Print the least-privilege Roles a kubernetes target's contexts need.
    Rbac(rbac::Args),
    /// Revert faults left outstanding by a crashed or killed run.
    Cleanup(cleanup::Args),
    /// Past runs of a drill with the trend of each figure; flags regressions.
    History(history::Args),
    /// A load generator agent: takes its share of a drill's schedule from a
    /// runner (`drill run --agents N`, or a target's vantage points).
    Agent(agent::Args),
    /// The built-in lab's processes (used by drill itself).
    #[command(hide = true)]
    Lab(lab::Args),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => crate::base::exit::INVALID,
            };
        }
    };
    diagnostics(cli.verbose);
    if matches!(
        cli.command,
        Command::List(_)
            | Command::Validate(_)
            | Command::Plan(_)
            | Command::History(_)
            | Command::Rbac(_)
    ) {
        // Printing commands end quietly when their reader goes away (`| head`).
        // Not for `run` or the lab: they write to sockets and need EPIPE.
        // SAFETY: restoring the default disposition of one signal.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let res = match cli.command {
        Command::Run(a) => run::run(a, cli.targets.as_deref()),
        Command::List(a) => list::run(a),
        Command::Validate(a) => validate::run(a, cli.targets.as_deref()),
        Command::Plan(a) => plan::run(a, cli.targets.as_deref()),
        Command::Rbac(a) => rbac::run(a, cli.targets.as_deref()),
        Command::Cleanup(a) => cleanup::run(a),
        Command::History(a) => history::run(a),
        Command::Lab(a) => lab::run(a),
        Command::Agent(a) => agent::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprint!("{e}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            e.exit_code()
        }
    }
}

/// Diagnostics through `tracing`, on stderr so they never mix with reports
/// or JSON on stdout. RUST_LOG wins over `-v`. Without either, only errors
/// show: every failure drill logs at warn is also reported in its own words
/// (stderr, report), and saying it twice would only add noise.
fn diagnostics(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "drill=error",
            1 => "drill=info,kube=warn",
            _ => "drill=debug,kube=debug,hyper=debug,hyper_util=debug,rustls=info",
        }),
    };
    // A second call (tests calling main twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(term::colour(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .with_target(true)
        .try_init();
}

/// A multi-threaded runtime for the commands that do IO.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))
}
