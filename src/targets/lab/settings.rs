//! Lab timings and switches. Defaults give a drill of about a minute; tests
//! shorten them, and the negative tests break one policy at a time.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::mesh::MeshPolicy;
use crate::base::units::Dur;
use crate::db::DbSettings;

/// The global entry point's health checking, like the users' DNS steering.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "d1s", deserialize_with = "health_interval")]
    pub interval: Dur,
    #[serde(default = "d500ms", deserialize_with = "probe_timeout")]
    pub timeout: Dur,
    /// Consecutive failures that mark a gateway unhealthy.
    #[serde(default = "three", deserialize_with = "threshold")]
    pub unhealthy_threshold: u32,
    /// Consecutive successes that mark it healthy again.
    #[serde(default = "two", deserialize_with = "threshold")]
    pub healthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            interval: d1s(),
            timeout: d500ms(),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

impl HealthCheck {
    /// Failover time the settings imply after a gateway dies (connection
    /// refused at once): between (F−1)·I and F·I, depending on where in the
    /// check cycle the death falls.
    pub fn failover_bounds(&self) -> (f64, f64) {
        let i = self.interval.as_secs_f64();
        let f = self.unhealthy_threshold as f64;
        ((f - 1.0) * i, f * i)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabSettings {
    #[serde(default)]
    pub health: HealthCheck,
    /// Steer traffic to the secondary when the primary is unhealthy. Off, the
    /// entry point keeps sending to the primary (the negative test).
    #[serde(default = "yes")]
    pub failover: bool,
    /// How long a killed component stays gone before the supervisor
    /// recreates it (a pod's reschedule and readiness time).
    #[serde(default = "d8s")]
    pub restart_delay: Dur,
    /// Time each service (productpage, reviews) takes to answer.
    #[serde(default = "d1ms")]
    pub service_time: Dur,
    /// The data plane's traffic policy.
    #[serde(default)]
    pub mesh: MeshPolicy,
    /// How often the data plane asks its control plane for configuration.
    #[serde(default = "d1s", deserialize_with = "push_interval")]
    pub push_interval: Dur,
    /// The PostgreSQL pair started for database drills.
    #[serde(default)]
    pub database: DbSettings,
    /// An Alertmanager (`http://127.0.0.1:9093`) the lab's Prometheus sends
    /// to, instead of starting one: e.g. to watch the drill's silence.
    #[serde(default)]
    pub alertmanager: Option<String>,
}

impl Default for LabSettings {
    fn default() -> Self {
        LabSettings {
            health: HealthCheck::default(),
            failover: true,
            restart_delay: d8s(),
            service_time: d1ms(),
            mesh: MeshPolicy::default(),
            push_interval: d1s(),
            database: DbSettings::default(),
            alertmanager: None,
        }
    }
}

/// Shortest period a lab task may repeat on: tokio's interval panics on
/// zero, and a few microseconds would spin a core and flood the gateways.
const MIN_PERIOD: Duration = Duration::from_millis(10);

// These run wherever settings are read (the targets file, a lab process's
// spec), so a value the lab cannot run with is an input error pointing at it.

fn health_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let v = Dur::deserialize(d)?;
    if v.0 < MIN_PERIOD {
        return Err(D::Error::custom(format!(
            "health-check interval {v} is too short: the entry point probes both gateways every interval; give at least 10ms, e.g. interval = \"200ms\""
        )));
    }
    Ok(v)
}

fn push_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let v = Dur::deserialize(d)?;
    if v.0 < MIN_PERIOD {
        return Err(D::Error::custom(format!(
            "push_interval {v} is too short: the data plane asks its control plane every interval; give at least 10ms, e.g. push_interval = \"1s\""
        )));
    }
    Ok(v)
}

fn probe_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let v = Dur::deserialize(d)?;
    if v.0.is_zero() {
        return Err(D::Error::custom(
            "health-check timeout 0s fails every probe; give e.g. timeout = \"100ms\"",
        ));
    }
    Ok(v)
}

fn threshold<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(D::Error::custom(
            "a threshold of 0 consecutive results means nothing; give at least 1, e.g. 3",
        ));
    }
    Ok(v)
}

fn yes() -> bool {
    true
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn d1s() -> Dur {
    Dur::secs(1)
}
fn d500ms() -> Dur {
    Dur::millis(500)
}
fn d8s() -> Dur {
    Dur::secs(8)
}
fn d1ms() -> Dur {
    Dur::millis(1)
}
