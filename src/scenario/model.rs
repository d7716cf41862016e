//! The scenario file, as written: what load to run, which faults to inject
//! and when, how recovery is recognised, the SLO checks and abort conditions.
//! Values that validation may reject keep their span for file:line:col errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::base::units::{Dur, Percent, Quantity};

/// Phases a check may name: the measured ones, or `drill` for all of them.
pub const CHECK_PHASES: [&str; 4] = ["baseline", "fault", "recovery", "drill"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line shown by `drill list` and at the top of the report.
    pub description: String,
    /// Target used when `--target` is not given (default `lab`).
    pub target: Option<Spanned<String>>,
    /// HTTP load; a database drill may run with writes only.
    pub load: Option<Load>,
    /// Writer load on the target's database (database drills).
    pub database: Option<Spanned<DatabaseLoad>>,
    #[serde(default)]
    pub phases: Phases,
    #[serde(default)]
    pub recovery: Recovery,
    #[serde(default)]
    pub faults: Vec<Spanned<Fault>>,
    #[serde(default)]
    pub checks: Vec<Spanned<Check>>,
    #[serde(default)]
    pub abort: Vec<Spanned<Abort>>,
    /// Alerts the drill expects to fire (and resolve), read from Alertmanager.
    #[serde(default)]
    pub alerts: Vec<Spanned<ExpectedAlert>>,
    /// `report` (default) lists alerts that fired unexpected; `fail` also
    /// fails a check for them.
    pub unexpected_alerts: Option<Spanned<String>>,
    /// PromQL queries watched over a phase, with limits on their value.
    #[serde(default)]
    pub probes: Vec<Spanned<Probe>>,
    /// Silence the expected alerts in Alertmanager for the drill's length.
    #[serde(default)]
    pub silence: bool,
    /// The lab's alert rule file (relative to the scenario); default: the
    /// rules drill ships (rules/drill-alerts.yml).
    pub alert_rules: Option<Spanned<String>>,
    /// Stop guards: revert and stop when production says "enough"
    /// (scenario/guard.rs).
    #[serde(default)]
    pub guard: Vec<Spanned<super::guard::Guard>>,
}

/// One alert a drill expects: it must fire within `fire_within` of its
/// fault's inject and resolve within `resolve_within` of recovery.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    /// The alert's `alertname`.
    pub name: Spanned<String>,
    /// Labels the alert must carry (e.g. `{ cluster = "primary" }`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The fault it belongs to (default: the first).
    pub fault: Option<Spanned<String>>,
    pub fire_within: Spanned<Dur>,
    pub resolve_within: Option<Spanned<Dur>>,
}

/// A PromQL query evaluated through a phase, with limits on its value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: Option<String>,
    pub query: Spanned<String>,
    /// `baseline`, `fault`, `recovery` or `drill` (default).
    pub phase: Option<Spanned<String>>,
    /// Every value seen must be at most this.
    pub max: Option<Spanned<f64>>,
    /// Every value seen must be at least this.
    pub min: Option<Spanned<f64>>,
}

/// Open-loop HTTP load against the target's entry point.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default = "default_method")]
    pub method: Spanned<String>,
    /// Path (and query) on the target's entry URL.
    pub path: Spanned<String>,
    /// Requests per second.
    pub rate: Spanned<f64>,
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<Dur>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose value is read from an environment variable at run
    /// time (header → variable): for secrets such as `Authorization`, which
    /// then appear in no file drill reads or writes.
    #[serde(default)]
    pub headers_env: BTreeMap<String, Spanned<String>>,
    /// Statuses that count as good: numbers (`200`) or classes (`"2xx"`).
    #[serde(default = "default_success")]
    pub success: Vec<Spanned<StatusMatch>>,
    #[serde(default = "yes")]
    pub keep_alive: bool,
    /// Request body (for POST/PUT).
    pub body: Option<String>,
    /// Threads sending the schedule (request i on worker i mod workers).
    #[serde(default = "one")]
    pub workers: Spanned<u32>,
    /// Requests in flight at once; past it, requests are counted as not
    /// sent (bad). Default 10000, capped below the open-file limit.
    pub max_in_flight: Option<Spanned<u64>>,
    /// Send-lag p99 above which the drill's measurements are not trusted
    /// (verdict `inconclusive`). Default: 50 ms, or a tenth of the tightest
    /// latency check's bound when that is lower.
    pub max_send_lag: Option<Spanned<Dur>>,
    /// How often the generator wakes to send every request that fell due
    /// meanwhile; a request waits at most one tick. Default: automatic
    /// (1 ms up to 40k req/s a worker, 500 µs at 80k, 250 µs from 160k,
    /// never above a quarter of `max_send_lag`).
    pub tick: Option<Spanned<Dur>>,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

fn default_method() -> Spanned<String> {
    Spanned::new(0..0, "GET".into())
}
fn default_timeout() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(2))
}
fn default_success() -> Vec<Spanned<StatusMatch>> {
    vec![Spanned::new(0..0, StatusMatch::Class(2))]
}
fn yes() -> bool {
    true
}

/// Open-loop writes of sequence-numbered rows; RPO is measured from their
/// acknowledgements.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseLoad {
    /// Writes per second.
    #[serde(default = "hundred")]
    pub rate: Spanned<f64>,
    /// A write not acknowledged within this is indeterminate.
    #[serde(default = "d5s_plain")]
    pub write_timeout: Dur,
    /// Optional reader probe: reads per second from any node.
    pub read_rate: Option<Spanned<f64>>,
}

fn hundred() -> Spanned<f64> {
    Spanned::new(0..0, 100.0)
}
fn d5s_plain() -> Dur {
    Dur::secs(5)
}

/// One status or a whole class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    Class(u16),
}

impl StatusMatch {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Exact(s) => s == status,
            StatusMatch::Class(c) => status / 100 == c,
        }
    }
}

impl<'de> Deserialize<'de> for StatusMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if (100..600).contains(&n) => Ok(StatusMatch::Exact(n as u16)),
            Raw::N(n) => Err(D::Error::custom(format!(
                "{n} is not an HTTP status (100..599)"
            ))),
            Raw::S(s) => {
                let b = s.as_bytes();
                if b.len() == 3
                    && (b'1'..=b'5').contains(&b[0])
                    && b[1..].eq_ignore_ascii_case(b"xx")
                {
                    Ok(StatusMatch::Class((b[0] - b'0') as u16))
                } else {
                    Err(D::Error::custom(format!(
                        "`{s}` is not a status or class; write 200 or \"2xx\""
                    )))
                }
            }
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    /// Load runs, nothing is measured (connections warm up).
    #[serde(default = "d5s")]
    pub warmup: Spanned<Dur>,
    /// Steady state, checked before anything is injected.
    #[serde(default = "d15s")]
    pub baseline: Spanned<Dur>,
    /// Observation after the last revert or heal.
    #[serde(default = "d30s")]
    pub recovery: Spanned<Dur>,
}

fn d5s() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(5))
}
fn d15s() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(15))
}
fn d30s() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(30))
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            warmup: d5s(),
            baseline: d15s(),
            recovery: d30s(),
        }
    }
}

/// How recovery is recognised (docs/contract.md, RTO).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    #[serde(default = "d1s")]
    pub window: Spanned<Dur>,
    #[serde(default = "p99")]
    pub ratio: Spanned<Percent>,
    #[serde(default = "d10s")]
    pub hold: Spanned<Dur>,
}

fn d1s() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(1))
}
fn d10s() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::secs(10))
}
fn p99() -> Spanned<Percent> {
    Spanned::new(0..0, Percent(0.99))
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            window: d1s(),
            ratio: p99(),
            hold: d10s(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Kill the component's instances; they come back by themselves.
    Delete,
    /// Scale the component to zero for `duration`, then restore.
    Down,
    /// Add a delay to a share of the component's requests.
    Latency,
    /// Answer an HTTP status to a share of the component's requests.
    Abort,
    /// Every component of a region down, then restored.
    RegionOutage,
    /// Run a user's inject command, later their revert command.
    Command,
    /// Planned database switchover: the standby becomes primary.
    Switchover,
    /// Unplanned database failover: the primary dies, the standby is promoted.
    Failover,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Down => "down",
            Action::Latency => "latency",
            Action::Abort => "abort",
            Action::RegionOutage => "region-outage",
            Action::Command => "command",
            Action::Switchover => "switchover",
            Action::Failover => "failover",
        }
    }
    /// Heals by itself (no revert step) rather than being reverted.
    pub fn self_healing(self) -> bool {
        matches!(self, Action::Delete)
    }
    /// Applied by the target itself (not a command, not the database).
    pub fn via_target(self) -> bool {
        !matches!(
            self,
            Action::Command | Action::Switchover | Action::Failover
        )
    }
    /// Done when its inject step completes: a switchover or failover is not
    /// reverted, the promoted standby stays primary.
    pub fn one_way(self) -> bool {
        matches!(self, Action::Switchover | Action::Failover)
    }
    /// How a fault of this action ends.
    pub fn lifecycle(self) -> Lifecycle {
        if self.one_way() {
            Lifecycle::OneWay
        } else if self.self_healing() {
            Lifecycle::SelfHealing
        } else {
            Lifecycle::Revertible
        }
    }
}

/// How a fault ends, which decides how the runner drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Injected, then the target repairs it (a Deployment recreates a pod):
    /// the runner waits for the heal; there is nothing to revert.
    SelfHealing,
    /// Injected, held, then reverted by drill to the exact prior state.
    Revertible,
    /// Done when its inject completes and never undone (a promoted standby
    /// stays primary).
    OneWay,
}

/// When a fault ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Until {
    /// The component is serving again (self-healing faults).
    Healed,
    /// Traffic met the recovery criteria (RTO found).
    Recovered,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Name used in checks and reports (default `<action>-<component>-<region>`).
    pub name: Option<Spanned<String>>,
    pub component: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub action: Spanned<Action>,
    /// Delay before the inject step, from the end of the previous fault (or
    /// the start of the fault phase for the first).
    #[serde(default)]
    pub after: Dur,
    /// How long the fault stays before its revert step.
    pub duration: Option<Spanned<Dur>>,
    /// End the fault on a condition instead of a duration.
    pub until: Option<Spanned<Until>>,
    /// Longest wait for `until` (then the fault is reverted anyway).
    #[serde(default = "d2m")]
    pub timeout: Dur,
    // Action parameters.
    /// `delete`: how many instances (default all).
    pub count: Option<Spanned<u32>>,
    /// `latency`/`abort`: share of requests affected (default 100%);
    /// `delete`: share of the component's instances (Kubernetes).
    pub percent: Option<Spanned<Percent>>,
    /// `latency`: added delay.
    pub delay: Option<Spanned<Dur>>,
    /// `latency`: ± jitter around the delay.
    pub jitter: Option<Spanned<Dur>>,
    /// `abort`: status to answer.
    pub status: Option<Spanned<u16>>,
    /// `command`: shell command that injects the fault.
    pub inject: Option<Spanned<String>>,
    /// `command`: shell command that reverts it.
    pub revert: Option<Spanned<String>>,
    /// Control-plane faults: make a routing change while it is down and
    /// measure how long the data plane takes to apply it once it returns.
    #[serde(default)]
    pub change_config: bool,
    /// `command`: longest a command may run.
    #[serde(default = "d30s_plain")]
    pub command_timeout: Dur,
}

fn d2m() -> Dur {
    Dur::secs(120)
}
fn d30s_plain() -> Dur {
    Dur::secs(30)
}

impl Fault {
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.get_ref().clone();
        }
        let mut s = self.action.get_ref().name().to_string();
        if let Some(c) = &self.component {
            s.push('-');
            s.push_str(c.get_ref());
        }
        if let Some(r) = &self.region {
            s.push('-');
            s.push_str(r.get_ref());
        }
        s
    }
    pub fn component(&self) -> Option<&str> {
        self.component.as_ref().map(|c| c.get_ref().as_str())
    }
    pub fn region(&self) -> Option<&str> {
        self.region.as_ref().map(|c| c.get_ref().as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// RTO of a fault (or each fault) at most `max`.
    Rto,
    /// Outage time of a fault at most `max`.
    Outage,
    /// Availability of a phase at least `min`.
    Availability,
    /// A latency percentile of a phase at most `max`.
    Latency,
    /// Error budget consumed at most `max` (percent of the period's budget).
    ErrorBudget,
    /// Mesh configuration sync after the control plane returns, at most `max`.
    ConfigSync,
    /// Time until a deleted component serves again, at most `max`.
    ComponentReady,
    /// Data lost by a database fault: RPO time (`max = "30s"`) or lost
    /// acknowledged writes (`max = 0`).
    Rpo,
    /// From the inject to the first acknowledged write on the new primary.
    WriteRto,
    /// A figure (`metric`) worse than the median of the last `runs` passing
    /// runs in the history by more than `max` (a percentage).
    Regression,
}

impl CheckKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Rto => "rto",
            CheckKind::Outage => "outage",
            CheckKind::Availability => "availability",
            CheckKind::Latency => "latency",
            CheckKind::ErrorBudget => "error-budget",
            CheckKind::ConfigSync => "config-sync",
            CheckKind::ComponentReady => "component-ready",
            CheckKind::Rpo => "rpo",
            CheckKind::WriteRto => "write-rto",
            CheckKind::Regression => "regression",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub kind: Spanned<CheckKind>,
    pub name: Option<String>,
    /// `rto`/`outage`: which fault (default: every fault).
    pub fault: Option<Spanned<String>>,
    /// `availability`/`latency`: which phase.
    pub phase: Option<Spanned<String>>,
    /// `latency`: `p50`, `p90`, `p95`, `p99`, `p99.9` or `max`.
    pub percentile: Option<Spanned<String>>,
    pub max: Option<Spanned<Quantity>>,
    pub min: Option<Spanned<Quantity>>,
    /// `error-budget`: the availability SLO.
    pub slo: Option<Spanned<Percent>>,
    /// `error-budget`: the SLO period (default 30d).
    pub period: Option<Spanned<Dur>>,
    /// `regression`: the figure followed: `rto`, `time-to-impact`, `p99`
    /// (fault phase) or `error-budget`.
    pub metric: Option<Spanned<String>>,
    /// `regression`: how many passing runs the median is taken over (default 5).
    pub runs: Option<Spanned<u32>>,
}

/// Stop the drill (revert, exit 3) when traffic is worse than expected.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// Abort when availability over the last `over` falls below this.
    pub availability_below: Spanned<Percent>,
    #[serde(default = "d10s_plain")]
    pub over: Dur,
    /// Not evaluated until this long after the first inject (the expected outage).
    #[serde(default)]
    pub after: Dur,
}

fn d10s_plain() -> Dur {
    Dur::secs(10)
}

/// A latency percentile a check can name, as a quantile (`max` = 1.0).
pub fn parse_percentile(s: &str) -> Option<f64> {
    match s {
        "max" => Some(1.0),
        _ => {
            let v: f64 = s.strip_prefix('p')?.parse().ok()?;
            (v > 0.0 && v < 100.0).then_some(v / 100.0)
        }
    }
}
