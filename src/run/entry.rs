//! The HTTP side of a run's setup: the load built from the scenario, and the
//! preflight probe of the target's entry point.

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
        // The entry point is verified against the system's roots
        // (`SSL_CERT_FILE` / `SSL_CERT_DIR`).
        ca_file: None,
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

/// Preflight: the entry point answers one request of the load itself (its
/// method, headers and body, on drill's own engine) within the timeout,
/// with a status that is not a server error. A 5xx fails the preflight
/// unless the scenario's `success` set counts it as good (a drill that
/// expects the target to be failing then says so there).
pub(super) async fn probe_entry(load: &HttpLoad) -> Result<(), String> {
    let url = &load.url;
    let what = format!("the preflight {} {url}", load.method);
    match crate::load::http::probe(load).await {
        Ok(status) if status >= 500 && !load.success.iter().any(|m| m.matches(status)) => {
            Err(format!(
                "{what} was answered {status}: the target is failing before any fault \
                 (add the status to [load] success if the drill expects that)"
            ))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("entry point did not answer {what}: {e}")),
    }
}
