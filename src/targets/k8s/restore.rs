//! Undoing a Kubernetes fault from its journal entry alone: the context and
//! kubeconfig it ran with, and each touched object's exact prior state. A
//! live run and `drill cleanup` after a crash both revert through here, so
//! there is one restore path to trust. An object someone else changed while
//! the fault lasted is reported, never overwritten.

use std::path::PathBuf;

use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client;
use super::ops::{Cluster, K8sError, RUN_ANNOTATION};

/// How to revert one Kubernetes fault: what the journal holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct K8sRevert {
    pub context: String,
    /// The kubeconfig files the run read (merged as kubectl does).
    pub kubeconfig: Vec<PathBuf>,
    pub run_id: String,
    pub objects: Vec<PriorState>,
}

/// One object's state before the fault, and what the fault made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "kebab-case")]
pub enum PriorState {
    /// A Deployment scaled to zero; `replicas` is the count to restore.
    Deployment {
        namespace: String,
        name: String,
        replicas: i32,
        resource_version: String,
    },
    /// A VirtualService whose spec got a fault block: `spec` is the exact
    /// prior spec, `injected` the spec the fault wrote.
    VirtualService {
        namespace: String,
        name: String,
        resource_version: String,
        spec: Value,
        injected: Value,
    },
}

impl PriorState {
    pub fn describe(&self) -> String {
        match self {
            PriorState::Deployment {
                namespace,
                name,
                replicas,
                ..
            } => format!("deployment {namespace}/{name} back to {replicas} replicas"),
            PriorState::VirtualService {
                namespace, name, ..
            } => format!("virtualservice {namespace}/{name} back to its prior spec"),
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
    pub async fn revert_from_journal(&self) -> Result<(), String> {
        let cluster = client::connect(&self.kubeconfig, &self.context)
            .await
            .map_err(|e| e.to_string())?;
        self.revert(&cluster).await
    }

    /// Restores every object; goes on past a failure so one stuck object
    /// does not leave the others broken, and reports each failure.
    pub async fn revert(&self, cluster: &Cluster) -> Result<(), String> {
        let mut failed = Vec::new();
        for o in &self.objects {
            if let Err(e) = restore(cluster, &self.run_id, o).await {
                failed.push(format!("{}: {e}", o.describe()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }
}

/// Why an object was not restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Api(#[from] K8sError),
    /// Someone else changed the object while the fault lasted.
    #[error("{0}; left as it is")]
    Drift(String),
}

async fn restore(c: &Cluster, run_id: &str, o: &PriorState) -> Result<(), RestoreError> {
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
            if now.replicas != *replicas {
                if now.replicas != 0 {
                    return Err(RestoreError::Drift(format!(
                        "someone scaled it to {} while the fault lasted (drill set 0, prior {replicas})",
                        now.replicas
                    )));
                }
                c.scale(namespace, name, *replicas, &now.resource_version)
                    .await?;
            }
            if now.held_by.is_some() {
                c.annotate_deployment(namespace, name, None).await?;
            }
            Ok(())
        }
        PriorState::VirtualService {
            namespace,
            name,
            spec,
            injected,
            ..
        } => {
            let now = c.virtual_service(namespace, name).await?;
            let held_by = annotation(&now);
            if let Some(other) = held_by.as_deref().filter(|r| *r != run_id) {
                return Err(RestoreError::Drift(format!(
                    "held by another drill run `{other}`"
                )));
            }
            let current = now.data.get("spec").cloned().unwrap_or(Value::Null);
            if current == *spec && held_by.is_none() {
                return Ok(()); // never injected, or already restored
            }
            if current != *injected && current != *spec {
                return Err(RestoreError::Drift(
                    "its spec was changed by someone else while the fault lasted; the prior spec is in the journal".into(),
                ));
            }
            let mut back = now;
            back.data["spec"] = spec.clone();
            set_annotation(&mut back, None);
            c.replace_virtual_service(&back).await?;
            Ok(())
        }
    }
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
