//! The agent protocol's wire types (HTTP/1.1, JSON bodies, every call a
//! POST): `hello` for clock alignment, `start` with the agent's share of the
//! schedule, `poll` for deltas (acknowledged by sequence number, so a lost
//! answer loses nothing), `stop`. docs/contract.md, "Agents".

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::load::http::HttpLoad;
use crate::measure::{Micros, Phase, RecorderDelta};
use crate::scenario::model::StatusMatch;

pub(crate) const VERSION: u32 = 1;

pub(crate) const HELLO: &str = "/v1/hello";
pub(crate) const START: &str = "/v1/start";
pub(crate) const POLL: &str = "/v1/poll";
pub(crate) const STOP: &str = "/v1/stop";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub version: u32,
    /// The agent's monotonic clock, µs since the agent started.
    pub agent_us: Micros,
}

/// What to send: the scenario's request, without its rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Template {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// Request body, base64.
    pub body: String,
    pub timeout_ms: u64,
    /// Success statuses: "2xx" (a class) or "404" (exact).
    pub success: Vec<String>,
    pub keep_alive: bool,
    pub workers: usize,
    pub max_in_flight: usize,
    /// The generator's tick, µs, as the runner resolved it; absent (0) from
    /// a runner that predates it: the automatic tick at the agent's rate.
    #[serde(default)]
    pub tick_us: u64,
}

/// One agent's share of the one-generator schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Share {
    pub template: Template,
    /// Requests per second of this agent (the drill's rate / agents).
    pub rate: f64,
    /// Its first request's due time, runner clock.
    pub start_us: Micros,
    /// Agent clock minus runner clock, µs.
    pub offset_us: i64,
    pub bucket_us: Micros,
    pub horizon_us: Micros,
    pub idle_timeout_ms: u64,
}

/// Stop sending requests due from `at_us` on (runner clock; absent: now).
/// Every agent stops at the same instant, so the merged schedule ends as
/// one generator's would.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Stop {
    #[serde(default)]
    pub at_us: Option<Micros>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Poll {
    /// The last sequence number the runner applied (0: none).
    pub ack: u64,
    /// Phase starts the runner decided, runner clock.
    pub marks: Vec<(Phase, Micros)>,
    /// No phase mark will come before this instant (runner clock): results
    /// due earlier can be attributed.
    pub settled_us: Micros,
    /// The drill's end (runner clock), once decided: results due at or
    /// after it are not counted, as the runner's own generator does not
    /// count them.
    #[serde(default)]
    pub end_us: Option<Micros>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PollReply {
    pub seq: u64,
    /// Everything recorded since the acknowledged sequence number.
    pub delta: RecorderDelta,
    /// The agent stopped, its requests ended and everything was sent.
    pub done: bool,
}

impl Template {
    pub(crate) fn of(load: &HttpLoad) -> Template {
        Template {
            url: load.url.to_string(),
            method: load.method.to_string(),
            headers: load
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body: base64::engine::general_purpose::STANDARD.encode(&load.body),
            timeout_ms: load.timeout.as_millis() as u64,
            success: load
                .success
                .iter()
                .map(|m| match m {
                    StatusMatch::Exact(s) => s.to_string(),
                    StatusMatch::Class(c) => format!("{c}xx"),
                })
                .collect(),
            keep_alive: load.keep_alive,
            workers: load.workers,
            max_in_flight: load.max_in_flight,
            tick_us: load.tick.as_micros() as u64,
        }
    }

    /// The generator's load at `rate`, or what in the template is not valid.
    pub(crate) fn load(&self, rate: f64) -> Result<HttpLoad, String> {
        let success = self
            .success
            .iter()
            .map(|s| match s.strip_suffix("xx") {
                Some(c) => c.parse().map(StatusMatch::Class),
                None => s.parse().map(StatusMatch::Exact),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("success status: {e}"))?;
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| Ok((k.parse()?, v.parse()?)))
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()
            .map_err(|e| format!("header: {e}"))?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|e| format!("body: {e}"))?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate {rate} is not a positive number"));
        }
        Ok(HttpLoad {
            url: self.url.parse().map_err(|e| format!("url: {e}"))?,
            method: self.method.parse().map_err(|e| format!("method: {e}"))?,
            headers,
            body: Bytes::from(body),
            rate,
            timeout: Duration::from_millis(self.timeout_ms),
            success,
            keep_alive: self.keep_alive,
            workers: self.workers.max(1),
            max_in_flight: self.max_in_flight.max(1),
            tick: match self.tick_us {
                0 => crate::load::http::auto_tick(
                    rate,
                    self.workers.max(1),
                    crate::scenario::plan::DEFAULT_MAX_SEND_LAG_US,
                ),
                us => Duration::from_micros(us.clamp(50, 100_000)),
            },
            ca_file: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_carries_the_scenarios_request_unchanged() {
        let load = HttpLoad {
            url: "http://127.0.0.1:9/p?q=1".parse().unwrap(),
            method: hyper::Method::POST,
            headers: vec![("x-drill".parse().unwrap(), "yes".parse().unwrap())],
            body: Bytes::from_static(b"\x00body"),
            rate: 100.0,
            timeout: Duration::from_millis(1_500),
            success: vec![StatusMatch::Class(2), StatusMatch::Exact(404)],
            keep_alive: false,
            workers: 3,
            max_in_flight: 77,
            tick: Duration::from_micros(400),
            ca_file: None,
        };
        let wire = serde_json::to_string(&Template::of(&load)).unwrap();
        let back = serde_json::from_str::<Template>(&wire)
            .unwrap()
            .load(50.0)
            .unwrap();
        assert_eq!(back.url, load.url);
        assert_eq!(back.method, load.method);
        assert_eq!(back.headers, load.headers);
        assert_eq!(back.body, load.body);
        assert_eq!(back.timeout, load.timeout);
        assert_eq!(back.success, load.success);
        assert_eq!(
            (back.keep_alive, back.workers, back.max_in_flight, back.tick),
            (false, 3, 77, Duration::from_micros(400))
        );
        assert_eq!(back.rate, 50.0);
        // From a runner that predates the tick: the automatic one.
        let mut old: serde_json::Value = serde_json::from_str(&wire).unwrap();
        old.as_object_mut().unwrap().remove("tick_us");
        let back = serde_json::from_value::<Template>(old)
            .unwrap()
            .load(240_000.0)
            .unwrap();
        // 80k req/s on each of its three workers.
        assert_eq!(back.tick, Duration::from_micros(500));
    }
}
