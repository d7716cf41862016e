//! A `kubernetes` target as written in the targets file, and as resolved:
//! regions mapped to kube contexts, and every component mapped to the
//! Kubernetes objects a fault acts on, with Istio's and Bookinfo's defaults
//! built in so a minimal entry is just `contexts` and `url`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::selector::split_terms;

/// Per-component overrides (`[targets.<name>.components.<component>]`).
/// An empty `deployment` or `virtual_service` removes a built-in one.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComponentOverride {
    pub namespace: Option<String>,
    /// Label selector of the component's pods, e.g. `app=reviews`.
    pub selector: Option<String>,
    /// Says the component runs as Deployments (`down` is offered); the ones
    /// scaled are every Deployment whose pod template `selector` matches.
    pub deployment: Option<String>,
    pub virtual_service: Option<String>,
    /// The HTTP route (by `name`) of the VirtualService that takes the
    /// fault; default: every HTTP route.
    pub route: Option<String>,
}

/// The Kubernetes objects one component resolves to, in every region.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentObjects {
    pub namespace: String,
    pub selector: String,
    /// Set when the component runs as Deployments (see [`ComponentOverride`]).
    pub deployment: Option<String>,
    pub virtual_service: Option<String>,
    pub route: Option<String>,
}

/// A resolved `kubernetes` target.
#[derive(Clone, Debug, PartialEq)]
pub struct K8sSettings {
    /// The global entry URL the load goes to.
    pub url: String,
    /// Region → kube context. The only contexts `drill` ever talks to.
    pub contexts: BTreeMap<String, String>,
    /// Region → that region's ingress URL (shown in reports).
    pub ingress: BTreeMap<String, String>,
    /// Kubeconfig override; default as kubectl: `$KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    pub components: BTreeMap<String, ComponentObjects>,
}

/// What the targets file says, before resolution.
#[derive(Clone, Debug, Default)]
pub(crate) struct K8sEntry {
    pub url: Option<String>,
    pub contexts: BTreeMap<String, String>,
    pub ingress: BTreeMap<String, String>,
    pub kubeconfig: Option<String>,
    pub components: BTreeMap<String, ComponentOverride>,
}

/// The built-in components: Istio's defaults and Bookinfo's services.
pub(crate) fn builtin() -> BTreeMap<String, ComponentObjects> {
    let istio = |selector: &str, deployment: &str| ComponentObjects {
        namespace: "istio-system".into(),
        selector: selector.into(),
        deployment: Some(deployment.into()),
        virtual_service: None,
        route: None,
    };
    let mut m = BTreeMap::new();
    m.insert(
        "ingress-gateway".into(),
        istio("app=istio-ingressgateway", "istio-ingressgateway"),
    );
    m.insert(
        "eastwest-gateway".into(),
        istio("istio=eastwestgateway", "istio-eastwestgateway"),
    );
    m.insert("istiod".into(), istio("app=istiod", "istiod"));
    for svc in ["productpage", "details", "ratings", "reviews"] {
        m.insert(
            svc.into(),
            ComponentObjects {
                namespace: "bookinfo".into(),
                selector: format!("app={svc}"),
                deployment: Some(format!("{svc}-v1")),
                virtual_service: Some(svc.into()),
                route: None,
            },
        );
    }
    m
}

impl K8sEntry {
    /// Resolves the entry; `base` is the targets file's folder, against
    /// which a relative `kubeconfig` is read. Errors are one line each.
    pub(crate) fn resolve(self, base: &Path) -> Result<K8sSettings, Vec<String>> {
        let mut errors = Vec::new();
        let url = entry_url(self.url, &mut errors);
        check_regions(&self.contexts, &self.ingress, &mut errors);
        let components = merge_components(self.components, &mut errors);
        check_components(&components, &mut errors);
        let kubeconfig = self.kubeconfig.map(|p| expand(&p, base));
        if errors.is_empty() {
            Ok(K8sSettings {
                url,
                contexts: self.contexts,
                ingress: self.ingress,
                kubeconfig,
                components,
            })
        } else {
            Err(errors)
        }
    }
}

/// The global entry URL, without a trailing `/`; it must be given and be
/// http(s).
fn entry_url(url: Option<String>, errors: &mut Vec<String>) -> String {
    match url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            errors.push(format!("`{u}` is not an http(s) URL"));
            String::new()
        }
        None => {
            errors.push("a kubernetes target needs the global entry `url`".into());
            String::new()
        }
    }
}

/// Checks the regions: at least one context, no empty context name, no two
/// regions on the same context (a region's faults would hit the other), and
/// every ingress URL is http(s) and names a region that has a context.
fn check_regions(
    contexts: &BTreeMap<String, String>,
    ingress: &BTreeMap<String, String>,
    errors: &mut Vec<String>,
) {
    if contexts.is_empty() {
        errors.push(
            "a kubernetes target needs `contexts`, e.g. { primary = \"primary-cluster-context\", secondary = \"secondary-cluster\" }"
                .into(),
        );
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (region, ctx) in contexts {
        if ctx.trim().is_empty() {
            errors.push(format!("region `{region}` maps to an empty context name"));
        } else if let Some(other) = seen.insert(ctx, region) {
            errors.push(format!(
                "regions `{other}` and `{region}` map to the same context `{ctx}`; a region's faults would hit the other"
            ));
        }
    }
    for (region, u) in ingress {
        if !contexts.contains_key(region) {
            errors.push(format!(
                "ingress names region `{region}`, which has no context"
            ));
        }
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            errors.push(format!(
                "ingress of `{region}`: `{u}` is not an http(s) URL"
            ));
        }
    }
}

/// The built-in components with the targets file's overrides applied, and
/// any components it adds. A component with an invalid name, or a new one
/// without a `namespace`, is reported and left out.
fn merge_components(
    overrides: BTreeMap<String, ComponentOverride>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, ComponentObjects> {
    let mut components = builtin();
    for (name, o) in overrides {
        if !is_dns_label(&name) {
            errors.push(format!(
                "component `{name}`: names are lowercase letters, digits and `-`"
            ));
            continue;
        }
        let base_obj = components.remove(&name);
        match apply_override(&name, o, base_obj) {
            Ok(c) => {
                components.insert(name, c);
            }
            Err(e) => errors.push(e),
        }
    }
    components
}

/// One component's objects: each field the override gives, else the
/// built-in one (`base_obj`); an empty `deployment` or `virtual_service`
/// removes the built-in one. A selector defaults to `app=<name>`; a
/// component that is not built in must give its namespace.
fn apply_override(
    name: &str,
    o: ComponentOverride,
    base_obj: Option<ComponentObjects>,
) -> Result<ComponentObjects, String> {
    let selector = o
        .selector
        .or_else(|| base_obj.as_ref().map(|b| b.selector.clone()))
        .unwrap_or_else(|| format!("app={name}"));
    let namespace = o
        .namespace
        .or_else(|| base_obj.as_ref().map(|b| b.namespace.clone()));
    let Some(namespace) = namespace else {
        return Err(format!(
            "component `{name}` is not built in: give its `namespace`"
        ));
    };
    let pick = |over: Option<String>, builtin: Option<String>| match over {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s),
        None => builtin,
    };
    Ok(ComponentObjects {
        namespace,
        selector,
        deployment: pick(
            o.deployment,
            base_obj.as_ref().and_then(|b| b.deployment.clone()),
        ),
        virtual_service: pick(
            o.virtual_service,
            base_obj.as_ref().and_then(|b| b.virtual_service.clone()),
        ),
        route: o
            .route
            .or_else(|| base_obj.as_ref().and_then(|b| b.route.clone())),
    })
}

/// Checks every component's selector (see [`check_selector`]) and that its
/// namespace, Deployment and VirtualService are valid Kubernetes names.
fn check_components(components: &BTreeMap<String, ComponentObjects>, errors: &mut Vec<String>) {
    for (name, c) in components {
        if let Err(e) = check_selector(&c.selector) {
            errors.push(format!("component `{name}`: {e}"));
        }
        for (what, v) in [
            ("namespace", Some(&c.namespace)),
            ("deployment", c.deployment.as_ref()),
            ("virtual_service", c.virtual_service.as_ref()),
        ] {
            if let Some(v) = v.filter(|v| !is_dns_label(v)) {
                errors.push(format!(
                    "component `{name}`: {what} `{v}` is not a valid Kubernetes name"
                ));
            }
        }
    }
}

fn expand(p: &str, base: &Path) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(p);
    if p.is_absolute() { p } else { base.join(p) }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A selector `drill` may act on: at least one term that narrows it to
/// named values (`k=v`, `k==v`, `k in (a,b)`). An empty selector, or one
/// made only of `!k` / `k!=v` / bare `k` terms, matches (nearly) everything.
pub(crate) fn check_selector(sel: &str) -> Result<(), String> {
    let sel = sel.trim();
    if sel.is_empty() {
        return Err("an empty selector matches every pod; name one, e.g. `app=reviews`".into());
    }
    // The parser that matches pods must read it too.
    super::selector::Selector::parse(sel)
        .map_err(|e| format!("selector `{sel}` does not parse: {e}"))?;
    let mut narrowing = false;
    for term in split_terms(sel) {
        let t = term.trim();
        if t.is_empty() {
            return Err(format!("selector `{sel}` has an empty term"));
        }
        if t.contains("!=") || t.starts_with('!') || t.contains(" notin ") {
            continue;
        }
        if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            if k.trim().is_empty() || v.trim().is_empty() {
                return Err(format!("selector term `{t}` needs a key and a value"));
            }
            narrowing = true;
        } else if t.contains(" in ") {
            narrowing = true;
        }
    }
    if narrowing {
        Ok(())
    } else {
        Err(format!(
            "selector `{sel}` does not narrow to named values and could match everything; add a term like `app=reviews`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> K8sEntry {
        K8sEntry {
            url: Some("https://bookinfo.example.com/".into()),
            contexts: [
                ("primary".to_string(), "primary-cluster-context".to_string()),
                ("secondary".to_string(), "secondary-cluster".to_string()),
            ]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_entry_resolves_to_istio_and_bookinfo_defaults() {
        let s = minimal().resolve(Path::new("/etc")).unwrap();
        assert_eq!(s.url, "https://bookinfo.example.com");
        let gw = &s.components["ingress-gateway"];
        assert_eq!(
            (gw.namespace.as_str(), gw.selector.as_str()),
            ("istio-system", "app=istio-ingressgateway")
        );
        assert_eq!(
            s.components["eastwest-gateway"].selector,
            "istio=eastwestgateway"
        );
        assert_eq!(s.components["istiod"].deployment.as_deref(), Some("istiod"));
        let r = &s.components["reviews"];
        assert_eq!(r.namespace, "bookinfo");
        assert_eq!(r.selector, "app=reviews");
        assert_eq!(r.deployment.as_deref(), Some("reviews-v1"));
        assert_eq!(r.virtual_service.as_deref(), Some("reviews"));
        assert_eq!(s.kubeconfig, None);
    }

    #[test]
    fn overrides_replace_one_field_and_empty_strings_remove_objects() {
        let mut e = minimal();
        e.kubeconfig = Some("kube/config".into());
        e.components.insert(
            "reviews".into(),
            ComponentOverride {
                deployment: Some("reviews-v2".into()),
                route: Some("split".into()),
                ..Default::default()
            },
        );
        e.components.insert(
            "eastwest-gateway".into(),
            ComponentOverride {
                deployment: Some(String::new()),
                ..Default::default()
            },
        );
        e.components.insert(
            "cart".into(),
            ComponentOverride {
                namespace: Some("shop".into()),
                ..Default::default()
            },
        );
        let s = e.resolve(Path::new("/etc/drill")).unwrap();
        assert_eq!(s.kubeconfig, Some(PathBuf::from("/etc/drill/kube/config")));
        let r = &s.components["reviews"];
        assert_eq!(r.deployment.as_deref(), Some("reviews-v2"));
        assert_eq!(r.selector, "app=reviews");
        assert_eq!(r.route.as_deref(), Some("split"));
        assert_eq!(s.components["eastwest-gateway"].deployment, None);
        let c = &s.components["cart"];
        assert_eq!(
            (c.namespace.as_str(), c.selector.as_str()),
            ("shop", "app=cart")
        );
        assert_eq!(c.deployment, None);
    }

    #[test]
    fn match_everything_selectors_and_bad_entries_are_refused() {
        for bad in ["", "  ", "!canary", "tier!=db", "app", "app=", "a=b,,c=d"] {
            assert!(check_selector(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "app=reviews",
            "app==x,!canary",
            "app in (a,b)",
            "istio=eastwestgateway",
        ] {
            assert!(check_selector(good).is_ok(), "{good:?} refused");
        }
        let mut e = minimal();
        e.url = None;
        e.contexts
            .insert("third".into(), "secondary-cluster".into());
        e.components.insert(
            "reviews".into(),
            ComponentOverride {
                selector: Some("!x".into()),
                ..Default::default()
            },
        );
        e.components
            .insert("unknown".into(), ComponentOverride::default());
        let errs = e.resolve(Path::new("/")).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].contains("url"));
        assert!(errs[1].contains("same context"));
        assert!(errs.iter().any(|e| e.contains("`unknown` is not built in")));
        assert!(
            errs.iter()
                .any(|e| e.contains("reviews") && e.contains("match everything"))
        );
    }
}
