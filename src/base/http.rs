//! drill's own HTTP clients, built in one place: plain HTTP/1.1 for the
//! lab's processes and the agents, and HTTP or HTTPS for a Prometheus or
//! Alertmanager (TLS roots from [`super::tls`]). Every client sets a connect
//! timeout, disables Nagle (small requests, answered at once) and drops
//! idle connections after 30 s. The load generator has its own engine
//! (`load/h1.rs`), and Kubernetes goes through kube-rs's client.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A request or response body held in memory.
pub(crate) type Body = Full<Bytes>;
/// A client for `http://` URLs only.
pub(crate) type PlainClient = Client<HttpConnector, Body>;
/// A client for `http://` and `https://` URLs.
pub(crate) type TlsClient = Client<HttpsConnector<HttpConnector>, Body>;

/// How long an idle kept-alive connection stays in a client's pool.
const IDLE: Duration = Duration::from_secs(30);

fn connector(connect_timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    c
}

/// A plain HTTP/1.1 client.
pub(crate) fn plain(connect_timeout: Duration) -> PlainClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(connector(connect_timeout))
}

/// An HTTP/1.1 client for http and https URLs; https trusts `ca_file`'s
/// certificates when given (replacing the system's roots), else the system's.
/// An unreadable CA file is an error naming it.
pub(crate) fn tls(connect_timeout: Duration, ca_file: Option<&Path>) -> Result<TlsClient, String> {
    let mut conn = connector(connect_timeout);
    conn.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(super::tls::client_config(ca_file)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(conn);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(https))
}
