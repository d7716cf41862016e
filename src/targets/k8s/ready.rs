//! Kubernetes-side recovery: the time until the touched pods are Ready
//! again, polled in the background for the runner or awaited directly.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ops::Cluster;
use super::{K8sInjection, K8sTarget, Watch};
use crate::measure::Micros;
use crate::targets::error::TargetError;

impl K8sTarget {
    /// When the touched component's pods were all Ready again (after a
    /// `delete`, or after a `down` / `region-outage` was reverted).
    /// Polled by the runner: the first call after the fault starts a
    /// background watch (stopped when the injection is dropped, or after an
    /// hour), later calls read what it found.
    pub fn healed_at(&self, inj: &K8sInjection) -> Option<Micros> {
        if inj.armed.load(Ordering::SeqCst)
            && !inj.watching.swap(true, Ordering::SeqCst)
            && let (Ok(cluster), Ok(rt)) = (
                self.cluster(&inj.region).cloned(),
                tokio::runtime::Handle::try_current(),
            )
        {
            let (watches, clock, poll) = (inj.watches.clone(), self.clock, self.poll);
            let cell = Arc::downgrade(&inj.ready);
            rt.spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
                while tokio::time::Instant::now() < deadline && cell.strong_count() > 0 {
                    if all_ready(&cluster, &watches).await {
                        if let Some(c) = cell.upgrade() {
                            *c.lock().expect("ready lock") = Some(clock.now());
                        }
                        return;
                    }
                    tokio::time::sleep(poll).await;
                }
            });
        }
        *inj.ready.lock().expect("ready lock")
    }

    /// Waits until the touched pods are Ready again: at least as many as
    /// before the fault, none of them one it deleted. Gives the run-clock time.
    pub async fn wait_ready(
        &self,
        inj: &K8sInjection,
        limit: Duration,
    ) -> Result<Micros, TargetError> {
        let cluster = self.cluster(&inj.region)?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if all_ready(cluster, &inj.watches).await {
                return Ok(self.clock.now());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TargetError::Drift(format!(
                    "pods of {} not Ready again after {limit:?}",
                    inj.watches
                        .iter()
                        .map(|w| format!("`{}` in `{}`", w.selector, w.namespace))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

pub(super) async fn all_ready(cluster: &Cluster, watches: &[Watch]) -> bool {
    for w in watches {
        let ready = match cluster.pods(&w.namespace, &w.selector).await {
            Ok(pods) => pods
                .iter()
                .filter(|p| p.ready && !p.terminating && !w.gone.contains(&p.uid))
                .count(),
            Err(_) => return false,
        };
        if ready < w.ready_before.max(1) {
            return false;
        }
    }
    true
}
