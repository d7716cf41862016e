//! The built-in lab: a two-region replica of the users' topology made of
//! real processes on 127.0.0.1. A global entry point health-checks the two
//! regions' ingress gateways and steers to the primary while it is healthy;
//! each gateway fronts its region's productpage.

pub(crate) mod http;
pub(crate) mod mesh;
pub(crate) mod metrics;
pub(crate) mod monitoring;
pub(crate) mod serve;
pub(crate) mod settings;
pub(crate) mod supervisor;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use mesh::Endpoint;
use serve::{ADMIN_PATH, CONFIG_PATH, FaultRule, ProcessSpec, Role, Route, STATS_PATH};
pub(crate) use settings::LabSettings;
use supervisor::{LabEvent, Supervisor};

use crate::base::clock::Clock;
use crate::measure::Micros;
use crate::scenario::model::Action;
use crate::scenario::plan::FaultPlan;
use crate::scenario::{Catalogue, ComponentInfo};
use crate::targets::error::TargetError;
use crate::targets::journal::RevertPlan;

pub(crate) const REGIONS: [&str; 2] = ["primary", "secondary"];

/// Components a scenario can name on the lab, and the actions each takes.
pub(crate) fn catalogue() -> Catalogue {
    let regional = |name: &'static str, actions: &[Action]| ComponentInfo {
        name,
        regions: REGIONS.to_vec(),
        actions: actions.to_vec(),
    };
    let all = [Action::Delete, Action::Down, Action::Latency, Action::Abort];
    Catalogue {
        components: vec![
            ComponentInfo {
                name: "global-entry",
                regions: vec![],
                actions: vec![Action::Latency, Action::Abort],
            },
            regional("ingress-gateway", &all),
            regional("eastwest-gateway", &all),
            regional("productpage", &all),
            regional("reviews", &all),
            regional("istiod", &[Action::Delete, Action::Down]),
            ComponentInfo {
                name: "database",
                regions: vec![],
                actions: vec![Action::Switchover, Action::Failover],
            },
        ],
        regions: REGIONS.to_vec(),
    }
}

/// A running lab.
pub struct Lab {
    supervisor: Supervisor,
    entry_port: u16,
    /// Each instance's port, for its admin endpoint.
    ports: BTreeMap<String, u16>,
    admin: http::HttpClient,
    /// The mesh configuration the control planes serve.
    config_file: std::path::PathBuf,
    /// An Alertmanager to use instead of starting one.
    pub alertmanager: Option<String>,
}

/// A lab fault in progress: which instances it touched and their state then.
#[derive(Clone, Debug)]
pub struct LabInjection {
    pub instances: Vec<(String, u32)>,
    pub pids: Vec<u32>,
}

fn key(component: &str, region: Option<&str>) -> String {
    match region {
        Some(r) => format!("{component}/{r}"),
        None => component.to_string(),
    }
}

/// A local I/O failure while setting the lab up.
fn io_error(e: std::io::Error) -> TargetError {
    TargetError::Unreachable(format!("lab: {e}"))
}

/// What the supervisor needs to run one lab process.
fn process_spec(
    run_id: &str,
    component: &str,
    region: Option<&str>,
    port: u16,
    role: Role,
) -> ProcessSpec {
    ProcessSpec {
        run_id: run_id.to_string(),
        component: component.to_string(),
        region: region.map(str::to_string),
        port,
        role,
    }
}

/// Picks a free port on 127.0.0.1 for each regional component (by
/// [`key`]) and one for the global entry point. Every picked port stays
/// held until all are picked, so no two collide.
fn pick_ports() -> Result<(BTreeMap<String, u16>, u16), TargetError> {
    let mut held = Vec::new();
    let mut port = || -> Result<u16, TargetError> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_error)?;
        let p = l.local_addr().map_err(io_error)?.port();
        held.push(l);
        Ok(p)
    };
    let names = [
        "ingress-gateway",
        "eastwest-gateway",
        "productpage",
        "reviews",
        "istiod",
    ];
    let mut ports = BTreeMap::new();
    for region in REGIONS {
        for n in names {
            ports.insert(key(n, Some(region)), port()?);
        }
    }
    let entry_port = port()?;
    drop(held);
    Ok((ports, entry_port))
}

/// Writes the run's mesh configuration file. It lives in a file, as in the
/// API server; the control planes serve it and the data plane follows them.
fn write_mesh_config(run_id: &str) -> Result<std::path::PathBuf, TargetError> {
    let config_dir = std::env::temp_dir().join(format!("drill-lab-{run_id}"));
    std::fs::create_dir_all(&config_dir).map_err(io_error)?;
    let config_file = config_dir.join("mesh.json");
    std::fs::write(&config_file, b"{\"version\":1}").map_err(io_error)?;
    Ok(config_file)
}

/// The URL of a regional component's instance.
fn instance_url(ports: &BTreeMap<String, u16>, component: &str, region: &str) -> String {
    format!("http://127.0.0.1:{}", ports[&key(component, Some(region))])
}

/// How region `REGIONS[i]` reaches `service`: its own instance (local) and
/// the other region's through that region's east-west gateway, under the
/// mesh policy, following its region's control plane.
fn region_route(
    settings: &LabSettings,
    ports: &BTreeMap<String, u16>,
    service: &str,
    i: usize,
) -> Route {
    let (region, other) = (REGIONS[i], REGIONS[1 - i]);
    Route {
        service: service.into(),
        endpoints: vec![
            Endpoint {
                name: format!("{service}/{region}"),
                url: instance_url(ports, service, region),
                local: true,
                cluster: region.to_string(),
            },
            Endpoint {
                name: format!("{service}/{other} via eastwest-gateway/{other}"),
                url: instance_url(ports, "eastwest-gateway", other),
                local: false,
                cluster: other.to_string(),
            },
        ],
        policy: settings.mesh.clone(),
        istiod: instance_url(ports, "istiod", region),
        push_interval: settings.push_interval,
    }
}

/// Adds region `REGIONS[i]`'s components to the supervisor, in order: its
/// control plane (istiod), reviews, productpage (calling reviews), the
/// east-west gateway (exposing both services to the other region) and the
/// ingress gateway (fronting productpage). Returns the ingress gateway's
/// URL, for the global entry point.
fn add_region(
    sup: &mut Supervisor,
    settings: &LabSettings,
    run_id: &str,
    ports: &BTreeMap<String, u16>,
    config_file: &std::path::Path,
    i: usize,
) -> String {
    let region = REGIONS[i];
    let url = |n: &str| instance_url(ports, n, region);
    let mut add = |n: &str, role: Role| {
        sup.add(
            key(n, Some(region)),
            process_spec(run_id, n, Some(region), ports[&key(n, Some(region))], role),
        )
    };
    add(
        "istiod",
        Role::ControlPlane {
            config_file: config_file.to_path_buf(),
        },
    );
    add(
        "reviews",
        Role::Service {
            service_time: settings.service_time,
            downstream: None,
        },
    );
    add(
        "productpage",
        Role::Service {
            service_time: settings.service_time,
            downstream: Some(region_route(settings, ports, "reviews", i)),
        },
    );
    let services = BTreeMap::from([
        ("productpage".to_string(), url("productpage")),
        ("reviews".to_string(), url("reviews")),
    ]);
    add("eastwest-gateway", Role::EastWest { services });
    add(
        "ingress-gateway",
        Role::Gateway {
            route: region_route(settings, ports, "productpage", i),
        },
    );
    url("ingress-gateway")
}

impl Lab {
    /// Starts every component and waits until all are ready.
    pub async fn start(
        settings: LabSettings,
        run_id: &str,
        clock: Clock,
        events: mpsc::UnboundedSender<LabEvent>,
    ) -> Result<Lab, TargetError> {
        let mut sup = Supervisor::new(clock, settings.restart_delay.0, events).map_err(io_error)?;
        let (ports, entry_port) = pick_ports()?;
        let config_file = write_mesh_config(run_id)?;
        let mut gateways = Vec::new();
        for i in 0..REGIONS.len() {
            gateways.push(add_region(
                &mut sup,
                &settings,
                run_id,
                &ports,
                &config_file,
                i,
            ));
        }
        let role = Role::Entry {
            primary: gateways[0].clone(),
            secondary: gateways[1].clone(),
            health: settings.health.clone(),
            failover: settings.failover,
        };
        sup.add(
            key("global-entry", None),
            process_spec(run_id, "global-entry", None, entry_port, role),
        );
        let ports = sup.ports();
        let mut lab = Lab {
            supervisor: sup,
            entry_port,
            ports,
            admin: http::client(Duration::from_secs(2)),
            config_file,
            alertmanager: settings.alertmanager.clone(),
        };
        if let Err(e) = lab.wait_ready(Duration::from_secs(20)).await {
            lab.stop().await;
            return Err(e);
        }
        Ok(lab)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let not_ready: Vec<_> = self
                .supervisor
                .keys()
                .filter(|k| !self.supervisor.state(k).is_some_and(|s| s.ready))
                .cloned()
                .collect();
            self.healthy()?;
            if not_ready.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TargetError::Unreachable(format!(
                    "lab components not ready after {limit:?}: {} (set DRILL_LAB_DEBUG=1 to see their output)",
                    not_ready.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every lab process, labelled for Prometheus as Kubernetes service
    /// discovery would label its pod (`app`, `cluster`).
    pub fn scrape_targets(&self) -> Vec<monitoring::ScrapeTarget> {
        self.ports
            .iter()
            .map(|(key, &port)| {
                let (component, region) = key.split_once('/').unwrap_or((key, "global"));
                let app = match component {
                    "ingress-gateway" | "eastwest-gateway" | "istiod" => {
                        metrics::workload(component).to_string()
                    }
                    other => other.to_string(),
                };
                monitoring::ScrapeTarget {
                    port,
                    app,
                    cluster: region.to_string(),
                }
            })
            .collect()
    }

    pub fn entry_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.entry_port)
    }

    /// `region`'s ingress gateway, as users in that region reach it.
    pub fn region_entry_url(&self, region: &str) -> Option<String> {
        let port = self.ports.get(&key("ingress-gateway", Some(region)))?;
        Some(format!("http://127.0.0.1:{port}"))
    }

    fn instances(&self, f: &FaultPlan) -> Result<Vec<String>, TargetError> {
        if f.action == Action::RegionOutage {
            let region = f
                .region()
                .ok_or_else(|| TargetError::Invalid("region-outage names a region".into()))?;
            let suffix = format!("/{region}");
            return Ok(self
                .supervisor
                .keys()
                .filter(|k| k.ends_with(&suffix))
                .cloned()
                .collect());
        }
        let component = f
            .component()
            .ok_or_else(|| TargetError::Invalid("lab faults name a component".into()))?;
        let wanted = key(component, f.region());
        let keys: Vec<String> = self
            .supervisor
            .keys()
            .filter(|k| **k == wanted)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(TargetError::Invalid(format!("no lab component `{wanted}`")));
        }
        Ok(keys)
    }

    /// A component that reported a failed task (its health checks or its
    /// control-plane follower died) makes every measurement meaningless.
    fn healthy(&self) -> Result<(), TargetError> {
        match self.supervisor.failures().as_slice() {
            [] => Ok(()),
            failures => Err(TargetError::Unreachable(failures.join("; "))),
        }
    }

    /// Checks no component has failed and every component the plan touches
    /// is running.
    pub fn preflight(&self, faults: &[&FaultPlan]) -> Result<(), TargetError> {
        self.healthy()?;
        for f in faults.iter().filter(|f| f.action.via_target()) {
            for k in self.instances(f)? {
                if !self.supervisor.state(&k).is_some_and(|s| s.ready) {
                    return Err(TargetError::Preflight(format!(
                        "lab component `{k}` is not ready"
                    )));
                }
            }
        }
        Ok(())
    }

    /// What the journal must hold before `f` is injected.
    pub fn plan(&self, f: &FaultPlan) -> Result<(LabInjection, RevertPlan), TargetError> {
        let keys = self.instances(f)?;
        let instances: Vec<(String, u32)> = keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    self.supervisor.state(k).map_or(0, |s| s.generation),
                )
            })
            .collect();
        let pids = self.supervisor.pids();
        let plan = match f.action {
            Action::Delete => RevertPlan::SelfHealing {
                what: format!("the lab supervisor recreates {}", keys.join(", ")),
            },
            _ => RevertPlan::Lab {
                instances: keys.clone(),
                pids: pids.clone(),
            },
        };
        Ok((LabInjection { instances, pids }, plan))
    }

    pub async fn inject(&self, f: &FaultPlan, inj: &LabInjection) -> Result<(), TargetError> {
        self.healthy()?;
        match f.action {
            Action::Delete => {
                for (k, _) in &inj.instances {
                    if self.supervisor.kill(k).is_none() {
                        return Err(TargetError::Drift(format!(
                            "lab component `{k}` had no running process to delete"
                        )));
                    }
                }
                Ok(())
            }
            Action::Down | Action::RegionOutage => {
                for (k, _) in &inj.instances {
                    self.supervisor.set_wanted(k, false);
                }
                Ok(())
            }
            Action::Latency | Action::Abort => {
                let rule = FaultRule {
                    percent: f.percent.unwrap_or(1.0),
                    delay: f.delay,
                    jitter: f.jitter,
                    abort_status: f.status,
                };
                let body = serde_json::to_vec(&rule).expect("rule serialises");
                for (k, _) in &inj.instances {
                    self.set_rule(k, body.clone()).await?;
                }
                Ok(())
            }
            Action::Command | Action::Switchover | Action::Failover => Err(
                TargetError::Unsupported("command faults do not go through the target".into()),
            ),
        }
    }

    async fn set_rule(&self, key: &str, body: Vec<u8>) -> Result<(), TargetError> {
        let port = self
            .ports
            .get(key)
            .ok_or_else(|| TargetError::Invalid(format!("no lab component `{key}`")))?;
        let req = hyper::Request::post(format!("http://127.0.0.1:{port}{ADMIN_PATH}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| TargetError::Invalid(e.to_string()))?;
        match self.admin.request(req).await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(TargetError::Drift(format!(
                "lab component `{key}` refused the fault rule: {}",
                r.status()
            ))),
            Err(e) => Err(TargetError::Unreachable(format!(
                "lab component `{key}`: {e}"
            ))),
        }
    }

    pub async fn revert(&self, f: &FaultPlan, inj: &LabInjection) -> Result<(), TargetError> {
        match f.action {
            Action::Delete | Action::Command | Action::Switchover | Action::Failover => Ok(()),
            Action::Down | Action::RegionOutage => {
                for (k, _) in &inj.instances {
                    self.supervisor.set_wanted(k, true);
                }
                Ok(())
            }
            Action::Latency | Action::Abort => {
                for (k, _) in &inj.instances {
                    self.set_rule(k, Vec::new()).await?;
                }
                Ok(())
            }
        }
    }

    /// Makes a routing change (as `kubectl apply` would): bumps the mesh
    /// configuration's version. Returns the new version.
    pub fn change_config(&self) -> Result<u64, TargetError> {
        let io = |e: std::io::Error| TargetError::Drift(format!("lab mesh config: {e}"));
        let cur: mesh::MeshConfig =
            serde_json::from_slice(&std::fs::read(&self.config_file).map_err(io)?)
                .unwrap_or_default();
        let next = mesh::MeshConfig {
            version: cur.version + 1,
        };
        std::fs::write(
            &self.config_file,
            serde_json::to_vec(&next).expect("config serialises"),
        )
        .map_err(io)?;
        Ok(next.version)
    }

    /// Whether every data-plane process (ingress gateways, productpages)
    /// has applied configuration `version`.
    pub async fn config_applied(&self, version: u64) -> bool {
        for (k, port) in &self.ports {
            if !(k.starts_with("ingress-gateway/") || k.starts_with("productpage/")) {
                continue;
            }
            let Ok(req) = hyper::Request::get(format!("http://127.0.0.1:{port}{CONFIG_PATH}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
            else {
                return false;
            };
            let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_millis(500), self.admin.request(req)).await
            else {
                return false;
            };
            let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await else {
                return false;
            };
            match serde_json::from_slice::<mesh::MeshConfig>(&body.to_bytes()) {
                Ok(c) if c.version >= version => {}
                _ => return false,
            }
        }
        true
    }

    /// Cross-region calls the data plane has made so far, and how many failed.
    pub async fn cross_region(&self) -> Option<(u64, u64)> {
        let (mut calls, mut failed) = (0, 0);
        for (k, port) in &self.ports {
            if !(k.starts_with("ingress-gateway/") || k.starts_with("productpage/")) {
                continue;
            }
            let req = hyper::Request::get(format!("http://127.0.0.1:{port}{STATS_PATH}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .ok()?;
            // A process that is down right now has no counters to give.
            let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_millis(500), self.admin.request(req)).await
            else {
                continue;
            };
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .ok()?
                .to_bytes();
            for st in serde_json::from_slice::<Vec<mesh::EndpointStats>>(&body).ok()? {
                if !st.local {
                    calls += st.requests;
                    failed += st.failures;
                }
            }
        }
        Some((calls, failed))
    }

    /// When every touched instance is serving again with a fresh process,
    /// the run-clock time it became ready.
    pub fn healed_at(&self, inj: &LabInjection) -> Option<Micros> {
        let mut latest = 0;
        for (k, gen_before) in &inj.instances {
            let s = self.supervisor.state(k)?;
            if !s.ready || s.generation <= *gen_before {
                return None;
            }
            latest = latest.max(s.ready_at.unwrap_or(0));
        }
        Some(latest)
    }

    pub async fn stop(&mut self) {
        self.supervisor.stop().await;
        if let Some(dir) = self.config_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
