//! The inside of one lab process (`drill lab serve`): a global entry point
//! that health-checks the regions' gateways and steers to the primary while it
//! is healthy, an ingress gateway, or the front service. Each process exits
//! when its supervisor goes away (its stdin closes), so none outlives a run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::http::{self, HttpClient};
use super::settings::HealthCheck;
use crate::scenario::units::Dur;

/// What one lab process is and where it listens; passed as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub run_id: String,
    pub component: String,
    pub region: Option<String>,
    pub port: u16,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Role {
    /// Global entry point: health-checked steering between two gateways.
    Entry {
        primary: String,
        secondary: String,
        health: HealthCheck,
        failover: bool,
    },
    /// Ingress gateway: forwards to its region's front service.
    Gateway { upstream: String, timeout: Dur },
    /// Front service: answers after `service_time`.
    Service { service_time: Dur },
}

/// A fault the process applies to its own traffic (the lab's Istio fault
/// injection), set and cleared through `POST /-/drill/fault`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Share of requests affected, 0..=1.
    pub percent: f64,
    pub delay: Option<Dur>,
    pub jitter: Option<Dur>,
    pub abort_status: Option<u16>,
}

pub const ADMIN_PATH: &str = "/-/drill/fault";

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
fn admin(rules: &Rules, body: &[u8]) -> hyper::Response<http::Body> {
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

/// Runs the process until its stdin closes. Prints `READY` once listening.
pub async fn run(spec: ProcessSpec) -> anyhow::Result<()> {
    let rules: Rules = Arc::default();
    let listener = http::bind(spec.port).await?;
    tokio::spawn(async {
        // Lifeline: the supervisor holds our stdin; EOF means it is gone.
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    println!("READY {}", spec.port);
    let region = spec.region.clone().unwrap_or_default();
    match spec.role {
        Role::Service { service_time } => {
            let body = Bytes::from(format!("productpage served in region {region}\n"));
            let header = region_header(&region);
            http::serve(listener, move |req| {
                let (body, header, rules) = (body.clone(), header.clone(), rules.clone());
                async move {
                    if req.uri().path() == ADMIN_PATH {
                        return admin(&rules, req.body());
                    }
                    if req.uri().path() != "/healthz/ready" {
                        if let Some(status) = apply(&rules).await {
                            return http::text(
                                StatusCode::from_u16(status)
                                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                                "fault filter abort",
                            );
                        }
                        if !service_time.0.is_zero() {
                            tokio::time::sleep(service_time.0).await;
                        }
                    }
                    let mut r = http::text(StatusCode::OK, body);
                    r.headers_mut().insert("x-drill-region", header);
                    r
                }
            })
            .await
        }
        Role::Gateway { upstream, timeout } => {
            let client = http::client(Duration::from_secs(1));
            http::serve(listener, move |req| {
                let (client, upstream, rules) = (client.clone(), upstream.clone(), rules.clone());
                async move {
                    if req.uri().path() == "/healthz/ready" {
                        return http::text(StatusCode::OK, "ready");
                    }
                    if req.uri().path() == ADMIN_PATH {
                        return admin(&rules, req.body());
                    }
                    if let Some(status) = apply(&rules).await {
                        return http::text(
                            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                            "fault filter abort",
                        );
                    }
                    http::forward(&client, &upstream, &req, timeout.0).await
                }
            })
            .await
        }
        Role::Entry {
            primary,
            secondary,
            health,
            failover,
        } => {
            let steering = Arc::new(Steering {
                active: AtomicU8::new(PRIMARY),
            });
            let client = http::client(health.timeout.0);
            tokio::spawn(health_loop(
                client.clone(),
                [primary.clone(), secondary.clone()],
                health,
                failover,
                steering.clone(),
            ));
            let upstreams = Arc::new([primary, secondary]);
            http::serve(listener, move |req: Request<Bytes>| {
                let (client, upstreams, steering) =
                    (client.clone(), upstreams.clone(), steering.clone());
                async move {
                    if req.uri().path() == "/healthz/ready" {
                        return http::text(StatusCode::OK, "ready");
                    }
                    let i = steering.active.load(Ordering::Relaxed) as usize;
                    http::forward(&client, &upstreams[i], &req, Duration::from_secs(30)).await
                }
            })
            .await
        }
    }
    Ok(())
}

fn region_header(region: &str) -> hyper::header::HeaderValue {
    hyper::header::HeaderValue::from_str(region)
        .unwrap_or(hyper::header::HeaderValue::from_static("unknown"))
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
