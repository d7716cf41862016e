//! Which Deployments serve a component: every Deployment of its namespace
//! whose pod template the component's selector takes in (`reviews-v1`,
//! `-v2` and `-v3` for `app=reviews`), so a `down` or a region outage takes
//! all of the component's pods away, not one version of them. Pods the
//! selector matches but none of those Deployments owns (a StatefulSet's,
//! a DaemonSet's, bare pods) would keep serving: preflight refuses them.

use super::ops::{Cluster, DeploymentInfo, K8sError, PodState};
use super::selector::Selector;
use super::settings::ComponentObjects;

/// The Deployments whose pod template `c`'s selector matches, by name.
pub(super) async fn deployments_of(
    cluster: &Cluster,
    c: &ComponentObjects,
) -> Result<Vec<DeploymentInfo>, ServedError> {
    let sel = Selector::parse(&c.selector).map_err(ServedError::Selector)?;
    let mut deps: Vec<DeploymentInfo> = cluster
        .deployments(&c.namespace)
        .await?
        .into_iter()
        .filter(|d| sel.matches(&d.template_labels))
        .collect();
    deps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(deps)
}

/// The pods (by name) that none of `deps` owns.
pub(super) fn unowned(pods: &[PodState], deps: &[DeploymentInfo]) -> Vec<String> {
    pods.iter()
        .filter(|p| !p.terminating && !deps.iter().any(|d| d.owns.matches(&p.labels)))
        .map(|p| p.name.clone())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ServedError {
    #[error(transparent)]
    Api(#[from] K8sError),
    #[error("{0}")]
    Selector(String),
}
