//! Claims: before a run reads the prior state of an object it will fault,
//! it holds a `coordination.k8s.io/v1` Lease named for that object. Taking
//! one is atomic on the API server (a create that fails when the Lease is
//! there, or a replace conditional on the resourceVersion read), so of two
//! drills started at the same instant on the same objects exactly one gets
//! them; the other injects nothing and is told who holds them and since
//! when. A Lease is renewed while its run lives and expires by itself after
//! its duration when the run is killed. The Lease is also the run's mark on
//! the object: before the inject it is marked `drill.dev/fault` (a
//! conditional update), and the mark goes only with a successful revert, so
//! an expired Lease whose object a dead run left faulted still refuses
//! everyone until `drill cleanup` reverts it. The object itself is not
//! written for the claim: scaling needs only `deployments/scale`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::ops::{Cluster, K8sError, RUN_ANNOTATION};
use super::revert::LeaseRef;
use super::{K8sTarget, restore, served};
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::targets::error::TargetError;

/// The annotation on a Lease saying who started the run holding it.
pub(crate) const STARTED_BY: &str = "drill.dev/started-by";

/// The annotation on a Lease saying its object carries the holder's fault
/// (the fault's name): set before the inject, removed by its revert.
pub(crate) const FAULTED: &str = "drill.dev/fault";

/// How long a Lease holds without renewal: a killed run's claim is free
/// again after this, unless it is marked [`FAULTED`].
pub(crate) const LEASE_DURATION: Duration = Duration::from_secs(30);

/// Why a claim was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "{object} is held by drill run `{run}` since {since}, started by {by}: wait for that run to end (its claim expires {expiry} after it stops renewing)"
    )]
    Held {
        object: String,
        run: String,
        since: String,
        by: String,
        expiry: String,
    },
    #[error(
        "{object} is left faulted by drill run `{run}` (fault `{fault}`, lease `{lease}` marked {FAULTED}): that run ended without reverting it, so its state now is not one to restore; run `drill cleanup` where that run ran (or restore it by hand, then `drill cleanup --resolved {run}` there, or `kubectl delete lease {lease_name} -n {namespace}`)"
    )]
    Faulted {
        object: String,
        run: String,
        fault: String,
        lease: String,
        lease_name: String,
        namespace: String,
    },
    #[error(transparent)]
    Api(#[from] K8sError),
}

fn fault_mark(l: &Lease) -> Option<String> {
    l.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FAULTED).cloned())
}

/// Who this process is, for the Lease's `started-by` annotation.
pub(crate) fn started_by() -> String {
    // SAFETY: getuid(2) cannot fail.
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = spec.lease_duration_seconds.unwrap_or(0).max(0) as i64;
    renewed.0 + SignedDuration::from_secs(secs) < now
}

impl Cluster {
    fn leases(&self, namespace: &str) -> Api<Lease> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Takes the Lease for `object` for `run_id`: creates it, or takes it
    /// over when it has expired (a replace conditional on its version), or
    /// keeps it when the run holds it already. Held by another run: refused.
    pub async fn take_lease(
        &self,
        lease: &LeaseRef,
        object: &str,
        run_id: &str,
        duration: Duration,
    ) -> Result<(), ClaimError> {
        let api = self.leases(&lease.namespace);
        let what = format!("lease `{}/{}`", lease.namespace, lease.name);
        let now = Timestamp::now();
        let secs = duration.as_secs().max(1) as i32;
        let fresh = Lease {
            metadata: ObjectMeta {
                name: Some(lease.name.clone()),
                namespace: Some(lease.namespace.clone()),
                annotations: Some(BTreeMap::from([(STARTED_BY.to_string(), started_by())])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(run_id.to_string()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match api.create(&PostParams::default(), &fresh).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(K8sError::from_kube(&self.context, format!("create {what}"), e).into());
            }
        }
        let held = api
            .get(&lease.name)
            .await
            .map_err(|e| K8sError::from_kube(&self.context, format!("get {what}"), e))?;
        let spec = held.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder == run_id {
            return Ok(());
        }
        // Expired or not, a Lease whose object still carries its holder's
        // fault is never taken: that state is not one to restore.
        if let Some(fault) = fault_mark(&held)
            && !holder.is_empty()
            && expired(&spec, now)
        {
            return Err(ClaimError::Faulted {
                object: object.to_string(),
                run: holder,
                fault,
                lease: format!("{}/{}", lease.namespace, lease.name),
                lease_name: lease.name.clone(),
                namespace: lease.namespace.clone(),
            });
        }
        if !holder.is_empty() && !expired(&spec, now) {
            return Err(ClaimError::Held {
                object: object.to_string(),
                run: holder,
                since: spec
                    .acquire_time
                    .as_ref()
                    .map_or("an unknown time".into(), |t| t.0.to_string()),
                by: held
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(STARTED_BY).cloned())
                    .unwrap_or_else(|| "an unknown user".into()),
                expiry: humantime::format_duration(Duration::from_secs(
                    spec.lease_duration_seconds.unwrap_or(0).max(0) as u64,
                ))
                .to_string(),
            });
        }
        // Expired (its run died): taken over only if nobody else did since
        // the read; the resourceVersion is the precondition.
        let mut taken = fresh;
        taken.metadata.resource_version = held.metadata.resource_version.clone();
        if let Some(s) = taken.spec.as_mut() {
            s.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        match api
            .replace(&lease.name, &PostParams::default(), &taken)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Someone took it between the read and the replace.
                Box::pin(self.take_lease(lease, object, run_id, duration)).await
            }
            Err(e) => {
                Err(K8sError::from_kube(&self.context, format!("take over {what}"), e).into())
            }
        }
    }

    /// Renews a Lease the run holds. `Ok(false)`: it is no longer the
    /// run's (gone, or taken over after it expired).
    pub async fn renew_lease(&self, lease: &LeaseRef, run_id: &str) -> Result<bool, K8sError> {
        self.update_lease(lease, run_id, "renew", |_| {}).await
    }

    /// Marks (`Some(fault)`, before an inject) or unmarks (`None`, after
    /// its revert) the Lease as standing for a fault on its object; renews
    /// it too. `Ok(false)`: the run does not hold it.
    pub async fn mark_lease(
        &self,
        lease: &LeaseRef,
        run_id: &str,
        fault: Option<&str>,
    ) -> Result<bool, K8sError> {
        self.update_lease(lease, run_id, "mark", |l| {
            let a = l.metadata.annotations.get_or_insert_with(Default::default);
            match fault {
                Some(f) => {
                    a.insert(FAULTED.to_string(), f.to_string());
                }
                None => {
                    a.remove(FAULTED);
                }
            }
        })
        .await
    }

    /// A read-modify-replace of a Lease the run holds, renewing it;
    /// retried when the replace meets a newer version (the run's renewal
    /// and its mark can cross), never when someone else holds it.
    async fn update_lease(
        &self,
        lease: &LeaseRef,
        run_id: &str,
        verb: &str,
        edit: impl Fn(&mut Lease),
    ) -> Result<bool, K8sError> {
        let api = self.leases(&lease.namespace);
        let what = format!("{verb} lease `{}/{}`", lease.namespace, lease.name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut held = match api.get(&lease.name).await {
                Ok(l) => l,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(false),
                Err(e) => return Err(K8sError::from_kube(&self.context, what, e)),
            };
            let Some(spec) = held.spec.as_mut() else {
                return Ok(false);
            };
            if spec.holder_identity.as_deref() != Some(run_id) {
                return Ok(false);
            }
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            edit(&mut held);
            match api
                .replace(&lease.name, &PostParams::default(), &held)
                .await
            {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => continue,
                Err(e) => return Err(K8sError::from_kube(&self.context, what, e)),
            }
        }
    }

    /// Deletes a Lease if `run_id` holds it (conditional on the version
    /// read); one that is gone or someone else's is left alone.
    pub async fn release_lease(&self, lease: &LeaseRef, run_id: &str) -> Result<(), K8sError> {
        let api = self.leases(&lease.namespace);
        let what = format!("release lease `{}/{}`", lease.namespace, lease.name);
        let held = match api.get(&lease.name).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(K8sError::from_kube(&self.context, what, e)),
        };
        if held
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(run_id)
        {
            return Ok(());
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: held.metadata.resource_version.clone(),
            }),
            ..Default::default()
        };
        match api.delete(&lease.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(K8sError::from_kube(&self.context, what, e)),
        }
    }
}

/// The Leases a run holds, by region (each with how many of the run's
/// faults it stands for now and which faults still need it), and the task
/// renewing them.
#[derive(Default)]
pub(crate) struct Claims {
    held: Mutex<BTreeMap<(String, LeaseRef), Holding>>,
    renewing: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Default)]
struct Holding {
    /// Faults of the run injected on the object and not yet reverted.
    faulted: usize,
    /// The run's faults that change the object and have not been reverted
    /// (or were never injected): while one is left, the claim stays.
    wanted: BTreeSet<String>,
}

/// What a successful revert means for a claim.
#[derive(Debug, PartialEq)]
pub(crate) enum AfterRevert {
    /// No fault of the run needs the object any more: delete the Lease.
    Release,
    /// Another fault of the run still will change it: keep it, unmarked.
    Unmark,
    /// Another fault of the run has it changed now: keep it as it is.
    Keep,
}

impl Claims {
    fn key(region: &str, lease: &LeaseRef) -> (String, LeaseRef) {
        (region.to_string(), lease.clone())
    }

    pub(crate) fn holds(&self, region: &str, lease: &LeaseRef) -> bool {
        self.held
            .lock()
            .expect("claims lock")
            .contains_key(&Self::key(region, lease))
    }

    /// Records a held claim and that fault `by` needs it.
    pub(crate) fn add(&self, region: &str, lease: LeaseRef, by: &str) {
        self.held
            .lock()
            .expect("claims lock")
            .entry((region.to_string(), lease))
            .or_default()
            .wanted
            .insert(by.to_string());
    }

    /// Fault `by` is about to change the claimed object.
    pub(crate) fn injecting(&self, region: &str, lease: &LeaseRef, by: &str) {
        if let Some(h) = self
            .held
            .lock()
            .expect("claims lock")
            .get_mut(&Self::key(region, lease))
        {
            h.faulted += 1;
            h.wanted.insert(by.to_string());
        }
    }

    /// Fault `by`'s revert of the object succeeded.
    pub(crate) fn reverted(&self, region: &str, lease: &LeaseRef, by: &str) -> AfterRevert {
        let mut held = self.held.lock().expect("claims lock");
        let Some(h) = held.get_mut(&Self::key(region, lease)) else {
            return AfterRevert::Keep;
        };
        h.faulted = h.faulted.saturating_sub(1);
        h.wanted.remove(by);
        if h.faulted > 0 {
            AfterRevert::Keep
        } else if h.wanted.is_empty() {
            AfterRevert::Release
        } else {
            AfterRevert::Unmark
        }
    }

    /// The held Leases whose objects no fault of the run has changed now.
    pub(crate) fn releasable(&self) -> Vec<(String, LeaseRef)> {
        self.held
            .lock()
            .expect("claims lock")
            .iter()
            .filter(|(_, h)| h.faulted == 0)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(crate) fn remove(&self, region: &str, lease: &LeaseRef) {
        self.held
            .lock()
            .expect("claims lock")
            .remove(&Self::key(region, lease));
    }

    pub(crate) fn all(&self) -> Vec<(String, LeaseRef)> {
        self.held
            .lock()
            .expect("claims lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Renews every held Lease a third of the duration apart, until stopped.
    pub(crate) fn keep_renewed(
        self: &Arc<Self>,
        clusters: BTreeMap<String, Cluster>,
        run_id: String,
        duration: Duration,
    ) {
        let mut slot = self.renewing.lock().expect("claims lock");
        if slot.is_some() {
            return;
        }
        let claims = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(duration / 3).await;
                let Some(claims) = claims.upgrade() else {
                    return;
                };
                for (region, lease) in claims.all() {
                    let Some(c) = clusters.get(&region) else {
                        continue;
                    };
                    match c.renew_lease(&lease, &run_id).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(
                            lease = %lease.name,
                            namespace = %lease.namespace,
                            "the run's claim is gone (deleted, or expired and taken over)"
                        ),
                        Err(e) => tracing::warn!(error = %e, "renewing a claim failed"),
                    }
                }
            }
        });
        *slot = Some(task.abort_handle());
    }

    pub(crate) fn stop_renewing(&self) {
        if let Some(t) = self.renewing.lock().expect("claims lock").take() {
            t.abort();
        }
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        self.stop_renewing();
    }
}

/// One object a fault will change, as a claim names it.
#[derive(Clone, Debug)]
pub(super) struct ClaimedObject {
    pub region: String,
    pub lease: LeaseRef,
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ObjectKind {
    Deployment,
    VirtualService,
}

impl ClaimedObject {
    pub(super) fn new(
        region: &str,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> ClaimedObject {
        let k = match kind {
            ObjectKind::Deployment => "deployment",
            ObjectKind::VirtualService => "virtualservice",
        };
        ClaimedObject {
            region: region.to_string(),
            lease: LeaseRef::for_object(k, namespace, name),
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// As kubectl names it.
    pub(super) fn object(&self) -> String {
        let k = match self.kind {
            ObjectKind::Deployment => "deployment",
            ObjectKind::VirtualService => "virtualservice",
        };
        format!("{k} {}/{}", self.namespace, self.name)
    }
}

impl K8sTarget {
    /// The objects a fault will change (a `delete` changes none that a
    /// revert restores: its pods come back by themselves).
    async fn objects_of(&self, f: &FaultPlan) -> Result<Vec<ClaimedObject>, TargetError> {
        let (region, comps) = self.resolve(f)?;
        let cluster = self.cluster(region)?;
        let mut out = Vec::new();
        match f.action {
            Action::Down | Action::RegionOutage => {
                for (cname, c) in comps {
                    let deps = served::deployments_of(cluster, c)
                        .await
                        .map_err(|e| TargetError::Preflight(format!("component `{cname}`: {e}")))?;
                    for d in deps {
                        out.push(ClaimedObject::new(
                            region,
                            ObjectKind::Deployment,
                            &c.namespace,
                            &d.name,
                        ));
                    }
                }
            }
            Action::Latency | Action::Abort => {
                for (_, c) in comps {
                    if let Some(v) = &c.virtual_service {
                        out.push(ClaimedObject::new(
                            region,
                            ObjectKind::VirtualService,
                            &c.namespace,
                            v,
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Claims every object the faults will change, before any prior state
    /// is read: a Lease each, taken in name order; then each object is read
    /// for the run annotation of a drill version that marked objects
    /// themselves (a fault it did not revert refuses the claim too).
    /// Refused: every Lease taken here is released and nothing else was
    /// written.
    pub async fn claim(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        let mut want: BTreeMap<_, (ClaimedObject, Vec<String>)> = BTreeMap::new();
        for f in faults.iter().filter(|f| f.action.via_target()) {
            for o in self.objects_of(f).await? {
                want.entry((o.region.clone(), o.lease.clone()))
                    .or_insert_with(|| (o, Vec::new()))
                    .1
                    .push(f.name.clone());
            }
        }
        let mut taken = Vec::new();
        let mut refused = None;
        for (o, by) in want.values() {
            match self.claim_one(o, by).await {
                Ok(true) => taken.push(o.clone()),
                Ok(false) => {}
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if refused.is_none() {
            for (o, _) in want.values() {
                if let Err(e) = self.refuse_marked(o).await {
                    refused = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = refused {
            self.release(&taken).await;
            return Err(e);
        }
        if !want.is_empty() {
            self.claims.keep_renewed(
                self.clusters.clone(),
                self.run_id.clone(),
                self.lease_duration,
            );
        }
        Ok(())
    }

    /// Takes one object's Lease for faults `by` unless the run holds it;
    /// `Ok(true)`: taken now.
    async fn claim_one(&self, o: &ClaimedObject, by: &[String]) -> Result<bool, TargetError> {
        if self.claims.holds(&o.region, &o.lease) {
            for b in by {
                self.claims.add(&o.region, o.lease.clone(), b);
            }
            return Ok(false);
        }
        let cluster = self.cluster(&o.region)?;
        cluster
            .take_lease(&o.lease, &o.object(), &self.run_id, self.lease_duration)
            .await
            .map_err(|e| match e {
                ClaimError::Held { .. } | ClaimError::Faulted { .. } => {
                    TargetError::Preflight(e.to_string())
                }
                ClaimError::Api(e) => TargetError::from(e),
            })?;
        for b in by {
            self.claims.add(&o.region, o.lease.clone(), b);
        }
        Ok(true)
    }

    /// Refuses an object that an older drill's fault still marks with its
    /// run annotation (drill versions before the Lease was the mark wrote
    /// it on the object; a VirtualService still carries it, written in the
    /// same update as the fault).
    async fn refuse_marked(&self, o: &ClaimedObject) -> Result<(), TargetError> {
        let cluster = self.cluster(&o.region)?;
        let mark = match o.kind {
            ObjectKind::Deployment => cluster.deployment(&o.namespace, &o.name).await?.held_by,
            ObjectKind::VirtualService => {
                restore::annotation(&cluster.virtual_service(&o.namespace, &o.name).await?)
            }
        };
        match mark {
            Some(other) if other != self.run_id => Err(TargetError::Preflight(format!(
                "{} carries drill run `{other}`'s mark ({RUN_ANNOTATION}): a fault of that run was never reverted, so its state now is not one to restore; run `drill cleanup` where that run ran (or restore it by hand and remove the annotation)",
                o.object()
            ))),
            _ => Ok(()),
        }
    }

    /// Makes sure the run holds an object's claim for fault `by` before
    /// its prior state is read (a fault's objects can differ from
    /// preflight's, e.g. a new Deployment); refused if another run holds it.
    pub(super) async fn ensure_claimed(
        &self,
        o: &ClaimedObject,
        by: &str,
    ) -> Result<(), TargetError> {
        if self.claim_one(o, &[by.to_string()]).await? {
            self.claims.keep_renewed(
                self.clusters.clone(),
                self.run_id.clone(),
                self.lease_duration,
            );
        }
        Ok(())
    }

    /// Before fault `by` changes a claimed object: its Lease is marked
    /// with the fault (a conditional update). A run that no longer holds
    /// the Lease does not inject.
    pub(super) async fn mark_faulted(
        &self,
        o: &ClaimedObject,
        by: &str,
    ) -> Result<(), TargetError> {
        let cluster = self.cluster(&o.region)?;
        self.claims.injecting(&o.region, &o.lease, by);
        if cluster.mark_lease(&o.lease, &self.run_id, Some(by)).await? {
            Ok(())
        } else {
            Err(TargetError::Drift(format!(
                "{}: the run's claim (lease `{}/{}`) is gone, so it does not change it",
                o.object(),
                o.lease.namespace,
                o.lease.name
            )))
        }
    }

    /// After fault `by`'s revert of an object succeeded: its claim is
    /// released at once unless another fault of the run still needs it.
    pub(super) async fn reverted(&self, o: &ClaimedObject, by: &str) {
        let Ok(c) = self.cluster(&o.region) else {
            return;
        };
        match self.claims.reverted(&o.region, &o.lease, by) {
            AfterRevert::Release => {
                if let Err(e) = c.release_lease(&o.lease, &self.run_id).await {
                    tracing::warn!(error = %e, "releasing a claim failed; it expires by itself");
                }
                self.claims.remove(&o.region, &o.lease);
            }
            AfterRevert::Unmark => {
                if let Err(e) = c.mark_lease(&o.lease, &self.run_id, None).await {
                    tracing::warn!(error = %e, "unmarking a claim failed; the run's end releases it");
                }
            }
            AfterRevert::Keep => {}
        }
    }

    async fn release(&self, objs: &[ClaimedObject]) {
        for o in objs {
            if let Ok(c) = self.cluster(&o.region)
                && let Err(e) = c.release_lease(&o.lease, &self.run_id).await
            {
                tracing::warn!(error = %e, "releasing a claim failed; it expires by itself");
            }
            self.claims.remove(&o.region, &o.lease);
        }
    }

    /// At the run's end: stops renewing, and releases every claim still
    /// held whose object no fault has changed (each fault's revert already
    /// released its own). A claim on an object whose revert failed stays,
    /// marked with the fault: it expires but refuses everyone until `drill
    /// cleanup` reverts the fault and releases it.
    pub async fn release_claims(&self) {
        self.claims.stop_renewing();
        for (region, lease) in self.claims.releasable() {
            if let Ok(c) = self.cluster(&region)
                && let Err(e) = c.release_lease(&lease, &self.run_id).await
            {
                tracing::warn!(error = %e, "releasing a claim failed; it expires by itself");
            }
            self.claims.remove(&region, &lease);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration_from_the_last_renewal() {
        let now = Timestamp::now();
        let spec = |renewed_s_ago: i64, dur: i32| LeaseSpec {
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_s_ago))),
            lease_duration_seconds: Some(dur),
            ..Default::default()
        };
        assert!(!expired(&spec(10, 30), now));
        assert!(expired(&spec(31, 30), now));
        assert!(expired(&LeaseSpec::default(), now));
    }

    #[test]
    fn lease_names_are_one_per_object_and_fit_a_dns_subdomain() {
        let l = LeaseRef::for_object("deployment", "bookinfo", "reviews-v1");
        assert_eq!(l.name, "drill.deployment.reviews-v1");
        assert_eq!(l.namespace, "bookinfo");
        let long = LeaseRef::for_object("virtualservice", "ns", &"a".repeat(300));
        assert_eq!(long.name.len(), 253);
    }
}
