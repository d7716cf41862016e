//! Preflight: before anything is injected, every named context answers,
//! every selector matches pods, every object a fault needs is there, and a
//! SelfSubjectAccessReview grants each verb the plan will use.
//!
//! The verbs come from [`permissions`], the one list `drill rbac` also turns
//! into Roles, so what the Roles grant and what preflight asks for cannot drift.

use std::collections::BTreeSet;

use super::ops::Permission;
use super::{K8sSettings, K8sTarget, http_fault, istio, resolve};
use crate::scenario::model::{Action, Fault};
use crate::targets::TargetError;

/// Every permission the faults that go through the target need, as
/// (region, permission): delete pods, scale Deployments, write Istio faults,
/// and list pods wherever readiness is watched. Reads only the settings.
pub fn permissions(
    settings: &K8sSettings,
    faults: &[&Fault],
) -> Result<BTreeSet<(String, Permission)>, TargetError> {
    let mut perms = BTreeSet::new();
    for f in faults.iter().filter(|f| f.action.get_ref().via_target()) {
        let action = *f.action.get_ref();
        let (region, comps) = resolve(settings, f)?;
        for (_, c) in comps {
            let mut add = |verb, group, resource, subresource| {
                perms.insert((
                    region.to_string(),
                    Permission {
                        namespace: c.namespace.clone(),
                        verb,
                        group,
                        resource,
                        subresource,
                    },
                ));
            };
            add("list", "", "pods", None);
            match action {
                Action::Delete => add("delete", "", "pods", None),
                Action::Down | Action::RegionOutage => {
                    add("get", "apps", "deployments", None);
                    add("patch", "apps", "deployments", None);
                    add("update", "apps", "deployments", Some("scale"));
                }
                Action::Latency | Action::Abort => {
                    for verb in ["get", "update"] {
                        add(verb, "networking.istio.io", "virtualservices", None);
                    }
                }
                Action::Command | Action::Switchover | Action::Failover => {}
            }
        }
    }
    Ok(perms)
}

impl K8sTarget {
    /// Before anything is injected: every context reachable, every selector
    /// matching pods, every object there, every permission granted. Touches
    /// nothing; all problems are reported at once.
    pub async fn preflight(&self, faults: &[&Fault]) -> Result<(), TargetError> {
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
        for f in faults.iter().filter(|f| f.action.get_ref().via_target()) {
            let action = *f.action.get_ref();
            let (region, comps) = self.resolve(f)?;
            let cluster = self.cluster(region)?;
            for (name, c) in comps {
                let ns = &c.namespace;
                match cluster.pods(ns, &c.selector).await {
                    Ok(p) if p.iter().any(|p| !p.terminating) => {}
                    Ok(_) => problems.push(format!(
                        "component `{name}` in `{region}`: selector `{}` matches no pods in namespace `{ns}` on context `{}`",
                        c.selector, cluster.context
                    )),
                    Err(e) => problems.push(format!("component `{name}`: {e}")),
                }
                match action {
                    Action::Down | Action::RegionOutage => {
                        let d = c.deployment.as_deref().unwrap_or_default();
                        if let Err(e) = cluster.deployment(ns, d).await {
                            problems.push(format!("component `{name}`: {e}"));
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
