//! A target's vantage points (`[[targets.X.vantage]]`): where generator
//! agents send the load from. On a lab or http target they are processes on
//! this machine (a lab vantage point may enter through one region's ingress
//! gateway instead of the global entry); on a kubernetes target, Jobs in a
//! context's namespace.
//!
//! ```toml
//! [[targets.production.vantage]]
//! name = "primary"
//! context = "primary"       # a key of the target's contexts
//! namespace = "drill"
//! agents = 2
//!
//! [[targets.lab.vantage]]
//! name = "via-secondary"
//! agents = 1
//! region = "secondary"
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::config::Kind;
use crate::base::diag::Diagnostic;

/// Agents per vantage point at most.
pub const MAX_AGENTS: i64 = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VantageEntry {
    pub name: Spanned<String>,
    pub agents: Option<Spanned<i64>>,
    pub context: Option<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
}

/// A checked vantage point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VantageDef {
    pub name: String,
    pub agents: usize,
    /// Kubernetes: the key of the target's `contexts` map.
    pub context: Option<String>,
    /// Kubernetes: where the agents' Job goes (default `drill`).
    pub namespace: String,
    /// Kubernetes: the agents' container image (default: drill's own).
    pub image: Option<String>,
    /// Lab: enter through this region's ingress gateway.
    pub region: Option<String>,
}

/// Checks a target's vantage points against its kind (and its contexts);
/// every problem at its file:line:col.
pub fn resolve(
    file: &Path,
    src: &str,
    target: &str,
    kind: Kind,
    contexts: Option<&BTreeMap<String, String>>,
    entries: Vec<Spanned<VantageEntry>>,
) -> Result<Vec<VantageDef>, Vec<Diagnostic>> {
    let at = |sp: Range<usize>, msg: String| Diagnostic::at(file, src, Some(sp), msg);
    let mut errors = Vec::new();
    let mut out: Vec<VantageDef> = Vec::new();
    for e in entries {
        let whole = e.span();
        let e = e.into_inner();
        let name = e.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '|', '\n']) {
            errors.push(
                at(
                    e.name.span(),
                    format!(
                        "target `{target}`: vantage name {:?} cannot name agents",
                        e.name.get_ref()
                    ),
                )
                .with_hint(
                    "a short word, e.g. name = \"primary\" (agents are named <name>/<index>)",
                ),
            );
        } else if out.iter().any(|v| v.name == name) {
            errors.push(
                at(
                    e.name.span(),
                    format!("target `{target}`: vantage point `{name}` is declared twice"),
                )
                .with_hint("give each vantage point its own name"),
            );
        }
        let agents = match &e.agents {
            None => 1,
            Some(n) if (1..=MAX_AGENTS).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                errors.push(
                    at(
                        n.span(),
                        format!(
                            "target `{target}`: agents = {} is out of range",
                            n.get_ref()
                        ),
                    )
                    .with_hint(format!("1 to {MAX_AGENTS} agents per vantage point")),
                );
                1
            }
        };
        let local_only = |errors: &mut Vec<Diagnostic>, key: &str, v: &Option<Spanned<String>>| {
            if let Some(v) = v {
                errors.push(
                    at(v.span(), format!("target `{target}`: `{key}` is for vantage points of kubernetes targets"))
                        .with_hint("on a lab or http target the agents are processes on this machine; remove it"),
                );
            }
        };
        match kind {
            Kind::Kubernetes => {
                if let Some(r) = &e.region {
                    errors.push(
                        at(
                            r.span(),
                            format!(
                                "target `{target}`: `region` is for vantage points of lab targets"
                            ),
                        )
                        .with_hint("a kubernetes vantage point is placed by its `context`"),
                    );
                }
                match &e.context {
                    None => errors.push(
                        at(
                            whole.clone(),
                            format!("target `{target}`: vantage point `{name}` needs a `context`"),
                        )
                        .with_hint("name one of the target's contexts, e.g. context = \"primary\""),
                    ),
                    Some(c) if !contexts.is_some_and(|m| m.contains_key(c.get_ref())) => {
                        let known: Vec<&str> = contexts
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.as_str())
                            .collect();
                        errors.push(
                            at(c.span(), format!("target `{target}`: context `{}` is not one of the target's contexts", c.get_ref()))
                                .with_hint(format!("one of: {}", known.join(", "))),
                        );
                    }
                    Some(_) => {}
                }
            }
            Kind::Lab | Kind::Http => {
                local_only(&mut errors, "context", &e.context);
                local_only(&mut errors, "namespace", &e.namespace);
                local_only(&mut errors, "image", &e.image);
                if let Some(r) = &e.region {
                    let regions = crate::targets::lab::REGIONS;
                    if kind == Kind::Http {
                        errors.push(
                            at(r.span(), format!("target `{target}`: `region` is for vantage points of lab targets"))
                                .with_hint("an http target has one entry URL; remove `region`"),
                        );
                    } else if !regions.contains(&r.get_ref().as_str()) {
                        errors.push(
                            at(
                                r.span(),
                                format!(
                                    "target `{target}`: the lab has no region `{}`",
                                    r.get_ref()
                                ),
                            )
                            .with_hint(format!("one of: {}", regions.join(", "))),
                        );
                    }
                }
            }
        }
        out.push(VantageDef {
            name,
            agents,
            context: e.context.map(Spanned::into_inner),
            namespace: e
                .namespace
                .map_or_else(|| "drill".to_string(), Spanned::into_inner),
            image: e.image.map(Spanned::into_inner),
            region: e.region.map(Spanned::into_inner),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
