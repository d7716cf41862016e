//! Validation of meaning: components exist on the target, phases fit
//! together, thresholds are in range and in the right unit. Collects every
//! problem it finds, each pointing at file:line:col with a hint.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::Catalogue;
use super::Loaded;
use super::model::{
    Action, CHECK_PHASES, Check, CheckKind, Fault, Load, Scenario, Until, parse_percentile,
};
use crate::base::diag::{Diagnostic, Diagnostics};
use crate::base::units::Quantity;

struct Errors<'a> {
    l: &'a Loaded,
    list: Vec<Diagnostic>,
}

impl Errors<'_> {
    /// An error at `span`; an empty span (a problem of the whole file, or a
    /// defaulted value) names the file without a made-up line and column.
    fn push(&mut self, span: Range<usize>, msg: impl Into<String>, hint: impl Into<String>) {
        let d = if span.is_empty() {
            Diagnostic::file(&self.l.path, msg)
        } else {
            Diagnostic::at(&self.l.path, &self.l.src, Some(span), msg)
        };
        self.list.push(d.with_hint(hint));
    }

    /// Where `key`'s value is written in the table that starts at `table`
    /// (for values the model keeps without a span); else the table itself.
    fn key(&self, table: &Range<usize>, key: &str) -> Range<usize> {
        key_value_span(&self.l.src, table.start, key).unwrap_or_else(|| table.clone())
    }
}

/// The span of `key = value` written in the table whose header (or first
/// line) is at byte `from`: the value, up to the end of its line. None when
/// the key is not written there (defaulted, or in an inline table).
pub(crate) fn key_value_span(src: &str, from: usize, key: &str) -> Option<Range<usize>> {
    let start = src[..from.min(src.len())].rfind('\n').map_or(0, |i| i + 1);
    let mut at = start;
    for (n, line) in src[start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if n > 0 && trimmed.starts_with('[') {
            return None;
        }
        let indent = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix(key)
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            let value_at = at + line.len() - value.len();
            let v = value.trim_start();
            let v_start = value_at + (value.len() - v.len());
            let v_end = v_start + v.trim_end().len();
            if indent + key.len() <= line.len() && v_end > v_start {
                return Some(v_start..v_end);
            }
        }
        at += line.len();
    }
    None
}

/// The header line of the table that holds byte `at` (or the file's start).
fn table_of(src: &str, at: usize) -> Range<usize> {
    let mut start = 0;
    let mut pos = 0;
    for line in src[..at.min(src.len())].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            start = pos;
        }
        pos += line.len();
    }
    let end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    start..end
}

/// A fault parameter: its key, where it is written, the actions it applies to.
type Param<'a> = (&'a str, Option<Range<usize>>, &'a [Action]);

pub(crate) fn validate(l: &Loaded, cat: &Catalogue, target_name: &str) -> Result<(), Diagnostics> {
    let mut e = Errors {
        l,
        list: Vec::new(),
    };
    let s = &l.scenario;
    match &s.load {
        Some(load) => {
            load_rules(&mut e, load);
            tick_rule(&mut e, load, super::plan::send_lag_bound(s));
        }
        None => no_load_rules(&mut e, s),
    }
    phase_rules(&mut e, s);
    database_rules(&mut e, s, cat, target_name);
    let mut names = BTreeSet::new();
    for f in &s.faults {
        fault_rules(&mut e, f, &mut names, cat, target_name);
    }
    let fault_names: Vec<String> = s
        .faults
        .iter()
        .map(|f| f.get_ref().display_name())
        .collect();
    for c in &s.checks {
        check_rules(&mut e, s, c, &fault_names);
    }
    abort_rules(&mut e, s);
    e.list.extend(super::validate_alerts::validate_alerts(l));
    e.list.extend(super::validate_guards::validate_guards(l));
    if e.list.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(e.list))
    }
}

/// HTTP load: rate, request line, timeout, headers, what counts as good.
fn load_rules(e: &mut Errors, load: &Load) {
    let rate = *load.rate.get_ref();
    if !(rate > 0.0 && rate <= 100_000.0) {
        e.push(
            load.rate.span(),
            format!("rate {rate} is out of range"),
            "requests per second, between 0 and 100000",
        );
    }
    path_rules(e, load);
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
    generator_rules(e, load);
    let table = table_of(&e.l.src, load.path.span().start);
    header_rules(e, load, &table);
    if load.success.is_empty() {
        let span = e.key(&table, "success");
        e.push(
            span,
            "`success` is empty: no answer could count as good",
            "list the statuses that count as good, e.g. success = [\"2xx\"] (the default), or leave it out",
        );
    }
}

/// The request path: it must start with `/` and hold only what a URI path
/// or query can; a bad character is pointed at where it is written.
fn path_rules(e: &mut Errors, load: &Load) {
    let path = load.path.get_ref();
    if !path.starts_with('/') {
        e.push(
            load.path.span(),
            "path must start with `/`",
            "the path is appended to the target's entry URL, e.g. \"/productpage\"",
        );
    } else if let Some((at, c)) = bad_uri_char(path) {
        // Point at the character itself when the string is written as is
        // (no TOML escapes before it).
        let span = load.path.span();
        let byte = path.char_indices().nth(at).map_or(0, |(i, _)| i);
        let exact = span.start + 1 + byte;
        let span = match e.l.src.get(span.start + 1..exact) {
            Some(written) if written == &path[..byte] && e.l.src.is_char_boundary(exact) => {
                exact..exact + c.len_utf8()
            }
            _ => span,
        };
        e.push(
            span,
            format!(
                "path has {} at character {}, which a URI path or query cannot hold",
                describe_char(c),
                at + 1
            ),
            "percent-encode it (a space is %20), e.g. \"/search?q=a%20b\"",
        );
    }
}

/// Request headers, set in the file or read from the environment: valid
/// HTTP names and values, environment variable names that are names, and
/// no header set both ways. `table` is the `[load]` table's header line.
fn header_rules(e: &mut Errors, load: &Load, table: &Range<usize>) {
    for h in load.headers.keys().chain(load.headers_env.keys()) {
        if h.is_empty() {
            e.push(
                header_span(&e.l.src, table.start, h),
                "a header with an empty name",
                "header names are tokens, e.g. x-request-id",
            );
        }
    }
    for (k, v) in &load.headers {
        if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || hyper::header::HeaderValue::from_str(v).is_err()
        {
            e.push(
                header_span(&e.l.src, table.start, k),
                format!("header `{k}: {v}` is not valid HTTP"),
                "header names are tokens; values are visible ASCII",
            );
        }
    }
    for (k, var) in &load.headers_env {
        let v = var.get_ref();
        if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            e.push(
                header_span(&e.l.src, table.start, k),
                format!("headers_env: `{}` is not an HTTP header name", k),
                "header names are tokens, e.g. Authorization",
            );
        } else if v.is_empty() || v.contains(['=', '\0']) || v.chars().any(char::is_whitespace) {
            e.push(
                var.span(),
                format!(
                    "headers_env: `{}` is not an environment variable name",
                    v
                ),
                "name the variable that holds the header's value, e.g. Authorization = \"DRILL_ENTRY_AUTH\"; the value itself never goes in this file",
            );
        } else if load.headers.contains_key(k) {
            e.push(
                var.span(),
                format!("header `{k}` is set in both headers and headers_env"),
                "keep one of them",
            );
        }
    }
}

/// The generator's own settings: threads, in-flight limit, send-lag bound.
fn generator_rules(e: &mut Errors, load: &Load) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = *load.workers.get_ref() as usize;
    if !(1..=cores * 4).contains(&workers) {
        e.push(
            load.workers.span(),
            format!("workers = {workers} is out of range"),
            format!("between 1 and {} (4 per core on this machine)", cores * 4),
        );
    }
    if let Some(m) = &load.max_in_flight
        && !(1..=1_000_000).contains(m.get_ref())
    {
        e.push(
            m.span(),
            format!("max_in_flight = {} is out of range", m.get_ref()),
            "between 1 and 1000000 requests (each holds a socket)",
        );
    }
    if let Some(lag) = &load.max_send_lag
        && lag.get_ref().0.is_zero()
    {
        e.push(
            lag.span(),
            "max_send_lag must be above zero",
            "e.g. \"5ms\"",
        );
    }
}

/// An explicit tick: a request may wait up to one tick before it is sent,
/// so a tick the send-lag bound cannot absorb would make every drill
/// inconclusive.
fn tick_rule(e: &mut Errors, load: &Load, lag_bound_us: u64) {
    let Some(tick) = &load.tick else {
        return;
    };
    let us = tick.get_ref().0.as_micros() as u64;
    if !(50..=100_000).contains(&us) {
        e.push(
            tick.span(),
            format!("tick = {us}µs is out of range"),
            "between \"50us\" and \"100ms\"; leave it out for the automatic tick",
        );
    } else if us * 2 > lag_bound_us {
        e.push(
            tick.span(),
            format!("tick = {us}µs is more than half the send-lag bound ({lag_bound_us}µs)"),
            "requests wait up to one tick, so send lag would fail the drill: \
             lower `tick`, raise `max_send_lag`, or leave `tick` out",
        );
    }
}

/// Where header `name` is written: after `headers` in the load table, or in
/// a `[load.headers]` table; the load table's header if neither is found.
fn header_span(src: &str, load_at: usize, name: &str) -> Range<usize> {
    let found = src[load_at..].find("headers").and_then(|h| {
        let from = load_at + h;
        let quoted = format!("\"{name}\"");
        [quoted.as_str(), name]
            .into_iter()
            .find_map(|n| src[from..].find(n).map(|i| from + i..from + i + n.len()))
    });
    found.unwrap_or_else(|| table_of(src, load_at + 1))
}

/// The first character of `path` that a URI path and query cannot hold
/// (RFC 3986: unreserved, sub-delims, `:@/?` and `%XX` escapes only).
fn bad_uri_char(path: &str) -> Option<(usize, char)> {
    let chars: Vec<char> = path.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let ok = c.is_ascii_alphanumeric()
            || "-._~!$&'()*+,;=:@/?".contains(c)
            || c == '%'
                && chars.get(i + 1).is_some_and(char::is_ascii_hexdigit)
                && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit);
        if !ok {
            return Some((i, c));
        }
    }
    None
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\r' => "a carriage return (CR)".into(),
        '\n' => "a line feed (LF)".into(),
        '%' => "a `%` not followed by two hex digits".into(),
        c if c.is_control() => format!("the control character \\u{{{:x}}}", c as u32),
        c => format!("`{c}`"),
    }
}

/// Without HTTP load, only database and control-plane measurements remain.
fn no_load_rules(e: &mut Errors, s: &Scenario) {
    if s.database.is_none() {
        // Point at the file's first line: there is no table to point at.
        let first = e.l.src.find('\n').unwrap_or(e.l.src.len()).max(1);
        e.push(
            0..first,
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

/// Phases and recovery criteria fit together.
fn phase_rules(e: &mut Errors, s: &Scenario) {
    load_fits_phases(e, s);
    let r = &s.recovery;
    if r.ratio.get_ref().0 <= 0.0 {
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
            written(&r.hold, &r.window),
            "hold is shorter than the window",
            "hold is a stretch of several windows, e.g. window \"1s\", hold \"10s\"",
        );
    }
    if s.phases.baseline.get_ref() < r.window.get_ref() {
        e.push(
            written(&s.phases.baseline, &r.window),
            "baseline is shorter than one recovery window",
            "steady state needs at least a window of traffic; e.g. \"15s\"",
        );
    }
    if !s.faults.is_empty() && s.phases.recovery.get_ref() < r.hold.get_ref() {
        e.push(
            written(&s.phases.recovery, &r.hold),
            format!(
                "recovery phase ({}) is shorter than the recovery hold ({})",
                s.phases.recovery.get_ref(),
                r.hold.get_ref()
            ),
            "a fault that ends just before the recovery phase could never be seen to recover; make recovery at least hold",
        );
    }
}

/// Where the first of two conflicting values is written; the second when the
/// first is a default (defaults have no place in the file).
fn written<T>(a: &Spanned<T>, b: &Spanned<T>) -> Range<usize> {
    if a.span().is_empty() {
        b.span()
    } else {
        a.span()
    }
}

/// A load that cannot work in the phases it runs in: a rate so low a phase
/// holds not one request, a request timeout longer than the whole drill.
fn load_fits_phases(e: &mut Errors, s: &Scenario) {
    let Some(load) = &s.load else { return };
    let rate = *load.rate.get_ref();
    let p = &s.phases;
    let shortest = [("baseline", &p.baseline), ("recovery", &p.recovery)]
        .into_iter()
        .filter(|(n, d)| *n == "baseline" || !d.get_ref().0.is_zero())
        .min_by_key(|(_, d)| d.get_ref().0);
    if let Some((phase, d)) = shortest
        && rate > 0.0
        && rate * d.get_ref().0.as_secs_f64() < 1.0
    {
        e.push(
            load.rate.span(),
            format!(
                "at {rate} requests per second the {phase} phase ({}) holds not one request",
                d.get_ref()
            ),
            format!(
                "raise the rate to at least {:.3}/s or lengthen the phase; availability and latency need requests to measure",
                1.0 / d.get_ref().0.as_secs_f64().max(1e-6)
            ),
        );
    }
    let faults: std::time::Duration = s
        .faults
        .iter()
        .map(|f| {
            let f = f.get_ref();
            f.after.0 + f.duration.as_ref().map_or(f.timeout.0, |d| d.get_ref().0)
        })
        .sum();
    let drill = p.warmup.get_ref().0 + p.baseline.get_ref().0 + faults + p.recovery.get_ref().0;
    let timeout = load.timeout.get_ref().0;
    // Only a timeout the file sets (the 2 s default fits any real drill).
    if timeout > drill && !load.timeout.span().is_empty() {
        e.push(
            load.timeout.span(),
            format!(
                "timeout {} is longer than the whole drill ({}): a request that never answers would be counted only after the drill ended",
                load.timeout.get_ref(),
                crate::base::units::Dur(drill)
            ),
            "a request timeout is seconds, shorter than any phase, e.g. \"2s\"",
        );
    }
}

/// The database writer load, and database faults that need it.
fn database_rules(e: &mut Errors, s: &Scenario, cat: &Catalogue, target_name: &str) {
    let Some(db) = &s.database else {
        if let Some(f) = s
            .faults
            .iter()
            .find(|f| f.get_ref().action.get_ref().one_way())
        {
            e.push(
                f.span(),
                "a database fault needs the writer load to measure what was lost",
                "add a [database] table, e.g. rate = 100 (writes per second)",
            );
        }
        return;
    };
    let d = db.get_ref();
    let rate = *d.rate.get_ref();
    if !(rate > 0.0 && rate <= 10_000.0) {
        e.push(
            d.rate.span(),
            format!("database rate {rate} is out of range"),
            "writes per second, between 0 and 10000",
        );
    }
    if let Some(r) = &d.read_rate {
        let rr = *r.get_ref();
        if !(rr > 0.0 && rr <= 10_000.0) {
            e.push(
                r.span(),
                format!("read_rate {rr} is out of range"),
                "reads per second, between 0 and 10000",
            );
        }
    }
    if d.write_timeout.0.is_zero() {
        let span = e.key(&db.span(), "write_timeout");
        e.push(
            span,
            "write_timeout = \"0s\" makes every write indeterminate",
            "e.g. write_timeout = \"5s\" (the default)",
        );
    }
    if cat.get("database").is_none() {
        e.push(
            db.span(),
            format!("target `{target_name}` has no database"),
            "use the lab, or add a [targets.NAME.database] table (dsn_env, switchover, failover) to the targets file",
        );
    }
}

/// One fault: a distinct name, what it acts on, its parameters, its end.
fn fault_rules(
    e: &mut Errors,
    f: &Spanned<Fault>,
    names: &mut BTreeSet<String>,
    cat: &Catalogue,
    target_name: &str,
) {
    let span = f.span();
    let f = f.get_ref();
    let name = f.display_name();
    if let Some(n) = &f.name {
        let v = n.get_ref();
        if v.trim().is_empty() {
            e.push(
                n.span(),
                "a fault's name is empty",
                "name it in a few words, e.g. name = \"istiod-down\", or leave `name` out for the default",
            );
        } else if v.chars().any(|c| c.is_control()) {
            e.push(
                n.span(),
                "a fault's name holds a line break or another control character",
                "names reach JUnit, Markdown and the journal: keep it to one line of printable characters",
            );
        }
    }
    if !names.insert(name.clone()) {
        let sp = f.name.as_ref().map_or(span.clone(), Spanned::span);
        e.push(
            sp,
            format!("two faults are named `{name}`"),
            "give each fault a distinct `name`",
        );
    }
    match *f.action.get_ref() {
        Action::RegionOutage => region_outage_rules(e, f, &name, cat, target_name),
        Action::Command => command_rules(e, f, &span, &name, cat, target_name),
        _ => component_rules(e, f, &span, &name, cat, target_name),
    }
    fault_param_rules(e, f, &span, &name);
    fault_end_rules(e, f, &name);
}

fn region_outage_rules(e: &mut Errors, f: &Fault, name: &str, cat: &Catalogue, target_name: &str) {
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
}

/// A command fault: both commands present and not blank, a time limit.
fn command_rules(
    e: &mut Errors,
    f: &Fault,
    span: &Range<usize>,
    name: &str,
    cat: &Catalogue,
    target_name: &str,
) {
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
    for (key, cmd, hint) in [
        ("inject", &f.inject, "add inject = \"…\" (run with sh -c)"),
        (
            "revert",
            &f.revert,
            "add revert = \"…\"; drill reverts every fault on every way out",
        ),
    ] {
        match cmd {
            None => e.push(
                span.clone(),
                format!("command fault `{name}` has no `{key}` command"),
                hint,
            ),
            Some(c) if c.get_ref().trim().is_empty() => e.push(
                c.span(),
                format!("the `{key}` command of fault `{name}` is blank"),
                format!("write the shell command to run, e.g. {key} = \"kubectl …\""),
            ),
            Some(_) => {}
        }
    }
    if f.command_timeout.0.is_zero() {
        let at = e.key(span, "command_timeout");
        e.push(
            at,
            "command_timeout = \"0s\" would stop every command before it starts",
            "give the longest a command may run, e.g. command_timeout = \"30s\" (the default)",
        );
    }
}

/// A fault on one of the target's components, in one of its regions.
fn component_rules(
    e: &mut Errors,
    f: &Fault,
    span: &Range<usize>,
    name: &str,
    cat: &Catalogue,
    target_name: &str,
) {
    let Some(c) = &f.component else {
        e.push(
            span.clone(),
            format!("fault `{name}` names no component"),
            format!(
                "components on target `{target_name}`: {}",
                cat.names().join(", ")
            ),
        );
        return;
    };
    let Some(info) = cat.get(c.get_ref()) else {
        e.push(
            c.span(),
            format!(
                "unknown component `{}` on target `{target_name}`",
                c.get_ref()
            ),
            if cat.components.is_empty() {
                format!("target `{target_name}` has no components: use `command` faults")
            } else {
                format!(
                    "components on target `{target_name}`: {}",
                    cat.names().join(", ")
                )
            },
        );
        return;
    };
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
        (Some(rg), false) if !info.regions.contains(&rg.get_ref().as_str()) => e.push(
            rg.span(),
            format!("unknown region `{}`", rg.get_ref()),
            format!("regions: {}", info.regions.join(", ")),
        ),
        _ => {}
    }
    let action = *f.action.get_ref();
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

/// Parameters belong to their actions and hold values that can work.
fn fault_param_rules(e: &mut Errors, f: &Fault, span: &Range<usize>, name: &str) {
    let action = *f.action.get_ref();
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
    if let Some(c) = &f.count
        && *c.get_ref() == 0
    {
        e.push(
            c.span(),
            format!("count = 0: fault `{name}` would delete nothing"),
            "count is how many instances to delete, at least 1; leave it out to delete all",
        );
    }
    if let Some(st) = &f.status
        && !(200..=599).contains(st.get_ref())
    {
        e.push(
            st.span(),
            format!(
                "status {} is not an HTTP status an abort fault can answer",
                st.get_ref()
            ),
            "give an HTTP status from 200 to 599, e.g. status = 503",
        );
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
}

/// How the fault ends: a duration, a condition, or by itself.
fn fault_end_rules(e: &mut Errors, f: &Fault, name: &str) {
    let action = *f.action.get_ref();
    if action.one_way() {
        if let Some(sp) = f
            .duration
            .as_ref()
            .map(Spanned::span)
            .or(f.until.as_ref().map(Spanned::span))
        {
            e.push(
                sp,
                format!(
                    "a `{}` ends when the promoted standby takes writes; it has no duration or until",
                    action.name()
                ),
                "remove `duration` / `until`",
            );
        }
        return;
    }
    match (&f.duration, &f.until) {
        (Some(d), Some(_)) => e.push(
            d.span(),
            "give either `duration` or `until`, not both",
            "duration = \"30s\" reverts after a time; until = \"recovered\" when traffic recovers",
        ),
        (Some(d), None) if action.self_healing() => e.push(
            d.span(),
            format!(
                "a `{}` fault heals by itself and has no duration",
                action.name()
            ),
            "remove `duration`; use until = \"healed\" (default) or \"recovered\"",
        ),
        (None, None) if !action.self_healing() => e.push(
            f.action.span(),
            format!("fault `{name}` does not say when it ends"),
            "add duration = \"30s\", or until = \"recovered\"",
        ),
        (None, Some(u)) if f.timeout.0.is_zero() => e.push(
            key_value_span(&e.l.src, u.span().start, "timeout").unwrap_or(u.span()),
            format!(
                "until = \"{}\" with timeout = \"0s\" gives the condition no time to hold",
                match u.get_ref() {
                    Until::Healed => "healed",
                    Until::Recovered => "recovered",
                }
            ),
            "give the longest wait for it, e.g. timeout = \"2m\" (the default)",
        ),
        (None, Some(u)) if *u.get_ref() == Until::Healed && !action.self_healing() => e.push(
            u.span(),
            format!("a `{}` fault does not heal by itself", action.name()),
            "use duration = \"…\" or until = \"recovered\"",
        ),
        _ => {}
    }
}

/// One check: only keys its kind reads, then the kind's own rules.
fn check_rules(e: &mut Errors, s: &Scenario, c: &Spanned<Check>, fault_names: &[String]) {
    let span = c.span();
    let c = c.get_ref();
    let kind = *c.kind.get_ref();
    unused_key_rules(e, c, kind);
    match kind {
        CheckKind::Rto | CheckKind::Outage | CheckKind::ConfigSync | CheckKind::ComponentReady => {
            fault_check_rules(e, c, &span, kind, fault_names)
        }
        CheckKind::Rpo | CheckKind::WriteRto => database_check_rules(e, s, c, &span, kind),
        CheckKind::Availability => availability_check_rules(e, c, &span, kind),
        CheckKind::Latency => latency_check_rules(e, c, &span, kind),
        CheckKind::ErrorBudget => error_budget_check_rules(e, c, &span),
        CheckKind::Regression => regression(e, c, &span, fault_names),
    }
}

/// The keys each check kind reads (src/run/checks.rs); `kind` and `name`
/// apply to all.
fn keys_of(kind: CheckKind) -> &'static [&'static str] {
    match kind {
        CheckKind::Rto | CheckKind::Outage | CheckKind::ConfigSync | CheckKind::ComponentReady => {
            &["fault", "max"]
        }
        CheckKind::Rpo | CheckKind::WriteRto => &["max"],
        CheckKind::Availability => &["phase", "min"],
        CheckKind::Latency => &["phase", "percentile", "max"],
        CheckKind::ErrorBudget => &["max", "slo", "period"],
        CheckKind::Regression => &["metric", "fault", "runs", "max"],
    }
}

/// Why `key` means nothing to a check of `kind`, and what would work.
fn why_unused(key: &str, kind: CheckKind) -> (&'static str, &'static str) {
    let per_fault = matches!(
        kind,
        CheckKind::Rto | CheckKind::Outage | CheckKind::ConfigSync | CheckKind::ComponentReady
    );
    match key {
        "phase" if per_fault => ("it is measured per fault", "remove it or use `fault = ...`"),
        "phase" | "fault" if matches!(kind, CheckKind::Rpo | CheckKind::WriteRto) => {
            ("it is measured over the database fault", "remove it")
        }
        "phase" | "fault" if kind == CheckKind::ErrorBudget => (
            "it charges the whole drill to the period's budget",
            "remove it",
        ),
        "fault" => (
            "it is measured over a phase",
            "remove it or use `phase = \"fault\"`",
        ),
        "percentile" => ("only a latency check picks a percentile", "remove it"),
        "metric" | "runs" => (
            "only a regression check follows a figure across runs",
            "remove it, or use kind = \"regression\"",
        ),
        "min" => ("its threshold is a most, not a least", "use `max`"),
        "max" => (
            "availability has a floor, not a ceiling",
            "use `min`, e.g. min = \"99.9%\"",
        ),
        _ => (
            "only an error-budget check has an SLO and its period",
            "remove it",
        ),
    }
}

fn unused_key_rules(e: &mut Errors, c: &Check, kind: CheckKind) {
    let present = [
        ("fault", c.fault.as_ref().map(Spanned::span)),
        ("phase", c.phase.as_ref().map(Spanned::span)),
        ("percentile", c.percentile.as_ref().map(Spanned::span)),
        ("max", c.max.as_ref().map(Spanned::span)),
        ("min", c.min.as_ref().map(Spanned::span)),
        ("slo", c.slo.as_ref().map(Spanned::span)),
        ("period", c.period.as_ref().map(Spanned::span)),
        ("metric", c.metric.as_ref().map(Spanned::span)),
        ("runs", c.runs.as_ref().map(Spanned::span)),
    ];
    for (key, sp) in present {
        if let Some(sp) = sp
            && !keys_of(kind).contains(&key)
        {
            let (why, hint) = why_unused(key, kind);
            e.push(
                sp,
                format!(
                    "`{key}` has no meaning for an `{}` check: {why}",
                    kind.name()
                ),
                hint,
            );
        }
    }
}

/// rto, outage, config-sync, component-ready: per fault, a duration.
fn fault_check_rules(
    e: &mut Errors,
    c: &Check,
    span: &Range<usize>,
    kind: CheckKind,
    fault_names: &[String],
) {
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
    expect_duration(e, c.max.as_ref(), span, kind, "add max = \"30s\"");
}

/// rpo, write-rto: measured from the writer load over a database fault.
fn database_check_rules(
    e: &mut Errors,
    s: &Scenario,
    c: &Check,
    span: &Range<usize>,
    kind: CheckKind,
) {
    if !s
        .faults
        .iter()
        .any(|f| f.get_ref().action.get_ref().one_way())
    {
        e.push(
            span.clone(),
            format!("an `{}` check needs a switchover or failover fault", kind.name()),
            "add a [[faults]] entry with component = \"database\" and action = \"switchover\" or \"failover\"",
        );
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

fn availability_check_rules(e: &mut Errors, c: &Check, span: &Range<usize>, kind: CheckKind) {
    check_phase(e, c.phase.as_ref(), span, kind);
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

fn latency_check_rules(e: &mut Errors, c: &Check, span: &Range<usize>, kind: CheckKind) {
    check_phase(e, c.phase.as_ref(), span, kind);
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
    expect_duration(e, c.max.as_ref(), span, kind, "add max = \"1000ms\"");
}

fn error_budget_check_rules(e: &mut Errors, c: &Check, span: &Range<usize>) {
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
    if let Some(p) = &c.period
        && p.get_ref().0.as_secs() < 1
    {
        e.push(
            p.span(),
            format!(
                "period = \"{}\": the budget of so short a period is nothing",
                p.get_ref()
            ),
            "the SLO's period, e.g. period = \"30d\" (the default)",
        );
    }
}

fn abort_rules(e: &mut Errors, s: &Scenario) {
    for a in &s.abort {
        if a.get_ref().over.0.as_millis() < 100 {
            let span = e.key(&a.span(), "over");
            e.push(
                span,
                "abort `over` must be at least 100ms",
                "e.g. over = \"10s\"",
            );
        }
    }
}

/// A `regression` check: a known metric, a fault that exists (for per-fault
/// metrics), at least one run to compare with, and `max` as a percentage.
fn regression(e: &mut Errors, c: &super::model::Check, span: &Range<usize>, faults: &[String]) {
    const METRICS: [&str; 4] = ["rto", "time-to-impact", "p99", "error-budget"];
    match &c.metric {
        None => e.push(
            span.clone(),
            "regression check has no `metric`",
            "add metric = \"rto\" (or time-to-impact, p99, error-budget)",
        ),
        Some(m) if !METRICS.contains(&m.get_ref().as_str()) => e.push(
            m.span(),
            format!("`{}` is not a metric drill follows", m.get_ref()),
            "rto, time-to-impact, p99 (fault phase) or error-budget",
        ),
        Some(m) => {
            let per_fault = matches!(m.get_ref().as_str(), "rto" | "time-to-impact");
            if per_fault && faults.is_empty() {
                e.push(
                    span.clone(),
                    format!("a `{}` regression needs a fault", m.get_ref()),
                    "add a [[faults]] entry",
                );
            }
            if let Some(f) = &c.fault {
                if !per_fault {
                    e.push(f.span(), format!("`fault` has no meaning for the `{}` metric: it is measured over the drill", m.get_ref()), "remove `fault`");
                } else if !faults.contains(f.get_ref()) {
                    e.push(
                        f.span(),
                        format!("no fault named `{}`", f.get_ref()),
                        format!("faults: {}", faults.join(", ")),
                    );
                }
            }
        }
    }
    if let Some(r) = &c.runs
        && *r.get_ref() == 0
    {
        e.push(
            r.span(),
            "`runs = 0` compares with nothing",
            "e.g. runs = 5 (the median of the last 5 passing runs)",
        );
    }
    match &c.max {
        Some(q) if !matches!(q.get_ref(), Quantity::Percent(p) if p.0 > 0.0) => e.push(
            q.span(),
            "regression `max` is how much worse than the median a figure may be, as a percentage above 0%",
            "e.g. max = \"20%\"",
        ),
        None => e.push(span.clone(), "regression check has no `max`", "add max = \"20%\""),
        _ => {}
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

fn expect_duration(
    e: &mut Errors,
    q: Option<&Spanned<Quantity>>,
    span: &Range<usize>,
    kind: CheckKind,
    hint: &str,
) {
    match q {
        Some(q) if !matches!(q.get_ref(), Quantity::Duration(_)) => e.push(
            q.span(),
            format!("`{}` max is a duration", kind.name()),
            hint,
        ),
        None => e.push(
            span.clone(),
            format!("`{}` check has no `max`", kind.name()),
            hint,
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "description = \"t\"\n\n[load]\npath = \"/productpage\"\nrate = 10\n";
    const DELETE: &str =
        "\n[[faults]]\ncomponent = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\n";
    const COMMAND: &str = "\n[[faults]]\nname = \"cmd\"\naction = \"command\"\ninject = \"touch x\"\nrevert = \"rm x\"\nduration = \"5s\"\n";

    fn diags(src: &str) -> Vec<Diagnostic> {
        let l = super::super::parse(Path::new("t.toml"), src).expect("parses");
        match validate(&l, &crate::targets::lab::catalogue(), "lab") {
            Ok(()) => Vec::new(),
            Err(d) => d.0,
        }
    }

    /// The diagnostic whose message has `msg`: it points at the first `at`
    /// after `after` in `src`, and has a hint.
    fn rejects(src: &str, msg: &str, after: &str, at: &str) -> Diagnostic {
        let ds = diags(src);
        let d = ds
            .iter()
            .find(|d| d.message.contains(msg))
            .unwrap_or_else(|| panic!("no error with `{msg}` in {ds:#?}\n{src}"));
        let from = src.find(after).expect("marker");
        let off = from + src[from..].find(at).expect("value");
        let line = src[..off].matches('\n').count() + 1;
        let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
        assert_eq!((d.line, d.col), (line, col), "{d}");
        assert!(d.hint.as_ref().is_some_and(|h| !h.is_empty()), "{d}");
        d.clone()
    }

    #[test]
    fn the_base_scenarios_validate() {
        for src in [
            BASE.to_string(),
            format!("{BASE}{DELETE}"),
            format!("{BASE}{COMMAND}"),
        ] {
            assert_eq!(diags(&src), Vec::new(), "{src}");
        }
    }

    #[test]
    fn an_empty_success_list_is_rejected() {
        let src = format!("{BASE}success = []\n");
        let d = rejects(&src, "`success` is empty", "success", "[]");
        assert!(d.hint.unwrap().contains("2xx"));
    }

    #[test]
    fn blank_or_empty_commands_are_rejected() {
        let src = format!("{BASE}{}", COMMAND.replace("\"touch x\"", "\"\""));
        rejects(
            &src,
            "`inject` command of fault `cmd` is blank",
            "inject",
            "\"\"",
        );
        let src = format!("{BASE}{}", COMMAND.replace("\"rm x\"", "\"  \\t \""));
        rejects(
            &src,
            "`revert` command of fault `cmd` is blank",
            "revert",
            "\"",
        );
    }

    #[test]
    fn count_zero_deletes_nothing() {
        let src = format!("{BASE}{DELETE}count = 0\n");
        let d = rejects(&src, "count = 0", "count", "0");
        assert!(d.hint.unwrap().contains("at least 1"));
    }

    #[test]
    fn abort_status_must_be_an_http_error_status() {
        let abort = "\n[[faults]]\ncomponent = \"reviews\"\nregion = \"primary\"\naction = \"abort\"\nduration = \"5s\"\n";
        for bad in ["99", "600", "0"] {
            let src = format!("{BASE}{abort}status = {bad}\n");
            rejects(&src, &format!("status {bad} is not"), "status", bad);
        }
        for good in ["200", "503", "599"] {
            let src = format!("{BASE}{abort}status = {good}\n");
            assert_eq!(diags(&src), Vec::new(), "{src}");
        }
    }

    #[test]
    fn a_zero_error_budget_period_is_rejected() {
        for p in ["0s", "500ms"] {
            let src = format!(
                "{BASE}\n[[checks]]\nkind = \"error-budget\"\nmax = \"5%\"\nperiod = \"{p}\"\n"
            );
            rejects(&src, "period", "period", &format!("\"{p}\""));
        }
    }

    #[test]
    fn load_paths_must_be_valid_uri_paths() {
        // The caret is on the character (or the escape that writes it).
        for (path, what, at) in [
            ("/a b", "a space", " b"),
            ("/a\\r\\nX-Evil: 1", "a carriage return", "\\r"),
            ("/a\\nb", "a line feed", "\\n"),
            ("/a\\u001b[31m", "control character", "\\u001b"),
            ("/a%zz", "`%` not followed", "%zz"),
            ("/é", "`é`", "é"),
            ("/a#frag", "`#`", "#"),
        ] {
            let src = BASE.replace("\"/productpage\"", &format!("\"{path}\""));
            rejects(&src, what, "path", at);
        }
        let src = BASE.replace("/productpage", "/search?q=a%20b&x=(1);y=@:~");
        assert_eq!(diags(&src), Vec::new());
    }

    #[test]
    fn a_zero_command_timeout_is_rejected_at_its_value() {
        let src = format!("{BASE}{COMMAND}command_timeout = \"0s\"\n");
        rejects(&src, "command_timeout", "command_timeout", "\"0s\"");
    }

    #[test]
    fn keys_a_check_kind_ignores_are_rejected() {
        let fault = DELETE;
        for (check, key, value, says) in [
            (
                "kind = \"rto\"\nmax = \"30s\"",
                "phase",
                "\"fault\"",
                "measured per fault",
            ),
            (
                "kind = \"availability\"\nmin = \"99%\"",
                "fault",
                "\"x\"",
                "over a phase",
            ),
            (
                "kind = \"latency\"\npercentile = \"p99\"\nmax = \"1s\"",
                "fault",
                "\"x\"",
                "over a phase",
            ),
            (
                "kind = \"availability\"\nmin = \"99%\"",
                "max",
                "\"1s\"",
                "floor",
            ),
            (
                "kind = \"rto\"\nmax = \"30s\"",
                "min",
                "\"99%\"",
                "use `max`",
            ),
            (
                "kind = \"outage\"\nmax = \"30s\"",
                "percentile",
                "\"p99\"",
                "percentile",
            ),
            ("kind = \"rto\"\nmax = \"30s\"", "slo", "\"99%\"", "SLO"),
            (
                "kind = \"availability\"\nmin = \"99%\"",
                "period",
                "\"30d\"",
                "SLO",
            ),
            (
                "kind = \"error-budget\"\nmax = \"5%\"",
                "phase",
                "\"fault\"",
                "whole drill",
            ),
        ] {
            let src = format!("{BASE}{fault}\n[[checks]]\n{check}\n{key} = {value}\n");
            let kind = check.split('"').nth(1).unwrap();
            let d = rejects(
                &src,
                &format!("`{key}` has no meaning for an `{kind}` check"),
                &format!("{key} = "),
                value,
            );
            assert!(
                d.message.contains(says) || d.hint.as_ref().unwrap().contains(says),
                "{d}"
            );
        }
        let src = format!(
            "{BASE}{fault}\n[[checks]]\nkind = \"rto\"\nphase = \"fault\"\nmax = \"30s\"\n"
        );
        let d = rejects(
            &src,
            "`phase` has no meaning for an `rto` check",
            "phase",
            "\"fault\"",
        );
        assert_eq!(d.hint.as_deref(), Some("remove it or use `fault = ...`"));
    }

    #[test]
    fn a_bad_header_is_pointed_at() {
        let src = format!("{BASE}headers = {{ \"x-ok\" = \"1\", \"bad name\" = \"2\" }}\n");
        rejects(&src, "header `bad name: 2`", "headers", "\"bad name\"");
        let src = format!("{BASE}\n[load.headers]\nx-bad = \"a\\u0001b\"\n");
        rejects(&src, "header `x-bad", "[load.headers]", "x-bad");
    }

    #[test]
    fn a_conflict_with_a_default_points_at_the_written_value() {
        let src = format!("{BASE}{DELETE}\n[recovery]\nhold = \"40s\"\n");
        rejects(&src, "recovery phase (30s) is shorter", "hold", "\"40s\"");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let src = format!("{BASE}success = []\n{DELETE}count = 0\n");
        let ds = diags(&src);
        assert_eq!(ds.len(), 2, "{ds:#?}");
    }

    #[test]
    fn key_value_span_finds_a_key_in_its_own_table_only() {
        let src = "[a]\nx = 1\n[b]\ny = \"2\"   \nx = 3\n";
        let b = src.find("[b]").unwrap();
        let sp = key_value_span(src, b, "y").unwrap();
        assert_eq!(&src[sp], "\"2\"");
        let sp = key_value_span(src, b, "x").unwrap();
        assert_eq!(&src[sp], "3");
        assert_eq!(key_value_span(src, 0, "y"), None);
    }

    #[test]
    fn a_rate_too_low_for_a_phase_to_hold_one_request_is_refused_at_the_rate() {
        let src = "description = \"t\"\n\n[load]\npath = \"/\"\nrate = 0.0001\n\n[phases]\nbaseline = \"2s\"\n";
        let d = rejects(src, "holds not one request", "rate", "0.0001");
        assert!(d.message.contains("baseline"), "{d}");
    }

    #[test]
    fn a_request_timeout_longer_than_the_drill_is_refused_at_the_timeout() {
        let src = "description = \"t\"\n\n[load]\npath = \"/\"\nrate = 10\ntimeout = \"10h\"\n\n[phases]\nwarmup = \"1s\"\nbaseline = \"2s\"\nrecovery = \"3s\"\n";
        let d = rejects(src, "longer than the whole drill", "timeout", "\"10h\"");
        assert!(d.message.contains("6s"), "{d}");
    }

    #[test]
    fn until_recovered_with_a_zero_timeout_is_refused_at_the_timeout() {
        let src = format!(
            "{BASE}\n[[faults]]\nname = \"cmd\"\naction = \"command\"\ninject = \"true\"\nrevert = \"true\"\nuntil = \"recovered\"\ntimeout = \"0s\"\n"
        );
        rejects(&src, "gives the condition no time", "until", "\"0s\"");
    }

    #[test]
    fn an_empty_fault_name_or_one_with_control_characters_is_refused_at_the_name() {
        let src = format!(
            "{BASE}\n[[faults]]\nname = \"\"\naction = \"command\"\ninject = \"true\"\nrevert = \"true\"\nduration = \"1s\"\n"
        );
        rejects(&src, "name is empty", "[[faults]]", "\"\"");
        let src = format!(
            "{BASE}\n[[faults]]\nname = \"a\\nb\"\naction = \"command\"\ninject = \"true\"\nrevert = \"true\"\nduration = \"1s\"\n"
        );
        rejects(&src, "line break", "[[faults]]", "\"a");
        let src = format!(
            "{BASE}\n[[faults]]\nname = \"a\\u001b[31mb\"\naction = \"command\"\ninject = \"true\"\nrevert = \"true\"\nduration = \"1s\"\n"
        );
        rejects(&src, "control character", "[[faults]]", "\"a");
    }

    #[test]
    fn a_scenario_with_neither_load_nor_database_names_a_location() {
        let src = "description = \"nothing to send\"\n";
        let d = rejects(src, "generates no load", "description", "description");
        assert_eq!(d.location(), "t.toml:1:1");
    }
}
