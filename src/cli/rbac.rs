//! `drill rbac`: the least-privilege Roles (and RoleBindings) a drill's
//! credentials need, one set per kube context, printed as YAML for
//! `kubectl apply -f -`. Derived from `targets::k8s::permissions`, the same
//! list preflight checks with SelfSubjectAccessReview, so the two never drift.
//! Touches nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::base::error::CliError;
use crate::targets::TargetDef;
use crate::targets::k8s::client::IN_CLUSTER;
use crate::targets::k8s::ops::Permission;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  drill rbac --suite monthly --target production                   every context's Roles
  drill rbac ingress-failover --target staging --context primary-ctx | kubectl --context primary-ctx apply -f -

Nothing is contacted. The Roles grant exactly what preflight checks with SelfSubjectAccessReview.")]
pub struct Args {
    /// Scenario files (or names of scenarios in ./scenarios).
    #[arg(required_unless_present = "suite", value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// The scenarios of a suite (a name in ./scenarios/suites, or a path).
    #[arg(long)]
    pub suite: Option<String>,
    /// The kubernetes target whose contexts get the Roles (default: each
    /// scenario's own target).
    #[arg(long)]
    pub target: Option<String>,
    /// Print only this kube context's objects (to pipe into
    /// `kubectl --context C apply -f -`).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The ServiceAccount the RoleBindings grant to, as NAMESPACE/NAME
    /// (deploy/ runs drill as drill/drill).
    #[arg(long, value_name = "NAMESPACE/NAME", default_value = "drill/drill")]
    pub service_account: String,
}

/// The name of every Role and RoleBinding drill prints.
const NAME: &str = "drill";

pub(super) fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let Some((sa_ns, sa_name)) = a
        .service_account
        .split_once('/')
        .filter(|(n, s)| !n.is_empty() && !s.is_empty() && !s.contains('/'))
    else {
        return Err(CliError::usage(
            format!(
                "--service-account {}: not NAMESPACE/NAME",
                a.service_account
            ),
            "e.g. --service-account drill/drill",
        ));
    };
    let targets = super::validate::load_targets(targets_file)?;
    let mut names = a.scenarios.clone();
    if let Some(suite) = &a.suite {
        let (_, suite) = crate::scenario::load_suite(suite)?;
        names.extend(suite.scenarios.into_iter().map(|s| s.into_inner()));
    }
    // Context → the permissions every scenario needs there.
    let mut grants: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    for n in &names {
        let (l, def) = super::validate::prepare(n, a.target.as_deref(), &targets)?;
        let TargetDef::Kubernetes { settings, .. } = &def else {
            return Err(CliError::usage(
                format!(
                    "{}: target `{}` is of kind {}; RBAC is for kubernetes targets",
                    l.path.display(),
                    def.name(),
                    def.kind()
                ),
                "pass --target with a kubernetes target from the targets file",
            ));
        };
        for ctx in settings.contexts.values() {
            grants.entry(ctx.clone()).or_default();
        }
        let faults: Vec<_> = l.faults.iter().collect();
        let perms = crate::targets::k8s::permissions(settings, &faults).map_err(|e| {
            CliError::usage(
                format!("{}: {e}", l.path.display()),
                "each fault's component and region must exist on the target: see `drill plan`",
            )
        })?;
        for (region, p) in perms {
            grants
                .entry(settings.contexts[&region].clone())
                .or_default()
                .insert(p);
        }
        // The target's vantage points run their agents as Jobs there.
        let vantages = targets.vantages(def.name()).iter();
        add_vantages(
            &mut grants,
            &settings.contexts,
            vantages.filter_map(|v| Some((v.context.as_deref()?, v.namespace.as_str()))),
        )?;
    }
    if let Some(c) = &a.context {
        if !grants.contains_key(c) {
            return Err(CliError::usage(
                format!("--context {c}: the target maps no region to it"),
                format!(
                    "contexts: {}",
                    grants.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        grants.retain(|k, _| k == c);
    }
    print!("{}", render(&grants, sa_ns, sa_name, &names)?);
    Ok(0)
}

/// Adds what a target's vantage points need: in each one's namespace on the
/// kube context its `context` key maps to, the agents' Job, its pods and
/// the pod proxy ([`crate::targets::k8s::agent_permissions`], the list the
/// agents' preflight checks). `vantages`: (context key, namespace).
pub(crate) fn add_vantages<'a>(
    grants: &mut BTreeMap<String, BTreeSet<Permission>>,
    contexts: &BTreeMap<String, String>,
    vantages: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), CliError> {
    for (key, namespace) in vantages {
        let Some(context) = contexts.get(key) else {
            return Err(CliError::usage(
                format!("vantage point context `{key}` is not one of the target's contexts"),
                format!(
                    "contexts: {}",
                    contexts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        grants
            .entry(context.clone())
            .or_default()
            .extend(crate::targets::k8s::agent_permissions(namespace));
    }
    Ok(())
}

/// YAML documents per context, each group headed by a comment naming the
/// context to apply it to.
pub(super) fn render(
    grants: &BTreeMap<String, BTreeSet<Permission>>,
    sa_ns: &str,
    sa_name: &str,
    scenarios: &[String],
) -> Result<String, CliError> {
    let mut out = format!(
        "# drill rbac for {}: least privilege, the verbs preflight checks.\n\
         # Creating SelfSubjectAccessReviews and reading /version are granted to every\n\
         # authenticated user by the built-in system:basic-user and system:public-info-viewer.\n",
        scenarios.join(", ")
    );
    for (context, perms) in grants {
        out.push_str(&if context == IN_CLUSTER {
            format!("\n# context `{context}`: the cluster drill runs in: kubectl apply -f -\n")
        } else {
            format!("\n# context `{context}`: kubectl --context {context} apply -f -\n")
        });
        if perms.is_empty() {
            out.push_str("# (nothing: no fault of these scenarios acts on this context)\n");
        }
        for (ns, rules) in roles(perms) {
            let meta = || ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(ns.clone()),
                labels: Some([("app.kubernetes.io/name".to_string(), "drill".to_string())].into()),
                ..Default::default()
            };
            let role = Role {
                metadata: meta(),
                rules: Some(rules),
            };
            let binding = RoleBinding {
                metadata: meta(),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: NAME.into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: sa_name.into(),
                    namespace: Some(sa_ns.into()),
                    ..Default::default()
                }]),
            };
            out.push_str("---\n");
            out.push_str(&to_yaml(&role)?);
            out.push_str("---\n");
            out.push_str(&to_yaml(&binding)?);
        }
    }
    Ok(out)
}

/// Namespace → rules: one rule per API group, resource and object name (a
/// named one gets `resourceNames`), its verbs sorted.
fn roles(perms: &BTreeSet<Permission>) -> BTreeMap<String, Vec<PolicyRule>> {
    type Key<'a> = (&'a str, String, Option<&'a String>);
    let mut by: BTreeMap<&str, BTreeMap<Key, BTreeSet<&str>>> = BTreeMap::new();
    for p in perms {
        let resource = match p.subresource {
            Some(s) => format!("{}/{s}", p.resource),
            None => p.resource.to_string(),
        };
        by.entry(&p.namespace)
            .or_default()
            .entry((p.group, resource, p.name.as_ref()))
            .or_default()
            .insert(p.verb);
    }
    by.into_iter()
        .map(|(ns, rules)| {
            let rules = rules
                .into_iter()
                .map(|((group, resource, name), verbs)| PolicyRule {
                    api_groups: Some(vec![group.to_string()]),
                    resources: Some(vec![resource]),
                    resource_names: name.map(|n| vec![n.clone()]),
                    verbs: verbs.into_iter().map(str::to_string).collect(),
                    ..Default::default()
                })
                .collect();
            (ns.to_string(), rules)
        })
        .collect()
}

/// A typed object as YAML, with `apiVersion` and `kind` (k8s-openapi
/// writes them for every resource).
fn to_yaml<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_yaml_ng::to_string(v).map_err(|e| CliError::Failed(format!("cannot write YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target with agents in both regions: each region's context gets a
    /// Role in the agents' namespace with exactly the agents' verbs, beside
    /// the faults' Roles.
    #[test]
    fn vantage_points_add_the_agents_role_in_their_namespace() {
        let contexts: BTreeMap<String, String> = [
            ("primary".to_string(), "prod-eu".to_string()),
            ("secondary".to_string(), "prod-us".to_string()),
        ]
        .into();
        let mut grants: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
        add_vantages(
            &mut grants,
            &contexts,
            [("primary", "drill"), ("secondary", "drill-agents")],
        )
        .unwrap();
        let yaml = render(&grants, "drill", "drill", &["region-outage".into()]).unwrap();
        let docs: Vec<serde_json::Value> = yaml
            .split("---\n")
            .skip(1)
            .map(|d| serde_yaml_ng::from_str(d).unwrap())
            .collect();
        let role = |ns: &str| {
            docs.iter()
                .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == ns)
                .unwrap_or_else(|| panic!("no Role in {ns}:\n{yaml}"))
                .clone()
        };
        let rules = |ns: &str| -> Vec<(String, String, Vec<String>)> {
            role(ns)["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["apiGroups"][0].as_str().unwrap().to_string(),
                        r["resources"][0].as_str().unwrap().to_string(),
                        serde_json::from_value(r["verbs"].clone()).unwrap(),
                    )
                })
                .collect()
        };
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let want = vec![
            ("".into(), "pods".into(), v(&["get", "list"])),
            ("".into(), "pods/proxy".into(), v(&["create", "get"])),
            (
                "batch".into(),
                "jobs".into(),
                v(&["create", "delete", "get", "list", "watch"]),
            ),
        ];
        assert_eq!(rules("drill"), want);
        assert_eq!(rules("drill-agents"), want);
        assert!(yaml.contains("# context `prod-eu`: kubectl --context prod-eu apply -f -"));
        assert!(yaml.contains("# context `prod-us`: kubectl --context prod-us apply -f -"));
        let err = add_vantages(&mut grants, &contexts, [("tertiary", "drill")]).unwrap_err();
        assert_eq!(err.exit_code(), crate::base::exit::INVALID);
        assert!(err.to_string().contains("`tertiary`"), "{err}");
    }

    /// A permission on a named object becomes a rule with `resourceNames`
    /// beside the unnamed rule for the collection's verbs; two objects of
    /// one resource get a rule each.
    #[test]
    fn named_objects_get_resource_names() {
        let p = |verb, resource, name: Option<&str>| Permission {
            namespace: "bookinfo".into(),
            verb,
            group: "networking.istio.io",
            resource,
            subresource: None,
            name: name.map(str::to_string),
        };
        let perms: BTreeSet<Permission> = [
            p("get", "virtualservices", Some("reviews")),
            p("patch", "virtualservices", Some("reviews")),
            p("patch", "virtualservices", Some("ratings")),
            p("list", "virtualservices", None),
        ]
        .into();
        let rules = &roles(&perms)["bookinfo"];
        let got: Vec<(Option<Vec<String>>, Vec<String>)> = rules
            .iter()
            .map(|r| (r.resource_names.clone(), r.verbs.clone()))
            .collect();
        let s = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (None, s(&["list"])),
                (Some(s(&["ratings"])), s(&["patch"])),
                (Some(s(&["reviews"])), s(&["get", "patch"])),
            ]
        );
    }
}
