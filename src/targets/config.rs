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
        };
        t.defs.insert(
            "lab".into(),
            TargetDef::Lab {
                name: "lab".into(),
                settings: LabSettings::default(),
            },
        );
        let Some(file) = chosen else { return Ok(t) };
        let src = std::fs::read_to_string(&file).map_err(|e| {
            Diagnostics(vec![
                Diagnostic::at(&file, "", None, format!("cannot read targets file: {e}"))
                    .with_hint("pass an existing file to --targets, or create drill.toml"),
            ])
        })?;
        let parsed: TargetsFile = toml::from_str(&src)
            .map_err(|e| Diagnostics(vec![diag::from_toml(&file, &src, &e)]))?;
        let mut errors = Vec::new();
        for (name, entry) in parsed.targets {
            let span = entry.span();
            let entry = entry.into_inner();
            if *entry.kind.get_ref() != Kind::Kubernetes
                && (entry.contexts.is_some()
                    || entry.kubeconfig.is_some()
                    || entry.ingress.is_some()
                    || entry.components.is_some())
            {
                errors.push(
                    Diagnostic::at(
                        &file,
                        &src,
                        Some(span.clone()),
                        format!(
                            "target `{name}`: contexts, kubeconfig, ingress and components are for kind = \"kubernetes\""
                        ),
                    )
                    .with_hint("set kind = \"kubernetes\", or remove them"),
                );
                continue;
            }
            match *entry.kind.get_ref() {
                Kind::Kubernetes => {
                    if entry.lab.is_some() {
                        errors.push(Diagnostic::at(
                            &file,
                            &src,
                            Some(span.clone()),
                            format!("target `{name}`: `lab` settings are for kind = \"lab\""),
                        ));
                        continue;
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
                        Ok(settings) => {
                            t.defs.insert(
                                name.clone(),
                                TargetDef::Kubernetes {
                                    name,
                                    settings,
                                    database: entry.database.clone(),
                                },
                            );
                        }
                        Err(es) => errors.extend(es.into_iter().map(|e| {
                            Diagnostic::at(
                                &file,
                                &src,
                                Some(span.clone()),
                                format!("target `{name}`: {e}"),
                            )
                        })),
                    }
                }
                Kind::Lab => {
                    if entry.database.is_some() {
                        errors.push(
                            Diagnostic::at(&file, &src, Some(span.clone()), format!("target `{name}`: the lab makes its own database"))
                                .with_hint("set lab database options under `lab = { database = { synchronous = true } }`"),
                        );
                    }
                    if let Some(url) = &entry.url {
                        errors.push(
                            Diagnostic::at(
                                &file,
                                &src,
                                Some(url.span()),
                                "a lab target has no url",
                            )
                            .with_hint("the lab starts its own entry point; remove `url`"),
                        );
                    }
                    t.defs.insert(
                        name.clone(),
                        TargetDef::Lab {
                            name,
                            settings: entry.lab.unwrap_or_default(),
                        },
                    );
                }
                Kind::Http => match entry.url {
                    Some(url)
                        if url.get_ref().starts_with("http://")
                            || url.get_ref().starts_with("https://") =>
                    {
                        t.defs.insert(
                            name.clone(),
                            TargetDef::Http {
                                name,
                                url: url.into_inner(),
                                database: entry.database.clone(),
                            },
                        );
                    }
                    Some(url) => errors.push(
                        Diagnostic::at(
                            &file,
                            &src,
                            Some(url.span()),
                            format!("`{}` is not an http(s) URL", url.get_ref()),
                        )
                        .with_hint("write e.g. url = \"https://staging.example.com\""),
                    ),
                    None => errors.push(
                        Diagnostic::at(
                            &file,
                            &src,
                            Some(span),
                            format!("target `{name}` of kind http needs a `url`"),
                        )
                        .with_hint("add url = \"https://…\" to the target's table"),
                    ),
                },
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

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }
}
