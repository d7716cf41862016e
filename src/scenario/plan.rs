//! The resolved plan: what a validated scenario means, with defaults filled
//! in, durations as durations and checks typed by kind. `plan`, `run` and
//! the reports read this; nothing downstream of validation sees a TOML span.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::Loaded;
use super::model::{self, Action, CheckKind, StatusMatch, Until, parse_percentile};
use crate::base::units::{Dur, Quantity};
use crate::measure::{Micros, RecoveryCriteria};

/// Default in-flight limit of the load (all workers together), before the
/// generator's open-file cap.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// One drill, resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario's name (its file stem).
    pub name: String,
    /// Where it was read from (a built-in has a pseudo path).
    pub path: PathBuf,
    pub description: String,
    /// The target the scenario names, if any (`--target` overrides).
    pub target: Option<String>,
    pub load: Option<LoadPlan>,
    pub database: Option<WriterPlan>,
    pub phases: Phases,
    pub recovery: RecoveryCriteria,
    pub faults: Vec<FaultPlan>,
    pub checks: Vec<CheckPlan>,
    pub aborts: Vec<AbortPlan>,
    /// The SLO the error budget is measured against.
    pub budget: BudgetSlo,
    /// Alerts and metric probes, when the scenario reads any (or guards).
    pub monitoring: Option<MonitoringPlan>,
    /// Stop guards, watched from preflight to the end of recovery.
    pub guards: Vec<super::guard::GuardPlan>,
}

/// What a drill reads from Prometheus and Alertmanager.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitoringPlan {
    pub alerts: Vec<AlertPlan>,
    /// Alerts that fire unexpected fail a check (else they are only listed).
    pub unexpected_fail: bool,
    pub probes: Vec<ProbePlan>,
    pub silence: bool,
    /// The lab's rule file; None = the shipped rules.
    pub rules: Option<PathBuf>,
}

impl MonitoringPlan {
    /// Lines for `drill plan`: each expected alert, probe and the silence.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "alert: {} fires within {} of `{}`{}",
                    a.display(),
                    a.fire_within,
                    a.fault.as_deref().unwrap_or("-"),
                    a.resolve_within.map_or(String::new(), |d| format!(
                        ", resolves within {d} of recovery"
                    ))
                )
            })
            .collect();
        out.extend(self.probes.iter().map(|p| {
            let lim = |k: &str, v: Option<f64>| v.map_or(String::new(), |v| format!(" {k} {v}"));
            format!(
                "probe: {} over {}:{}{} — {}",
                p.name,
                p.phase.name(),
                lim("≥", p.min),
                lim("≤", p.max),
                p.query
            )
        }));
        out.push(format!(
            "unexpected alerts: {}",
            if self.unexpected_fail {
                "fail"
            } else {
                "reported"
            }
        ));
        if self.silence {
            out.push(
                "silence: the expected alerts, from before the first inject to the end".into(),
            );
        }
        out
    }
}

/// One expected alert, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertPlan {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The fault whose inject starts time to detect.
    pub fault: Option<String>,
    pub fire_within: Dur,
    pub resolve_within: Option<Dur>,
}

impl AlertPlan {
    /// `Name{k="v",...}` as shown in reports.
    pub fn display(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let l: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{}{{{}}}", self.name, l.join(","))
    }
}

/// One metric probe, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbePlan {
    pub name: String,
    pub query: String,
    pub phase: PhaseScope,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

/// Open-loop HTTP load against the target's entry point.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub method: String,
    pub path: String,
    pub rate: f64,
    pub timeout: Duration,
    pub headers: BTreeMap<String, String>,
    /// Header → the environment variable its value is read from at run time.
    pub headers_env: BTreeMap<String, String>,
    pub success: Vec<StatusMatch>,
    pub keep_alive: bool,
    pub body: Option<String>,
    /// Threads sending the schedule (request i on worker i mod workers).
    pub workers: usize,
    /// Requests in flight at once; past it, requests are not sent (bad).
    pub max_in_flight: usize,
    /// Send-lag p99 above which the measurements are not trusted.
    pub max_send_lag_us: u64,
    /// The generator's tick when the scenario sets one (else automatic).
    pub tick: Option<Duration>,
}

/// Default send-lag bound: half the 100 ms RTO bucket, so a request is
/// never attributed more than one bucket late; a loaded 2-core machine
/// delays a sleeping thread's wakeup by tens of milliseconds at p99.
pub const DEFAULT_MAX_SEND_LAG_US: u64 = 50_000;

/// The send-lag p99 bound: the scenario's, else the default, lowered to a
/// tenth of the tightest latency check so lag cannot decide one.
pub(crate) fn send_lag_bound(s: &model::Scenario) -> u64 {
    if let Some(lag) = s.load.as_ref().and_then(|l| l.max_send_lag.as_ref()) {
        return lag.get_ref().0.as_micros() as u64;
    }
    s.checks
        .iter()
        .map(|c| c.get_ref())
        .filter(|c| *c.kind.get_ref() == CheckKind::Latency)
        .filter_map(|c| match c.max.as_ref().map(|m| *m.get_ref()) {
            Some(Quantity::Duration(d)) => Some(d.0.as_micros() as u64 / 10),
            _ => None,
        })
        .fold(DEFAULT_MAX_SEND_LAG_US, u64::min)
        .max(1_000)
}

/// Sequence-numbered writes (and an optional read probe) on the database.
#[derive(Clone, Copy, Debug)]
pub struct WriterPlan {
    pub rate: f64,
    pub write_timeout: Duration,
    pub read_rate: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
pub struct Phases {
    pub warmup: Dur,
    pub baseline: Dur,
    pub recovery: Dur,
}

/// One fault: what, where, when it ends, and its action's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// Name used in checks and reports (default `<action>-<component>-<region>`).
    pub name: String,
    pub component: Option<String>,
    pub region: Option<String>,
    pub action: Action,
    /// Wait before the inject, from the previous fault's end.
    pub after: Dur,
    pub duration: Option<Dur>,
    pub until: Option<Until>,
    /// Longest wait for `until`, or for a self-healing fault to heal.
    pub timeout: Dur,
    pub count: Option<u32>,
    /// Share (0..1) of requests (`latency`, `abort`) or instances (`delete`).
    pub percent: Option<f64>,
    pub delay: Option<Dur>,
    pub jitter: Option<Dur>,
    pub status: Option<u16>,
    pub inject: Option<String>,
    pub revert: Option<String>,
    pub change_config: bool,
    pub command_timeout: Dur,
}

impl FaultPlan {
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// What ends the fault: its `until`, or healing for a self-healing one.
    pub fn end_condition(&self) -> Option<Until> {
        self.until
            .or(self.action.self_healing().then_some(Until::Healed))
    }
    /// Longest the fault may last: its duration, else its timeout.
    pub fn deadline(&self) -> Micros {
        self.duration.unwrap_or(self.timeout).micros()
    }
}

/// Which measured phases a check reads: one, or the whole drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseScope {
    Baseline,
    Fault,
    Recovery,
    Drill,
}

impl PhaseScope {
    pub fn parse(s: &str) -> Option<PhaseScope> {
        Some(match s {
            "baseline" => PhaseScope::Baseline,
            "fault" => PhaseScope::Fault,
            "recovery" => PhaseScope::Recovery,
            "drill" => PhaseScope::Drill,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            PhaseScope::Baseline => "baseline",
            PhaseScope::Fault => "fault",
            PhaseScope::Recovery => "recovery",
            PhaseScope::Drill => "drill",
        }
    }
}

/// The limit of an `rpo` check: time, or a count of lost writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RpoLimit {
    Seconds(f64),
    Writes(u64),
}

/// One SLO check, typed by kind with exactly the values that kind uses.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckSpec {
    /// RTO of one fault (or each), at most `max_s`.
    Rto {
        fault: Option<String>,
        max_s: f64,
    },
    Outage {
        fault: Option<String>,
        max_s: f64,
    },
    ConfigSync {
        fault: Option<String>,
        max_s: f64,
    },
    ComponentReady {
        fault: Option<String>,
        max_s: f64,
    },
    /// Availability of a phase, at least `min_pct` (0..100).
    Availability {
        phase: PhaseScope,
        min_pct: f64,
    },
    /// A latency percentile of a phase, at most `max_ms`.
    Latency {
        phase: PhaseScope,
        /// As written: `p99`, `p99.9`, `max`.
        percentile: String,
        quantile: f64,
        max_ms: f64,
    },
    /// Error budget consumed over the drill, at most `max_pct` of the period's.
    ErrorBudget {
        max_pct: f64,
    },
    Rpo {
        max: RpoLimit,
    },
    WriteRto {
        max_s: f64,
    },
    /// A figure no worse than the median of the last `runs` passing runs
    /// by more than `max_increase` (a share: 0.2 = 20%).
    Regression {
        metric: Followed,
        fault: Option<String>,
        runs: usize,
        max_increase: f64,
    },
}

/// The figures a `regression` check can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followed {
    Rto,
    TimeToImpact,
    /// Latency p99 of the fault phase.
    FaultP99,
    ErrorBudget,
}

impl Followed {
    pub fn name(self) -> &'static str {
        match self {
            Followed::Rto => "rto",
            Followed::TimeToImpact => "time-to-impact",
            Followed::FaultP99 => "p99",
            Followed::ErrorBudget => "error-budget",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckPlan {
    /// The name the scenario gave, if any (else one per kind and subject).
    pub name: Option<String>,
    pub spec: CheckSpec,
}

impl CheckPlan {
    pub fn kind(&self) -> CheckKind {
        match self.spec {
            CheckSpec::Rto { .. } => CheckKind::Rto,
            CheckSpec::Outage { .. } => CheckKind::Outage,
            CheckSpec::ConfigSync { .. } => CheckKind::ConfigSync,
            CheckSpec::ComponentReady { .. } => CheckKind::ComponentReady,
            CheckSpec::Availability { .. } => CheckKind::Availability,
            CheckSpec::Latency { .. } => CheckKind::Latency,
            CheckSpec::ErrorBudget { .. } => CheckKind::ErrorBudget,
            CheckSpec::Rpo { .. } => CheckKind::Rpo,
            CheckSpec::WriteRto { .. } => CheckKind::WriteRto,
            CheckSpec::Regression { .. } => CheckKind::Regression,
        }
    }

    /// One line for `drill plan`: the kind, what it reads, its limit.
    pub fn describe(&self) -> String {
        let secs = |s: f64| Dur(Duration::from_secs_f64(s)).to_string();
        let fault =
            |f: &Option<String>| f.as_ref().map_or(String::new(), |f| format!(" fault={f}"));
        let kind = self.kind().name();
        match &self.spec {
            CheckSpec::Rto { fault: f, max_s }
            | CheckSpec::Outage { fault: f, max_s }
            | CheckSpec::ConfigSync { fault: f, max_s }
            | CheckSpec::ComponentReady { fault: f, max_s } => {
                format!("{kind}{} ≤ {}", fault(f), secs(*max_s))
            }
            CheckSpec::Availability { phase, min_pct } => format!(
                "{kind} phase={} ≥ {}",
                phase.name(),
                crate::base::units::Percent(min_pct / 100.0)
            ),
            CheckSpec::Latency {
                phase,
                percentile,
                max_ms,
                ..
            } => format!(
                "{kind} phase={} percentile={percentile} ≤ {}",
                phase.name(),
                secs(max_ms / 1000.0)
            ),
            CheckSpec::ErrorBudget { max_pct } => {
                format!("{kind} ≤ {}", crate::base::units::Percent(max_pct / 100.0))
            }
            CheckSpec::Rpo {
                max: RpoLimit::Seconds(s),
            } => format!("{kind} ≤ {}", secs(*s)),
            CheckSpec::Rpo {
                max: RpoLimit::Writes(n),
            } => format!("{kind} ≤ {n} lost writes"),
            CheckSpec::WriteRto { max_s } => format!("{kind} ≤ {}", secs(*max_s)),
            CheckSpec::Regression {
                metric,
                fault: f,
                runs,
                max_increase,
            } => format!(
                "{kind} metric={}{} ≤ {} worse than the median of the last {runs} passing run(s)",
                metric.name(),
                fault(f),
                crate::base::units::Percent(*max_increase)
            ),
        }
    }

    /// The phase a phase check reads (none for per-fault checks).
    pub fn phase(&self) -> Option<PhaseScope> {
        match self.spec {
            CheckSpec::Availability { phase, .. } | CheckSpec::Latency { phase, .. } => Some(phase),
            _ => None,
        }
    }
}

/// Stop (revert, exit 3) when availability over the last `over` is below
/// `below`, from `after` past the first inject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AbortPlan {
    /// Ratio 0..1.
    pub below: f64,
    pub over: Dur,
    pub after: Dur,
}

/// The SLO the error budget is measured against: the scenario's
/// error-budget check's, else its strictest availability check, else 99.9%,
/// over 30 days unless the check says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetSlo {
    /// Ratio 0..1, capped below 1 so that a budget exists.
    pub target: f64,
    pub period_s: f64,
}

fn budget(s: &model::Scenario) -> BudgetSlo {
    let checks = || s.checks.iter().map(|c| c.get_ref());
    let eb = checks().find(|c| *c.kind.get_ref() == CheckKind::ErrorBudget);
    let strictest = checks()
        .filter_map(
            |c| match (c.kind.get_ref(), c.min.as_ref().map(|m| *m.get_ref())) {
                (CheckKind::Availability, Some(Quantity::Percent(p))) => Some(p.0),
                _ => None,
            },
        )
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    BudgetSlo {
        target: eb
            .and_then(|c| c.slo.as_ref())
            .map(|p| p.get_ref().0)
            .or(strictest)
            .unwrap_or(0.999)
            .min(0.999_999),
        period_s: eb
            .and_then(|c| c.period.as_ref())
            .map_or(30.0 * 86400.0, |p| p.get_ref().as_secs_f64()),
    }
}

impl Plan {
    /// Resolves a scenario that passed validation. Values validation
    /// guarantees are taken as given; defaults are filled in here, once.
    pub fn resolve(l: &Loaded) -> Plan {
        let s = &l.scenario;
        let r = &s.recovery;
        Plan {
            name: l.name.clone(),
            path: l.path.clone(),
            description: s.description.clone(),
            target: s.target.as_ref().map(|t| t.get_ref().clone()),
            load: s.load.as_ref().map(|ld| LoadPlan {
                method: ld.method.get_ref().clone(),
                path: ld.path.get_ref().clone(),
                rate: *ld.rate.get_ref(),
                timeout: ld.timeout.get_ref().0,
                headers: ld.headers.clone(),
                headers_env: ld
                    .headers_env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect(),
                success: ld.success.iter().map(|m| *m.get_ref()).collect(),
                keep_alive: ld.keep_alive,
                body: ld.body.clone(),
                workers: (*ld.workers.get_ref() as usize).max(1),
                max_in_flight: ld
                    .max_in_flight
                    .as_ref()
                    .map_or(DEFAULT_MAX_IN_FLIGHT, |m| *m.get_ref() as usize),
                max_send_lag_us: send_lag_bound(s),
                tick: ld.tick.as_ref().map(|t| t.get_ref().0),
            }),
            database: s.database.as_ref().map(|w| {
                let w = w.get_ref();
                WriterPlan {
                    rate: *w.rate.get_ref(),
                    write_timeout: w.write_timeout.0,
                    read_rate: w.read_rate.as_ref().map(|r| *r.get_ref()),
                }
            }),
            phases: Phases {
                warmup: *s.phases.warmup.get_ref(),
                baseline: *s.phases.baseline.get_ref(),
                recovery: *s.phases.recovery.get_ref(),
            },
            recovery: RecoveryCriteria {
                window_us: r.window.get_ref().micros(),
                ratio: r.ratio.get_ref().0,
                hold_us: r.hold.get_ref().micros(),
            },
            faults: s
                .faults
                .iter()
                .map(|f| resolve_fault(f.get_ref()))
                .collect(),
            checks: s.checks.iter().map(|c| check(c.get_ref())).collect(),
            aborts: s
                .abort
                .iter()
                .map(|a| {
                    let a = a.get_ref();
                    AbortPlan {
                        below: a.availability_below.get_ref().0,
                        over: a.over,
                        after: a.after,
                    }
                })
                .collect(),
            budget: budget(s),
            monitoring: monitoring(l),
            guards: super::guard::resolve(l),
        }
    }

    /// The load's timeout (2 s without HTTP load).
    pub fn timeout(&self) -> Duration {
        self.load
            .as_ref()
            .map_or(Duration::from_secs(2), |l| l.timeout)
    }

    pub fn rate(&self) -> f64 {
        self.load.as_ref().map_or(0.0, |l| l.rate)
    }
}

impl FaultPlan {
    /// Resolves one fault as written (validated).
    pub fn resolve(f: &model::Fault) -> FaultPlan {
        resolve_fault(f)
    }
}

fn resolve_fault(f: &model::Fault) -> FaultPlan {
    let s = |x: &Option<toml::Spanned<String>>| x.as_ref().map(|v| v.get_ref().clone());
    FaultPlan {
        name: f.display_name(),
        component: s(&f.component),
        region: s(&f.region),
        action: *f.action.get_ref(),
        after: f.after,
        duration: f.duration.as_ref().map(|d| *d.get_ref()),
        until: f.until.as_ref().map(|u| *u.get_ref()),
        timeout: f.timeout,
        count: f.count.as_ref().map(|c| *c.get_ref()),
        percent: f.percent.as_ref().map(|p| p.get_ref().0),
        delay: f.delay.as_ref().map(|d| *d.get_ref()),
        jitter: f.jitter.as_ref().map(|d| *d.get_ref()),
        status: f.status.as_ref().map(|d| *d.get_ref()),
        inject: s(&f.inject),
        revert: s(&f.revert),
        change_config: f.change_config,
        command_timeout: f.command_timeout,
    }
}

fn check(c: &model::Check) -> CheckPlan {
    let max = c.max.as_ref().map(|q| *q.get_ref());
    let max_s = match max {
        Some(Quantity::Duration(d)) => d.as_secs_f64(),
        _ => f64::INFINITY,
    };
    let pct = |q: &Option<toml::Spanned<Quantity>>| match q.as_ref().map(|q| *q.get_ref()) {
        Some(Quantity::Percent(p)) => p.0 * 100.0,
        _ => 0.0,
    };
    let fault = c.fault.as_ref().map(|f| f.get_ref().clone());
    let phase = c
        .phase
        .as_ref()
        .and_then(|p| PhaseScope::parse(p.get_ref()))
        .unwrap_or(PhaseScope::Drill);
    let spec = match *c.kind.get_ref() {
        CheckKind::Rto => CheckSpec::Rto { fault, max_s },
        CheckKind::Outage => CheckSpec::Outage { fault, max_s },
        CheckKind::ConfigSync => CheckSpec::ConfigSync { fault, max_s },
        CheckKind::ComponentReady => CheckSpec::ComponentReady { fault, max_s },
        CheckKind::Availability => CheckSpec::Availability {
            phase,
            min_pct: pct(&c.min),
        },
        CheckKind::Latency => {
            let percentile = c
                .percentile
                .as_ref()
                .map_or("p99".to_string(), |p| p.get_ref().clone());
            CheckSpec::Latency {
                phase,
                quantile: parse_percentile(&percentile).unwrap_or(0.99),
                percentile,
                max_ms: max_s * 1000.0,
            }
        }
        CheckKind::ErrorBudget => CheckSpec::ErrorBudget {
            max_pct: pct(&c.max),
        },
        CheckKind::Rpo => CheckSpec::Rpo {
            max: match max {
                Some(Quantity::Count(n)) => RpoLimit::Writes(n),
                _ => RpoLimit::Seconds(max_s),
            },
        },
        CheckKind::WriteRto => CheckSpec::WriteRto { max_s },
        CheckKind::Regression => CheckSpec::Regression {
            metric: match c.metric.as_ref().map(|m| m.get_ref().as_str()) {
                Some("time-to-impact") => Followed::TimeToImpact,
                Some("p99") => Followed::FaultP99,
                Some("error-budget") => Followed::ErrorBudget,
                _ => Followed::Rto,
            },
            fault,
            runs: c.runs.as_ref().map_or(5, |r| *r.get_ref() as usize),
            max_increase: match max {
                Some(Quantity::Percent(p)) => p.0,
                _ => 0.2,
            },
        },
    };
    CheckPlan {
        name: c.name.clone(),
        spec,
    }
}

fn monitoring(l: &Loaded) -> Option<MonitoringPlan> {
    let s = &l.scenario;
    if s.alerts.is_empty() && s.probes.is_empty() && s.guard.is_empty() {
        return None;
    }
    let first_fault = s.faults.first().map(|f| f.get_ref().display_name());
    Some(MonitoringPlan {
        alerts: s
            .alerts
            .iter()
            .map(|a| {
                let a = a.get_ref();
                AlertPlan {
                    name: a.name.get_ref().clone(),
                    labels: a.labels.clone(),
                    fault: a
                        .fault
                        .as_ref()
                        .map(|f| f.get_ref().clone())
                        .or(first_fault.clone()),
                    fire_within: *a.fire_within.get_ref(),
                    resolve_within: a.resolve_within.as_ref().map(|d| *d.get_ref()),
                }
            })
            .collect(),
        unexpected_fail: s
            .unexpected_alerts
            .as_ref()
            .is_some_and(|u| u.get_ref() == "fail"),
        probes: s
            .probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = p.get_ref();
                ProbePlan {
                    name: p.name.clone().unwrap_or_else(|| format!("probe-{}", i + 1)),
                    query: p.query.get_ref().clone(),
                    phase: p
                        .phase
                        .as_ref()
                        .and_then(|x| PhaseScope::parse(x.get_ref()))
                        .unwrap_or(PhaseScope::Drill),
                    max: p.max.as_ref().map(|v| *v.get_ref()),
                    min: p.min.as_ref().map(|v| *v.get_ref()),
                }
            })
            .collect(),
        silence: s.silence,
        rules: s.alert_rules.as_ref().map(|r| {
            let dir = l.path.parent().unwrap_or(std::path::Path::new("."));
            dir.join(r.get_ref())
        }),
    })
}
