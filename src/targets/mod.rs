//! Targets: where a drill runs. A target resolves the components a scenario
//! names to concrete handles and applies faults to them. `lab` is built in;
//! `http` is just an entry URL, drilled with `command` faults only.

pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod database;
pub(crate) mod error;
pub mod journal;
pub mod k8s;
pub(crate) mod kind;
pub(crate) mod lab;
pub(crate) mod vantage;

use tokio::sync::mpsc;

pub use config::{TargetDef, Targets};
pub use error::TargetError;
use k8s::{K8sInjection, K8sTarget};
use lab::supervisor::LabEvent;
use lab::{Lab, LabInjection};

use crate::base::clock::Clock;
use crate::measure::Micros;
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::scenario::{Catalogue, ComponentInfo};
use crate::targets::journal::RevertPlan;

impl TargetDef {
    pub fn catalogue(&self) -> Catalogue {
        let (mut cat, db) = match self {
            TargetDef::Lab { .. } => return lab::catalogue(),
            TargetDef::Http { database, .. } => (Catalogue::default(), database),
            TargetDef::Kubernetes {
                settings, database, ..
            } => (k8s::catalogue(settings), database),
        };
        if let Some(db) = db {
            let mut actions = Vec::new();
            if db.switchover.is_some() {
                actions.push(Action::Switchover);
            }
            if db.failover.is_some() {
                actions.push(Action::Failover);
            }
            cat.components.push(ComponentInfo {
                name: "database",
                regions: vec![],
                actions,
            });
        }
        cat
    }

    /// Settings worth showing in the report.
    pub fn describe(&self) -> Vec<(String, String)> {
        match self {
            TargetDef::Lab { settings: s, .. } => vec![
                ("lab.health.interval".into(), s.health.interval.to_string()),
                ("lab.health.timeout".into(), s.health.timeout.to_string()),
                (
                    "lab.health.unhealthy_threshold".into(),
                    s.health.unhealthy_threshold.to_string(),
                ),
                (
                    "lab.health.healthy_threshold".into(),
                    s.health.healthy_threshold.to_string(),
                ),
                ("lab.failover".into(), s.failover.to_string()),
                ("lab.restart_delay".into(), s.restart_delay.to_string()),
                ("lab.service_time".into(), s.service_time.to_string()),
                (
                    "lab.database.synchronous".into(),
                    s.database.synchronous.to_string(),
                ),
            ],
            TargetDef::Http { url, .. } => vec![("url".into(), url.clone())],
            TargetDef::Kubernetes { settings: s, .. } => {
                let mut v = vec![("url".into(), s.url.clone())];
                for (region, ctx) in &s.contexts {
                    v.push((format!("kubernetes.context.{region}"), ctx.clone()));
                }
                for (region, url) in &s.ingress {
                    v.push((format!("kubernetes.ingress.{region}"), url.clone()));
                }
                if let Some(k) = &s.kubeconfig {
                    v.push(("kubernetes.kubeconfig".into(), k.display().to_string()));
                }
                v
            }
        }
    }
}

/// A target started for one run.
pub enum Target {
    Lab(Box<Lab>),
    Http { url: String },
    Kubernetes(Box<K8sTarget>),
}

/// A fault applied to a target, as the target needs it to revert.
#[derive(Clone, Debug)]
pub enum Injection {
    Lab(LabInjection),
    K8s(K8sInjection),
    /// Command faults: the target is not involved.
    None,
}

impl Target {
    pub async fn start(
        def: &TargetDef,
        run_id: &str,
        clock: Clock,
        events: mpsc::UnboundedSender<LabEvent>,
    ) -> Result<Target, TargetError> {
        tracing::info!(
            target_name = def.name(),
            kind = def.kind(),
            run_id,
            "starting target"
        );
        let started = match def {
            TargetDef::Lab { settings, .. } => Lab::start(settings.clone(), run_id, clock, events)
                .await
                .map(|l| Target::Lab(Box::new(l))),
            TargetDef::Http { url, .. } => Ok(Target::Http {
                url: url.trim_end_matches('/').to_string(),
            }),
            TargetDef::Kubernetes { settings, .. } => K8sTarget::connect(settings, run_id, clock)
                .await
                .map(|k| Target::Kubernetes(Box::new(k))),
        };
        match &started {
            Ok(t) => {
                tracing::info!(target_name = def.name(), entry = %t.entry_url(), "target ready")
            }
            Err(e) => tracing::warn!(target_name = def.name(), error = %e, "target did not start"),
        }
        started
    }

    pub fn entry_url(&self) -> String {
        match self {
            Target::Lab(l) => l.entry_url(),
            Target::Http { url } => url.clone(),
            Target::Kubernetes(k) => k.entry_url(),
        }
    }

    /// The lab's entry through one region's ingress gateway (a vantage
    /// point with `region`), bypassing the global entry's steering.
    pub fn region_entry_url(&self, region: &str) -> Option<String> {
        match self {
            Target::Lab(l) => l.region_entry_url(region),
            _ => None,
        }
    }

    /// Checks that every component the faults touch is there and running.
    pub async fn preflight(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        let res = self.preflight_checks(faults).await;
        match &res {
            Ok(()) => tracing::info!(faults = faults.len(), "preflight passed"),
            Err(e) => tracing::warn!(error = %e, "preflight failed"),
        }
        res
    }

    async fn preflight_checks(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        match self {
            Target::Lab(l) => l.preflight(faults),
            Target::Kubernetes(k) => k.preflight(faults).await,
            Target::Http { .. } => match faults.iter().find(|f| f.action.via_target()) {
                Some(f) => Err(TargetError::Unsupported(format!(
                    "fault `{}`: an http target supports only `command` and database faults",
                    f.name.clone()
                ))),
                None => Ok(()),
            },
        }
    }

    /// Claims every object the faults will change, before any prior state
    /// is read, so no other drill changes them meanwhile (Kubernetes: a
    /// Lease each). The lab needs none: each run starts its own.
    pub async fn claim(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        match self {
            Target::Kubernetes(k) => k.claim(faults).await,
            Target::Lab(_) | Target::Http { .. } => Ok(()),
        }
    }

    /// Resolves a fault to the handle and the journal's revert plan, touching nothing.
    pub async fn plan(&self, f: &FaultPlan) -> Result<(Injection, RevertPlan), TargetError> {
        match self {
            Target::Lab(l) => l.plan(f).map(|(i, p)| (Injection::Lab(i), p)),
            Target::Kubernetes(k) => k
                .plan(f, k.seed())
                .await
                .map(|(i, p)| (Injection::K8s(i), p)),
            Target::Http { .. } => Err(TargetError::Unsupported(
                "http targets take only command faults".into(),
            )),
        }
    }

    pub async fn inject(&self, f: &FaultPlan, inj: &Injection) -> Result<(), TargetError> {
        match (self, inj) {
            (Target::Lab(l), Injection::Lab(i)) => l.inject(f, i).await,
            (Target::Kubernetes(k), Injection::K8s(i)) => k.inject(f, i).await,
            _ => Err(TargetError::Unsupported(
                "fault does not apply to this target".into(),
            )),
        }
    }

    pub async fn revert(&self, f: &FaultPlan, inj: &Injection) -> Result<(), TargetError> {
        match (self, inj) {
            (Target::Lab(l), Injection::Lab(i)) => l.revert(f, i).await,
            (Target::Kubernetes(k), Injection::K8s(i)) => k.revert(f, i).await,
            _ => Ok(()),
        }
    }

    /// After a successful revert: the objects it found already restored by
    /// someone else, when drill had nothing left to undo.
    pub fn already_restored(&self, inj: &Injection) -> Option<String> {
        match inj {
            Injection::K8s(i) => i.already_restored(),
            _ => None,
        }
    }

    /// For self-healing faults: when the touched component was serving again.
    pub fn healed_at(&self, inj: &Injection) -> Option<Micros> {
        match (self, inj) {
            (Target::Lab(l), Injection::Lab(i)) => l.healed_at(i),
            (Target::Kubernetes(k), Injection::K8s(i)) => k.healed_at(i),
            _ => None,
        }
    }

    /// Makes a routing change on the control plane's side; returns its version.
    pub fn change_config(&self) -> Result<u64, TargetError> {
        match self {
            Target::Lab(l) => l.change_config(),
            Target::Http { .. } | Target::Kubernetes(_) => Err(TargetError::Unsupported(
                "routing changes need the lab".into(),
            )),
        }
    }

    /// Whether the whole data plane has applied configuration `version`.
    pub async fn config_applied(&self, version: u64) -> bool {
        match self {
            Target::Lab(l) => l.config_applied(version).await,
            Target::Http { .. } | Target::Kubernetes(_) => false,
        }
    }

    /// Cross-region calls so far and how many failed (lab data plane).
    pub async fn cross_region(&self) -> Option<(u64, u64)> {
        match self {
            Target::Lab(l) => l.cross_region().await,
            Target::Http { .. } | Target::Kubernetes(_) => None,
        }
    }

    /// The run's seed, for faults that choose (which pods a `delete` takes).
    pub fn set_seed(&mut self, seed: u64) {
        if let Target::Kubernetes(k) = self {
            k.set_seed(seed);
        }
    }

    pub async fn stop(&mut self) {
        match self {
            Target::Lab(l) => l.stop().await,
            Target::Kubernetes(k) => k.release_claims().await,
            Target::Http { .. } => {}
        }
    }
}
