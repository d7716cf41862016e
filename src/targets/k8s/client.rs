//! Kube clients for named contexts only. The kubeconfig is found as kubectl
//! finds it (`$KUBECONFIG`, a list merged in order, else `~/.kube/config`)
//! unless the target names one; its current-context is never used.
//!
//! In a pod, a region whose context is [`IN_CLUSTER`] uses the pod's
//! ServiceAccount (kube's in-cluster config) and the other regions come from
//! a kubeconfig file (a mounted Secret); with no kubeconfig at all, only
//! in-cluster contexts can be used.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::ops::Cluster;
use crate::targets::error::TargetError;

/// The context name that means "this pod's ServiceAccount", unless the
/// kubeconfig defines a context of that name itself.
pub(crate) const IN_CLUSTER: &str = "in-cluster";

/// The kubeconfig files to read: the target's override, else kubectl's.
pub(crate) fn sources(overridden: Option<&PathBuf>) -> Result<Vec<PathBuf>, TargetError> {
    sources_in(overridden, |k| std::env::var_os(k))
}

/// [`sources`] with the environment given: in a pod
/// (`KUBERNETES_SERVICE_HOST` set) without `~/.kube/config`, none at all.
fn sources_in(
    overridden: Option<&PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<PathBuf>, TargetError> {
    if let Some(p) = overridden {
        return Ok(vec![p.clone()]);
    }
    if let Some(v) = env("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return Ok(paths);
        }
    }
    let home = env("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
    match home {
        Some(p) if p.is_file() || env("KUBERNETES_SERVICE_HOST").is_none() => Ok(vec![p]),
        _ if env("KUBERNETES_SERVICE_HOST").is_some() => Ok(Vec::new()),
        _ => Err(TargetError::Invalid(
            "no kubeconfig: set KUBECONFIG, or `kubeconfig` in the target".into(),
        )),
    }
}

/// Reads and merges the kubeconfig files.
pub(crate) fn load(paths: &[PathBuf]) -> Result<Kubeconfig, TargetError> {
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
pub(crate) async fn for_context(kc: &Kubeconfig, context: &str) -> Result<Cluster, TargetError> {
    let cfg = config(kc, context).await?;
    build(cfg, context)
}

/// A client for one context that does not retry: kube's default client
/// retries 429/503/504 up to 15 times, backing off for minutes in all,
/// and a generator agent that does not answer through the pod proxy must
/// show within the runner's poll interval, not minutes later.
pub(crate) async fn for_context_without_retries(
    kc: &Kubeconfig,
    context: &str,
) -> Result<Cluster, TargetError> {
    let mut cfg = config(kc, context).await?;
    cfg.default_retry = false;
    build(cfg, context)
}

async fn config(kc: &Kubeconfig, context: &str) -> Result<Config, TargetError> {
    let defined = kc.contexts.iter().any(|c| c.name == context);
    let mut cfg = if !defined && context == IN_CLUSTER {
        in_cluster()?
    } else if !defined {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(TargetError::Preflight(format!(
            "kube context `{context}` is not in the kubeconfig (it has: {}); in a pod, `{IN_CLUSTER}` names the pod's ServiceAccount",
            known.join(", ")
        )));
    } else {
        let opts = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        Config::from_custom_kubeconfig(kc.clone(), &opts)
            .await
            .map_err(|e| TargetError::Invalid(format!("kube context `{context}`: {e}")))?
    };
    // A drill must notice a dead API server in seconds, not minutes.
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg.read_timeout = Some(Duration::from_secs(20));
    cfg.write_timeout = Some(Duration::from_secs(20));
    Ok(cfg)
}

fn build(cfg: Config, context: &str) -> Result<Cluster, TargetError> {
    tracing::debug!(context, cluster_url = %cfg.cluster_url, "kube client");
    let client = Client::try_from(cfg).map_err(|e| {
        tracing::warn!(context, error = %e, "kube client not built");
        TargetError::Invalid(format!("kube context `{context}`: {e}"))
    })?;
    Ok(Cluster::new(context, client))
}

/// The pod's ServiceAccount: kube's in-cluster config (the API server from
/// `KUBERNETES_SERVICE_HOST`/`_PORT`, token and CA certificate from
/// /var/run/secrets/kubernetes.io/serviceaccount/).
fn in_cluster() -> Result<Config, TargetError> {
    Config::incluster().map_err(|e| {
        let why = match (
            std::env::var_os("KUBERNETES_SERVICE_HOST"),
            std::env::var_os("KUBERNETES_SERVICE_PORT"),
        ) {
            (None, _) | (_, None) => {
                "KUBERNETES_SERVICE_HOST/_PORT are not set: not in a pod".to_string()
            }
            _ => crate::base::chain::chain(&e),
        };
        TargetError::Invalid(format!(
            "kube context `{IN_CLUSTER}`: no in-cluster credentials ({why}); it works only in a pod with a ServiceAccount token mounted (automountServiceAccountToken), else map the region to a context of a kubeconfig"
        ))
    })
}

/// A client for `context` from the given kubeconfig files.
pub(crate) async fn connect(paths: &[PathBuf], context: &str) -> Result<Cluster, TargetError> {
    for_context(&load(paths)?, context).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn in_a_pod_without_a_kubeconfig_no_file_is_read() {
        let empty_home = tempfile::tempdir().unwrap();
        let home = empty_home.path().to_str().unwrap();
        let pod = [("HOME", home), ("KUBERNETES_SERVICE_HOST", "10.0.0.1")];
        assert_eq!(sources_in(None, env(&pod)).unwrap(), Vec::<PathBuf>::new());
        // Outside a pod the missing ~/.kube/config is still read, and its
        // absence reported by `load` with the path.
        let laptop = [("HOME", home)];
        let paths = sources_in(None, env(&laptop)).unwrap();
        assert_eq!(paths, vec![empty_home.path().join(".kube/config")]);
        let err = load(&paths).unwrap_err().to_string();
        assert!(err.contains(".kube/config"), "{err}");
        // KUBECONFIG and the target's own file win over the pod.
        let with = [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBECONFIG", "/a:/b"),
        ];
        assert_eq!(
            sources_in(None, env(&with)).unwrap(),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        let own = PathBuf::from("/etc/drill/remote/kubeconfig");
        assert_eq!(sources_in(Some(&own), env(&with)).unwrap(), vec![own]);
    }

    #[tokio::test]
    async fn a_kubeconfig_context_named_in_cluster_is_taken_from_the_kubeconfig() {
        let kc: Kubeconfig = serde_yaml_ng::from_str(
            "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
             contexts: [{name: in-cluster, context: {cluster: c, user: u}}]\n\
             users: [{name: u, user: {token: t}}]\n",
        )
        .unwrap();
        let c = for_context(&kc, IN_CLUSTER).await.unwrap();
        assert_eq!(c.context, IN_CLUSTER);
        let err = match for_context(&kc, "elsewhere").await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an unknown context was accepted"),
        };
        assert!(
            err.contains("`elsewhere` is not in the kubeconfig (it has: in-cluster)"),
            "{err}"
        );
    }
}
