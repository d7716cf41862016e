//! Istio HTTP fault injection as a VirtualService spec edit: the spec with
//! a `fault` block on the chosen HTTP routes. Pure, so the exact spec that
//! goes to the cluster (and back at revert) is tested with plain values.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a `latency` or `abort` fault asks Istio to do.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HttpFault {
    Delay { percent: f64, delay: Duration },
    Abort { percent: f64, status: u16 },
}

impl HttpFault {
    /// The route's `fault` block (networking.istio.io/v1 HTTPFaultInjection).
    pub(crate) fn to_json(&self) -> Value {
        match self {
            HttpFault::Delay { percent, delay } => json!({
                "delay": { "percentage": { "value": percent }, "fixedDelay": duration(*delay) }
            }),
            HttpFault::Abort { percent, status } => json!({
                "abort": { "percentage": { "value": percent }, "httpStatus": status }
            }),
        }
    }
}

/// A protobuf Duration as Istio reads it: seconds with up to millisecond
/// decimals (`2s`, `0.25s`).
fn duration(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

/// One HTTP route drill put a fault on: enough to take exactly that fault
/// off again, from the journal alone, whatever else changed meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteFault {
    /// The route's position in `spec.http` when the fault went on.
    pub index: usize,
    /// The route's `name`, to find it again if someone reordered the routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `fault` block drill wrote.
    pub injected: Value,
    /// The `fault` block the route had before (none: it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Value>,
}

impl RouteFault {
    /// How a person names the route: by name, else by position.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("route `{n}`"),
            None => format!("route #{} (unnamed)", self.index),
        }
    }
}

/// `spec` with `fault` set on the route named `route`, or on every HTTP
/// route when none is named, and what was done to each route. Fails if
/// there is no such route.
pub(crate) fn with_fault(
    spec: &Value,
    route: Option<&str>,
    fault: &HttpFault,
) -> Result<(Value, Vec<RouteFault>), String> {
    let mut out = spec.clone();
    let Some(routes) = out.get_mut("http").and_then(Value::as_array_mut) else {
        return Err("has no HTTP routes (spec.http) to inject into".into());
    };
    let mut done = Vec::new();
    for (index, r) in routes.iter_mut().enumerate() {
        let named = r.get("name").and_then(Value::as_str).map(str::to_string);
        if (route.is_none() || named.as_deref() == route)
            && let Some(obj) = r.as_object_mut()
        {
            let injected = fault.to_json();
            let prior = obj.insert("fault".into(), injected.clone());
            done.push(RouteFault {
                index,
                name: named,
                injected,
                prior,
            });
        }
    }
    match (done.len(), route) {
        (0, Some(name)) => Err(format!("has no HTTP route named `{name}`")),
        (0, None) => Err("has no HTTP routes (spec.http) to inject into".into()),
        _ => Ok((out, done)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews() -> Value {
        json!({
            "hosts": ["reviews"],
            "http": [
                { "name": "split", "route": [
                    { "destination": { "host": "reviews", "subset": "v1" }, "weight": 50 },
                    { "destination": { "host": "reviews", "subset": "v2" }, "weight": 30 },
                    { "destination": { "host": "reviews", "subset": "v3" }, "weight": 20 }
                ], "retries": { "attempts": 3, "perTryTimeout": "2s" }, "timeout": "10s" },
                { "name": "canary", "route": [ { "destination": { "host": "reviews", "subset": "v3" } } ] }
            ]
        })
    }

    #[test]
    fn a_delay_goes_on_the_named_route_only_and_leaves_the_rest_alone() {
        let f = HttpFault::Delay {
            percent: 50.0,
            delay: Duration::from_millis(1500),
        };
        let (out, done) = with_fault(&reviews(), Some("split"), &f).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(
            (done[0].index, done[0].name.as_deref(), &done[0].prior),
            (0, Some("split"), &None)
        );
        assert_eq!(done[0].injected, out["http"][0]["fault"]);
        assert_eq!(
            out["http"][0]["fault"],
            json!({ "delay": { "percentage": { "value": 50.0 }, "fixedDelay": "1.5s" } })
        );
        assert!(out["http"][1].get("fault").is_none());
        let mut back = out.clone();
        back["http"][0].as_object_mut().unwrap().remove("fault");
        assert_eq!(back, reviews());
    }

    #[test]
    fn an_abort_without_a_route_name_goes_on_every_route() {
        let f = HttpFault::Abort {
            percent: 100.0,
            status: 503,
        };
        let mut spec = reviews();
        spec["http"][1]["fault"] = json!({ "abort": { "httpStatus": 418 } });
        let (out, done) = with_fault(&spec, None, &f).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].prior, None);
        assert_eq!(
            done[1].prior,
            Some(json!({ "abort": { "httpStatus": 418 } })),
            "the route's own fault is kept for the revert"
        );
        for r in out["http"].as_array().unwrap() {
            assert_eq!(
                r["fault"],
                json!({ "abort": { "percentage": { "value": 100.0 }, "httpStatus": 503 } })
            );
        }
    }

    #[test]
    fn a_missing_route_or_tcp_only_service_is_an_error() {
        let f = HttpFault::Abort {
            percent: 10.0,
            status: 500,
        };
        assert!(
            with_fault(&reviews(), Some("nope"), &f)
                .unwrap_err()
                .contains("`nope`")
        );
        assert!(with_fault(&json!({"tcp": []}), None, &f).is_err());
    }

    #[test]
    fn durations_are_written_as_istio_reads_them() {
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_millis(250)), "0.25s");
        assert_eq!(duration(Duration::from_millis(1001)), "1.001s");
    }
}
