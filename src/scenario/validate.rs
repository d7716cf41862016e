//! Validation of meaning: components exist on the target, phases fit
//! together, thresholds are in range and in the right unit. Collects every
//! problem it finds, each pointing at file:line:col with a hint.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::Loaded;
use super::diag::{Diagnostic, Diagnostics};
use super::model::{Action, CheckKind, Until, parse_percentile};
use super::units::Quantity;
use crate::measure::Phase;
use crate::targets::Catalogue;

struct Errors<'a> {
    l: &'a Loaded,
    list: Vec<Diagnostic>,
}

impl Errors<'_> {
    fn push(&mut self, span: Range<usize>, msg: impl Into<String>, hint: impl Into<String>) {
        let span = if span == (0..0) { None } else { Some(span) };
        self.list
            .push(Diagnostic::at(&self.l.path, &self.l.src, span, msg).with_hint(hint));
    }
}

/// Phases a check may name: the measured ones, or `drill` for all of them.
/// A fault parameter: its key, where it is written, the actions it applies to.
type Param<'a> = (&'a str, Option<Range<usize>>, &'a [Action]);

pub const CHECK_PHASES: [&str; 4] = ["baseline", "fault", "recovery", "drill"];

pub fn validate(l: &Loaded, cat: &Catalogue, target_name: &str) -> Result<(), Diagnostics> {
    let mut e = Errors {
        l,
        list: Vec::new(),
    };
    let s = &l.scenario;

    // Load: HTTP, database writes, or both.
    if let Some(load) = &s.load {
        let rate = *load.rate.get_ref();
        if !(rate > 0.0 && rate <= 100_000.0) {
            e.push(
                load.rate.span(),
                format!("rate {rate} is out of range"),
                "requests per second, between 0 and 100000",
            );
        }
        if !load.path.get_ref().starts_with('/') {
            e.push(
                load.path.span(),
                "path must start with `/`",
                "the path is appended to the target's entry URL, e.g. \"/productpage\"",
            );
        }
        if hyper::Method::from_bytes(load.method.get_ref().as_bytes()).is_err() {
            e.push(
                load.method.span(),
                format!("`{}` is not an HTTP method", load.method.get_ref()),
                "GET, POST, PUT, …",
            );
        }
        if load.timeout.get_ref().0.is_zero() {
            e.push(
                load.timeout.span(),
                "timeout must be above zero",
                "e.g. \"2s\"",
            );
        }
        for (k, v) in &load.headers {
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || hyper::header::HeaderValue::from_str(v).is_err()
            {
                e.push(
                    0..0,
                    format!("header `{k}: {v}` is not valid HTTP"),
                    "header names are tokens; values are visible ASCII",
                );
            }
        }
    } else {
        if s.database.is_none() {
            e.push(
                0..0,
                "the scenario generates no load",
                "add [load] (HTTP requests), [database] (writes), or both",
            );
        }
        for c in &s.checks {
            let k = *c.get_ref().kind.get_ref();
            if !matches!(
                k,
                CheckKind::Rpo
                    | CheckKind::WriteRto
                    | CheckKind::ConfigSync
                    | CheckKind::ComponentReady
            ) {
                e.push(
                    c.get_ref().kind.span(),
                    format!(
                        "a `{}` check measures HTTP traffic, and the scenario has no [load]",
                        k.name()
                    ),
                    "add a [load] table, or use rpo / write-rto checks",
                );
            }
        }
        if let Some(a) = s.abort.first() {
            e.push(
                a.span(),
                "abort conditions watch HTTP availability, and the scenario has no [load]",
                "add a [load] table, or remove [[abort]]",
            );
        }
    }

    // Phases and recovery criteria.
    let r = &s.recovery;
    let ratio = r.ratio.get_ref().0;
    if ratio <= 0.0 {
        e.push(
            r.ratio.span(),
            "recovery ratio must be above 0%",
            "e.g. \"99%\"",
        );
    }
    if r.window.get_ref().0.as_millis() < 100 {
        e.push(
            r.window.span(),
            "recovery window must be at least 100ms",
            "the measurement buckets are 100ms wide",
        );
    }
    if r.hold.get_ref() < r.window.get_ref() {
        e.push(
            r.hold.span(),
            "hold is shorter than the window",
            "hold is a stretch of several windows, e.g. window \"1s\", hold \"10s\"",
        );
    }
    if s.phases.baseline.get_ref() < r.window.get_ref() {
        e.push(
            s.phases.baseline.span(),
            "baseline is shorter than one recovery window",
            "steady state needs at least a window of traffic; e.g. \"15s\"",
        );
    }
    if !s.faults.is_empty() && s.phases.recovery.get_ref() < r.hold.get_ref() {
        e.push(
            s.phases.recovery.span(),
            format!("recovery phase ({}) is shorter than the recovery hold ({})", s.phases.recovery.get_ref(), r.hold.get_ref()),
            "a fault that ends just before the recovery phase could never be seen to recover; make recovery at least hold",
        );
    }

    // Database writer load and database faults.
    let db_faults: Vec<_> = s
        .faults
        .iter()
        .filter(|f| f.get_ref().action.get_ref().one_way())
        .collect();
    if let Some(db) = &s.database {
        let rate = *db.get_ref().rate.get_ref();
        if !(rate > 0.0 && rate <= 10_000.0) {
            e.push(
                db.get_ref().rate.span(),
                format!("database rate {rate} is out of range"),
                "writes per second, between 0 and 10000",
            );
        }
        if let Some(r) = &db.get_ref().read_rate {
            let rr = *r.get_ref();
            if !(rr > 0.0 && rr <= 10_000.0) {
                e.push(
                    r.span(),
                    format!("read_rate {rr} is out of range"),
                    "reads per second, between 0 and 10000",
                );
            }
        }
        if cat.get("database").is_none() {
            e.push(db.span(), format!("target `{target_name}` has no database"), "use the lab, or add a [targets.NAME.database] table (dsn_env, switchover, failover) to the targets file");
        }
    } else if let Some(f) = db_faults.first() {
        e.push(
            f.span(),
            "a database fault needs the writer load to measure what was lost",
            "add a [database] table, e.g. rate = 100 (writes per second)",
        );
    }

    // Faults.
    let mut names = BTreeSet::new();
    for f in &s.faults {
        let span = f.span();
        let f = f.get_ref();
        let name = f.display_name();
        if !names.insert(name.clone()) {
            let sp = f.name.as_ref().map_or(span.clone(), Spanned::span);
            e.push(
                sp,
                format!("two faults are named `{name}`"),
                "give each fault a distinct `name`",
            );
        }
        let action = *f.action.get_ref();
        if action == Action::RegionOutage {
            if let Some(c) = &f.component {
                e.push(
                    c.span(),
                    "a region-outage takes down every component of a region; it names no component",
                    "remove `component`",
                );
            }
            match &f.region {
                None => e.push(
                    f.action.span(),
                    format!("region-outage `{name}` names no region"),
                    format!("add region = one of {}", cat.regions.join(", ")),
                ),
                Some(r) if !cat.regions.contains(&r.get_ref().as_str()) => e.push(
                    r.span(),
                    if cat.regions.is_empty() {
                        format!("target `{target_name}` does not support region-outage")
                    } else {
                        format!("unknown region `{}`", r.get_ref())
                    },
                    if cat.regions.is_empty() {
                        "use a `command` fault".to_string()
                    } else {
                        format!("regions: {}", cat.regions.join(", "))
                    },
                ),
                _ => {}
            }
        } else if action == Action::Command {
            // A command fault may name what it acts on; if it does, it must exist.
            if let Some(c) = &f.component
                && !cat.components.is_empty()
                && cat.get(c.get_ref()).is_none()
            {
                e.push(
                    c.span(),
                    format!(
                        "unknown component `{}` on target `{target_name}`",
                        c.get_ref()
                    ),
                    format!(
                        "components on target `{target_name}`: {}",
                        cat.names().join(", ")
                    ),
                );
            }
            if f.inject.is_none() {
                e.push(
                    span.clone(),
                    format!("command fault `{name}` has no `inject` command"),
                    "add inject = \"…\" (run with sh -c)",
                );
            }
            if f.revert.is_none() {
                e.push(
                    span.clone(),
                    format!("command fault `{name}` has no `revert` command"),
                    "add revert = \"…\"; drill reverts every fault on every way out",
                );
            }
        } else {
            match &f.component {
                None => e.push(
                    span.clone(),
                    format!("fault `{name}` names no component"),
                    format!(
                        "components on target `{target_name}`: {}",
                        cat.names().join(", ")
                    ),
                ),
                Some(c) => match cat.get(c.get_ref()) {
                    None => e.push(
                        c.span(),
                        format!(
                            "unknown component `{}` on target `{target_name}`",
                            c.get_ref()
                        ),
                        if cat.components.is_empty() {
                            format!(
                                "target `{target_name}` has no components: use `command` faults"
                            )
                        } else {
                            format!(
                                "components on target `{target_name}`: {}",
                                cat.names().join(", ")
                            )
                        },
                    ),
                    Some(info) => {
                        match (&f.region, info.regions.is_empty()) {
                            (None, false) => e.push(
                                c.span(),
                                format!("`{}` exists in several regions; say which", info.name),
                                format!("add region = one of {}", info.regions.join(", ")),
                            ),
                            (Some(rg), true) => e.push(
                                rg.span(),
                                format!("`{}` is global and has no region", info.name),
                                "remove `region`",
                            ),
                            (Some(rg), false) if !info.regions.contains(&rg.get_ref().as_str()) => {
                                e.push(
                                    rg.span(),
                                    format!("unknown region `{}`", rg.get_ref()),
                                    format!("regions: {}", info.regions.join(", ")),
                                )
                            }
                            _ => {}
                        }
                        if !info.actions.contains(&action) {
                            let acts: Vec<&str> = info.actions.iter().map(|a| a.name()).collect();
                            e.push(
                                f.action.span(),
                                format!(
                                    "`{}` does not support `{}` on target `{target_name}`",
                                    info.name,
                                    action.name()
                                ),
                                format!(
                                    "actions for `{}`: {}, or a `command` fault",
                                    info.name,
                                    acts.join(", ")
                                ),
                            );
                        }
                    }
                },
            }
        }
        // Parameters that do not apply to the action.
        let params: [Param; 7] = [
            (
                "count",
                f.count.as_ref().map(Spanned::span),
                &[Action::Delete],
            ),
            (
                "percent",
                f.percent.as_ref().map(Spanned::span),
                &[Action::Delete, Action::Latency, Action::Abort],
            ),
            (
                "delay",
                f.delay.as_ref().map(Spanned::span),
                &[Action::Latency],
            ),
            (
                "jitter",
                f.jitter.as_ref().map(Spanned::span),
                &[Action::Latency],
            ),
            (
                "status",
                f.status.as_ref().map(Spanned::span),
                &[Action::Abort],
            ),
            (
                "inject",
                f.inject.as_ref().map(Spanned::span),
                &[Action::Command],
            ),
            (
                "revert",
                f.revert.as_ref().map(Spanned::span),
                &[Action::Command],
            ),
        ];
        for (key, sp, ok) in params {
            if let Some(sp) = sp
                && !ok.contains(&action)
            {
                e.push(
                    sp,
                    format!("`{key}` does not apply to a `{}` fault", action.name()),
                    format!(
                        "`{key}` is for {} faults",
                        ok.iter().map(|a| a.name()).collect::<Vec<_>>().join("/")
                    ),
                );
            }
        }
        if f.change_config
            && !(f.component() == Some("istiod") && matches!(action, Action::Down | Action::Delete))
        {
            e.push(
                span.clone(),
                format!(
                    "`change_config` applies to a down or delete fault on `istiod` (fault `{name}`)"
                ),
                "the routing change is made while the control plane is gone",
            );
        }
        if action == Action::Latency && f.delay.is_none() {
            e.push(
                f.action.span(),
                format!("latency fault `{name}` has no `delay`"),
                "add delay = \"500ms\"",
            );
        }
        if action == Action::Abort && f.status.is_none() {
            e.push(
                f.action.span(),
                format!("abort fault `{name}` has no `status`"),
                "add status = 503",
            );
        }
        // How the fault ends.
        if action.one_way() {
            if let Some(sp) = f
                .duration
                .as_ref()
                .map(Spanned::span)
                .or(f.until.as_ref().map(Spanned::span))
            {
                e.push(sp, format!("a `{}` ends when the promoted standby takes writes; it has no duration or until", action.name()), "remove `duration` / `until`");
            }
        } else {
            match (&f.duration, &f.until) {
            (Some(d), Some(_)) => e.push(d.span(), "give either `duration` or `until`, not both", "duration = \"30s\" reverts after a time; until = \"recovered\" when traffic recovers"),
            (Some(d), None) if action.self_healing() => {
                e.push(d.span(), format!("a `{}` fault heals by itself and has no duration", action.name()), "remove `duration`; use until = \"healed\" (default) or \"recovered\"")
            }
            (None, None) if !action.self_healing() => e.push(
                f.action.span(),
                format!("fault `{name}` does not say when it ends"),
                "add duration = \"30s\", or until = \"recovered\"",
            ),
            (None, Some(u)) if *u.get_ref() == Until::Healed && !action.self_healing() => {
                e.push(u.span(), format!("a `{}` fault does not heal by itself", action.name()), "use duration = \"…\" or until = \"recovered\"")
            }
            _ => {}
        }
        }
    }

    // Checks.
    let fault_names: Vec<String> = s
        .faults
        .iter()
        .map(|f| f.get_ref().display_name())
        .collect();
    for c in &s.checks {
        let span = c.span();
        let c = c.get_ref();
        let kind = *c.kind.get_ref();
        let want_max = |unit: &str| format!("add max = {unit}");
        match kind {
            CheckKind::Rto
            | CheckKind::Outage
            | CheckKind::ConfigSync
            | CheckKind::ComponentReady => {
                if let Some(fname) = &c.fault
                    && !fault_names.contains(fname.get_ref())
                {
                    e.push(
                        fname.span(),
                        format!("no fault named `{}`", fname.get_ref()),
                        format!("faults: {}", fault_names.join(", ")),
                    );
                }
                if fault_names.is_empty() {
                    e.push(
                        span.clone(),
                        format!("an `{}` check needs a fault", kind.name()),
                        "add a [[faults]] entry",
                    );
                }
                expect_unit(&mut e, c.max.as_ref(), "duration", &span, kind, || {
                    want_max("\"30s\"")
                });
            }
            CheckKind::Rpo | CheckKind::WriteRto => {
                let db_faults = s
                    .faults
                    .iter()
                    .any(|f| f.get_ref().action.get_ref().one_way());
                if !db_faults {
                    e.push(span.clone(), format!("an `{}` check needs a switchover or failover fault", kind.name()), "add a [[faults]] entry with component = \"database\" and action = \"switchover\" or \"failover\"");
                }
                match (kind, c.max.as_ref().map(|q| (q.span(), *q.get_ref()))) {
                    (_, None) => e.push(
                        span.clone(),
                        format!("`{}` check has no `max`", kind.name()),
                        "e.g. max = \"30s\" (RPO time) or max = 0 (lost writes)",
                    ),
                    (CheckKind::WriteRto, Some((sp, q))) if !matches!(q, Quantity::Duration(_)) => {
                        e.push(sp, "`write-rto` max is a duration", "e.g. max = \"30s\"")
                    }
                    (CheckKind::Rpo, Some((sp, Quantity::Percent(_)))) => e.push(
                        sp,
                        "`rpo` max is a duration or a count of lost writes",
                        "max = \"1m\" or max = 0",
                    ),
                    _ => {}
                }
            }
            CheckKind::Availability => {
                check_phase(&mut e, c.phase.as_ref(), &span, kind);
                match &c.min {
                    Some(q) if !matches!(q.get_ref(), Quantity::Percent(_)) => e.push(
                        q.span(),
                        "availability `min` is a percentage",
                        "e.g. min = \"99.95%\"",
                    ),
                    None => e.push(
                        span.clone(),
                        "availability check has no `min`",
                        "add min = \"99.95%\"",
                    ),
                    _ => {}
                }
            }
            CheckKind::Latency => {
                check_phase(&mut e, c.phase.as_ref(), &span, kind);
                match &c.percentile {
                    Some(p) if parse_percentile(p.get_ref()).is_none() => e.push(
                        p.span(),
                        format!("`{}` is not a percentile", p.get_ref()),
                        "p50, p90, p95, p99, p99.9 or max",
                    ),
                    None => e.push(
                        span.clone(),
                        "latency check has no `percentile`",
                        "add percentile = \"p99\"",
                    ),
                    _ => {}
                }
                expect_unit(&mut e, c.max.as_ref(), "duration", &span, kind, || {
                    want_max("\"1000ms\"")
                });
            }
            CheckKind::ErrorBudget => {
                match &c.max {
                    Some(q) if !matches!(q.get_ref(), Quantity::Percent(_)) => e.push(
                        q.span(),
                        "error-budget `max` is a percentage of the period's budget",
                        "e.g. max = \"5%\"",
                    ),
                    None => e.push(
                        span.clone(),
                        "error-budget check has no `max`",
                        "add max = \"5%\" (share of the period's budget)",
                    ),
                    _ => {}
                }
                if let Some(slo) = &c.slo
                    && slo.get_ref().0 >= 1.0
                {
                    e.push(
                        slo.span(),
                        "an SLO of 100% has no error budget",
                        "e.g. slo = \"99.95%\"",
                    );
                }
            }
        }
        if c.min.is_some() && kind != CheckKind::Availability {
            e.push(
                span.clone(),
                format!("`min` does not apply to a `{}` check", kind.name()),
                "use `max`",
            );
        }
    }

    for a in &s.abort {
        if a.get_ref().over.0.as_millis() < 100 {
            e.push(
                a.span(),
                "abort `over` must be at least 100ms",
                "e.g. over = \"10s\"",
            );
        }
    }

    e.list.extend(super::validate_alerts::validate_alerts(l));
    if e.list.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(e.list))
    }
}

fn check_phase(
    e: &mut Errors,
    phase: Option<&Spanned<String>>,
    span: &Range<usize>,
    kind: CheckKind,
) {
    match phase {
        Some(p) if !CHECK_PHASES.contains(&p.get_ref().as_str()) => e.push(
            p.span(),
            format!("unknown phase `{}`", p.get_ref()),
            format!("phases: {}", CHECK_PHASES.join(", ")),
        ),
        None => e.push(
            span.clone(),
            format!("`{}` check names no phase", kind.name()),
            format!("add phase = one of {}", CHECK_PHASES.join(", ")),
        ),
        _ => {}
    }
}

fn expect_unit(
    e: &mut Errors,
    q: Option<&Spanned<Quantity>>,
    unit: &str,
    span: &Range<usize>,
    kind: CheckKind,
    hint: impl Fn() -> String,
) {
    match q {
        Some(q) if !matches!(q.get_ref(), Quantity::Duration(_)) => e.push(
            q.span(),
            format!("`{}` max is a {unit}", kind.name()),
            hint(),
        ),
        None => e.push(
            span.clone(),
            format!("`{}` check has no `max`", kind.name()),
            hint(),
        ),
        _ => {}
    }
}

/// The phase a check names.
pub fn phase_of(name: &str) -> Option<Phase> {
    Phase::parse(name)
}
