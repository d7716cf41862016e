//! The inside of one lab process (`drill lab serve`): the global entry point
//! (health-checked steering between the regions' ingress gateways), an
//! ingress gateway, an east-west gateway, a service (productpage calls
//! reviews through the mesh client) or the control plane. Each process exits
//! when its supervisor goes away (its stdin closes), so none outlives a run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::http::{self, Body, HttpClient};
use super::mesh::{
    self, CONFIG_HEADER, Endpoint, Identity, MeshClient, MeshConfig, MeshPolicy, SERVICE_HEADER,
    SOURCE_CLUSTER_HEADER, SOURCE_WORKLOAD_HEADER, SharedConfig,
};
use super::metrics::{self, RequestLabels, Telemetry};
use super::settings::HealthCheck;
use crate::base::units::Dur;

/// What one lab process is and where it listens; passed as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ProcessSpec {
    pub run_id: String,
    pub component: String,
    pub region: Option<String>,
    pub port: u16,
    pub role: Role,
}

/// How a data-plane process calls one service across the two regions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Route {
    pub service: String,
    pub endpoints: Vec<Endpoint>,
    pub policy: MeshPolicy,
    /// The control plane to take routing configuration from.
    pub istiod: String,
    pub push_interval: Dur,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub(crate) enum Role {
    /// Global entry point: health-checked steering between two gateways.
    Entry {
        primary: String,
        secondary: String,
        health: HealthCheck,
        failover: bool,
    },
    /// Ingress gateway: routes to productpage through the mesh.
    Gateway { route: Route },
    /// East-west gateway: passes cross-region calls to its region's service
    /// named by the `x-drill-service` header.
    EastWest { services: BTreeMap<String, String> },
    /// A service; with a downstream route it calls that service for each request.
    Service {
        service_time: Dur,
        downstream: Option<Route>,
    },
    /// The control plane: serves the mesh configuration stored in a file
    /// (the API server's copy), re-read on every request.
    ControlPlane { config_file: PathBuf },
}

/// A fault the process applies to its own traffic (the lab's Istio fault
/// injection), set and cleared through `POST /-/drill/fault`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultRule {
    /// Share of requests affected, 0..=1.
    pub percent: f64,
    pub delay: Option<Dur>,
    pub jitter: Option<Dur>,
    pub abort_status: Option<u16>,
}

pub(crate) const ADMIN_PATH: &str = "/-/drill/fault";
pub(crate) const CONFIG_PATH: &str = "/-/drill/config";
pub(crate) const STATS_PATH: &str = "/-/drill/stats";
/// Prometheus scrapes every lab process here.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// Marks an answer made by the fault filter (Envoy's `FI` flag).
const FAULT_HEADER: &str = "x-drill-fault";

type Rules = Arc<std::sync::RwLock<Option<FaultRule>>>;

/// Applies the injected rule, if any, to one request: sleeps for a delay and
/// returns the status to abort with.
async fn apply(rules: &Rules) -> Option<u16> {
    let rule = rules.read().expect("rule lock").clone()?;
    if rand::random::<f64>() >= rule.percent {
        return None;
    }
    if let Some(d) = rule.delay {
        let mut us = d.micros() as f64;
        if let Some(j) = rule.jitter {
            us += (rand::random::<f64>() * 2.0 - 1.0) * j.micros() as f64;
        }
        tokio::time::sleep(Duration::from_micros(us.max(0.0) as u64)).await;
    }
    rule.abort_status
}

/// Handles the admin endpoint: a JSON rule sets, an empty body clears.
fn admin(rules: &Rules, body: &[u8]) -> Response<Body> {
    let rule = if body.is_empty() {
        Ok(None)
    } else {
        serde_json::from_slice::<FaultRule>(body).map(Some)
    };
    match rule {
        Ok(r) => {
            *rules.write().expect("rule lock") = r;
            http::text(StatusCode::OK, "ok")
        }
        Err(e) => http::text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn json<T: Serialize>(v: &T) -> Response<Body> {
    http::text(StatusCode::OK, serde_json::to_vec(v).unwrap_or_default())
}

/// Everything a process needs to answer one request.
struct Ctx {
    role: Role,
    region: String,
    rules: Rules,
    config: SharedConfig,
    mesh: Option<Arc<MeshClient>>,
    client: HttpClient,
    steering: Arc<Steering>,
    telemetry: Arc<Telemetry>,
    /// This process's workload name, as Istio labels it.
    workload: &'static str,
}

/// Runs the process until its stdin closes. Prints `READY` once listening.
pub(crate) async fn run(spec: ProcessSpec) -> std::io::Result<()> {
    let listener = http::bind(spec.port).await?;
    tokio::spawn(async {
        // Lifeline: the supervisor holds our stdin; EOF means it is gone.
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let region = spec.region.clone().unwrap_or_default();
    let config: SharedConfig = Arc::default();
    let route = match &spec.role {
        Role::Gateway { route } => Some(route.clone()),
        Role::Service { downstream, .. } => downstream.clone(),
        _ => None,
    };
    let telemetry = Arc::new(Telemetry::new());
    let workload = metrics::workload(&spec.component);
    let identity = Identity {
        workload: workload.to_string(),
        cluster: region.clone(),
    };
    // Tasks that must run as long as the process: if one ends (a panic),
    // the process says so and exits instead of serving without it.
    let mut tasks = Tasks::default();
    let mesh = route.map(|r| {
        tasks.spawn(
            "control-plane follower",
            mesh::follow_control_plane(r.istiod.clone(), r.push_interval.0, config.clone()),
        );
        MeshClient::reporting(
            &r.service,
            r.endpoints,
            r.policy,
            Some((telemetry.clone(), identity)),
        )
    });
    let steering = Arc::new(Steering {
        active: AtomicU8::new(PRIMARY),
    });
    let client = http::client(Duration::from_secs(1));
    if let Role::Entry {
        primary,
        secondary,
        health,
        failover,
    } = &spec.role
    {
        let probe = http::client(health.timeout.0);
        tasks.spawn(
            "health checks",
            health_loop(
                probe,
                [primary.clone(), secondary.clone()],
                health.clone(),
                *failover,
                steering.clone(),
            ),
        );
    }
    let ctx = Arc::new(Ctx {
        role: spec.role,
        region,
        rules: Arc::default(),
        config,
        mesh,
        client,
        steering,
        telemetry,
        workload,
    });
    println!("READY {}", spec.port);
    let serving = http::serve(listener, move |req| {
        let ctx = ctx.clone();
        async move { ctx.handle(req).await }
    });
    tokio::select! {
        _ = serving => Ok(()),
        Some(failure) = tasks.first_failure() => {
            // The supervisor reads this line and the lab reports it; the
            // exit makes the component visibly gone rather than half alive.
            println!("FAILED {failure}");
            std::process::exit(70);
        }
    }
}

/// A lab process's long-running tasks, by name.
#[derive(Default)]
struct Tasks {
    set: tokio::task::JoinSet<()>,
    names: BTreeMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let id = self.set.spawn(task).id();
        self.names.insert(id, name);
    }

    /// Waits for the first task to end (they are meant to run forever) and
    /// says which and why; None when there are no tasks.
    async fn first_failure(&mut self) -> Option<String> {
        let (id, why) = match self.set.join_next_with_id().await? {
            Ok((id, ())) => (id, "stopped".to_string()),
            Err(e) => {
                let id = e.id();
                let why = match e.try_into_panic() {
                    Ok(p) => match p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                    {
                        Some(msg) => format!("panicked: {msg}"),
                        None => "panicked".to_string(),
                    },
                    Err(e) => e.to_string(),
                };
                (id, why)
            }
        };
        let name = self.names.get(&id).copied().unwrap_or("a task");
        Some(format!("{name} {why}").replace(['\n', '\r'], " "))
    }
}

impl Ctx {
    async fn handle(&self, req: Request<Bytes>) -> Response<Body> {
        match req.uri().path() {
            "/healthz/ready" => return http::text(StatusCode::OK, "ready"),
            ADMIN_PATH => return admin(&self.rules, req.body()),
            CONFIG_PATH => return json(&*self.config.read().expect("config lock")),
            STATS_PATH => return json(&self.mesh.as_ref().map(|m| m.stats()).unwrap_or_default()),
            METRICS_PATH => return self.metrics(),
            _ => {}
        }
        let start = std::time::Instant::now();
        let resp = self.traffic(&req).await;
        self.report_inbound(&req, &resp, start.elapsed());
        resp
    }

    fn metrics(&self) -> Response<Body> {
        if let Some(m) = &self.mesh {
            m.report_pool();
        }
        let mut resp = http::text(StatusCode::OK, self.telemetry.encode());
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        resp
    }

    /// A service's sidecar reports what it served (`reporter="destination"`),
    /// naming the caller from the identity headers its client sent.
    fn report_inbound(&self, req: &Request<Bytes>, resp: &Response<Body>, took: Duration) {
        if !matches!(self.role, Role::Service { .. }) {
            return;
        }
        let header = |h: &str| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown")
                .to_string()
        };
        let service = self.workload.trim_end_matches("-v1");
        let flags = if resp.headers().contains_key(FAULT_HEADER) {
            "FI"
        } else {
            "-"
        };
        let labels = RequestLabels {
            reporter: "destination".into(),
            source_workload: header(SOURCE_WORKLOAD_HEADER),
            destination_workload: self.workload.into(),
            destination_service_name: service.into(),
            response_code: resp.status().as_u16().to_string(),
            response_flags: flags.into(),
            source_cluster: header(SOURCE_CLUSTER_HEADER),
            destination_cluster: self.region.clone(),
        };
        self.telemetry.request(&labels, took);
    }

    async fn traffic(&self, req: &Request<Bytes>) -> Response<Body> {
        if let Some(status) = apply(&self.rules).await {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = http::text(status, "fault filter abort");
            resp.headers_mut()
                .insert(FAULT_HEADER, HeaderValue::from_static("FI"));
            return resp;
        }
        let mut resp = match &self.role {
            Role::Entry {
                primary, secondary, ..
            } => {
                let up = if self.steering.active.load(Ordering::Relaxed) == PRIMARY {
                    primary
                } else {
                    secondary
                };
                http::forward(&self.client, up, req, Duration::from_secs(30)).await
            }
            Role::Gateway { .. } => {
                self.mesh
                    .as_ref()
                    .expect("gateways have a route")
                    .call(req)
                    .await
            }
            Role::EastWest { services } => {
                let target = req
                    .headers()
                    .get(SERVICE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| services.get(s));
                match target {
                    Some(url) => {
                        http::forward(&self.client, url, req, Duration::from_secs(30)).await
                    }
                    None => http::text(
                        StatusCode::NOT_FOUND,
                        "no such service behind this east-west gateway",
                    ),
                }
            }
            Role::Service { service_time, .. } => {
                if !service_time.0.is_zero() {
                    tokio::time::sleep(service_time.0).await;
                }
                match &self.mesh {
                    Some(m) => {
                        let down = m.call(req).await;
                        if down.status().is_success() {
                            http::text(
                                StatusCode::OK,
                                format!("productpage ({}) with reviews\n", self.region),
                            )
                        } else {
                            http::text(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!(
                                    "productpage ({}): reviews failed with {}\n",
                                    self.region,
                                    down.status()
                                ),
                            )
                        }
                    }
                    None => http::text(StatusCode::OK, format!("reviews ({})\n", self.region)),
                }
            }
            Role::ControlPlane { config_file } => {
                self.telemetry.push("lds");
                let cfg = std::fs::read(config_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<MeshConfig>(&b).ok())
                    .unwrap_or_default();
                json(&cfg)
            }
        };
        if self.mesh.is_some() {
            let v = self.config.read().expect("config lock").version;
            resp.headers_mut()
                .insert(CONFIG_HEADER, HeaderValue::from(v));
        }
        if !self.region.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.region)
        {
            resp.headers_mut().entry("x-drill-region").or_insert(v);
        }
        resp
    }
}

const PRIMARY: u8 = 0;
const SECONDARY: u8 = 1;
const NAMES: [&str; 2] = ["primary", "secondary"];

struct Steering {
    active: AtomicU8,
}

/// Health state of one gateway as the steering sees it.
#[derive(Clone, Copy)]
struct Health {
    healthy: bool,
    fails: u32,
    oks: u32,
}

impl Health {
    /// Folds one check result in; returns true when the state flipped.
    fn observe(&mut self, ok: bool, h: &HealthCheck) -> bool {
        if ok {
            self.oks += 1;
            self.fails = 0;
            if !self.healthy && self.oks >= h.healthy_threshold {
                self.healthy = true;
                return true;
            }
        } else {
            self.fails += 1;
            self.oks = 0;
            if self.healthy && self.fails >= h.unhealthy_threshold {
                self.healthy = false;
                return true;
            }
        }
        false
    }
}

/// Checks both gateways every interval and moves traffic: primary while
/// healthy, else secondary (if failover is on), back to primary when it is
/// healthy again. Transitions are printed as `EVENT` lines for the run's
/// timeline.
async fn health_loop(
    client: HttpClient,
    gateways: [String; 2],
    h: HealthCheck,
    failover: bool,
    steering: Arc<Steering>,
) {
    let mut state = [Health {
        healthy: true,
        fails: 0,
        oks: 0,
    }; 2];
    let urls = gateways.map(|g| format!("{g}/healthz/ready"));
    let mut tick = tokio::time::interval(h.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (a, b) = tokio::join!(
            http::probe(&client, &urls[0], h.timeout.0),
            http::probe(&client, &urls[1], h.timeout.0)
        );
        for (i, ok) in [a, b].into_iter().enumerate() {
            if state[i].observe(ok, &h) {
                let what = if state[i].healthy {
                    "healthy"
                } else {
                    "unhealthy"
                };
                println!("EVENT {} gateway {what}", NAMES[i]);
            }
        }
        let want = if state[0].healthy || !failover || !state[1].healthy {
            PRIMARY
        } else {
            SECONDARY
        };
        if steering.active.swap(want, Ordering::Relaxed) != want {
            println!("EVENT entry steering to {}", NAMES[want as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_named_with_its_panic() {
        let mut tasks = Tasks::default();
        tasks.spawn("health checks", async {
            let _ = tokio::time::interval(Duration::ZERO);
        });
        tasks.spawn("control-plane follower", std::future::pending());
        let failure = tasks.first_failure().await.expect("a failure");
        assert!(failure.starts_with("health checks panicked: "), "{failure}");
        assert!(failure.contains("`period` must be non-zero"), "{failure}");
        assert_eq!(Tasks::default().first_failure().await, None);
    }

    #[test]
    fn thresholds_flip_health_after_consecutive_results_only() {
        let h = HealthCheck::default();
        let mut s = Health {
            healthy: true,
            fails: 0,
            oks: 0,
        };
        assert!(!s.observe(false, &h));
        assert!(!s.observe(false, &h));
        assert!(!s.observe(true, &h), "a success resets the failure count");
        assert!(!s.observe(false, &h));
        assert!(!s.observe(false, &h));
        assert!(
            s.observe(false, &h),
            "third consecutive failure marks unhealthy"
        );
        assert!(!s.healthy);
        assert!(!s.observe(true, &h));
        assert!(
            s.observe(true, &h),
            "second consecutive success marks healthy"
        );
    }
}
