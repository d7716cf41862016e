//! The HTTP side of a run's setup: the load built from the scenario, and the
//! preflight probe of the target's entry point.

use std::time::Duration;

use bytes::Bytes;

use crate::load::http::HttpLoad;
use crate::scenario::Plan;

/// `workers`: the `--workers` flag, which overrides the scenario's.
pub(super) fn http_load(
    plan: &Plan,
    entry: &str,
    workers: Option<usize>,
) -> Result<Option<HttpLoad>, String> {
    let Some(s) = &plan.load else {
        return Ok(None);
    };
    let url: hyper::Uri = format!("{entry}{}", s.path)
        .parse()
        .map_err(|e| format!("bad load URL: {e}"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url}: the entry URL must be http:// or https://"));
    }
    let mut headers: Vec<_> = s
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                hyper::header::HeaderName::from_bytes(k.as_bytes()).ok()?,
                hyper::header::HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    headers.extend(env_headers(&s.headers_env)?);
    let workers = workers.unwrap_or(s.workers).max(1);
    Ok(Some(HttpLoad {
        url,
        method: hyper::Method::from_bytes(s.method.as_bytes()).map_err(|e| e.to_string())?,
        headers,
        body: Bytes::from(s.body.clone().unwrap_or_default()),
        rate: s.rate,
        timeout: s.timeout,
        success: s.success.clone(),
        keep_alive: s.keep_alive,
        workers,
        max_in_flight: s.max_in_flight,
        tick: s
            .tick
            .unwrap_or_else(|| crate::load::http::auto_tick(s.rate, workers, s.max_send_lag_us)),
    }))
}

/// The `headers_env` headers, their values read from the environment and
/// marked sensitive (hyper then never shows them); a variable that is unset
/// or not a valid header value is named, never its value.
pub(super) fn env_headers(
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>, String> {
    let mut out = Vec::new();
    for (k, var) in vars {
        let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("headers_env: `{k}` is not an HTTP header name"))?;
        let value = std::env::var(var).map_err(|_| {
            format!(
                "environment variable {var} (the value of header `{k}`, from headers_env) is not set; export it before running drill"
            )
        })?;
        let mut value = hyper::header::HeaderValue::from_str(&value).map_err(|_| {
            format!("environment variable {var} (header `{k}`) is not a valid header value: visible ASCII only")
        })?;
        value.set_sensitive(true);
        out.push((name, value));
    }
    Ok(out)
}

/// An error and its causes on one line (`client error (Connect): invalid
/// peer certificate: UnknownIssuer`), so the real cause is not hidden.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = c.source();
    }
    text
}

/// Preflight: the entry point answers (any HTTP status) within the timeout.
pub(super) async fn probe_entry(entry: &str, path: &str, timeout: Duration) -> Result<(), String> {
    let client = crate::load::http::client(timeout, false);
    let url = format!("{entry}{path}");
    let req = hyper::Request::get(&url)
        .body(http_body_util::Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "entry point {url} did not answer: {}",
            error_chain(&e)
        )),
        Err(_) => Err(format!(
            "entry point {url} did not answer within {timeout:?}"
        )),
    }
}
