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

use super::kind::Kind;
use crate::base::diag::Diagnostic;

/// Agents per vantage point at most.
pub(crate) const MAX_AGENTS: i64 = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VantageEntry {
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
pub(crate) fn resolve(
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
        check_name(&at, &mut errors, target, &e.name, &name, &out);
        let agents = agent_count(&at, &mut errors, target, e.agents.as_ref());
        match kind {
            Kind::Kubernetes => {
                check_kubernetes_placement(&at, &mut errors, target, &name, whole, &e, contexts);
            }
            Kind::Lab | Kind::Http => check_local_placement(&at, &mut errors, target, kind, &e),
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

/// A diagnostic at a span of the targets file.
type At<'a> = dyn Fn(Range<usize>, String) -> Diagnostic + 'a;

/// The vantage point's name must be able to name its agents
/// (`<name>/<index>`) and be unique within the target.
fn check_name(
    at: &At,
    errors: &mut Vec<Diagnostic>,
    target: &str,
    raw: &Spanned<String>,
    name: &str,
    earlier: &[VantageDef],
) {
    if name.is_empty() || name.contains(['/', '|', '\n']) {
        errors.push(
            at(
                raw.span(),
                format!(
                    "target `{target}`: vantage name {:?} cannot name agents",
                    raw.get_ref()
                ),
            )
            .with_hint("a short word, e.g. name = \"primary\" (agents are named <name>/<index>)"),
        );
    } else if earlier.iter().any(|v| v.name == name) {
        errors.push(
            at(
                raw.span(),
                format!("target `{target}`: vantage point `{name}` is declared twice"),
            )
            .with_hint("give each vantage point its own name"),
        );
    }
}

/// `agents`: 1 when absent; out of range (1 to [`MAX_AGENTS`]) is an error
/// (and counts as 1 so the other checks still run).
fn agent_count(
    at: &At,
    errors: &mut Vec<Diagnostic>,
    target: &str,
    agents: Option<&Spanned<i64>>,
) -> usize {
    match agents {
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
    }
}

/// A kubernetes vantage point is placed by a `context` that is one of the
/// target's contexts; `region` is for the lab.
fn check_kubernetes_placement(
    at: &At,
    errors: &mut Vec<Diagnostic>,
    target: &str,
    name: &str,
    whole: Range<usize>,
    e: &VantageEntry,
    contexts: Option<&BTreeMap<String, String>>,
) {
    if let Some(r) = &e.region {
        errors.push(
            at(
                r.span(),
                format!("target `{target}`: `region` is for vantage points of lab targets"),
            )
            .with_hint("a kubernetes vantage point is placed by its `context`"),
        );
    }
    match &e.context {
        None => errors.push(
            at(
                whole,
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
                at(
                    c.span(),
                    format!(
                        "target `{target}`: context `{}` is not one of the target's contexts",
                        c.get_ref()
                    ),
                )
                .with_hint(format!("one of: {}", known.join(", "))),
            );
        }
        Some(_) => {}
    }
}

/// On a lab or http target the agents are processes on this machine: no
/// `context`, `namespace` or `image`; a lab vantage point may name one of
/// the lab's regions, an http one none.
fn check_local_placement(
    at: &At,
    errors: &mut Vec<Diagnostic>,
    target: &str,
    kind: Kind,
    e: &VantageEntry,
) {
    let mut local_only = |key: &str, v: &Option<Spanned<String>>| {
        if let Some(v) = v {
            errors.push(
                at(
                    v.span(),
                    format!(
                        "target `{target}`: `{key}` is for vantage points of kubernetes targets"
                    ),
                )
                .with_hint(
                    "on a lab or http target the agents are processes on this machine; remove it",
                ),
            );
        }
    };
    local_only("context", &e.context);
    local_only("namespace", &e.namespace);
    local_only("image", &e.image);
    if let Some(r) = &e.region {
        let regions = crate::targets::lab::REGIONS;
        if kind == Kind::Http {
            errors.push(
                at(
                    r.span(),
                    format!("target `{target}`: `region` is for vantage points of lab targets"),
                )
                .with_hint("an http target has one entry URL; remove `region`"),
            );
        } else if !regions.contains(&r.get_ref().as_str()) {
            errors.push(
                at(
                    r.span(),
                    format!("target `{target}`: the lab has no region `{}`", r.get_ref()),
                )
                .with_hint(format!("one of: {}", regions.join(", "))),
            );
        }
    }
}
