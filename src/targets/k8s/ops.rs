//! The Kubernetes API calls the faults are made of, one function each, with
//! API errors turned into what a person needs to read: which context, which
//! object, and whether it was forbidden, missing, changed by someone else or
//! not reachable at all.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    Preconditions,
};
use kube::{Client, core::GroupVersionKind};
use serde_json::json;

use super::selector::Selector;

/// The annotation that marks an object as held by a drill's fault.
pub(crate) const RUN_ANNOTATION: &str = "drill.dev/run-id";

/// A failed API call, said in the domain's words.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("context `{context}`: {what}: forbidden ({message})")]
    Forbidden {
        context: String,
        what: String,
        message: String,
    },
    #[error("context `{context}`: {what}: not found")]
    NotFound { context: String, what: String },
    #[error("context `{context}`: {what}: changed by someone else since drill read it ({message})")]
    Conflict {
        context: String,
        what: String,
        message: String,
    },
    /// 422: the API server refused the request as it stands, e.g. a JSON
    /// Patch whose `test` no longer holds.
    #[error("context `{context}`: {what}: refused ({message})")]
    Rejected {
        context: String,
        what: String,
        message: String,
    },
    #[error("context `{context}` unreachable: {what}: {message}")]
    Unreachable {
        context: String,
        what: String,
        /// The chain in words (hyper, TLS), for the person reading.
        message: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("context `{context}`: {what}: {code} {message}")]
    Api {
        context: String,
        what: String,
        code: u16,
        message: String,
    },
}

impl K8sError {
    pub(crate) fn from_kube(context: &str, what: impl Into<String>, e: kube::Error) -> K8sError {
        let (context, what) = (context.to_string(), what.into());
        // The full error chain (hyper, TLS) goes to the log; the K8sError
        // keeps what a person acts on.
        tracing::debug!(context, what, error = ?e, "kube API call failed");
        match e {
            kube::Error::Api(s) => match s.code {
                403 => K8sError::Forbidden {
                    context,
                    what,
                    message: s.message,
                },
                404 => K8sError::NotFound { context, what },
                409 => K8sError::Conflict {
                    context,
                    what,
                    message: s.message,
                },
                422 => K8sError::Rejected {
                    context,
                    what,
                    message: s.message,
                },
                code => K8sError::Api {
                    context,
                    what,
                    code,
                    message: s.message,
                },
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => K8sError::Unreachable {
                context,
                what,
                message: match &e {
                    kube::Error::HyperError(h) => h.to_string(),
                    kube::Error::Service(s) => crate::base::chain::chain(&**s),
                    other => other.to_string(),
                },
                source: Box::new(e),
            },
            other => K8sError::Api {
                context,
                what,
                code: 0,
                message: other.to_string(),
            },
        }
    }
}

type R<T> = Result<T, K8sError>;

/// One kube context's API, as the faults use it.
#[derive(Clone)]
pub struct Cluster {
    pub context: String,
    pub client: Client,
}

/// A pod as a fault sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodState {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    pub terminating: bool,
    pub labels: BTreeMap<String, String>,
}

/// A Deployment as listed: which pods it makes and which it owns.
#[derive(Clone, Debug)]
pub struct DeploymentInfo {
    pub name: String,
    pub state: DeploymentState,
    /// Its pod template's labels: what a component's selector is matched on.
    pub template_labels: BTreeMap<String, String>,
    /// Its own `spec.selector`: the pods it owns, of every revision.
    pub owns: Selector,
}

/// A Deployment's replica count and version, and who holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentState {
    pub replicas: i32,
    pub resource_version: String,
    pub held_by: Option<String>,
}

fn vs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    )
}

impl Cluster {
    pub fn new(context: impl Into<String>, client: Client) -> Cluster {
        Cluster {
            context: context.into(),
            client,
        }
    }

    fn err(&self, what: impl Into<String>) -> impl FnOnce(kube::Error) -> K8sError + '_ {
        let what = what.into();
        move |e| K8sError::from_kube(&self.context, what, e)
    }

    /// Whether the API server answers at all.
    pub async fn reachable(&self) -> R<()> {
        self.client
            .apiserver_version()
            .await
            .map(|_| ())
            .map_err(self.err("GET /version"))
    }

    pub async fn pods(&self, namespace: &str, selector: &str) -> R<Vec<PodState>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(self.err(format!("list pods `{selector}` in `{namespace}`")))?;
        Ok(list
            .items
            .into_iter()
            .map(|p| {
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                PodState {
                    labels: p.metadata.labels.unwrap_or_default(),
                    name: p.metadata.name.unwrap_or_default(),
                    uid: p.metadata.uid.unwrap_or_default(),
                    ready,
                    terminating: p.metadata.deletion_timestamp.is_some(),
                }
            })
            .collect())
    }

    /// Deletes one pod, only if it is still the one that was listed (uid).
    pub async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> R<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        api.delete(name, &dp)
            .await
            .map(|_| ())
            .map_err(self.err(format!("delete pod `{namespace}/{name}`")))
    }

    /// Every Deployment of a namespace.
    pub async fn deployments(&self, namespace: &str) -> R<Vec<DeploymentInfo>> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(self.err(format!("list deployments in `{namespace}`")))?;
        Ok(list
            .items
            .into_iter()
            .map(|d| {
                let spec = d.spec.unwrap_or_default();
                DeploymentInfo {
                    name: d.metadata.name.unwrap_or_default(),
                    state: DeploymentState {
                        replicas: spec.replicas.unwrap_or(1),
                        resource_version: d.metadata.resource_version.unwrap_or_default(),
                        held_by: d
                            .metadata
                            .annotations
                            .and_then(|mut a| a.remove(RUN_ANNOTATION)),
                    },
                    template_labels: spec
                        .template
                        .metadata
                        .and_then(|m| m.labels)
                        .unwrap_or_default(),
                    owns: Selector::of(&spec.selector),
                }
            })
            .collect())
    }

    pub async fn deployment(&self, namespace: &str, name: &str) -> R<DeploymentState> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let d = api
            .get(name)
            .await
            .map_err(self.err(format!("get deployment `{namespace}/{name}`")))?;
        Ok(DeploymentState {
            replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            resource_version: d.metadata.resource_version.unwrap_or_default(),
            held_by: d
                .metadata
                .annotations
                .and_then(|mut a| a.remove(RUN_ANNOTATION)),
        })
    }

    /// Sets the replica count through the scale subresource, only if the
    /// Deployment is still at `resource_version` (else: conflict).
    pub async fn scale(
        &self,
        namespace: &str,
        name: &str,
        replicas: i32,
        resource_version: &str,
    ) -> R<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let body = Scale {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                resource_version: Some(resource_version.into()),
                ..Default::default()
            },
            spec: Some(ScaleSpec {
                replicas: Some(replicas),
            }),
            status: None,
        };
        api.replace_scale(name, &PostParams::default(), &body)
            .await
            .map(|_| ())
            .map_err(self.err(format!(
                "scale deployment `{namespace}/{name}` to {replicas}"
            )))
    }

    /// Marks (`Some(run)`) or unmarks (`None`) a Deployment as held by a
    /// run; with `resource_version`, only if it is still at that version
    /// (else: conflict). Returns the Deployment's new version.
    pub async fn annotate_deployment(
        &self,
        namespace: &str,
        name: &str,
        run_id: Option<&str>,
        resource_version: Option<&str>,
    ) -> R<String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let mut patch = json!({ "metadata": { "annotations": { RUN_ANNOTATION: run_id } } });
        if let Some(rv) = resource_version {
            patch["metadata"]["resourceVersion"] = json!(rv);
        }
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|d| d.metadata.resource_version.unwrap_or_default())
            .map_err(self.err(format!("annotate deployment `{namespace}/{name}`")))
    }

    pub async fn virtual_service(&self, namespace: &str, name: &str) -> R<DynamicObject> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &vs_resource());
        api.get(name)
            .await
            .map_err(self.err(format!("get virtualservice `{namespace}/{name}`")))
    }

    /// Replaces a VirtualService; the object's resourceVersion is the
    /// precondition (a change since it was read is a conflict).
    pub async fn replace_virtual_service(&self, obj: &DynamicObject) -> R<DynamicObject> {
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &namespace, &vs_resource());
        api.replace(&name, &PostParams::default(), obj)
            .await
            .map_err(self.err(format!("update virtualservice `{namespace}/{name}`")))
    }

    /// Applies a JSON Patch (RFC 6902) to a VirtualService. Its `test`
    /// operations are the precondition: if one fails the API server
    /// applies nothing and answers 422 ([`K8sError::Rejected`]).
    pub async fn json_patch_virtual_service(
        &self,
        namespace: &str,
        name: &str,
        ops: serde_json::Value,
    ) -> R<DynamicObject> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &vs_resource());
        let what = format!("patch virtualservice `{namespace}/{name}`");
        let patch = serde_json::from_value(ops).map_err(|e| K8sError::Api {
            context: self.context.clone(),
            what: what.clone(),
            code: 0,
            message: format!("not a JSON Patch: {e}"),
        })?;
        api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(self.err(what))
    }

    /// Whether this context's credentials may `verb` the resource.
    pub async fn may(&self, need: &Permission) -> R<bool> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(need.namespace.clone()),
                    verb: Some(need.verb.into()),
                    group: Some(need.group.into()),
                    resource: Some(need.resource.into()),
                    subresource: need.subresource.map(str::to_string),
                    name: need.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let out = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(self.err(format!("access review for {need}")))?;
        Ok(out.status.is_some_and(|s| s.allowed))
    }
}

/// One permission a plan needs, checked with a SelfSubjectAccessReview.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub namespace: String,
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// The one object it is on (a Role's `resourceNames`), when the target
    /// names it; `None` for verbs on the collection (list, create) and for
    /// objects found only at run time.
    pub name: Option<String>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut r = self.resource.to_string();
        if let Some(s) = self.subresource {
            r = format!("{r}/{s}");
        }
        if !self.group.is_empty() {
            r = format!("{r}.{}", self.group);
        }
        match &self.name {
            Some(n) => write!(
                f,
                "`{} {r}` `{n}` in namespace `{}`",
                self.verb, self.namespace
            ),
            None => write!(f, "`{} {r}` in namespace `{}`", self.verb, self.namespace),
        }
    }
}
