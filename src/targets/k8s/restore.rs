//! Undoing a Kubernetes fault from its journal entry alone: the context and
//! kubeconfig it ran with, and each touched object's exact prior state. A
//! live run and `drill cleanup` after a crash both revert through here, so
//! there is one restore path to trust. Only drill's own change is undone: a
//! VirtualService gets a JSON Patch that `test`s each fault drill wrote and
//! then takes it off, so anyone else's edit elsewhere in the object stands;
//! a change drill no longer finds as it left it is reported, never overwritten.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::client;
use super::istio::RouteFault;
use super::ops::{Cluster, K8sError, RUN_ANNOTATION};
use super::revert::{K8sRevert, LeaseRef, PriorState};

impl PriorState {
    /// The object, as kubectl names it.
    pub fn object(&self) -> String {
        match self {
            PriorState::Deployment {
                namespace, name, ..
            } => format!("deployment {namespace}/{name}"),
            PriorState::VirtualService {
                namespace, name, ..
            } => format!("virtualservice {namespace}/{name}"),
        }
    }

    /// What restoring it means, for a person doing it by hand.
    pub fn describe(&self) -> String {
        match self {
            PriorState::Deployment {
                namespace,
                name,
                replicas,
                ..
            } => format!("deployment {namespace}/{name} back to {replicas} replicas"),
            PriorState::VirtualService {
                namespace,
                name,
                routes,
                ..
            } => {
                let each: Vec<String> = routes
                    .iter()
                    .map(|r| {
                        let back = match &r.prior {
                            Some(p) => format!("put back its prior fault {p}"),
                            None => "remove it".into(),
                        };
                        format!(
                            "{} has drill's fault {} at /spec/http/{}/fault: {back}",
                            r.label(),
                            r.injected,
                            r.index
                        )
                    })
                    .collect();
                format!(
                    "virtualservice {namespace}/{name}: {}; remove annotation {RUN_ANNOTATION}",
                    each.join("; ")
                )
            }
        }
    }
}

impl K8sRevert {
    /// For people: what reverting does, on which context.
    pub fn describe(&self) -> String {
        let objs: Vec<String> = self.objects.iter().map(PriorState::describe).collect();
        format!("context `{}`: {}", self.context, objs.join("; "))
    }

    /// Reverts with a client built from the journal's context and kubeconfig.
    pub async fn revert_from_journal(&self) -> Result<Option<String>, String> {
        let cluster = client::connect(&self.kubeconfig, &self.context)
            .await
            .map_err(|e| e.to_string())?;
        let found = self.revert(&cluster).await?;
        // Restored: the run's claims go too (one another run took over
        // after it expired is that run's and stays).
        for left in self.release_claims(&cluster).await {
            tracing::warn!("{left}");
        }
        Ok(found)
    }

    /// Releases the run's claims (Leases) without touching the objects: a
    /// person restored them by hand (`drill cleanup --resolved`). A Lease
    /// another run took over stays. Each claim that could not be released
    /// comes back with the `kubectl` command that deletes it.
    pub async fn release_claims_from_journal(&self) -> Vec<String> {
        match client::connect(&self.kubeconfig, &self.context).await {
            Ok(cluster) => self.release_claims(&cluster).await,
            Err(e) => self.leases.iter().map(|l| self.by_hand(l, &e)).collect(),
        }
    }

    /// Releases each of the run's Leases; what stays held, with the command
    /// that deletes it (a Lease still marked with a fault refuses every
    /// run even after it expires, so it must not be left to expiry).
    async fn release_claims(&self, cluster: &Cluster) -> Vec<String> {
        let mut left = Vec::new();
        for l in &self.leases {
            if let Err(e) = cluster.release_lease(l, &self.run_id).await {
                left.push(self.by_hand(l, &e));
            }
        }
        left
    }

    fn by_hand(&self, l: &LeaseRef, why: &dyn std::fmt::Display) -> String {
        format!(
            "lease {}/{} still held ({why}): `kubectl --context {} delete lease {} -n {}`",
            l.namespace, l.name, self.context, l.name, l.namespace
        )
    }

    /// Restores every object; goes on past a failure so one stuck object
    /// does not leave the others broken, and reports each failure.
    /// `Ok(Some(objects))`: every object was already back as it was before
    /// the fault, so drill changed nothing (someone else restored it).
    pub async fn revert(&self, cluster: &Cluster) -> Result<Option<String>, String> {
        let mut failed = Vec::new();
        let mut already = Vec::new();
        for o in &self.objects {
            match restore(cluster, &self.run_id, o).await {
                Ok(Restored::Reverted) => {}
                Ok(Restored::AlreadyRestored) => already.push(o.object()),
                Err(e) => failed.push(format!("{}: {e}", o.object())),
            }
        }
        if !failed.is_empty() {
            Err(failed.join("; "))
        } else if !already.is_empty() && already.len() == self.objects.len() {
            Ok(Some(already.join(", ")))
        } else {
            Ok(None)
        }
    }

    /// What a revert would do now, read from the cluster and written
    /// nowhere: for `drill cleanup --dry-run`.
    pub async fn dry_run(&self) -> Result<Vec<String>, String> {
        let c = client::connect(&self.kubeconfig, &self.context)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for o in &self.objects {
            out.push(match would_restore(&c, &self.run_id, o).await {
                Ok(line) => format!("{}: {line}", o.object()),
                Err(e) => format!("{}: {e}", o.object()),
            });
        }
        Ok(out)
    }
}

/// What restoring one object would do, from a read only.
async fn would_restore(c: &Cluster, run_id: &str, o: &PriorState) -> Result<String, RestoreError> {
    match o {
        PriorState::Deployment {
            namespace,
            name,
            replicas,
            ..
        } => {
            let now = c.deployment(namespace, name).await?;
            if let Some(other) = now.held_by.as_deref().filter(|r| *r != run_id) {
                return Err(RestoreError::Drift(format!(
                    "held by another drill run `{other}`"
                )));
            }
            Ok(if now.replicas == *replicas {
                "already restored (someone else scaled it back, or the run died before scaling it); would change nothing but release drill's claim".into()
            } else if now.replicas == 0 {
                format!(
                    "would scale it from 0 back to {replicas} replicas and release drill's claim"
                )
            } else {
                return Err(RestoreError::Drift(format!(
                    "someone scaled it to {} while the fault lasted (drill set 0, prior {replicas})",
                    now.replicas
                )));
            })
        }
        PriorState::VirtualService {
            namespace,
            name,
            routes,
            ..
        } => {
            let now = c.virtual_service(namespace, name).await?;
            let held_by = annotation(&now);
            if let Some(other) = held_by.as_deref().filter(|r| *r != run_id) {
                return Err(RestoreError::Drift(format!(
                    "held by another drill run `{other}`"
                )));
            }
            let http = now
                .data
                .pointer("/spec/http")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let plan = revert_patch(
                http,
                routes,
                held_by.is_some(),
                annotation_count(&now),
                run_id,
            );
            if !plan.problems.is_empty() {
                return Err(RestoreError::Drift(plan.problems.join("; ")));
            }
            Ok(if plan.undone == 0 {
                "already restored (someone else took drill's fault off); would only remove drill's annotation".into()
            } else {
                format!(
                    "would take drill's fault off {} route(s) with a tested JSON Patch",
                    plan.undone
                )
            })
        }
    }
}

/// How many annotations an object has now.
fn annotation_count(o: &DynamicObject) -> usize {
    o.metadata.annotations.as_ref().map_or(0, |a| a.len())
}

/// What a restore found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Restored {
    /// drill put the prior state back.
    Reverted,
    /// The object was already as it was before the fault.
    AlreadyRestored,
}

/// Why an object was not restored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestoreError {
    #[error(transparent)]
    Api(#[from] K8sError),
    /// Someone else changed the object while the fault lasted.
    #[error("altered, needs a person: {0}; left as it is")]
    Drift(String),
}

async fn restore(c: &Cluster, run_id: &str, o: &PriorState) -> Result<Restored, RestoreError> {
    match o {
        PriorState::Deployment {
            namespace,
            name,
            replicas,
            ..
        } => {
            let now = c.deployment(namespace, name).await?;
            if let Some(other) = now.held_by.as_deref().filter(|r| *r != run_id) {
                return Err(RestoreError::Drift(format!(
                    "held by another drill run `{other}`"
                )));
            }
            let found = if now.replicas != *replicas {
                if now.replicas != 0 {
                    return Err(RestoreError::Drift(format!(
                        "someone scaled it to {} while the fault lasted (drill set 0, prior {replicas})",
                        now.replicas
                    )));
                }
                c.scale(namespace, name, *replicas, &now.resource_version)
                    .await?;
                Restored::Reverted
            } else if *replicas == 0 {
                Restored::Reverted
            } else {
                Restored::AlreadyRestored
            };
            if now.held_by.is_some() {
                // Only a drill version that marked the Deployment itself
                // (before the Lease was the mark) left this; its journal is
                // reverted here by a drill that may lack `patch`.
                if let Err(e) = c.annotate_deployment(namespace, name, None, None).await {
                    tracing::warn!(
                        error = %e,
                        "deployment {namespace}/{name} is restored but keeps an older drill's annotation {RUN_ANNOTATION}: remove it with `kubectl annotate deployment {name} -n {namespace} {RUN_ANNOTATION}-`"
                    );
                }
            }
            Ok(found)
        }
        PriorState::VirtualService {
            namespace,
            name,
            routes,
            ..
        } => restore_virtual_service(c, run_id, namespace, name, routes).await,
    }
}

/// Takes drill's faults off a VirtualService's routes with one JSON Patch.
/// The API server applies it only if every `test` holds; a 422 means the
/// object changed between the read and the patch, so it is read again.
async fn restore_virtual_service(
    c: &Cluster,
    run_id: &str,
    namespace: &str,
    name: &str,
    routes: &[RouteFault],
) -> Result<Restored, RestoreError> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = c.virtual_service(namespace, name).await?;
        let held_by = annotation(&now);
        if let Some(other) = held_by.as_deref().filter(|r| *r != run_id) {
            return Err(RestoreError::Drift(format!(
                "held by another drill run `{other}`"
            )));
        }
        let http = now
            .data
            .pointer("/spec/http")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let plan = revert_patch(
            http,
            routes,
            held_by.is_some(),
            annotation_count(&now),
            run_id,
        );
        if !plan.ops.is_empty() {
            match c
                .json_patch_virtual_service(namespace, name, Value::Array(plan.ops))
                .await
            {
                Ok(_) => {}
                Err(K8sError::Rejected { .. }) if attempt < ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
        return if plan.problems.is_empty() {
            Ok(if plan.undone == 0 {
                Restored::AlreadyRestored
            } else {
                Restored::Reverted
            })
        } else {
            Err(RestoreError::Drift(plan.problems.join("; ")))
        };
    }
}

/// The JSON Patch that undoes drill's faults as the object stands now, and
/// what cannot be undone because drill's change is no longer as it left it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RevertPatch {
    pub ops: Vec<Value>,
    pub problems: Vec<String>,
    /// Routes where drill's fault was found and is taken off.
    pub undone: usize,
}

/// Per route: if drill's fault is there, `test` it (and the route's name, so
/// a reorder between read and patch fails the patch) and take it off or put
/// the prior fault back; if the prior state is there already, nothing; else
/// a problem for a person. The run annotation goes only when all is back;
/// when it is the object's only annotation the whole map goes, so the
/// object ends byte-equal to its prior (no `annotations: {}` left).
pub(super) fn revert_patch(
    http: &[Value],
    routes: &[RouteFault],
    marked: bool,
    annotations: usize,
    run_id: &str,
) -> RevertPatch {
    let mut out = RevertPatch::default();
    let mut claimed = Vec::new();
    for rf in routes {
        let index = locate(http, rf, &claimed);
        claimed.extend(index);
        let Some(i) = index else {
            out.problems.push(format!(
                "{} is no longer in spec.http, and drill's fault {} with it; nothing of drill's is left there to undo, but the route is not as it was: check the VirtualService",
                rf.label(),
                rf.injected
            ));
            continue;
        };
        let path = format!("/spec/http/{i}/fault");
        let found = http[i].get("fault");
        if found == Some(&rf.injected) {
            out.undone += 1;
            if let Some(n) = &rf.name {
                out.ops.push(
                    json!({ "op": "test", "path": format!("/spec/http/{i}/name"), "value": n }),
                );
            }
            out.ops
                .push(json!({ "op": "test", "path": path, "value": rf.injected }));
            out.ops.push(match &rf.prior {
                Some(p) => json!({ "op": "replace", "path": path, "value": p }),
                None => json!({ "op": "remove", "path": path }),
            });
        } else if found != rf.prior.as_ref() {
            let shown = |v: Option<&Value>| v.map_or("no fault".to_string(), Value::to_string);
            out.problems.push(format!(
                "{} at {path}: drill's fault was changed by someone else while it lasted (expected {}, found {}); decide whether that fault should stay and edit the route by hand (before the drill it had {})",
                rf.label(),
                rf.injected,
                shown(found),
                shown(rf.prior.as_ref())
            ));
        }
    }
    if marked && out.problems.is_empty() {
        let path = format!("/metadata/annotations/{}", pointer_escape(RUN_ANNOTATION));
        out.ops
            .push(json!({ "op": "test", "path": path, "value": run_id }));
        let gone = if annotations == 1 {
            "/metadata/annotations".to_string()
        } else {
            path
        };
        out.ops.push(json!({ "op": "remove", "path": gone }));
    }
    out
}

/// Where a route drill faulted is now: by name when it has one. An unnamed
/// one has only its position, which someone's insert may have shifted, so
/// drill's fault is looked for there first, then on any other unnamed route
/// not yet accounted for; only if none carries it is the position trusted.
fn locate(http: &[Value], rf: &RouteFault, claimed: &[usize]) -> Option<usize> {
    let name = |r: &Value| r.get("name").and_then(Value::as_str).map(str::to_string);
    if rf.name.is_some() {
        return http.iter().position(|r| name(r) == rf.name);
    }
    let ours = |i: usize| {
        !claimed.contains(&i)
            && name(&http[i]).is_none()
            && http[i].get("fault") == Some(&rf.injected)
    };
    if rf.index < http.len() && ours(rf.index) {
        return Some(rf.index);
    }
    (0..http.len())
        .find(|&i| ours(i))
        .or_else(|| (rf.index < http.len()).then_some(rf.index))
}

/// A key as one JSON Pointer segment (RFC 6901).
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn annotation(o: &DynamicObject) -> Option<String> {
    o.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RUN_ANNOTATION).cloned())
}

/// Sets or removes the run annotation, leaving the others as they are.
pub(super) fn set_annotation(o: &mut DynamicObject, run_id: Option<&str>) {
    let a = o.metadata.annotations.get_or_insert_with(Default::default);
    match run_id {
        Some(r) => {
            a.insert(RUN_ANNOTATION.into(), r.into());
        }
        None => {
            a.remove(RUN_ANNOTATION);
        }
    }
    if a.is_empty() {
        o.metadata.annotations = None;
    }
}
