//! Open-loop HTTP load. Request *i* is due at `start + i/rate` whatever
//! happened to earlier requests; latency is measured from that due time, so a
//! stalled target (or a generator that fell behind) shows in the numbers.
//!
//! The scheduler sleeps on tokio's millisecond timer until shortly before the
//! next due time and yields for the rest, which keeps send lag well under a
//! millisecond without a dedicated spinning thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::clock::Clock;
use crate::measure::{Cause, Micros, Outcome, Recorder, Sample};
use crate::scenario::model::StatusMatch;

/// What to send, how often, and what counts as good.
#[derive(Clone, Debug)]
pub struct HttpLoad {
    pub url: Uri,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub rate: f64,
    pub timeout: Duration,
    pub success: Vec<StatusMatch>,
    pub keep_alive: bool,
}

/// Shared between the generator and whoever stops it.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    inflight: AtomicUsize,
    /// Due time of the last request scheduled (run clock).
    last_due: AtomicU64,
}

impl Control {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
    pub fn last_due(&self) -> Micros {
        self.last_due.load(Ordering::Acquire)
    }
}

const SPIN_BELOW_US: u64 = 1_500;

/// Sends requests on the open-loop schedule from `start` until stopped,
/// then waits for the ones in flight (each ends by its timeout).
pub async fn run(
    load: HttpLoad,
    clock: Clock,
    start: Micros,
    recorder: Arc<Mutex<Recorder>>,
    control: Arc<Control>,
) {
    let client = client(load.timeout, load.keep_alive);
    let load = Arc::new(load);
    let period_us = 1e6 / load.rate;

    let mut i: u64 = 0;
    loop {
        if control.stop.load(Ordering::Acquire) {
            break;
        }
        let due = start + (i as f64 * period_us) as Micros;
        let now = clock.now();
        if due > now {
            let wait = due - now;
            if wait > SPIN_BELOW_US {
                tokio::time::sleep_until(clock.at(due - 1_000).into()).await;
            } else {
                tokio::task::yield_now().await;
            }
            continue;
        }
        control.last_due.store(due, Ordering::Release);
        control.inflight.fetch_add(1, Ordering::AcqRel);
        let (client, load, recorder, control) = (
            client.clone(),
            load.clone(),
            recorder.clone(),
            control.clone(),
        );
        tokio::spawn(async move {
            let sent = clock.now();
            recorder.lock().expect("recorder lock").note_sent(due, sent);
            let (outcome, has_latency) = send(&client, &load).await;
            let done = clock.now();
            recorder.lock().expect("recorder lock").record(&Sample {
                due,
                sent,
                done,
                outcome,
                has_latency,
            });
            control.inflight.fetch_sub(1, Ordering::AcqRel);
        });
        i += 1;
    }
    // Every request in flight ends by its own timeout.
    let deadline = clock.now() + load.timeout.as_micros() as Micros + 2_000_000;
    while control.inflight() > 0 && clock.now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The generator's client: HTTP/1.1, plain or TLS (rustls with the system's
/// CA certificates), pooled unless keep-alive is off.
pub type LoadClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn client(timeout: Duration, keep_alive: bool) -> LoadClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(timeout));
    conn.enforce_http(false);
    // Without system CA certificates, https requests fail with an unknown
    // issuer (counted as `other`); plain http is unaffected.
    let tls = HttpsConnectorBuilder::new()
        .with_native_roots()
        .unwrap_or_else(|_| HttpsConnectorBuilder::new().with_tls_config(empty_roots()))
        .https_or_http()
        .enable_http1()
        .wrap_connector(conn);
    let mut builder = Client::builder(TokioExecutor::new());
    if !keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    builder.build(tls)
}

fn empty_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

async fn send(client: &LoadClient, load: &HttpLoad) -> (Outcome, bool) {
    let mut req = Request::builder()
        .method(load.method.clone())
        .uri(load.url.clone());
    for (k, v) in &load.headers {
        req = req.header(k, v);
    }
    if !load.keep_alive {
        req = req.header(hyper::header::CONNECTION, "close");
    }
    let Ok(req) = req.body(Full::new(load.body.clone())) else {
        return (Outcome::Bad(Cause::Other), false);
    };
    let exchange = async {
        let resp = client.request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(Into::<Box<dyn std::error::Error + Send + Sync>>::into)?;
        Ok::<u16, Box<dyn std::error::Error + Send + Sync>>(status)
    };
    match tokio::time::timeout(load.timeout, exchange).await {
        Err(_) => (Outcome::Bad(Cause::Timeout), true),
        Ok(Ok(status)) => {
            let good = load.success.iter().any(|m| m.matches(status));
            (
                if good {
                    Outcome::Good
                } else {
                    Outcome::Bad(Cause::of_status(status))
                },
                true,
            )
        }
        Ok(Err(e)) => (Outcome::Bad(classify(e.as_ref())), false),
    }
}

/// Sorts a client error into refused / reset / timeout / other by walking
/// its source chain down to the io error.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Cause {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionRefused => Cause::Refused,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Cause::Reset,
                TimedOut => Cause::Timeout,
                _ => Cause::Other,
            };
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        {
            return Cause::Reset;
        }
        cur = err.source();
    }
    let text = e.to_string();
    if text.contains("timed out") {
        Cause::Timeout
    } else {
        Cause::Other
    }
}
