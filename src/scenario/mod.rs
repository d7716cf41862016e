//! Scenario files: the TOML model, units, file:line:col diagnostics and
//! validation against a target's components. Pure: no IO beyond reading the
//! file.

pub mod diag;
pub mod model;
pub mod plan;
pub mod units;
pub mod validate;
pub mod validate_alerts;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use model::Scenario;
pub use plan::Plan;

/// Scenarios shipped with drill, so an installed binary runs them anywhere.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "ingress-failover",
        include_str!("../../scenarios/ingress-failover.toml"),
    ),
    (
        "istiod-down",
        include_str!("../../scenarios/istiod-down.toml"),
    ),
    (
        "pod-failure",
        include_str!("../../scenarios/pod-failure.toml"),
    ),
    (
        "eastwest-failover",
        include_str!("../../scenarios/eastwest-failover.toml"),
    ),
    (
        "latency-injection",
        include_str!("../../scenarios/latency-injection.toml"),
    ),
    (
        "region-outage",
        include_str!("../../scenarios/region-outage.toml"),
    ),
    (
        "db-switchover",
        include_str!("../../scenarios/db-switchover.toml"),
    ),
    (
        "db-failover",
        include_str!("../../scenarios/db-failover.toml"),
    ),
];

/// Suites shipped with drill.
pub const BUILTIN_SUITES: &[(&str, &str)] = &[(
    "monthly",
    include_str!("../../scenarios/suites/monthly.toml"),
)];

/// A suite file: scenarios run in one invocation.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub description: String,
    pub scenarios: Vec<toml::Spanned<String>>,
}

/// Finds a suite by path, in `./scenarios/suites/`, or built in, and parses it.
pub fn load_suite(arg: &str) -> Result<(PathBuf, Suite), Diagnostics> {
    let p = Path::new(arg);
    let local = Path::new("scenarios/suites").join(format!("{arg}.toml"));
    let found = if p.is_file() {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| (p.to_path_buf(), s))
    } else if local.is_file() {
        std::fs::read_to_string(&local).ok().map(|s| (local, s))
    } else {
        BUILTIN_SUITES
            .iter()
            .find(|(n, _)| *n == arg)
            .map(|(n, s)| {
                (
                    PathBuf::from(format!("<built-in>/suites/{n}.toml")),
                    s.to_string(),
                )
            })
    };
    let Some((path, src)) = found else {
        let names: Vec<&str> = BUILTIN_SUITES.iter().map(|(n, _)| *n).collect();
        return Err(Diagnostics(vec![
            Diagnostic::at(Path::new(arg), "", None, format!("no suite `{arg}`")).with_hint(
                format!(
                    "give a path to a suite .toml, or one of: {}",
                    names.join(", ")
                ),
            ),
        ]));
    };
    let suite: Suite =
        toml::from_str(&src).map_err(|e| Diagnostics(vec![diag::from_toml(&path, &src, &e)]))?;
    for s in &suite.scenarios {
        if locate(s.get_ref()).is_none() {
            return Err(Diagnostics(vec![
                Diagnostic::at(
                    &path,
                    &src,
                    Some(s.span()),
                    format!("no scenario `{}`", s.get_ref()),
                )
                .with_hint("name a scenario in ./scenarios, a built-in one, or a path"),
            ]));
        }
    }
    Ok((path, suite))
}

/// A parsed scenario and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Scenario name: the file stem.
    pub name: String,
    pub path: PathBuf,
    pub src: String,
    pub scenario: Scenario,
}

/// Finds a scenario by path, by name in `./scenarios/`, or among the built-ins.
pub fn locate(arg: &str) -> Option<(PathBuf, String)> {
    let p = Path::new(arg);
    if p.is_file() {
        return std::fs::read_to_string(p)
            .ok()
            .map(|s| (p.to_path_buf(), s));
    }
    let local = Path::new("scenarios").join(format!("{arg}.toml"));
    if local.is_file() {
        return std::fs::read_to_string(&local).ok().map(|s| (local, s));
    }
    BUILTIN
        .iter()
        .find(|(n, _)| *n == arg)
        .map(|(n, s)| (PathBuf::from(format!("<built-in>/{n}.toml")), s.to_string()))
}

/// Names of the scenarios `locate` can find without a path.
pub fn available() -> Vec<(String, PathBuf, String)> {
    let mut out: Vec<(String, PathBuf, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("scenarios") {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml")
                && let (Some(stem), Ok(src)) = (p.file_stem(), std::fs::read_to_string(&p))
            {
                out.push((stem.to_string_lossy().into_owned(), p.clone(), src));
            }
        }
    }
    for (n, s) in BUILTIN {
        if !out.iter().any(|(name, _, _)| name == n) {
            out.push((
                n.to_string(),
                PathBuf::from(format!("<built-in>/{n}.toml")),
                s.to_string(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Parses a scenario (syntax, unknown keys, units). Meaning is checked by
/// [`validate::validate`].
pub fn parse(path: &Path, src: &str) -> Result<Loaded, Diagnostics> {
    let scenario: Scenario =
        toml::from_str(src).map_err(|e| Diagnostics(vec![diag::from_toml(path, src, &e)]))?;
    let name = path.file_stem().map_or_else(
        || "scenario".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Ok(Loaded {
        name,
        path: path.to_path_buf(),
        src: src.to_string(),
        scenario,
    })
}

/// Locates and parses `arg`; an unknown name is a diagnostic with a hint.
pub fn load(arg: &str) -> Result<Loaded, Diagnostics> {
    match locate(arg) {
        Some((path, src)) => parse(&path, &src),
        None => {
            let names: Vec<String> = available().into_iter().map(|(n, _, _)| n).collect();
            Err(Diagnostics(vec![
                Diagnostic::at(Path::new(arg), "", None, format!("no scenario `{arg}`")).with_hint(
                    format!(
                        "give a path to a .toml file, or one of: {}",
                        names.join(", ")
                    ),
                ),
            ]))
        }
    }
}
