//! Small HTTP plumbing shared by the lab's processes: a server loop, a pooled
//! client, and forwarding with Envoy-like error statuses.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub(crate) use crate::base::http::{Body, PlainClient as HttpClient};

/// A client for the lab's processes (see [`crate::base::http::plain`]).
pub(crate) fn client(connect_timeout: Duration) -> HttpClient {
    crate::base::http::plain(connect_timeout)
}

pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// Serves `handler` on `listener` until the process ends.
pub(crate) async fn serve<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(Request<Bytes>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Ok::<_, Infallible>(handler(Request::from_parts(parts, body)).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Forwards `req` to `upstream` (an `http://host:port` base). Connection
/// failures answer 503 and timeouts 504, as a mesh proxy does.
pub(crate) async fn forward(
    client: &HttpClient,
    upstream: &str,
    req: &Request<Bytes>,
    timeout: Duration,
) -> Response<Body> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = Request::builder()
        .method(req.method())
        .uri(format!("{upstream}{path}"));
    for (k, v) in req.headers() {
        if k != hyper::header::HOST && k != hyper::header::CONNECTION {
            out = out.header(k, v);
        }
    }
    let Ok(out) = out.body(Full::new(req.body().clone())) else {
        return text(StatusCode::BAD_REQUEST, "bad request");
    };
    match tokio::time::timeout(timeout, client.request(out)).await {
        Err(_) => text(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("upstream connect error or disconnect/reset before headers: {e}"),
        ),
        Ok(Ok(resp)) => {
            let (parts, body) = resp.into_parts();
            match tokio::time::timeout(timeout, body.collect()).await {
                Ok(Ok(b)) => Response::from_parts(parts, Full::new(b.to_bytes())),
                _ => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream reset while sending body",
                ),
            }
        }
    }
}

/// One GET that must answer 2xx within `timeout`.
pub(crate) async fn probe(client: &HttpClient, url: &str, timeout: Duration) -> bool {
    let Ok(req) = Request::get(url).body(Full::new(Bytes::new())) else {
        return false;
    };
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(resp)) => {
            let ok = resp.status().is_success();
            let _ = tokio::time::timeout(timeout, resp.into_body().collect()).await;
            ok
        }
        _ => false,
    }
}

pub(crate) async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}
