//! A small client for the two APIs a drill reads: Prometheus's HTTP API
//! (`/api/v1/query`, `/api/v1/alerts`) and Alertmanager's v2 API
//! (`/api/v2/alerts`, `/api/v2/silences`, `/api/v2/silence/{id}`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unexpected answer: {reason}")]
    Shape { url: String, reason: String },
}

/// How to reach a Prometheus or an Alertmanager outside the lab: its URL,
/// the environment variable holding its bearer token (the name only: the
/// value is read when a client is made and kept nowhere else), and a CA
/// file for a private certificate authority.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Endpoint {
    /// A plain endpoint (the lab's): no token, the system's roots.
    pub fn plain(url: &str) -> Endpoint {
        Endpoint {
            url: url.to_string(),
            ..Endpoint::default()
        }
    }
}

/// A bearer token. Its Debug and Display never show it, so it cannot leak
/// through a log line or an error message by accident.
#[derive(Clone)]
struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// One HTTP JSON endpoint family (a Prometheus or an Alertmanager).
#[derive(Clone)]
struct Api {
    base: String,
    client: crate::base::http::TlsClient,
    token: Option<Token>,
    timeout: Duration,
}

impl Api {
    fn new(base: &str) -> Api {
        Api::to(&Endpoint::plain(base)).expect("a plain endpoint needs no token or CA file")
    }

    /// A client for `e`, its token read from the environment now. An unset
    /// variable or an unreadable CA file is an error naming them (never the
    /// token's value).
    fn to(e: &Endpoint) -> Result<Api, String> {
        let token = match &e.token_env {
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(Token(v.trim().to_string())),
                _ => {
                    return Err(format!(
                        "environment variable {var} (the token for {}) is not set",
                        e.url
                    ));
                }
            },
            None => None,
        };
        // A CA file's certificates replace the system's roots, as `curl
        // --cacert` does.
        let client = crate::base::http::tls(Duration::from_secs(2), e.ca_file.as_deref())?;
        Ok(Api {
            base: e.url.trim_end_matches('/').to_string(),
            client,
            token,
            timeout: Duration::from_secs(5),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let body = body.map(|v| (Bytes::from(v.to_string()), "application/json"));
        self.send(method, path, body).await
    }

    /// One request with a body of its own content type; a 2xx answer's
    /// body as JSON (or as a string when it is not JSON).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |reason: String| ApiError::Unreachable {
            url: url.clone(),
            reason,
        };
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(Token(t)) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(crate::base::chain::chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = tokio::time::timeout(self.timeout, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("body timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let v: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if !(200..300).contains(&status) {
            let body = v
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| v.to_string(), str::to_string);
            return Err(ApiError::Status { url, status, body });
        }
        Ok(v)
    }

    fn shape(&self, path: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Shape {
            url: format!("{}{path}", self.base),
            reason: reason.into(),
        }
    }
}

fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// An alerting rule's alert as Prometheus holds it.
#[derive(Clone, Debug, Deserialize)]
pub struct PromAlert {
    pub labels: Labels,
    /// `pending` or `firing`.
    pub state: String,
}

#[derive(Clone)]
pub struct Prometheus(Api);

impl Prometheus {
    pub fn new(base: &str) -> Prometheus {
        Prometheus(Api::new(base))
    }

    /// A client for a Prometheus outside the lab (token from its variable).
    pub fn to(e: &Endpoint) -> Result<Prometheus, String> {
        Api::to(e).map(Prometheus)
    }

    pub fn url(&self) -> &str {
        &self.0.base
    }

    /// Evaluates an instant query now. A scalar answers one sample without
    /// labels; an invalid query is an `ApiError::Status` with Prometheus's reason.
    pub async fn query(&self, q: &str) -> Result<Vec<Sample>, ApiError> {
        let path = format!("/api/v1/query?query={}", encode_query(q));
        let v = self.0.call(Method::GET, &path, None).await?;
        let data = &v["data"];
        let value = |x: &Value| -> Option<f64> { x.get(1)?.as_str()?.parse().ok() };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| self.0.shape(&path, "no result array"))?
                .iter()
                .map(|s| {
                    Ok(Sample {
                        labels: serde_json::from_value(s["metric"].clone()).unwrap_or_default(),
                        value: value(&s["value"])
                            .ok_or_else(|| self.0.shape(&path, "sample without a value"))?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![Sample {
                labels: Labels::new(),
                value: value(&data["result"])
                    .ok_or_else(|| self.0.shape(&path, "scalar without a value"))?,
            }]),
            other => Err(self
                .0
                .shape(&path, format!("result type {other:?}, expected a vector"))),
        }
    }

    /// Every alert of every alerting rule, pending or firing.
    pub async fn alerts(&self) -> Result<Vec<PromAlert>, ApiError> {
        let path = "/api/v1/alerts";
        let v = self.0.call(Method::GET, path, None).await?;
        serde_json::from_value(v["data"]["alerts"].clone())
            .map_err(|e| self.0.shape(path, e.to_string()))
    }

    /// The expression of the alerting rule named `alert`, if one is loaded.
    pub async fn rule_query(&self, alert: &str) -> Result<Option<String>, ApiError> {
        let path = "/api/v1/rules?type=alert";
        let v = self.0.call(Method::GET, path, None).await?;
        let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
        Ok(groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["name"].as_str() == Some(alert))
            .and_then(|r| r["query"].as_str().map(str::to_string)))
    }

    /// The names of every alerting rule Prometheus has loaded.
    pub async fn alert_names(&self) -> Result<Vec<String>, ApiError> {
        let path = "/api/v1/rules?type=alert";
        let v = self.0.call(Method::GET, path, None).await?;
        let groups = v["data"]["groups"]
            .as_array()
            .ok_or_else(|| self.0.shape(path, "no data.groups"))?;
        Ok(groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect())
    }

    /// The global scrape and rule evaluation intervals of the configuration
    /// Prometheus runs with (`/api/v1/status/config`, defaults filled in).
    pub async fn intervals(&self) -> Result<(Duration, Duration), ApiError> {
        let path = "/api/v1/status/config";
        let v = self.0.call(Method::GET, path, None).await?;
        let yaml = v["data"]["yaml"]
            .as_str()
            .ok_or_else(|| self.0.shape(path, "no data.yaml"))?;
        let cfg: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(yaml).map_err(|e| self.0.shape(path, e.to_string()))?;
        let read = |key: &str| -> Result<Duration, ApiError> {
            let text = cfg["global"][key].as_str().unwrap_or("1m");
            prometheus_duration(text)
                .ok_or_else(|| self.0.shape(path, format!("global.{key} `{text}`")))
        };
        Ok((read("scrape_interval")?, read("evaluation_interval")?))
    }

    /// Parses `q` with Prometheus's own parser (`/api/v1/format_query`,
    /// Prometheus 2.38 and later) without evaluating it: an expression it
    /// rejects is an `ApiError::Status` (400) with the parser's
    /// `line:col: reason`.
    pub async fn format_query(&self, q: &str) -> Result<String, ApiError> {
        let path = format!("/api/v1/format_query?query={}", encode_query(q));
        let v = self.0.call(Method::GET, &path, None).await?;
        v["data"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.0.shape(&path, "no data"))
    }

    /// Whether Prometheus answers its readiness endpoint.
    pub async fn ready(&self) -> bool {
        self.0.call(Method::GET, "/-/ready", None).await.is_ok()
    }
}

/// A Prometheus duration (`15s`, `1m30s`, `500ms`, `1h`).
fn prometheus_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += Duration::from_millis(n.checked_mul(ms)?);
        rest = &rest[unit..];
    }
    Some(total)
}

/// An alert as Alertmanager holds it: what on-call would be paged for.
#[derive(Clone, Debug, Deserialize)]
pub struct AmAlert {
    pub labels: Labels,
    pub status: AmStatus,
    /// When Prometheus found it firing (RFC 3339), the origin of a guard's
    /// time to guard.
    #[serde(rename = "startsAt", default)]
    pub starts_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AmStatus {
    /// `active`, `suppressed` (silenced or inhibited) or `unprocessed`.
    pub state: String,
    #[serde(rename = "silencedBy", default)]
    pub silenced_by: Vec<String>,
}

/// One equality matcher of a silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
}

/// A Prometheus Pushgateway, where a scheduled drill leaves its results
/// for Prometheus to scrape (src/report/metrics.rs says what).
#[derive(Clone)]
pub struct Pushgateway(Api);

impl Pushgateway {
    /// A client for a Pushgateway (token from its variable, if any).
    pub fn to(e: &Endpoint) -> Result<Pushgateway, String> {
        Api::to(e).map(Pushgateway)
    }

    pub fn url(&self) -> &str {
        &self.0.base
    }

    /// Replaces the group at `path` (`/metrics/job/…`) with `body`: PUT,
    /// so no metric of an earlier run survives in it.
    pub async fn replace(
        &self,
        path: &str,
        body: &str,
        content_type: &str,
    ) -> Result<(), ApiError> {
        let body = Some((Bytes::from(body.to_string()), content_type));
        self.0.send(Method::PUT, path, body).await.map(|_| ())
    }
}

#[derive(Clone)]
pub struct Alertmanager(Api);

impl Alertmanager {
    pub fn new(base: &str) -> Alertmanager {
        Alertmanager(Api::new(base))
    }

    /// A client for an Alertmanager outside the lab (token from its variable).
    pub fn to(e: &Endpoint) -> Result<Alertmanager, String> {
        Api::to(e).map(Alertmanager)
    }

    pub fn url(&self) -> &str {
        &self.0.base
    }

    /// Alerts not yet resolved, silenced ones included.
    pub async fn alerts(&self) -> Result<Vec<AmAlert>, ApiError> {
        let path = "/api/v2/alerts?silenced=true&inhibited=true&active=true";
        let v = self.0.call(Method::GET, path, None).await?;
        serde_json::from_value(v).map_err(|e| self.0.shape(path, e.to_string()))
    }

    /// Whether Alertmanager answers its status endpoint.
    pub async fn ready(&self) -> Result<(), ApiError> {
        self.0
            .call(Method::GET, "/api/v2/status", None)
            .await
            .map(|_| ())
    }

    /// Creates a silence of one alert set (all `matchers` must hold) from
    /// now for `lasts`; returns its id.
    pub async fn silence(
        &self,
        matchers: &[Matcher],
        lasts: Duration,
        comment: &str,
    ) -> Result<String, ApiError> {
        let now = SystemTime::now();
        let body = serde_json::json!({
            "matchers": matchers.iter().map(|m| serde_json::json!({
                "name": m.name, "value": m.value, "isRegex": false, "isEqual": true
            })).collect::<Vec<_>>(),
            "startsAt": humantime::format_rfc3339_millis(now).to_string(),
            "endsAt": humantime::format_rfc3339_millis(now + lasts).to_string(),
            "createdBy": "drill",
            "comment": comment,
        });
        let path = "/api/v2/silences";
        let v = self.0.call(Method::POST, path, Some(body)).await?;
        v["silenceID"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.0.shape(path, "no silenceID"))
    }

    /// Expires a silence (Alertmanager keeps it, marked `expired`).
    pub async fn expire(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/api/v2/silence/{}", encode_query(id));
        self.0.call(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// Every silence: (id, state, createdBy, comment).
    pub async fn silences(&self) -> Result<Vec<(String, String, String, String)>, ApiError> {
        let path = "/api/v2/silences";
        let v = self.0.call(Method::GET, path, None).await?;
        let list = v
            .as_array()
            .ok_or_else(|| self.0.shape(path, "not a list"))?;
        let field = |x: &Value| x.as_str().unwrap_or_default().to_string();
        Ok(list
            .iter()
            .map(|s| {
                (
                    field(&s["id"]),
                    field(&s["status"]["state"]),
                    field(&s["createdBy"]),
                    field(&s["comment"]),
                )
            })
            .collect())
    }

    /// A silence's state: `active`, `pending` or `expired`.
    pub async fn silence_state(&self, id: &str) -> Result<String, ApiError> {
        let path = format!("/api/v2/silence/{}", encode_query(id));
        let v = self.0.call(Method::GET, &path, None).await?;
        v["status"]["state"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.0.shape(&path, "no status.state"))
    }
}

/// The metric names an expression selects (`name{...}` or `name[...]`),
/// to tell "the condition never held" from "nothing it reads exists".
pub fn selected_metrics(expr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    let mut in_str: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = in_str {
            if c == q {
                in_str = None;
            }
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            in_str = Some(c);
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && (b[j] == b'{' || b[j] == b'[') {
                let name = &expr[start..i];
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_a_rule_reads_are_found() {
        assert_eq!(
            selected_metrics(
                "sum by (cluster) (upp{app=\"istio-ingressgateway\"}) == 0 or rate(x_total[1m]) > 0"
            ),
            vec!["upp".to_string(), "x_total".to_string()]
        );
    }

    use super::*;

    #[test]
    fn prometheus_durations_read_as_prometheus_writes_them() {
        assert_eq!(prometheus_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(prometheus_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(
            prometheus_duration("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(prometheus_duration("1x"), None);
        assert_eq!(prometheus_duration(""), None);
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        // SAFETY: the variable is this test's own; no other test reads it.
        unsafe { std::env::set_var("DRILL_TEST_API_TOKEN", "s3cr3t-value") };
        let e = Endpoint {
            url: "http://127.0.0.1:1".into(),
            token_env: Some("DRILL_TEST_API_TOKEN".into()),
            ca_file: None,
        };
        let api = Api::to(&e).unwrap();
        assert!(!format!("{:?}", api.token).contains("s3cr3t"));
        let e = Endpoint {
            token_env: Some("DRILL_TEST_API_TOKEN_UNSET".into()),
            ..e
        };
        let err = Api::to(&e).err().unwrap();
        assert!(err.contains("DRILL_TEST_API_TOKEN_UNSET"), "{err}");
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode_query("sum(up{app=\"x\"}) == 0"),
            "sum%28up%7Bapp%3D%22x%22%7D%29%20%3D%3D%200"
        );
    }
}
