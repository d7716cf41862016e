//! What the journal keeps to revert a Kubernetes fault, and nothing else:
//! the context, the objects' prior states and the run's claims (Leases).
//! Plain data, read back by a live run and by `drill cleanup` after a crash;
//! `restore` acts on it. Journals written by earlier drill versions still
//! read (see `Recorded`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::istio::RouteFault;

/// One Lease: its namespace (the object's) and name (`drill.<kind>.<name>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseRef {
    pub namespace: String,
    pub name: String,
}

impl LeaseRef {
    /// The Lease for a `kind` (`deployment`, `virtualservice`) object.
    pub fn for_object(kind: &str, namespace: &str, name: &str) -> LeaseRef {
        let mut lease = format!("drill.{kind}.{name}");
        // A Lease name is a DNS subdomain: 253 characters at most.
        lease.truncate(253);
        LeaseRef {
            namespace: namespace.to_string(),
            name: lease,
        }
    }
}

/// How to revert one Kubernetes fault: what the journal holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct K8sRevert {
    pub context: String,
    /// The kubeconfig files the run read (merged as kubectl does).
    pub kubeconfig: Vec<PathBuf>,
    pub run_id: String,
    pub objects: Vec<PriorState>,
    /// The claims (Leases) the run took on the objects: released once the
    /// objects are restored. Empty in journals of drills before claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseRef>,
}

/// One object's state before the fault, and what the fault made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "kebab-case", from = "Recorded")]
pub enum PriorState {
    /// A Deployment scaled to zero; `replicas` is the count to restore.
    Deployment {
        namespace: String,
        name: String,
        replicas: i32,
        resource_version: String,
    },
    /// A VirtualService whose HTTP routes got a `fault` block: each route
    /// with the fault drill wrote and the one it had before.
    VirtualService {
        namespace: String,
        name: String,
        resource_version: String,
        routes: Vec<RouteFault>,
    },
}

/// A journal's object as written by any drill version: earlier ones kept a
/// VirtualService's whole `spec` before and after instead of its `routes`.
/// An entry left open by one of them must still revert, not be skipped.
#[derive(Deserialize)]
#[serde(tag = "object", rename_all = "kebab-case")]
enum Recorded {
    Deployment {
        namespace: String,
        name: String,
        replicas: i32,
        resource_version: String,
    },
    VirtualService {
        namespace: String,
        name: String,
        resource_version: String,
        #[serde(default)]
        routes: Vec<RouteFault>,
        #[serde(default)]
        spec: Option<Value>,
        #[serde(default)]
        injected: Option<Value>,
    },
}

impl From<Recorded> for PriorState {
    fn from(r: Recorded) -> PriorState {
        match r {
            Recorded::Deployment {
                namespace,
                name,
                replicas,
                resource_version,
            } => PriorState::Deployment {
                namespace,
                name,
                replicas,
                resource_version,
            },
            Recorded::VirtualService {
                namespace,
                name,
                resource_version,
                mut routes,
                spec,
                injected,
            } => {
                if routes.is_empty()
                    && let (Some(before), Some(after)) = (spec, injected)
                {
                    routes = routes_between(&before, &after);
                }
                PriorState::VirtualService {
                    namespace,
                    name,
                    resource_version,
                    routes,
                }
            }
        }
    }
}

/// The route faults that turn spec `before` into `after`.
fn routes_between(before: &Value, after: &Value) -> Vec<RouteFault> {
    let http = |v: &Value| {
        v.get("http")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    http(before)
        .iter()
        .zip(http(after).iter())
        .enumerate()
        .filter_map(|(index, (b, a))| {
            let injected = a.get("fault")?;
            (b.get("fault") != Some(injected)).then(|| RouteFault {
                index,
                name: a.get("name").and_then(Value::as_str).map(str::to_string),
                injected: injected.clone(),
                prior: b.get("fault").cloned(),
            })
        })
        .collect()
}
