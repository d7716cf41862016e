//! The `kubernetes` target: the users' two regions as two kube contexts
//! joined by Istio. Components resolve to a label selector, the Deployments
//! running its pods and a VirtualService; faults delete pods, scale every
//! such Deployment to zero, or write an Istio fault into VirtualService
//! routes. Every revert undoes only drill's own change, from what the journal
//! recorded (each Deployment's replicas, each route's fault before and after),
//! or reports precisely why it cannot.

pub(crate) mod choose;
pub(crate) mod claim;
pub(crate) mod client;
mod faults;
pub(crate) mod istio;
pub(crate) mod ops;
mod preflight;
pub(crate) use preflight::{agent_permissions, permissions};
mod ready;
pub(crate) mod restore;
pub(crate) mod revert;
mod selector;
mod served;
pub(crate) mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::DynamicObject;

use crate::base::clock::Clock;
use crate::measure::Micros;
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::scenario::{Catalogue, ComponentInfo};
use crate::targets::error::TargetError;
use faults::http_fault;
use ops::{Cluster, K8sError};
pub use revert::{K8sRevert, PriorState};
pub use settings::{ComponentObjects, K8sSettings};

impl From<K8sError> for TargetError {
    fn from(e: K8sError) -> TargetError {
        match e {
            K8sError::Unreachable { .. } => TargetError::Unreachable(e.to_string()),
            _ => TargetError::Drift(e.to_string()),
        }
    }
}

/// Components a scenario can name on this target, and the actions each
/// takes: `delete` everywhere, `down` where it runs as Deployments,
/// `latency`/`abort` where there is a VirtualService.
pub fn catalogue(s: &K8sSettings) -> Catalogue {
    // The catalogue speaks `&'static str`; a target's names live for the run.
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let regions: Vec<&'static str> = s.contexts.keys().map(|r| leak(r)).collect();
    let components = s
        .components
        .iter()
        .map(|(name, c)| {
            let mut actions = vec![Action::Delete];
            if c.deployment.is_some() {
                actions.push(Action::Down);
            }
            if c.virtual_service.is_some() {
                actions.extend([Action::Latency, Action::Abort]);
            }
            ComponentInfo {
                name: leak(name),
                regions: regions.clone(),
                actions,
            }
        })
        .collect();
    Catalogue {
        components,
        regions,
    }
}

/// What a fault would touch, for `drill plan` (touches nothing).
pub fn describe_fault(s: &K8sSettings, f: &FaultPlan) -> String {
    let Some(ctx) = f.region().and_then(|r| s.contexts.get(r)) else {
        return format!("{} (region not mapped to a context)", f.action.name());
    };
    let comp = f.component().and_then(|c| s.components.get(c));
    match (f.action, comp) {
        (Action::RegionOutage, _) => {
            let comps: BTreeSet<String> = s
                .components
                .values()
                .filter(|c| c.deployment.is_some())
                .map(|c| format!("`{}` in `{}`", c.selector, c.namespace))
                .collect();
            format!(
                "context `{ctx}`: scale to 0 every Deployment whose pods match {}, then each back to its replicas",
                comps.into_iter().collect::<Vec<_>>().join(", ")
            )
        }
        (Action::Delete, Some(c)) => {
            let how = match (&f.count, &f.percent) {
                (Some(n), _) => format!("{n} pod(s), chosen with the run's seed,"),
                (_, Some(p)) => format!(
                    "{} of the pods, chosen with the run's seed,",
                    crate::base::units::Percent(*p)
                ),
                _ => "every pod".into(),
            };
            format!(
                "context `{ctx}`: delete {how} matching `{}` in `{}`; their ReplicaSet recreates them",
                c.selector, c.namespace
            )
        }
        (Action::Down, Some(c)) => format!(
            "context `{ctx}`: scale to 0 every Deployment in `{}` whose pods match `{}`, then each back to its replicas",
            c.namespace, c.selector
        ),
        (Action::Latency | Action::Abort, Some(c)) => format!(
            "context `{ctx}`: Istio {} fault on virtualservice `{}/{}` route {}; revert takes off only drill's fault (JSON Patch, tested)",
            f.action.name(),
            c.namespace,
            c.virtual_service.as_deref().unwrap_or("?"),
            c.route
                .as_deref()
                .map_or("(all)".to_string(), |r| format!("`{r}`"))
        ),
        (a, _) => a.name().to_string(),
    }
}

/// Pods that must be Ready again for a fault to count as healed: at least
/// as many as before, none of them one the fault deleted.
#[derive(Clone, Debug)]
struct Watch {
    namespace: String,
    selector: String,
    ready_before: usize,
    gone: Vec<String>,
}

/// A Kubernetes fault in progress.
#[derive(Clone, Debug)]
pub struct K8sInjection {
    pub region: String,
    pub step: Step,
    watches: Vec<Watch>,
    /// Run-clock time the touched pods were all Ready again.
    ready: Arc<Mutex<Option<Micros>>>,
    /// Set when readiness becomes worth watching (after a delete's inject,
    /// a down's revert); the watch starts at the first `healed_at`.
    armed: Arc<AtomicBool>,
    watching: Arc<AtomicBool>,
    /// Set by a revert that found every object already as it was before
    /// the fault: which objects (someone else restored them).
    already: Arc<Mutex<Option<String>>>,
}

impl K8sInjection {
    /// The objects a successful revert found already restored by someone
    /// else (drill changed nothing), if it found all of them so.
    pub fn already_restored(&self) -> Option<String> {
        self.already.lock().expect("lock").clone()
    }
}

#[derive(Clone, Debug)]
pub enum Step {
    /// Pods (name, uid) to delete; their ReplicaSet recreates them.
    DeletePods {
        namespace: String,
        pods: Vec<(String, String)>,
    },
    /// Deployments scaled to zero and back.
    Scale(K8sRevert),
    /// A VirtualService as read with the faults on (written conditionally on
    /// the read's resourceVersion), and the plan to take them off again.
    VirtualService {
        object: Box<DynamicObject>,
        revert: K8sRevert,
    },
}

/// A component a fault acts on: its name and objects.
type Resolved<'a> = (&'a str, &'a ComponentObjects);

/// A connected `kubernetes` target for one run.
pub struct K8sTarget {
    settings: K8sSettings,
    kubeconfig: Vec<PathBuf>,
    /// Region → cluster. Only the contexts the target names are here.
    clusters: BTreeMap<String, Cluster>,
    run_id: String,
    clock: Clock,
    seed: u64,
    poll: Duration,
    /// The Leases the run holds on the objects its faults change.
    claims: Arc<claim::Claims>,
    lease_duration: Duration,
}

impl K8sTarget {
    /// Builds one client per named context from the kubeconfig. Nothing is
    /// sent to a cluster yet; a context missing from the kubeconfig fails here.
    pub async fn connect(
        settings: &K8sSettings,
        run_id: &str,
        clock: Clock,
    ) -> Result<K8sTarget, TargetError> {
        let kubeconfig = client::sources(settings.kubeconfig.as_ref())?;
        let kc = client::load(&kubeconfig)?;
        let mut clusters = BTreeMap::new();
        for (region, ctx) in &settings.contexts {
            clusters.insert(region.clone(), client::for_context(&kc, ctx).await?);
        }
        Ok(K8sTarget::with_clusters(
            settings.clone(),
            kubeconfig,
            clusters,
            run_id,
            clock,
        ))
    }

    /// A target over clusters built elsewhere (tests use mocked clients).
    pub fn with_clusters(
        settings: K8sSettings,
        kubeconfig: Vec<PathBuf>,
        clusters: BTreeMap<String, Cluster>,
        run_id: &str,
        clock: Clock,
    ) -> K8sTarget {
        K8sTarget {
            settings,
            kubeconfig,
            clusters,
            run_id: run_id.to_string(),
            clock,
            seed: choose_seed(run_id),
            poll: Duration::from_millis(500),
            claims: Arc::default(),
            lease_duration: claim::LEASE_DURATION,
        }
    }

    /// The run's seed, for choosing which pods a `delete` takes.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How long a claim holds without renewal (tests shorten it).
    pub fn set_lease_duration(&mut self, d: Duration) {
        self.lease_duration = d;
    }

    /// How often readiness is polled after a fault.
    pub fn set_poll(&mut self, every: Duration) {
        self.poll = every;
    }

    pub fn entry_url(&self) -> String {
        self.settings.url.clone()
    }

    pub fn settings(&self) -> &K8sSettings {
        &self.settings
    }

    fn cluster(&self, region: &str) -> Result<&Cluster, TargetError> {
        self.clusters
            .get(region)
            .ok_or_else(|| self.unmapped(region))
    }

    fn unmapped(&self, region: &str) -> TargetError {
        unmapped(&self.settings, region)
    }

    /// The region and components a fault acts on, checked against the target.
    fn resolve<'a>(&'a self, f: &FaultPlan) -> Result<(&'a str, Vec<Resolved<'a>>), TargetError> {
        resolve(&self.settings, f)
    }
}

fn unmapped(settings: &K8sSettings, region: &str) -> TargetError {
    TargetError::Invalid(format!(
        "region `{region}` is not mapped to a kube context by this target (regions: {}); drill touches no other context",
        settings
            .contexts
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The region and components a fault acts on, from the settings alone (no
/// cluster is contacted): what faults inject, preflight checks and `drill
/// rbac` grants all start here.
pub(crate) fn resolve<'a>(
    s: &'a K8sSettings,
    f: &FaultPlan,
) -> Result<(&'a str, Vec<Resolved<'a>>), TargetError> {
    let name = f.name.clone();
    let region = f.region().ok_or_else(|| {
        TargetError::Invalid(format!(
            "fault `{name}`: a kubernetes fault names its region ({})",
            s.contexts.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let region = match s.contexts.get_key_value(region) {
        Some((r, _)) => r.as_str(),
        None => return Err(unmapped(s, region)),
    };
    let action = f.action;
    if action == Action::RegionOutage {
        let mut seen = BTreeSet::new();
        let comps: Vec<_> = s
            .components
            .iter()
            .filter(|(_, c)| {
                c.deployment.is_some() && seen.insert((c.namespace.clone(), c.selector.clone()))
            })
            .map(|(n, c)| (n.as_str(), c))
            .collect();
        for (n, c) in &comps {
            settings::check_selector(&c.selector)
                .map_err(|e| TargetError::Invalid(format!("component `{n}`: {e}")))?;
        }
        return Ok((region, comps));
    }
    let comp = f.component().ok_or_else(|| {
        TargetError::Invalid(format!(
            "fault `{name}`: a kubernetes fault names a component"
        ))
    })?;
    let (cname, c) = s.components.get_key_value(comp).ok_or_else(|| {
        TargetError::Invalid(format!(
            "fault `{name}`: no component `{comp}` on this target"
        ))
    })?;
    let missing = match action {
        Action::Down if c.deployment.is_none() => Some("a deployment"),
        Action::Latency | Action::Abort if c.virtual_service.is_none() => Some("a virtual_service"),
        Action::Command | Action::Switchover | Action::Failover => {
            Some("nothing: command and database faults do not go through the target")
        }
        _ => None,
    };
    if let Some(m) = missing {
        return Err(TargetError::Unsupported(format!(
            "fault `{name}`: `{}` on `{comp}` needs {m} (set it under the target's components.{comp})",
            action.name()
        )));
    }
    // Settings are checked when the targets file loads; this guards
    // targets built in code too. Never act on a match-everything selector.
    settings::check_selector(&c.selector)
        .map_err(|e| TargetError::Invalid(format!("component `{comp}`: {e}")))?;
    Ok((region, vec![(cname.as_str(), c)]))
}

/// A seed from the run id, until the run's own seed is set.
fn choose_seed(run_id: &str) -> u64 {
    run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
