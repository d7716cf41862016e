//! The targets file (`drill.toml` in the working directory, or `--targets`):
//! named targets a scenario can run against, besides the built-in `lab`.
//!
//! ```toml
//! [targets.staging]
//! kind = "http"
//! url = "https://staging.example.com"
//!
//! [targets.fast-lab]
//! kind = "lab"
//! lab = { restart_delay = "3s", health = { interval = "200ms" } }
//!
//! [targets.prod]
//! kind = "kubernetes"
//! url = "https://bookinfo.example.com"
//! contexts = { primary = "primary-cluster-context", secondary = "secondary-cluster" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::k8s::settings::{ComponentOverride, K8sEntry, K8sSettings};
use super::lab::LabSettings;
use crate::scenario::diag::{self, Diagnostic, Diagnostics};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Lab,
    Http,
    Kubernetes,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    pub kind: Spanned<Kind>,
    /// `http`: the entry URL the load goes to.
    pub url: Option<Spanned<String>>,
    /// `lab`: timings and switches.
    pub lab: Option<LabSettings>,
    /// `kubernetes`: region → kube context.
    pub contexts: Option<BTreeMap<String, String>>,
    /// `kubernetes`: kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<String>,
    /// `kubernetes`: region → that region's ingress URL.
    pub ingress: Option<BTreeMap<String, String>>,
    /// `kubernetes`: per-component overrides of the built-in objects.
    pub components: Option<BTreeMap<String, ComponentOverride>>,
    /// `http`/`kubernetes`: the system's PostgreSQL, for database drills.
    pub database: Option<ExternalDb>,
    /// Where generator agents send the load from (src/targets/vantage.rs).
    pub vantage: Option<Vec<Spanned<super::vantage::VantageEntry>>>,
}

/// A database outside the lab: the writer's DSN comes from an environment
/// variable (never written to a report, log or journal) and switchover and
/// failover are the user's commands (`patronictl switchover …`,
/// `kubectl cnpg promote …`, `oci db autonomous-database switchover …`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExternalDb {
    /// Name of the environment variable holding the writer DSN (a multi-host
    /// DSN with target_session_attrs=read-write finds the new primary).
    pub dsn_env: String,
    pub switchover: Option<String>,
    pub failover: Option<String>,
    #[serde(default = "d5m")]
    pub command_timeout: crate::scenario::units::Dur,
}

fn d5m() -> crate::scenario::units::Dur {
    crate::scenario::units::Dur::secs(300)
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsFile {
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<TargetEntry>>,
}

/// A resolved target definition.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetDef {
    Lab {
        name: String,
        settings: LabSettings,
    },
    Http {
        name: String,
        url: String,
        database: Option<ExternalDb>,
    },
    Kubernetes {
        name: String,
        settings: K8sSettings,
        database: Option<ExternalDb>,
    },
}

impl TargetDef {
    pub fn name(&self) -> &str {
        match self {
            TargetDef::Lab { name, .. }
            | TargetDef::Http { name, .. }
            | TargetDef::Kubernetes { name, .. } => name,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            TargetDef::Lab { .. } => "lab",
            TargetDef::Http { .. } => "http",
            TargetDef::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// The targets a run can choose from: the built-in lab plus the file's.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub file: Option<PathBuf>,
    defs: BTreeMap<String, TargetDef>,
    /// Each target's vantage points (none: the load comes from this process).
    vantages: BTreeMap<String, Vec<super::vantage::VantageDef>>,
}

impl Targets {
    /// Loads `path` if given (it must exist), else `./drill.toml` if present.
    pub fn load(path: Option<&Path>) -> Result<Targets, Diagnostics> {
        let chosen = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("drill.toml")).filter(|p| p.exists()),
        };
        let mut t = Targets {
            file: chosen.clone(),
            defs: BTreeMap::new(),
            vantages: BTreeMap::new(),
        };
        t.defs.insert(
            "lab".into(),
            TargetDef::Lab {
                name: "lab".into(),
                settings: LabSettings::default(),
            },
        );
        let Some(file) = chosen else { return Ok(t) };
        let src = match crate::scenario::read_if_present(&file)? {
            Some(src) => src,
            None => {
                return Err(Diagnostics(vec![
                    Diagnostic::file(&file, "cannot read targets file: it does not exist")
                        .with_hint("pass an existing file to --targets, or create drill.toml"),
                ]));
            }
        };
        let parsed: TargetsFile = toml::from_str(&src)
            .map_err(|e| Diagnostics(vec![diag::from_toml(&file, &src, &e)]))?;
        let mut errors = Vec::new();
        for (name, entry) in parsed.targets {
            let span = entry.span();
            let mut entry = entry.into_inner();
            if let Some(vs) = entry.vantage.take() {
                let kind = *entry.kind.get_ref();
                match super::vantage::resolve(&file, &src, &name, kind, entry.contexts.as_ref(), vs)
                {
                    Ok(vs) => {
                        t.vantages.insert(name.clone(), vs);
                    }
                    Err(es) => errors.extend(es),
                }
            }
            match resolve(&file, &src, name.clone(), &span, entry) {
                Ok(def) => {
                    t.defs.insert(name, def);
                }
                Err(es) => errors.extend(es),
            }
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(Diagnostics(errors))
        }
    }

    pub fn get(&self, name: &str) -> Option<&TargetDef> {
        self.defs.get(name)
    }

    /// The vantage points of target `name` (empty: none declared).
    pub fn vantages(&self, name: &str) -> &[super::vantage::VantageDef] {
        self.vantages.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }
}

/// One entry of the targets file as a target definition, or what is wrong
/// with it.
fn resolve(
    file: &Path,
    src: &str,
    name: String,
    span: &std::ops::Range<usize>,
    entry: TargetEntry,
) -> Result<TargetDef, Vec<Diagnostic>> {
    let at =
        |sp: &std::ops::Range<usize>, msg: String| Diagnostic::at(file, src, Some(sp.clone()), msg);
    if let Some(d) = entry_value_problems(file, src, &name, span, &entry) {
        return Err(vec![d]);
    }
    if *entry.kind.get_ref() != Kind::Kubernetes
        && (entry.contexts.is_some()
            || entry.kubeconfig.is_some()
            || entry.ingress.is_some()
            || entry.components.is_some())
    {
        return Err(vec![
            at(
                span,
                format!(
                    "target `{name}`: contexts, kubeconfig, ingress and components are for kind = \"kubernetes\""
                ),
            )
            .with_hint("set kind = \"kubernetes\", or remove them"),
        ]);
    }
    match *entry.kind.get_ref() {
        Kind::Kubernetes => {
            if entry.lab.is_some() {
                return Err(vec![at(
                    span,
                    format!("target `{name}`: `lab` settings are for kind = \"lab\""),
                )]);
            }
            let base = file.parent().unwrap_or(Path::new("."));
            let k = K8sEntry {
                url: entry.url.map(Spanned::into_inner),
                contexts: entry.contexts.unwrap_or_default(),
                ingress: entry.ingress.unwrap_or_default(),
                kubeconfig: entry.kubeconfig,
                components: entry.components.unwrap_or_default(),
            };
            match k.resolve(base) {
                Ok(settings) => Ok(TargetDef::Kubernetes {
                    name,
                    settings,
                    database: entry.database,
                }),
                Err(es) => Err(es
                    .into_iter()
                    .map(|e| at(span, format!("target `{name}`: {e}")))
                    .collect()),
            }
        }
        Kind::Lab => {
            let mut errors = Vec::new();
            if entry.database.is_some() {
                errors.push(
                    at(span, format!("target `{name}`: the lab makes its own database"))
                        .with_hint("set lab database options under `lab = { database = { synchronous = true } }`"),
                );
            }
            if let Some(url) = &entry.url {
                errors.push(
                    at(&url.span(), "a lab target has no url".into())
                        .with_hint("the lab starts its own entry point; remove `url`"),
                );
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok(TargetDef::Lab {
                name,
                settings: entry.lab.unwrap_or_default(),
            })
        }
        Kind::Http => match entry.url {
            Some(url) => Ok(TargetDef::Http {
                name,
                url: url.into_inner(),
                database: entry.database,
            }),
            None => Err(vec![
                at(span, format!("target `{name}` of kind http needs a `url`"))
                    .with_hint("add url = \"https://…\" to the target's table"),
            ]),
        },
    }
}

/// Values in a target's entry that parse but cannot work: an entry URL
/// without a host or with a scheme drill does not speak, a database command
/// time limit of zero.
fn entry_value_problems(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Option<Diagnostic> {
    if let Some(url) = &entry.url
        && *entry.kind.get_ref() != Kind::Lab
        && let Some(why) = url_problem(url.get_ref())
    {
        return Some(
            Diagnostic::at(
                file,
                src,
                Some(url.span()),
                format!("target `{name}`: {why}"),
            )
            .with_hint(
                "write the entry URL with its host, e.g. url = \"https://staging.example.com\"",
            ),
        );
    }
    for (region, url) in entry.ingress.iter().flatten() {
        if let Some(why) = url_problem(url) {
            let from = src[span.start..]
                .find("ingress")
                .map_or(span.start, |i| span.start + i);
            let at = value_after(src, from, region).unwrap_or(span.clone());
            return Some(
                Diagnostic::at(file, src, Some(at), format!("target `{name}`: ingress of `{region}`: {why}"))
                    .with_hint("write the region's ingress URL with its host, e.g. primary = \"http://10.0.0.1:8080\""),
            );
        }
    }
    if let Some(db) = &entry.database
        && db.command_timeout.0.is_zero()
    {
        let at = value_after(src, span.start, "command_timeout").unwrap_or(span.clone());
        return Some(
            Diagnostic::at(
                file,
                src,
                Some(at),
                format!("target `{name}`: command_timeout = \"0s\" would stop every switchover or failover command before it starts"),
            )
            .with_hint("give the longest a command may run, e.g. command_timeout = \"5m\" (the default)"),
        );
    }
    None
}

/// Why `url` cannot be an entry URL, if it cannot.
fn url_problem(url: &str) -> Option<String> {
    let uri: hyper::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Some(format!("`{url}` is not a URL ({e})")),
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(s) => {
            return Some(format!(
                "`{url}`: scheme `{s}` is not supported (http or https)"
            ));
        }
        None => return Some(format!("`{url}` is not an http(s) URL")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => None,
        _ => Some(format!("`{url}` has no host")),
    }
}

/// The value of the first `key = value` after byte `from` (in a table or an
/// inline table), up to the end of the line, a `,` or a `}`.
fn value_after(src: &str, from: usize, key: &str) -> Option<std::ops::Range<usize>> {
    let mut at = from;
    while let Some(i) = src.get(at..)?.find(key) {
        let k = at + i;
        let rest = &src[k + key.len()..];
        let before_ok = k == 0
            || !src.as_bytes()[k - 1].is_ascii_alphanumeric() && src.as_bytes()[k - 1] != b'_';
        if before_ok && let Some(v) = rest.trim_start().strip_prefix('=') {
            let v_start = src.len() - v.trim_start().len();
            let len = src[v_start..]
                .find([',', '}', '\n'])
                .unwrap_or(src.len() - v_start);
            return Some(v_start..v_start + src[v_start..v_start + len].trim_end().len());
        }
        at = k + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `src` as a targets file; the errors, else the target names.
    fn load(src: &str) -> Result<Vec<String>, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, src).unwrap();
        Targets::load(Some(&path))
            .map(|t| t.names().map(String::from).collect())
            .map_err(|d| d.0)
    }

    /// The one error points at `at` in `src`, says `says`, and has a hint.
    fn rejects(src: &str, at: &str, says: &str) {
        let ds = load(src).expect_err("invalid");
        assert_eq!(ds.len(), 1, "{ds:#?}");
        let d = &ds[0];
        let off = src.find(at).expect("marker");
        let line = src[..off].matches('\n').count() + 1;
        let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
        assert_eq!((d.line, d.col), (line, col), "{d}");
        assert!(d.message.contains(says), "{d}");
        assert!(d.hint.is_some(), "{d}");
    }

    #[test]
    fn good_targets_load() {
        let names = load(
            "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:8080/x\"\n\n[targets.l]\nkind = \"lab\"\nlab = { push_interval = \"200ms\", health = { interval = \"10ms\" } }\n",
        )
        .unwrap();
        assert_eq!(names, ["l", "lab", "s"]);
    }

    #[test]
    fn entry_urls_need_a_host_and_an_http_scheme() {
        for (url, says) in [
            ("http://", "not a URL"),
            ("https://:8080/x", "has no host"),
            ("ftp://example.com", "scheme `ftp`"),
            ("example.com", "not an http(s) URL"),
        ] {
            let src = format!("[targets.s]\nkind = \"http\"\nurl = \"{url}\"\n");
            rejects(&src, &format!("\"{url}\""), says);
        }
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://\"\ncontexts = { primary = \"a\", secondary = \"b\" }\n";
        rejects(src, "\"http://\"", "not a URL");
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://e\"\ncontexts = { primary = \"a\", secondary = \"b\" }\ningress = { primary = \"http://p\", secondary = \"ftp://s\" }\n";
        rejects(
            src,
            "\"ftp://s\"",
            "ingress of `secondary`: `ftp://s`: scheme `ftp`",
        );
    }

    #[test]
    fn lab_periods_a_task_loops_on_must_be_real() {
        for (lab, at, says) in [
            (
                "health = { interval = \"0s\" }",
                "\"0s\"",
                "health-check interval 0s is too short",
            ),
            ("health = { interval = \"1ms\" }", "\"1ms\"", "too short"),
            (
                "push_interval = \"0s\"",
                "\"0s\"",
                "push_interval 0s is too short",
            ),
            (
                "health = { timeout = \"0s\" }",
                "\"0s\"",
                "fails every probe",
            ),
            (
                "health = { unhealthy_threshold = 0 }",
                "0 }",
                "threshold of 0",
            ),
        ] {
            let src = format!("[targets.l]\nkind = \"lab\"\nlab = {{ {lab} }}\n");
            rejects(&src, at, says);
        }
        let src = "[targets.l]\nkind = \"lab\"\n\n[targets.l.lab.health]\ninterval = \"0s\"\n";
        rejects(src, "\"0s\"", "too short");
    }

    #[test]
    fn a_zero_database_command_timeout_is_rejected_at_its_value() {
        let src = "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\ndatabase = { dsn_env = \"DSN\", failover = \"x\", command_timeout = \"0s\" }\n";
        rejects(src, "\"0s\"", "command_timeout");
        let src = "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\n\n[targets.s.database]\ndsn_env = \"DSN\"\ncommand_timeout = \"0s\"\n";
        rejects(src, "\"0s\"", "command_timeout");
    }

    #[test]
    fn a_directory_as_targets_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Targets::load(Some(dir.path())).unwrap_err().0;
        assert!(ds[0].message.contains("is a directory"), "{:?}", ds[0]);
        assert_eq!(ds[0].location(), dir.path().display().to_string());
    }
}
