//! The faults themselves: plan (read the prior state, choose the pods),
//! inject (conditional writes, each under the run's claim, marked in its
//! Lease) and revert (through the journal's restore path; a successful
//! revert releases the fault's claims).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::choose::{self, Amount};
use super::claim::{ClaimedObject, ObjectKind};
use super::istio::{self, HttpFault};
use super::ops::{Cluster, PodState};
use super::{
    ComponentObjects, K8sInjection, K8sRevert, K8sTarget, PriorState, Resolved, Step, Watch,
    restore, served,
};
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::targets::error::TargetError;
use crate::targets::journal::RevertPlan;

impl K8sTarget {
    /// Resolves a fault to what it will touch and the journal's revert plan
    /// with the exact prior state. Reads from the cluster; changes nothing.
    pub async fn plan(
        &self,
        f: &FaultPlan,
        seed: u64,
    ) -> Result<(K8sInjection, RevertPlan), TargetError> {
        let (region, comps) = self.resolve(f)?;
        let cluster = self.cluster(region)?;
        let (mut watches, mut listed) = watch_components(cluster, &comps).await?;
        let (step, plan) = match f.action {
            Action::Delete => plan_delete(
                f,
                seed,
                cluster,
                comps[0].1,
                listed.swap_remove(0),
                &mut watches[0],
            )?,
            Action::Down | Action::RegionOutage => {
                self.plan_scale_down(f, region, cluster, &comps).await?
            }
            Action::Latency | Action::Abort => {
                self.plan_http_fault(f, region, cluster, comps[0].1).await?
            }
            Action::Command | Action::Switchover | Action::Failover => {
                return Err(TargetError::Unsupported(
                    "command faults do not go through the target".into(),
                ));
            }
        };
        Ok((
            K8sInjection {
                region: region.to_string(),
                step,
                watches,
                ready: Arc::new(Mutex::new(None)),
                armed: Arc::new(AtomicBool::new(false)),
                watching: Arc::new(AtomicBool::new(false)),
                already: Arc::default(),
            },
            plan,
        ))
    }

    /// The journal's revert plan for objects a fault changes on `cluster`,
    /// with the Leases that claim them.
    fn k8s_revert(&self, region: &str, cluster: &Cluster, objects: Vec<PriorState>) -> K8sRevert {
        K8sRevert {
            context: cluster.context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            run_id: self.run_id.clone(),
            leases: objects.iter().map(|o| claimed(region, o).lease).collect(),
            objects,
        }
    }

    /// Plans a `down` or `region-outage` fault: every Deployment running the
    /// components' pods is scaled to zero and restored to its prior replicas.
    async fn plan_scale_down(
        &self,
        f: &FaultPlan,
        region: &str,
        cluster: &Cluster,
        comps: &[Resolved<'_>],
    ) -> Result<(Step, RevertPlan), TargetError> {
        let objects = self.scaled_to_zero(f, region, cluster, comps).await?;
        let r = self.k8s_revert(region, cluster, objects);
        Ok((Step::Scale(r.clone()), RevertPlan::K8s(r)))
    }

    /// Plans a `latency` or `abort` fault on the component's VirtualService:
    /// claims it first, then reads its prior routes under the claim (refused
    /// if another run's mark is on it) and builds the object with the fault
    /// on, marked with this run.
    async fn plan_http_fault(
        &self,
        f: &FaultPlan,
        region: &str,
        cluster: &Cluster,
        c: &ComponentObjects,
    ) -> Result<(Step, RevertPlan), TargetError> {
        let v = c.virtual_service.as_deref().unwrap_or_default();
        // The claim first: the prior state is read under it.
        self.ensure_claimed(
            &ClaimedObject::new(region, ObjectKind::VirtualService, &c.namespace, v),
            &f.name,
        )
        .await?;
        let obj = cluster.virtual_service(&c.namespace, v).await?;
        if let Some(other) = restore::annotation(&obj).filter(|r| *r != self.run_id) {
            return Err(TargetError::Drift(format!(
                "virtualservice `{}/{v}` carries drill run `{other}`'s mark: a fault of that run was never reverted, so its routes are not a state to restore; run `drill cleanup` first",
                c.namespace
            )));
        }
        let spec = obj.data.get("spec").cloned().unwrap_or_default();
        let (injected, routes) = istio::with_fault(&spec, c.route.as_deref(), &http_fault(f)?)
            .map_err(|e| TargetError::Drift(format!("virtualservice `{}/{v}` {e}", c.namespace)))?;
        let r = self.k8s_revert(
            region,
            cluster,
            vec![PriorState::VirtualService {
                namespace: c.namespace.clone(),
                name: v.to_string(),
                resource_version: obj.metadata.resource_version.clone().unwrap_or_default(),
                routes,
            }],
        );
        let mut faulted = obj;
        faulted.data["spec"] = injected;
        restore::set_annotation(&mut faulted, Some(&self.run_id));
        Ok((
            Step::VirtualService {
                object: Box::new(faulted),
                revert: r.clone(),
            },
            RevertPlan::K8s(r),
        ))
    }

    /// Applies a planned fault. Every write is conditional on the state the
    /// plan read, so a change in between is a drift error, not a clobber.
    pub async fn inject(&self, f: &FaultPlan, inj: &K8sInjection) -> Result<(), TargetError> {
        let cluster = self.cluster(&inj.region)?;
        match &inj.step {
            Step::DeletePods { namespace, pods } => {
                for (name, uid) in pods {
                    cluster.delete_pod(namespace, name, uid).await?;
                }
                inj.armed.store(true, Ordering::SeqCst);
                Ok(())
            }
            Step::Scale(r) => {
                for o in &r.objects {
                    if let PriorState::Deployment {
                        namespace,
                        name,
                        resource_version,
                        ..
                    } = o
                    {
                        // The Lease is marked first; the scale is
                        // conditional on the version the prior state was
                        // read at (under the claim), so nothing happens in
                        // between unseen. The Deployment itself gets no
                        // mark: `deployments/scale` is all drill writes.
                        self.mark_faulted(&claimed(&inj.region, o), &f.name).await?;
                        cluster.scale(namespace, name, 0, resource_version).await?;
                    }
                }
                Ok(())
            }
            Step::VirtualService { object, revert } => {
                for o in &revert.objects {
                    self.mark_faulted(&claimed(&inj.region, o), &f.name).await?;
                }
                // The object as read with the faults on: a replace conditional
                // on that read's resourceVersion, so nobody's edit is lost.
                cluster.replace_virtual_service(object).await?;
                Ok(())
            }
        }
    }

    /// Restores the prior state (through the same path as `drill cleanup`).
    pub async fn revert(&self, f: &FaultPlan, inj: &K8sInjection) -> Result<(), TargetError> {
        let cluster = self.cluster(&inj.region)?;
        match &inj.step {
            Step::DeletePods { .. } => Ok(()),
            Step::Scale(r) => {
                let found = r.revert(cluster).await.map_err(TargetError::Drift)?;
                *inj.already.lock().expect("lock") = found;
                self.restored(f, &inj.region, r).await;
                inj.armed.store(true, Ordering::SeqCst);
                Ok(())
            }
            Step::VirtualService { revert, .. } => {
                let found = revert.revert(cluster).await.map_err(TargetError::Drift)?;
                *inj.already.lock().expect("lock") = found;
                self.restored(f, &inj.region, revert).await;
                Ok(())
            }
        }
    }

    /// The fault's objects are restored: their claims go now (unless
    /// another fault of the run still needs one), so another run may take
    /// them while this one goes on with its other faults.
    async fn restored(&self, f: &FaultPlan, region: &str, r: &K8sRevert) {
        for o in &r.objects {
            self.reverted(&claimed(region, o), &f.name).await;
        }
    }

    /// Every Deployment running the components' pods, once each, with the
    /// replicas to restore, read under the run's claim; refused if one is
    /// marked by another run or a component has none.
    async fn scaled_to_zero(
        &self,
        f: &FaultPlan,
        region: &str,
        cluster: &Cluster,
        comps: &[Resolved<'_>],
    ) -> Result<Vec<PriorState>, TargetError> {
        let mut objects = Vec::new();
        let mut seen = BTreeSet::new();
        for (cname, c) in comps {
            let deps = served::deployments_of(cluster, c)
                .await
                .map_err(|e| TargetError::Drift(format!("component `{cname}`: {e}")))?;
            if deps.is_empty() {
                return Err(TargetError::Drift(format!(
                    "component `{cname}`: no Deployment in `{}` on context `{}` runs pods matching `{}`; drill scales Deployments only",
                    c.namespace, cluster.context, c.selector
                )));
            }
            for d in deps {
                if !seen.insert((c.namespace.clone(), d.name.clone())) {
                    continue;
                }
                self.ensure_claimed(
                    &ClaimedObject::new(region, ObjectKind::Deployment, &c.namespace, &d.name),
                    &f.name,
                )
                .await?;
                // Read again under the claim: the listing may predate it.
                let state = cluster.deployment(&c.namespace, &d.name).await?;
                if let Some(other) = state.held_by.filter(|r| *r != self.run_id) {
                    return Err(TargetError::Drift(format!(
                        "deployment `{}/{}` carries drill run `{other}`'s mark: a fault of that run was never reverted, so its {} replicas are not a state to restore; run `drill cleanup` first",
                        c.namespace, d.name, state.replicas
                    )));
                }
                objects.push(PriorState::Deployment {
                    namespace: c.namespace.clone(),
                    name: d.name,
                    replicas: state.replicas,
                    resource_version: state.resource_version,
                });
            }
        }
        Ok(objects)
    }
}

/// The claim on an object a fault changed.
fn claimed(region: &str, o: &PriorState) -> ClaimedObject {
    match o {
        PriorState::Deployment {
            namespace, name, ..
        } => ClaimedObject::new(region, ObjectKind::Deployment, namespace, name),
        PriorState::VirtualService {
            namespace, name, ..
        } => ClaimedObject::new(region, ObjectKind::VirtualService, namespace, name),
    }
}

/// The Istio fault a `latency` or `abort` fault asks for.
pub(super) fn http_fault(f: &FaultPlan) -> Result<HttpFault, TargetError> {
    let percent = f.percent.map_or(100.0, |p| p * 100.0);
    match f.action {
        Action::Latency => {
            if f.jitter.is_some() {
                return Err(TargetError::Unsupported(format!(
                    "fault `{}`: Istio fault injection has a fixed delay; remove `jitter`",
                    f.name.clone()
                )));
            }
            let delay = f.delay.map(|d| d.0).ok_or_else(|| {
                TargetError::Invalid(format!("fault `{}`: latency needs `delay`", f.name.clone()))
            })?;
            Ok(HttpFault::Delay { percent, delay })
        }
        _ => Ok(HttpFault::Abort {
            percent,
            status: f.status.unwrap_or(503),
        }),
    }
}

/// Lists each component's pods once: what to watch while the fault is on
/// (how many were ready before), and the pods as listed, in `comps` order.
async fn watch_components(
    cluster: &Cluster,
    comps: &[Resolved<'_>],
) -> Result<(Vec<Watch>, Vec<Vec<PodState>>), TargetError> {
    let mut watches = Vec::new();
    let mut listed = Vec::new();
    for (_, c) in comps {
        let pods = cluster.pods(&c.namespace, &c.selector).await?;
        listed.push(pods.clone());
        watches.push(Watch {
            namespace: c.namespace.clone(),
            selector: c.selector.clone(),
            ready_before: pods.iter().filter(|p| p.ready && !p.terminating).count(),
            gone: Vec::new(),
        });
    }
    Ok((watches, listed))
}

/// Plans a `delete` fault: chooses (by the seed) which of the component's
/// running pods go, and records their uids in `watch` as the pods that must
/// not come back. Refused if no pod is running.
fn plan_delete(
    f: &FaultPlan,
    seed: u64,
    cluster: &Cluster,
    c: &ComponentObjects,
    pods: Vec<PodState>,
    watch: &mut Watch,
) -> Result<(Step, RevertPlan), TargetError> {
    let name = &f.name;
    let pods: Vec<_> = pods.into_iter().filter(|p| !p.terminating).collect();
    if pods.is_empty() {
        return Err(TargetError::Drift(format!(
            "fault `{name}`: selector `{}` matches no running pods in `{}` on context `{}`",
            c.selector, c.namespace, cluster.context
        )));
    }
    let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
    let chosen = choose::choose(&names, delete_amount(f), seed, name);
    let chosen: Vec<(String, String)> = pods
        .iter()
        .filter(|p| chosen.contains(&p.name))
        .map(|p| (p.name.clone(), p.uid.clone()))
        .collect();
    watch.gone = chosen.iter().map(|(_, u)| u.clone()).collect();
    let what = format!(
        "context `{}`: their ReplicaSet recreates pods {} in `{}`",
        cluster.context,
        chosen
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        c.namespace
    );
    Ok((
        Step::DeletePods {
            namespace: c.namespace.clone(),
            pods: chosen,
        },
        RevertPlan::SelfHealing { what },
    ))
}

/// How many of the running pods a `delete` fault takes: `count` if given,
/// else `percent`, else all of them.
fn delete_amount(f: &FaultPlan) -> Amount {
    match (&f.count, &f.percent) {
        (Some(n), _) => Amount::Count(*n),
        (_, Some(p)) => Amount::Share(*p),
        _ => Amount::All,
    }
}
