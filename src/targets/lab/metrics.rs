//! What each lab process tells Prometheus on `/metrics`, under the names and
//! labels Istio and Envoy use, so the users' own alert rules run unchanged
//! against the lab: `istio_requests_total` and
//! `istio_request_duration_milliseconds` (one series per reporter, workloads,
//! service, code, flags and clusters), the connection pool's
//! `envoy_cluster_upstream_rq_active` beside its
//! `envoy_cluster_circuit_breakers_default_remaining_rq`, and istiod's
//! `pilot_xds_pushes_total`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of what `encode` writes (OpenMetrics text, which
/// Prometheus reads natively).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Istio's standard request labels (`istio_requests_total` and the duration
/// histogram carry the same set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub reporter: String,
    pub source_workload: String,
    pub destination_workload: String,
    pub destination_service_name: String,
    pub response_code: String,
    pub response_flags: String,
    pub source_cluster: String,
    pub destination_cluster: String,
}

/// One Envoy upstream cluster's pool, per endpoint locality.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PoolLabels {
    pub cluster_name: String,
    pub destination_cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    r#type: String,
}

/// Istio's default duration buckets, in milliseconds.
const BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(BUCKETS_MS)
}

/// One process's metrics.
pub(crate) struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pool_active: Family<PoolLabels, Gauge>,
    pool_remaining: Family<PoolLabels, Gauge>,
    pushes: Family<PushLabels, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub(crate) fn new() -> Telemetry {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "istio_requests",
            "Requests seen by the proxy (Istio standard metric)",
            requests.clone(),
        );
        let durations = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds (Istio standard metric)",
            durations.clone(),
        );
        let pool_active = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "envoy_cluster_upstream_rq_active",
            "Requests in flight to the upstream cluster",
            pool_active.clone(),
        );
        let pool_remaining = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "envoy_cluster_circuit_breakers_default_remaining_rq",
            "Requests the circuit breaker still admits before overflow (UO)",
            pool_remaining.clone(),
        );
        let pushes = Family::<PushLabels, Counter>::default();
        registry.register(
            "pilot_xds_pushes",
            "Configuration pushes served by the control plane",
            pushes.clone(),
        );
        Telemetry {
            registry,
            requests,
            durations,
            pool_active,
            pool_remaining,
            pushes,
        }
    }

    /// Counts one request and its duration under `labels`.
    pub(crate) fn request(&self, labels: &RequestLabels, took: Duration) {
        self.requests.get_or_create(labels).inc();
        self.durations
            .get_or_create(labels)
            .observe(took.as_secs_f64() * 1000.0);
    }

    /// Sets one pool's occupancy: `active` of `size` requests in flight.
    pub(crate) fn pool(&self, labels: &PoolLabels, active: u32, size: u32) {
        self.pool_active.get_or_create(labels).set(active as i64);
        self.pool_remaining
            .get_or_create(labels)
            .set(size.saturating_sub(active) as i64);
    }

    /// Counts one configuration push of `kind` (istiod).
    pub(crate) fn push(&self, kind: &str) {
        self.pushes
            .get_or_create(&PushLabels {
                r#type: kind.to_string(),
            })
            .inc();
    }

    /// The exposition text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The Kubernetes workload name Istio would report for a lab component.
pub(crate) fn workload(component: &str) -> &'static str {
    match component {
        "ingress-gateway" => "istio-ingressgateway",
        "eastwest-gateway" => "istio-eastwestgateway",
        "productpage" => "productpage-v1",
        "reviews" => "reviews-v1",
        "istiod" => "istiod",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The value of the sample `name{labels}` in an exposition, with labels
    /// given as `k="v"` pairs that must all be present.
    pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                (n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())?
            })
            .reduce(|a, b| a + b)
    }

    fn labels(code: &str, flags: &str) -> RequestLabels {
        RequestLabels {
            reporter: "source".into(),
            source_workload: "istio-ingressgateway".into(),
            destination_workload: "productpage-v1".into(),
            destination_service_name: "productpage".into(),
            response_code: code.into(),
            response_flags: flags.into(),
            source_cluster: "primary".into(),
            destination_cluster: "primary".into(),
        }
    }

    #[test]
    fn counts_each_request_under_its_code_and_flags() {
        let t = Telemetry::new();
        for _ in 0..7 {
            t.request(&labels("503", "UO"), Duration::from_millis(2));
        }
        for _ in 0..5 {
            t.request(&labels("200", "-"), Duration::from_millis(300));
        }
        let text = t.encode();
        let uo = [("response_code", "503"), ("response_flags", "UO")];
        assert_eq!(sample(&text, "istio_requests_total", &uo), Some(7.0));
        assert_eq!(
            sample(&text, "istio_requests_total", &[("response_code", "200")]),
            Some(5.0)
        );
        assert_eq!(
            sample(&text, "istio_request_duration_milliseconds_count", &uo),
            Some(7.0)
        );
        // 300 ms lies above the 250 bucket and within the 500 one.
        let ok = [("response_code", "200")];
        let le = |b: &str| {
            let mut l = ok.to_vec();
            l.push(("le", b));
            sample(&text, "istio_request_duration_milliseconds_bucket", &l)
        };
        assert_eq!(le("250.0"), Some(0.0));
        assert_eq!(le("500.0"), Some(5.0));
        let sum = sample(&text, "istio_request_duration_milliseconds_sum", &ok).unwrap();
        assert!((sum - 1500.0).abs() < 1.0, "{sum}");
        for l in [
            "source_workload=\"istio-ingressgateway\"",
            "destination_workload=\"productpage-v1\"",
            "destination_service_name=\"productpage\"",
            "source_cluster=\"primary\"",
            "destination_cluster=\"primary\"",
            "reporter=\"source\"",
        ] {
            assert!(text.contains(l), "{l} missing from\n{text}");
        }
    }

    #[test]
    fn pool_gauges_and_pushes_are_exposed() {
        let t = Telemetry::new();
        let p = PoolLabels {
            cluster_name: "outbound|9080||reviews.bookinfo.svc.cluster.local".into(),
            destination_cluster: "primary".into(),
        };
        t.pool(&p, 85, 100);
        t.push("lds");
        t.push("lds");
        let text = t.encode();
        assert_eq!(
            sample(&text, "envoy_cluster_upstream_rq_active", &[]),
            Some(85.0)
        );
        assert_eq!(
            sample(
                &text,
                "envoy_cluster_circuit_breakers_default_remaining_rq",
                &[]
            ),
            Some(15.0)
        );
        assert_eq!(
            sample(&text, "pilot_xds_pushes_total", &[("type", "lds")]),
            Some(2.0)
        );
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    }
}
