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
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::lab::LabSettings;
use crate::scenario::diag::{self, Diagnostic, Diagnostics};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Lab,
    Http,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    pub kind: Spanned<Kind>,
    /// `http`: the entry URL the load goes to.
    pub url: Option<Spanned<String>>,
    /// `lab`: timings and switches.
    pub lab: Option<LabSettings>,
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
    Lab { name: String, settings: LabSettings },
    Http { name: String, url: String },
}

impl TargetDef {
    pub fn name(&self) -> &str {
        match self {
            TargetDef::Lab { name, .. } | TargetDef::Http { name, .. } => name,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            TargetDef::Lab { .. } => "lab",
            TargetDef::Http { .. } => "http",
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
            match *entry.kind.get_ref() {
                Kind::Lab => {
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
