//! `drill validate`: syntax, units and meaning of scenario files, against
//! the target each would run on. Shared by `run` and `plan`, which validate
//! everything before touching anything.

use std::ops::Range;
use std::path::Path;

use crate::base::error::CliError;
use crate::scenario::{self, Diagnostic, Diagnostics, Loaded, Plan};
use crate::targets::{TargetDef, Targets};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files (or names of scenarios in ./scenarios).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Validate against this target instead of each scenario's own.
    #[arg(long, env = "DRILL_TARGET")]
    pub target: Option<String>,
    /// `text` for people, `json` for programs (every diagnostic with file,
    /// line, column, message and hint).
    #[arg(short, long, value_enum, default_value_t, env = "DRILL_OUTPUT")]
    pub output: super::Output,
}

/// One file's verdict as `-o json` shows it.
#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    faults: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<usize>,
    diagnostics: Vec<JsonDiagnostic>,
}

#[derive(serde::Serialize)]
struct JsonDiagnostic {
    /// The file the error is in (a scenario or the targets file); null for
    /// a flag.
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
    hint: Option<String>,
}

/// Every diagnostic of an error, with its place when it has one.
fn json_diagnostics(e: &CliError) -> Vec<JsonDiagnostic> {
    match e {
        CliError::Invalid(Diagnostics(ds)) => ds
            .iter()
            .map(|d| JsonDiagnostic {
                file: Some(display(&d.file)),
                line: Some(d.line),
                column: Some(d.col),
                message: d.message.clone(),
                hint: d.hint.clone(),
            })
            .collect(),
        CliError::Usage { message, hint } => vec![JsonDiagnostic {
            file: None,
            line: None,
            column: None,
            message: message.clone(),
            hint: Some(hint.clone()),
        }],
        other => vec![JsonDiagnostic {
            file: None,
            line: None,
            column: None,
            message: other.to_string().trim_start_matches("error: ").to_string(),
            hint: None,
        }],
    }
}

/// Loads, resolves the target of, and validates one scenario; hands back
/// its resolved plan. Every check here is offline and runs before anything
/// is touched; the first one that fails is the error (exit 2).
pub(super) fn prepare(
    arg: &str,
    target_flag: Option<&str>,
    targets: &Targets,
) -> Result<(Plan, TargetDef), CliError> {
    let l = scenario::load(arg)?;
    let def = pick_target(&l, target_flag, targets)?;
    scenario::validate::validate(&l, &def.catalogue(), def.name())?;
    check_database_prerequisites(&l, def)?;
    let plan = Plan::resolve(&l);
    check_silence_has_alertmanager(&l, &plan, def)?;
    check_guards_against_target(&l, def)?;
    check_system_monitoring(&l, &plan, def)?;
    Ok((plan, def.clone()))
}

/// The target the scenario runs on: `--target`, else the scenario's own
/// `target`, else `lab`. An unknown name is reported at the scenario's
/// `target` line (or as a usage error for the flag), with the known targets
/// as the hint.
fn pick_target<'t>(
    l: &Loaded,
    target_flag: Option<&str>,
    targets: &'t Targets,
) -> Result<&'t TargetDef, CliError> {
    let (name, from_scenario) = match (target_flag, &l.scenario.target) {
        (Some(t), _) => (t.to_string(), None),
        (None, Some(t)) => (t.get_ref().clone(), Some(t.span())),
        (None, None) => ("lab".to_string(), None),
    };
    if let Some(def) = targets.get(&name) {
        return Ok(def);
    }
    let known: Vec<&str> = targets.names().collect();
    let hint = match &targets.file {
        Some(f) => format!("targets: {} (from {})", known.join(", "), f.display()),
        None => format!(
            "targets: {}; declare others in drill.toml or pass --targets FILE",
            known.join(", ")
        ),
    };
    Err(match from_scenario {
        Some(span) => Diagnostics(vec![
            Diagnostic::at(
                &l.path,
                &l.src,
                Some(span),
                format!("unknown target `{name}`"),
            )
            .with_hint(hint),
        ])
        .into(),
        None => CliError::usage(
            format!(
                "--target {}: unknown target",
                crate::base::diag::escape(&name)
            ),
            hint,
        ),
    })
}

/// A database drill on the lab needs PostgreSQL's server binaries; on
/// another target, the DSN's environment variable. Both are input errors.
fn check_database_prerequisites(l: &Loaded, def: &TargetDef) -> Result<(), CliError> {
    if l.scenario.database.is_none() {
        return Ok(());
    }
    match def {
        TargetDef::Lab { .. } => {
            if let Err(e) = crate::db::bin::PgBin::discover() {
                return Err(CliError::usage(
                    format!("{}: the database drill needs PostgreSQL", l.path.display()),
                    e.to_string(),
                ));
            }
        }
        TargetDef::Http {
            database: Some(db), ..
        }
        | TargetDef::Kubernetes {
            database: Some(db), ..
        } if std::env::var_os(&db.dsn_env).is_none() => {
            return Err(CliError::usage(
                format!(
                    "target `{}`: environment variable {} is not set",
                    def.name(),
                    db.dsn_env
                ),
                format!(
                    "export {}=\"host=… dbname=… user=… target_session_attrs=read-write\" (the writer's DSN; drill never writes it anywhere)",
                    db.dsn_env
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// `silence = true` against a target that names no monitoring would do
/// nothing while the plan says it silences: on-call would be paged. The
/// error points at the `silence` line.
fn check_silence_has_alertmanager(
    l: &Loaded,
    plan: &Plan,
    def: &TargetDef,
) -> Result<(), CliError> {
    if !(plan.monitoring.as_ref().is_some_and(|mp| mp.silence)
        && !matches!(def, TargetDef::Lab { .. })
        && def.external_monitoring().is_none())
    {
        return Ok(());
    }
    Err(Diagnostics(vec![
        Diagnostic::at(
            &l.path,
            &l.src,
            silence_key_span(&l.src),
            format!(
                "silence = true, but target `{}` names no Alertmanager: the expected alerts would page on-call",
                def.name()
            ),
        )
        .with_hint(format!(
            "add [targets.{0}.alertmanager] url = \"https://alertmanager.example:9093\" (and [targets.{0}.prometheus]) to the targets file, or set silence = false",
            def.name()
        )),
    ])
    .into())
}

/// The `silence` key's place in the scenario's source (the flag is a plain
/// bool, without a span of its own).
fn silence_key_span(src: &str) -> Option<Range<usize>> {
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        let key = line.trim_start();
        if key.starts_with("silence") && key["silence".len()..].trim_start().starts_with('=') {
            let start = at + (line.len() - key.len());
            return Some(start..start + "silence".len());
        }
        at += line.len();
    }
    None
}

/// The scenario's guards against what the target can watch: the lab's own
/// monitoring (when installed) or the system's named Prometheus, each query
/// checked by promtool when it is there.
fn check_guards_against_target(l: &Loaded, def: &TargetDef) -> Result<(), CliError> {
    let lab_missing = crate::targets::lab::monitoring::unavailable();
    let target = match def {
        crate::targets::TargetDef::Lab { .. } => scenario::validate_guards::GuardTarget::Lab,
        _ => scenario::validate_guards::GuardTarget::System {
            name: def.name(),
            monitoring: def.external_monitoring().is_some(),
        },
    };
    let ds = scenario::validate_guards::against_target(
        l,
        target,
        lab_missing,
        crate::observe::promql::promtool_check,
    );
    if !ds.is_empty() {
        return Err(Diagnostics(ds).into());
    }
    Ok(())
}

/// The system's monitoring: token variables set, CA files present, the
/// endpoints the scenario needs named (knowable offline, so exit 2); and no
/// `alert_rules`, which only the lab's Prometheus loads.
fn check_system_monitoring(l: &Loaded, plan: &Plan, def: &TargetDef) -> Result<(), CliError> {
    let (Some(mp), Some(m)) = (&plan.monitoring, def.external_monitoring()) else {
        return Ok(());
    };
    let mut ds = m.problems(
        !mp.alerts.is_empty()
            || mp.silence
            || mp.unexpected_fail
            || scenario::validate_guards::need_alertmanager(l),
    );
    if let Some(r) = &l.scenario.alert_rules {
        ds.push(
            Diagnostic::at(&l.path, &l.src, Some(r.span()), format!("alert_rules is for the lab; target `{}`'s own Prometheus evaluates its own rules", def.name()))
                .with_hint("remove alert_rules; load the rules into your Prometheus, whose rules preflight checks"),
        );
    }
    if !ds.is_empty() {
        return Err(Diagnostics(ds).into());
    }
    Ok(())
}

pub(super) fn load_targets(path: Option<&Path>) -> Result<Targets, CliError> {
    Ok(Targets::load(path)?)
}

pub(super) fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    if a.output == super::Output::Json {
        return run_json(&a, targets_file);
    }
    let targets = load_targets(targets_file)?;
    let mut bad = 0;
    for f in &a.files {
        match prepare(f, a.target.as_deref(), &targets) {
            Ok((l, def)) => println!(
                "ok: {} ({} fault(s), {} check(s), target {})",
                display(&l.path),
                l.faults.len(),
                l.checks.len(),
                def.name()
            ),
            Err(e) => {
                bad += 1;
                eprint!("{e}");
                if !e.to_string().ends_with('\n') {
                    eprintln!();
                }
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} file(s) invalid", a.files.len());
        return Ok(crate::base::exit::INVALID);
    }
    Ok(0)
}

/// `-o json`: one document listing every file, valid or not; exit code as
/// for text. A bad targets file is reported against every scenario.
fn run_json(a: &Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let targets = load_targets(targets_file);
    let files: Vec<FileReport> =
        a.files
            .iter()
            .map(|f| {
                let prepared = targets.as_ref().map_err(json_diagnostics).and_then(|t| {
                    prepare(f, a.target.as_deref(), t).map_err(|e| json_diagnostics(&e))
                });
                match prepared {
                    Ok((l, def)) => FileReport {
                        file: display(&l.path),
                        valid: true,
                        target: Some(def.name().to_string()),
                        faults: Some(l.faults.len()),
                        checks: Some(l.checks.len()),
                        diagnostics: Vec::new(),
                    },
                    Err(diagnostics) => FileReport {
                        file: f.clone(),
                        valid: false,
                        target: None,
                        faults: None,
                        checks: None,
                        diagnostics,
                    },
                }
            })
            .collect();
    let valid = files.iter().all(|f| f.valid);
    #[derive(serde::Serialize)]
    struct Validation {
        valid: bool,
        files: Vec<FileReport>,
    }
    super::print_json(&Validation { valid, files });
    Ok(if valid { 0 } else { crate::base::exit::INVALID })
}

/// A path as shown on the terminal: control characters escaped.
fn display(p: &Path) -> String {
    crate::base::diag::escape(&p.display().to_string())
}
