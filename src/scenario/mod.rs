//! Scenario files: the TOML model, units, file:line:col diagnostics and
//! validation against a target's components. Pure: no IO beyond reading the
//! file.

pub(crate) mod catalogue;
#[cfg(test)]
mod fuzz;
pub(crate) mod guard;
pub mod model;
pub mod plan;
pub(crate) mod validate;
pub(crate) mod validate_alerts;
pub(crate) mod validate_guards;

use std::path::{Path, PathBuf};

pub use crate::base::diag::{Diagnostic, Diagnostics};
pub use catalogue::{Catalogue, ComponentInfo};
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
    let local = Path::new("scenarios/suites").join(format!("{arg}.toml"));
    let direct = match read_if_present(Path::new(arg)) {
        Err(_) if Path::new(arg).is_dir() && !arg.ends_with(".toml") => None,
        other => other?,
    };
    let found = match direct {
        Some(src) => Some((PathBuf::from(arg), src)),
        None => read_if_present(&local)?
            .map(|src| (local, src))
            .or_else(|| {
                BUILTIN_SUITES
                    .iter()
                    .find(|(n, _)| *n == arg)
                    .map(|(n, s)| {
                        (
                            PathBuf::from(format!("<built-in>/suites/{n}.toml")),
                            s.to_string(),
                        )
                    })
            }),
    };
    let Some((path, src)) = found else {
        let names: Vec<&str> = BUILTIN_SUITES.iter().map(|(n, _)| *n).collect();
        return Err(Diagnostics(vec![
            Diagnostic::file(Path::new(arg), format!("no suite `{arg}`")).with_hint(format!(
                "give a path to a suite .toml, or one of: {}",
                names.join(", ")
            )),
        ]));
    };
    let suite: Suite = toml::from_str(&src)
        .map_err(|e| Diagnostics(vec![crate::base::diag::from_toml(&path, &src, &e)]))?;
    if suite.scenarios.is_empty() {
        let span = validate::key_value_span(&src, 0, "scenarios");
        return Err(Diagnostics(vec![
            Diagnostic::at(
                &path,
                &src,
                span,
                "a suite with no scenarios would pass by testing nothing",
            )
            .with_hint(
                "list scenarios to run, e.g. scenarios = [\"ingress-failover\", \"pod-failure\"]",
            ),
        ]));
    }
    for s in &suite.scenarios {
        if let Err(mut d) = locate(s.get_ref())
            .and_then(|found| found.map(|_| ()).ok_or_else(|| Diagnostics(Vec::new())))
        {
            // Unreadable: say why; absent: name what exists.
            if d.0.is_empty() {
                d.0.push(
                    Diagnostic::at(
                        &path,
                        &src,
                        Some(s.span()),
                        format!("no scenario `{}`", s.get_ref()),
                    )
                    .with_hint("name a scenario in ./scenarios, a built-in one, or a path"),
                );
            }
            return Err(d);
        }
    }
    Ok((path, suite))
}

/// Reads `path` if something is there. A thing that is there but cannot be
/// a scenario (a directory, a FIFO, unreadable, not UTF-8) is an error that
/// says why; the file type is checked before opening, so a FIFO never
/// blocks.
pub fn read_if_present(path: &Path) -> Result<Option<String>, Diagnostics> {
    let fail = |why: String, hint: &str| {
        Diagnostics(vec![
            Diagnostic::file(path, format!("{} {why}", path.display())).with_hint(hint),
        ])
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot be read: {e}"), "give a readable file")),
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        return Err(fail(
            "is a directory".into(),
            "give a .toml file, e.g. scenarios/pod-failure.toml",
        ));
    }
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(fail(
            format!("is {what}, not a file"),
            "give a regular .toml file (copy a stream to a file first)",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".into(),
            _ => format!("cannot be read: {e}"),
        };
        fail(why, "check the file's permissions")
    })?;
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let col = valid[valid.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        let mut d = fail(
            format!(
                "is not UTF-8 (byte 0x{:02x} at line {line}, column {col})",
                bytes[at]
            ),
            "save the file as UTF-8",
        );
        d.0[0].line = line;
        d.0[0].col = col;
        d
    })
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

/// Finds a scenario by path, by name in `./scenarios/`, or among the
/// built-ins; a path that exists but cannot be read is an error saying why.
pub fn locate(arg: &str) -> Result<Option<(PathBuf, String)>, Diagnostics> {
    let p = Path::new(arg);
    // A folder that happens to share a scenario's name does not hide it.
    let unreadable = match read_if_present(p) {
        Ok(Some(src)) => return Ok(Some((p.to_path_buf(), src))),
        Ok(None) => None,
        Err(d) if p.is_dir() && !arg.ends_with(".toml") => Some(d),
        Err(d) => return Err(d),
    };
    let local = Path::new("scenarios").join(format!("{arg}.toml"));
    if let Some(src) = read_if_present(&local)? {
        return Ok(Some((local, src)));
    }
    let builtin = BUILTIN
        .iter()
        .find(|(n, _)| *n == arg)
        .map(|(n, s)| (PathBuf::from(format!("<built-in>/{n}.toml")), s.to_string()));
    match (builtin, unreadable) {
        (None, Some(d)) => Err(d),
        (found, _) => Ok(found),
    }
}

/// Names of the scenarios `locate` can find without a path.
pub fn available() -> Vec<(String, PathBuf, String)> {
    let mut out: Vec<(String, PathBuf, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("scenarios") {
        for e in rd.flatten() {
            let p = e.path();
            // read_if_present checks the file type first: a FIFO here
            // must not hang `drill list`.
            if p.extension().is_some_and(|x| x == "toml")
                && let (Some(stem), Ok(Some(src))) = (p.file_stem(), read_if_present(&p))
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
    let scenario: Scenario = toml::from_str(src)
        .map_err(|e| Diagnostics(vec![crate::base::diag::from_toml(path, src, &e)]))?;
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
    match locate(arg)? {
        Some((path, src)) => parse(&path, &src),
        None => {
            let names: Vec<String> = available().into_iter().map(|(n, _, _)| n).collect();
            Err(Diagnostics(vec![
                Diagnostic::file(Path::new(arg), format!("no scenario `{arg}`")).with_hint(
                    format!(
                        "give a path to a .toml file, or one of: {}",
                        names.join(", ")
                    ),
                ),
            ]))
        }
    }
}
