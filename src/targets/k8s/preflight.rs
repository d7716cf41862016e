//! Preflight: before anything is injected, every named context answers,
//! every selector matches pods, every object a fault needs is there, and a
//! SelfSubjectAccessReview grants each verb the plan will use.
//!
//! The verbs come from [`permissions`], the one list `drill rbac` also turns
//! into Roles, so what the Roles grant and what preflight asks for cannot drift.

use std::collections::BTreeSet;

use super::ops::{Cluster, Permission, PodState};
use super::settings::ComponentObjects;
use super::{K8sSettings, K8sTarget, http_fault, istio, resolve, served};
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::targets::error::TargetError;

/// Every permission the faults that go through the target need, as
/// (region, permission): delete pods, find and scale every Deployment of a
/// component, write and surgically patch Istio faults, and list pods
/// wherever readiness is watched. Reads only the settings.
pub(crate) fn permissions(
    settings: &K8sSettings,
    faults: &[&FaultPlan],
) -> Result<BTreeSet<(String, Permission)>, TargetError> {
    let mut perms = BTreeSet::new();
    for f in faults.iter().filter(|f| f.action.via_target()) {
        let (region, comps) = resolve(settings, f)?;
        for (_, c) in comps {
            let mut add = |verb, group, resource, subresource, name: Option<&String>| {
                perms.insert((
                    region.to_string(),
                    Permission {
                        namespace: c.namespace.clone(),
                        verb,
                        group,
                        resource,
                        subresource,
                        name: name.cloned(),
                    },
                ));
            };
            // Pods are chosen and Deployments found (every one whose pod
            // template the selector matches, e.g. reviews-v1..v3, a canary
            // istiod-1-23) only at run time, so their verbs cannot name
            // them; the VirtualService is named by the target.
            add("list", "", "pods", None, None);
            match f.action {
                Action::Delete => add("delete", "", "pods", None, None),
                Action::Down | Action::RegionOutage => {
                    add("list", "apps", "deployments", None, None);
                    add("get", "apps", "deployments", None, None);
                    // Replicas change through the scale subresource only;
                    // the run's mark is its Lease, so the Deployment (and
                    // its pod template) is never written.
                    add("update", "apps", "deployments", Some("scale"), None);
                }
                Action::Latency | Action::Abort => {
                    for verb in ["get", "update", "patch"] {
                        add(
                            verb,
                            "networking.istio.io",
                            "virtualservices",
                            None,
                            c.virtual_service.as_ref(),
                        );
                    }
                }
                Action::Command | Action::Switchover | Action::Failover => {}
            }
            // The claim on the objects a revert restores: a Lease each.
            match f.action {
                Action::Down | Action::RegionOutage | Action::Latency | Action::Abort => {
                    for verb in ["create", "get", "update", "delete"] {
                        add(verb, "coordination.k8s.io", "leases", None, None);
                    }
                }
                Action::Delete | Action::Command | Action::Switchover | Action::Failover => {}
            }
        }
    }
    Ok(perms)
}

/// What running generator agents in a vantage point's `namespace` needs:
/// create, follow and delete their indexed Job, find its pods, and reach
/// each pod through the API server's proxy (POST is `create` on
/// `pods/proxy`, GET is `get`). `drill rbac` grants exactly these and the
/// agents' preflight asks for exactly these.
pub(crate) fn agent_permissions(namespace: &str) -> Vec<Permission> {
    let each = [
        ("create", "batch", "jobs", None),
        ("delete", "batch", "jobs", None),
        ("get", "batch", "jobs", None),
        ("list", "batch", "jobs", None),
        ("watch", "batch", "jobs", None),
        ("get", "", "pods", None),
        ("list", "", "pods", None),
        ("create", "", "pods", Some("proxy")),
        ("get", "", "pods", Some("proxy")),
    ];
    each.into_iter()
        .map(|(verb, group, resource, subresource)| Permission {
            namespace: namespace.to_string(),
            verb,
            group,
            resource,
            subresource,
            name: None,
        })
        .collect()
}

impl K8sTarget {
    /// Before anything is injected: every context reachable, every selector
    /// matching pods, every object there, every permission granted. Touches
    /// nothing; all problems are reported at once.
    pub async fn preflight(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        let pre = |m: String| TargetError::Preflight(m);
        let mut problems = Vec::new();
        for (region, c) in &self.clusters {
            if let Err(e) = c.reachable().await {
                problems.push(format!("region `{region}`: {e}"));
            }
        }
        if !problems.is_empty() {
            return Err(pre(problems.join("; ")));
        }
        for f in faults.iter().filter(|f| f.action.via_target()) {
            let (region, comps) = self.resolve(f)?;
            let cluster = self.cluster(region)?;
            for (name, c) in comps {
                let ns = &c.namespace;
                let pods = match cluster.pods(ns, &c.selector).await {
                    Ok(p) if p.iter().any(|p| !p.terminating) => p,
                    Ok(_) => {
                        problems.push(format!(
                            "component `{name}` in `{region}`: selector `{}` matches no pods in namespace `{ns}` on context `{}`",
                            c.selector, cluster.context
                        ));
                        Vec::new()
                    }
                    Err(e) => {
                        problems.push(format!("component `{name}`: {e}"));
                        Vec::new()
                    }
                };
                match f.action {
                    Action::Down | Action::RegionOutage => {
                        if let Some(p) = scaling_problem(cluster, name, region, c, &pods).await {
                            problems.push(p);
                        }
                    }
                    Action::Latency | Action::Abort => {
                        let v = c.virtual_service.as_deref().unwrap_or_default();
                        match cluster.virtual_service(ns, v).await {
                            Ok(obj) => {
                                let spec = obj.data.get("spec").cloned().unwrap_or_default();
                                let hf = http_fault(f)?;
                                if let Err(e) = istio::with_fault(&spec, c.route.as_deref(), &hf) {
                                    problems.push(format!(
                                        "component `{name}`: virtualservice `{ns}/{v}` {e}"
                                    ));
                                }
                            }
                            Err(e) => problems.push(format!("component `{name}`: {e}")),
                        }
                    }
                    _ => {}
                }
            }
        }
        for (region, p) in &permissions(&self.settings, faults)? {
            let cluster = self.cluster(region)?;
            match cluster.may(p).await {
                Ok(true) => {}
                Ok(false) => problems.push(format!(
                    "context `{}` may not {p} (SelfSubjectAccessReview denied); grant it (`drill rbac` prints the Roles), or drop the fault",
                    cluster.context
                )),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(pre(problems.join("; ")))
        }
    }
}

/// Why scaling the component's Deployments to zero would not take all of
/// its pods away: no Deployment runs them, or some run outside any.
async fn scaling_problem(
    cluster: &Cluster,
    name: &str,
    region: &str,
    c: &ComponentObjects,
    pods: &[PodState],
) -> Option<String> {
    let deps = match served::deployments_of(cluster, c).await {
        Ok(d) => d,
        Err(e) => return Some(format!("component `{name}`: {e}")),
    };
    let lone = served::unowned(pods, &deps);
    let whose = "a StatefulSet's, a DaemonSet's or bare pods?";
    if deps.is_empty() && !pods.is_empty() {
        Some(format!(
            "component `{name}` in `{region}`: selector `{}` matches pods in `{}` on context `{}` but no Deployment runs them ({whose}); drill scales Deployments only, so it would take nothing down",
            c.selector, c.namespace, cluster.context
        ))
    } else if !lone.is_empty() {
        Some(format!(
            "component `{name}` in `{region}`: pods {} match `{}` on context `{}` but none of its Deployments ({}) runs them ({whose}); they would keep serving through the outage: narrow the selector or drop the fault",
            lone.join(", "),
            c.selector,
            cluster.context,
            deps.iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        None
    }
}
