//! The lab's data plane: a client that calls one service across two
//! localities the way an Istio sidecar does — locality-weighted endpoint
//! choice, retries on another host with a per-try timeout inside an overall
//! timeout, outlier detection (consecutive 5xx eject an endpoint for a while)
//! and a connection-pool limit whose overflow is a 503 (Envoy's `UO`).
//! Routing configuration comes from the control plane and survives its loss.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::http::{self, Body, HttpClient};
use super::metrics::{PoolLabels, RequestLabels, Telemetry};
use crate::base::units::{Dur, Percent};

/// The traffic policy (docs/reference-system.md's DestinationRule / VirtualService).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MeshPolicy {
    /// Share of calls kept in the caller's own region.
    #[serde(default = "p80")]
    pub locality_local: Percent,
    /// Attempts per call, the first included (1 = no retries).
    #[serde(default = "three")]
    pub attempts: u32,
    #[serde(default = "d2s")]
    pub per_try_timeout: Dur,
    /// Overall timeout of a call, retries included.
    #[serde(default = "d10s")]
    pub timeout: Dur,
    /// Outlier detection on or off.
    #[serde(default = "yes")]
    pub outlier_detection: bool,
    #[serde(default = "five")]
    pub consecutive_5xx: u32,
    #[serde(default = "d30s")]
    pub base_ejection: Dur,
    /// Requests in flight per endpoint before overflow answers 503.
    #[serde(default = "hundred")]
    pub max_pending: u32,
}

impl Default for MeshPolicy {
    fn default() -> Self {
        MeshPolicy {
            locality_local: p80(),
            attempts: 3,
            per_try_timeout: d2s(),
            timeout: d10s(),
            outlier_detection: true,
            consecutive_5xx: 5,
            base_ejection: d30s(),
            max_pending: 100,
        }
    }
}

fn p80() -> Percent {
    Percent(0.8)
}
fn three() -> u32 {
    3
}
fn five() -> u32 {
    5
}
fn hundred() -> u32 {
    100
}
fn yes() -> bool {
    true
}
fn d2s() -> Dur {
    Dur::secs(2)
}
fn d10s() -> Dur {
    Dur::secs(10)
}
fn d30s() -> Dur {
    Dur::secs(30)
}

/// Routing configuration pushed by the control plane.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub(crate) struct MeshConfig {
    /// Bumped by every change; data-plane answers carry it.
    pub version: u64,
}

/// One place a call can go: the local instance, or the remote region's
/// east-west gateway (which routes by the `x-drill-service` header).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub name: String,
    pub url: String,
    pub local: bool,
    /// The region (cluster) that answers through this endpoint, for metrics.
    #[serde(default)]
    pub cluster: String,
}

/// Who a data-plane client is, as Istio labels it in its metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    pub workload: String,
    pub cluster: String,
}

/// Headers that carry the caller's identity to the callee (Istio's peer
/// metadata exchange), so the server side can label what it reports.
pub(crate) const SOURCE_WORKLOAD_HEADER: &str = "x-drill-source-workload";
pub(crate) const SOURCE_CLUSTER_HEADER: &str = "x-drill-source-cluster";

pub(crate) const SERVICE_HEADER: &str = "x-drill-service";
pub(crate) const CONFIG_HEADER: &str = "x-drill-config-version";

#[derive(Default)]
struct EndpointState {
    consecutive_5xx: AtomicU32,
    inflight: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    failures: AtomicU64,
    ejections: AtomicU64,
}

/// Counters one data-plane client exposes on its admin endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct EndpointStats {
    pub name: String,
    pub local: bool,
    pub requests: u64,
    pub failures: u64,
    pub ejections: u64,
    pub ejected: bool,
}

pub(crate) struct MeshClient {
    service: String,
    endpoints: Vec<Endpoint>,
    state: Vec<EndpointState>,
    policy: MeshPolicy,
    client: HttpClient,
    /// Where this client reports its requests (`reporter="source"`).
    telemetry: Option<(Arc<Telemetry>, Identity)>,
}

impl MeshClient {
    #[cfg(test)]
    pub(crate) fn new(
        service: &str,
        endpoints: Vec<Endpoint>,
        policy: MeshPolicy,
    ) -> Arc<MeshClient> {
        Self::reporting(service, endpoints, policy, None)
    }

    /// A client that reports each call to `telemetry` as `identity`.
    pub(crate) fn reporting(
        service: &str,
        endpoints: Vec<Endpoint>,
        policy: MeshPolicy,
        telemetry: Option<(Arc<Telemetry>, Identity)>,
    ) -> Arc<MeshClient> {
        let state = endpoints.iter().map(|_| EndpointState::default()).collect();
        Arc::new(MeshClient {
            service: service.into(),
            endpoints,
            state,
            client: http::client(Duration::from_secs(1)),
            policy,
            telemetry,
        })
    }

    fn ejected(&self, i: usize, now: Instant) -> bool {
        self.state[i]
            .ejected_until
            .lock()
            .expect("ejection lock")
            .is_some_and(|t| t > now)
    }

    /// Locality-weighted choice among healthy endpoints; a retry prefers a
    /// host not tried yet (Envoy's previous-hosts predicate). When every
    /// endpoint is ejected, all are eligible again (panic threshold).
    fn pick(&self, tried: &[bool]) -> usize {
        let now = Instant::now();
        let healthy: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| !self.ejected(i, now))
            .collect();
        let pool: Vec<usize> = if healthy.is_empty() {
            (0..self.endpoints.len()).collect()
        } else {
            healthy
        };
        let fresh: Vec<usize> = pool.iter().copied().filter(|&i| !tried[i]).collect();
        let pool = if fresh.is_empty() { pool } else { fresh };
        if pool.len() == 1 {
            return pool[0];
        }
        let local_w = self.policy.locality_local.0;
        let weight = |i: usize| {
            if self.endpoints[i].local {
                local_w
            } else {
                1.0 - local_w
            }
        };
        let total: f64 = pool.iter().map(|&i| weight(i)).sum();
        let mut x = rand::random::<f64>() * total;
        for &i in &pool {
            x -= weight(i);
            if x < 0.0 {
                return i;
            }
        }
        *pool.last().expect("non-empty pool")
    }

    fn observe(&self, i: usize, ok: bool) {
        let st = &self.state[i];
        st.requests.fetch_add(1, Ordering::Relaxed);
        if ok {
            st.consecutive_5xx.store(0, Ordering::Relaxed);
            return;
        }
        st.failures.fetch_add(1, Ordering::Relaxed);
        let n = st.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
        if self.policy.outlier_detection && n >= self.policy.consecutive_5xx {
            let mut until = st.ejected_until.lock().expect("ejection lock");
            let now = Instant::now();
            if until.is_none_or(|t| t <= now) {
                *until = Some(now + self.policy.base_ejection.0);
                st.ejections.fetch_add(1, Ordering::Relaxed);
                st.consecutive_5xx.store(0, Ordering::Relaxed);
                // The supervisor prefixes the line with this process's name.
                println!(
                    "EVENT ejected {} for {}",
                    self.endpoints[i].name, self.policy.base_ejection
                );
            }
        }
    }

    /// Calls the service with the policy; the answer is the last attempt's.
    /// The call is reported once, as Envoy's stats filter does, labelled with
    /// the last endpoint tried.
    pub(crate) async fn call(&self, req: &Request<Bytes>) -> Response<Body> {
        let start = Instant::now();
        let mut last_tried = None;
        let resp = self.attempts(req, &mut last_tried).await;
        if let Some((t, me)) = &self.telemetry {
            let flags = match resp.headers().get("x-drill-response-flags") {
                Some(v) => v.to_str().unwrap_or("-").to_string(),
                None if resp.status() == StatusCode::GATEWAY_TIMEOUT => "UT".into(),
                None => "-".into(),
            };
            let destination_cluster = last_tried
                .map(|i: usize| self.endpoints[i].cluster.clone())
                .unwrap_or_else(|| "unknown".into());
            let labels = RequestLabels {
                reporter: "source".into(),
                source_workload: me.workload.clone(),
                destination_workload: format!("{}-v1", self.service),
                destination_service_name: self.service.clone(),
                response_code: resp.status().as_u16().to_string(),
                response_flags: flags,
                source_cluster: me.cluster.clone(),
                destination_cluster,
            };
            t.request(&labels, start.elapsed());
        }
        resp
    }

    async fn attempts(
        &self,
        req: &Request<Bytes>,
        last_tried: &mut Option<usize>,
    ) -> Response<Body> {
        let start = Instant::now();
        let deadline = start + self.policy.timeout.0;
        let mut tried = vec![false; self.endpoints.len()];
        let mut last = http::text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream");
        for _ in 0..self.policy.attempts.max(1) {
            let now = Instant::now();
            if now >= deadline {
                return http::text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout");
            }
            let i = self.pick(&tried);
            tried[i] = true;
            *last_tried = Some(i);
            let st = &self.state[i];
            if st.inflight.fetch_add(1, Ordering::AcqRel) >= self.policy.max_pending {
                st.inflight.fetch_sub(1, Ordering::AcqRel);
                // Overflow: rejected locally, not the endpoint's fault (UO).
                last = http::text(StatusCode::SERVICE_UNAVAILABLE, "upstream overflow (UO)");
                last.headers_mut().insert(
                    "x-drill-response-flags",
                    hyper::header::HeaderValue::from_static("UO"),
                );
                continue;
            }
            let per_try = self.policy.per_try_timeout.0.min(deadline - now);
            let ep = &self.endpoints[i];
            let mut fwd = req.clone();
            fwd.headers_mut().insert(
                SERVICE_HEADER,
                hyper::header::HeaderValue::from_str(&self.service)
                    .expect("service names are ASCII"),
            );
            if let Some((_, me)) = &self.telemetry {
                for (h, v) in [
                    (SOURCE_WORKLOAD_HEADER, &me.workload),
                    (SOURCE_CLUSTER_HEADER, &me.cluster),
                ] {
                    if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
                        fwd.headers_mut().insert(h, v);
                    }
                }
            }
            let resp = http::forward(&self.client, &ep.url, &fwd, per_try).await;
            st.inflight.fetch_sub(1, Ordering::AcqRel);
            let ok = resp.status().as_u16() < 500;
            self.observe(i, ok);
            if ok {
                return resp;
            }
            last = resp;
        }
        if Instant::now() >= deadline {
            return http::text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout");
        }
        last
    }

    /// Sets the pool gauges (requests in flight per endpoint against the
    /// pool size) on the client's telemetry; called before each scrape.
    pub(crate) fn report_pool(&self) {
        let Some((t, _)) = &self.telemetry else {
            return;
        };
        for (e, s) in self.endpoints.iter().zip(&self.state) {
            let labels = PoolLabels {
                cluster_name: format!("outbound|9080||{}.bookinfo.svc.cluster.local", self.service),
                destination_cluster: e.cluster.clone(),
            };
            t.pool(
                &labels,
                s.inflight.load(Ordering::Relaxed),
                self.policy.max_pending,
            );
        }
    }

    pub(crate) fn stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .zip(&self.state)
            .enumerate()
            .map(|(i, (e, s))| EndpointStats {
                name: e.name.clone(),
                local: e.local,
                requests: s.requests.load(Ordering::Relaxed),
                failures: s.failures.load(Ordering::Relaxed),
                ejections: s.ejections.load(Ordering::Relaxed),
                ejected: self.ejected(i, now),
            })
            .collect()
    }
}

/// The data plane's copy of the routing configuration, refreshed from the
/// control plane every push interval and kept as is while it is gone.
pub(crate) type SharedConfig = Arc<RwLock<MeshConfig>>;

pub(crate) async fn follow_control_plane(istiod: String, interval: Duration, config: SharedConfig) {
    let client = http::client(Duration::from_millis(500));
    let url = format!("{istiod}/config");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(req) = Request::get(&url).body(http_body_util::Full::new(Bytes::new())) else {
            continue;
        };
        let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_millis(500), client.request(req)).await
        else {
            continue;
        };
        if !resp.status().is_success() {
            continue;
        }
        let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await else {
            continue;
        };
        if let Ok(c) = serde_json::from_slice::<MeshConfig>(&body.to_bytes()) {
            let mut cur = config.write().expect("config lock");
            if c.version != cur.version {
                // The first fetch at start-up is not a change worth telling.
                if cur.version != 0 {
                    println!("EVENT applied mesh config version {}", c.version);
                }
                *cur = c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(policy: MeshPolicy) -> Arc<MeshClient> {
        MeshClient::new(
            "reviews",
            vec![
                Endpoint {
                    name: "reviews/primary".into(),
                    url: "http://127.0.0.1:9".into(),
                    local: true,
                    cluster: "primary".into(),
                },
                Endpoint {
                    name: "reviews/secondary".into(),
                    url: "http://127.0.0.1:9".into(),
                    local: false,
                    cluster: "secondary".into(),
                },
            ],
            policy,
        )
    }

    #[test]
    fn locality_weights_split_calls_about_80_20() {
        let c = client(MeshPolicy::default());
        let local = (0..10_000).filter(|_| c.pick(&[false, false]) == 0).count();
        assert!((7_700..8_300).contains(&local), "{local}");
    }

    #[test]
    fn retries_go_to_a_host_not_tried_yet() {
        let c = client(MeshPolicy::default());
        for _ in 0..100 {
            assert_eq!(c.pick(&[true, false]), 1);
        }
    }

    #[test]
    fn consecutive_failures_eject_an_endpoint_and_traffic_avoids_it() {
        let c = client(MeshPolicy::default());
        for _ in 0..4 {
            c.observe(0, false);
        }
        assert!(
            !c.ejected(0, Instant::now()),
            "four failures are not enough"
        );
        c.observe(0, false);
        assert!(c.ejected(0, Instant::now()));
        assert!((0..1000).all(|_| c.pick(&[false, false]) == 1));
        assert_eq!(c.stats()[0].ejections, 1);
    }

    #[test]
    fn a_success_resets_the_count_and_no_outlier_detection_never_ejects() {
        let c = client(MeshPolicy::default());
        for _ in 0..4 {
            c.observe(0, false);
        }
        c.observe(0, true);
        for _ in 0..4 {
            c.observe(0, false);
        }
        assert!(!c.ejected(0, Instant::now()));
        let c = client(MeshPolicy {
            outlier_detection: false,
            ..MeshPolicy::default()
        });
        for _ in 0..100 {
            c.observe(0, false);
        }
        assert!(!c.ejected(0, Instant::now()));
    }

    #[tokio::test]
    async fn pool_overflow_answers_503_uo_without_calling_the_endpoint() {
        let c = client(MeshPolicy {
            max_pending: 0,
            ..MeshPolicy::default()
        });
        let req = Request::get("/reviews").body(Bytes::new()).unwrap();
        let resp = c.call(&req).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["x-drill-response-flags"], "UO");
        // Overflow is the caller's limit, not the endpoint's failure.
        assert!(
            c.stats()
                .iter()
                .all(|s| s.requests == 0 && s.ejections == 0)
        );
    }

    #[tokio::test]
    async fn every_overflowed_call_is_counted_as_503_uo_by_the_source() {
        let t = Arc::new(Telemetry::new());
        let me = Identity {
            workload: "istio-ingressgateway".into(),
            cluster: "primary".into(),
        };
        let c = MeshClient::reporting(
            "reviews",
            client(MeshPolicy::default()).endpoints.clone(),
            MeshPolicy {
                max_pending: 0,
                ..MeshPolicy::default()
            },
            Some((t.clone(), me)),
        );
        let req = Request::get("/reviews").body(Bytes::new()).unwrap();
        for _ in 0..9 {
            c.call(&req).await;
        }
        c.report_pool();
        let text = t.encode();
        let sample = crate::targets::lab::metrics::tests::sample;
        let uo = [
            ("reporter", "source"),
            ("source_workload", "istio-ingressgateway"),
            ("destination_service_name", "reviews"),
            ("response_code", "503"),
            ("response_flags", "UO"),
            ("source_cluster", "primary"),
        ];
        assert_eq!(sample(&text, "istio_requests_total", &uo), Some(9.0));
        assert_eq!(
            sample(&text, "istio_requests_total", &[("response_code", "200")]),
            None
        );
        // A pool of size 0 has nothing left to admit.
        assert_eq!(
            sample(
                &text,
                "envoy_cluster_circuit_breakers_default_remaining_rq",
                &[]
            ),
            Some(0.0)
        );
    }

    #[test]
    fn all_ejected_means_all_eligible() {
        let c = client(MeshPolicy::default());
        for i in 0..2 {
            for _ in 0..5 {
                c.observe(i, false);
            }
        }
        let picks: std::collections::BTreeSet<usize> =
            (0..200).map(|_| c.pick(&[false, false])).collect();
        assert_eq!(picks.len(), 2);
    }
}
