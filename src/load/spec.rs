//! What the load sends: one request's method, URL, headers and body, the
//! rate and the limits, and which statuses count as good. Both the
//! scheduler (`http`) and the HTTP/1.1 engine (`h1`) read it.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};

use crate::scenario::model::StatusMatch;

/// What to send, how often, and what counts as good.
#[derive(Clone, Debug)]
pub(crate) struct HttpLoad {
    pub url: Uri,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub rate: f64,
    pub timeout: Duration,
    pub success: Vec<StatusMatch>,
    pub keep_alive: bool,
    /// Sending threads; request *i* goes to worker *i mod workers*.
    pub workers: usize,
    /// Requests in flight at once, all workers together.
    pub max_in_flight: usize,
    /// How often a worker wakes to send what fell due meanwhile: a request
    /// waits at most one tick (counted in its latency and send lag).
    pub tick: Duration,
    /// The CA to trust for https instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}
