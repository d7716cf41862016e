//! Kube clients for named contexts only. The kubeconfig is found as kubectl
//! finds it (`$KUBECONFIG`, a list merged in order, else `~/.kube/config`)
//! unless the target names one; its current-context is never used.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::ops::Cluster;
use crate::targets::TargetError;

/// The kubeconfig files to read: the target's override, else kubectl's.
pub fn sources(overridden: Option<&PathBuf>) -> Result<Vec<PathBuf>, TargetError> {
    if let Some(p) = overridden {
        return Ok(vec![p.clone()]);
    }
    if let Some(v) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return Ok(paths);
        }
    }
    match std::env::var_os("HOME") {
        Some(h) => Ok(vec![PathBuf::from(h).join(".kube/config")]),
        None => Err(TargetError::Invalid(
            "no kubeconfig: set KUBECONFIG, or `kubeconfig` in the target".into(),
        )),
    }
}

/// Reads and merges the kubeconfig files.
pub fn load(paths: &[PathBuf]) -> Result<Kubeconfig, TargetError> {
    let mut merged = Kubeconfig::default();
    for p in paths {
        let one = Kubeconfig::read_from(p).map_err(|e| {
            TargetError::Invalid(format!("cannot read kubeconfig {}: {e}", p.display()))
        })?;
        merged = merged
            .merge(one)
            .map_err(|e| TargetError::Invalid(format!("kubeconfig {}: {e}", p.display())))?;
    }
    Ok(merged)
}

/// A client for one context of an already-read kubeconfig.
pub async fn for_context(kc: &Kubeconfig, context: &str) -> Result<Cluster, TargetError> {
    if !kc.contexts.iter().any(|c| c.name == context) {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(TargetError::Preflight(format!(
            "kube context `{context}` is not in the kubeconfig (it has: {})",
            known.join(", ")
        )));
    }
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let mut cfg = Config::from_custom_kubeconfig(kc.clone(), &opts)
        .await
        .map_err(|e| TargetError::Invalid(format!("kube context `{context}`: {e}")))?;
    // A drill must notice a dead API server in seconds, not minutes.
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg.read_timeout = Some(Duration::from_secs(20));
    cfg.write_timeout = Some(Duration::from_secs(20));
    tracing::debug!(context, cluster_url = %cfg.cluster_url, "kube client");
    let client = Client::try_from(cfg).map_err(|e| {
        tracing::warn!(context, error = %e, "kube client not built");
        TargetError::Invalid(format!("kube context `{context}`: {e}"))
    })?;
    Ok(Cluster::new(context, client))
}

/// A client for `context` from the given kubeconfig files.
pub async fn connect(paths: &[PathBuf], context: &str) -> Result<Cluster, TargetError> {
    for_context(&load(paths)?, context).await
}
