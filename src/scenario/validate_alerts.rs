//! Validation of the monitoring keys: `[[alerts]]`, `unexpected_alerts`,
//! `[[probes]]`, `silence` and `alert_rules`. Each problem points at
//! file:line:col with a hint, like the rest of validation.

use std::ops::Range;

use super::Loaded;
use super::model::CHECK_PHASES;
use crate::base::diag::Diagnostic;

struct Found<'a> {
    l: &'a Loaded,
    list: Vec<Diagnostic>,
}

impl Found<'_> {
    fn push(&mut self, span: Range<usize>, msg: impl Into<String>, hint: impl Into<String>) {
        let span = if span == (0..0) { None } else { Some(span) };
        self.list
            .push(Diagnostic::at(&self.l.path, &self.l.src, span, msg).with_hint(hint));
    }
}

/// Every problem of the monitoring keys.
pub(crate) fn validate_alerts(l: &Loaded) -> Vec<Diagnostic> {
    let mut f = Found {
        l,
        list: Vec::new(),
    };
    expected_alerts(&mut f);
    unexpected_policy(&mut f);
    probes(&mut f);
    silence_and_rules(&mut f);
    f.list
}

/// Prometheus's metric and label name syntax (alert names follow it).
pub(crate) fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn expected_alerts(f: &mut Found) {
    let s = &f.l.scenario;
    let faults: Vec<String> = s
        .faults
        .iter()
        .map(|x| x.get_ref().display_name())
        .collect();
    for a in &s.alerts {
        let span = a.span();
        let a = a.get_ref();
        if !is_name(a.name.get_ref()) {
            f.push(
                a.name.span(),
                format!("`{}` is not an alert name", a.name.get_ref()),
                "the alertname of a rule, e.g. name = \"IngressGatewayDown\"",
            );
        }
        for k in a.labels.keys() {
            if !is_name(k) {
                f.push(
                    span.clone(),
                    format!("`{k}` is not a label name"),
                    "letters, digits and `_`, e.g. labels = { cluster = \"primary\" }",
                );
            }
        }
        match &a.fault {
            Some(x) if !faults.contains(x.get_ref()) => f.push(
                x.span(),
                format!("no fault named `{}`", x.get_ref()),
                format!("one of: {}", faults.join(", ")),
            ),
            None if faults.is_empty() => f.push(
                span.clone(),
                "an expected alert needs a fault to be measured from",
                "add a [[faults]] entry; time to detect starts at its inject",
            ),
            _ => {}
        }
        if a.fire_within.get_ref().0.is_zero() {
            f.push(
                a.fire_within.span(),
                "fire_within must be more than 0s",
                "the longest acceptable time to detect, e.g. fire_within = \"30s\"",
            );
        }
        if let Some(r) = &a.resolve_within
            && r.get_ref().0.is_zero()
        {
            f.push(
                r.span(),
                "resolve_within must be more than 0s",
                "the longest acceptable time to resolve after recovery, e.g. \"30s\"",
            );
        }
    }
}

fn unexpected_policy(f: &mut Found) {
    if let Some(u) = &f.l.scenario.unexpected_alerts
        && !["fail", "report"].contains(&u.get_ref().as_str())
    {
        f.push(
            u.span(),
            format!("unexpected_alerts = \"{}\" is not a policy", u.get_ref()),
            "\"report\" lists alerts that fired unexpected; \"fail\" also fails the drill",
        );
    }
}

fn probes(f: &mut Found) {
    for p in &f.l.scenario.probes {
        let span = p.span();
        let p = p.get_ref();
        if p.query.get_ref().trim().is_empty() {
            f.push(
                p.query.span(),
                "the probe's query is empty",
                "a PromQL expression, e.g. query = 'sum(up{app=\"istiod\"})'",
            );
        }
        if let Some(why) = unbalanced(p.query.get_ref()) {
            f.push(
                p.query.span(),
                format!("the probe's query is not PromQL: {why}"),
                "check its brackets and quotes; write the query in single quotes in TOML",
            );
        }
        if let Some(ph) = &p.phase
            && !CHECK_PHASES.contains(&ph.get_ref().as_str())
        {
            f.push(
                ph.span(),
                format!("unknown phase `{}`", ph.get_ref()),
                format!("one of: {}", CHECK_PHASES.join(", ")),
            );
        }
        match (&p.min, &p.max) {
            (None, None) => f.push(
                span,
                "a probe needs `max`, `min` or both",
                "e.g. max = 0.05 (every value seen during the phase must be at most 0.05)",
            ),
            (Some(lo), Some(hi)) if lo.get_ref() > hi.get_ref() => f.push(
                lo.span(),
                format!("min {} is above max {}", lo.get_ref(), hi.get_ref()),
                "no value could pass; swap them",
            ),
            _ => {}
        }
    }
}

/// What can be known of a query without asking Prometheus: brackets and
/// quotes that do not pair up.
pub(crate) fn unbalanced(q: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(open) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == open => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '{' | '[' => stack.push(c),
            ')' | '}' | ']' => {
                let want = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if stack.pop() != Some(want) {
                    return Some(format!("`{c}` closes nothing open"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!("a string opened with {q} is never closed"));
    }
    stack.pop().map(|c| format!("`{c}` is never closed"))
}

fn silence_and_rules(f: &mut Found) {
    let s = &f.l.scenario;
    if s.silence && s.alerts.is_empty() {
        f.push(
            0..0,
            "silence = true but the scenario expects no alerts",
            "the silence covers the [[alerts]] the drill expects; add them or remove `silence`",
        );
    }
    if let Some(r) = &s.alert_rules {
        let dir = f.l.path.parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join(r.get_ref());
        if !path.is_file() {
            f.push(
                r.span(),
                format!("no rule file at {}", path.display()),
                "a Prometheus rule file, relative to the scenario; omit to use drill's rules",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(extra: &str) -> Vec<String> {
        let src = format!(
            "description = \"d\"\n{extra}[[faults]]\nname = \"kill\"\ncomponent = \"ingress-gateway\"\nregion = \"primary\"\naction = \"delete\"\n"
        );
        let l = crate::scenario::parse(std::path::Path::new("t.toml"), &src).expect("parses");
        validate_alerts(&l)
            .into_iter()
            .map(|d| format!("{} {d}", d.location()))
            .collect()
    }

    #[test]
    fn a_well_formed_alert_and_probe_pass() {
        let p = problems(
            "silence = true\nunexpected_alerts = \"fail\"\n[[alerts]]\nname = \"IngressGatewayDown\"\nlabels = { cluster = \"primary\" }\nfault = \"kill\"\nfire_within = \"30s\"\nresolve_within = \"30s\"\n[[probes]]\nquery = \"sum(up)\"\nphase = \"fault\"\nmin = 1\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn unbalanced_queries_are_caught_without_contacting_prometheus() {
        assert_eq!(unbalanced("sum(rate(x{a=\"(\"}[1m]))"), None);
        assert!(
            unbalanced("sum(rate(x[1m])")
                .unwrap()
                .contains("`(` is never closed")
        );
        assert!(unbalanced("x{a=\"b}").unwrap().contains("never closed"));
        assert!(unbalanced("x)").unwrap().contains("closes nothing"));
    }

    #[test]
    fn each_mistake_is_named_at_its_line() {
        let p = problems(
            "unexpected_alerts = \"page\"\n[[alerts]]\nname = \"Ingress Down\"\nfault = \"nope\"\nfire_within = \"0s\"\n[[probes]]\nquery = \"up\"\nphase = \"later\"\n[[probes]]\nquery = \"up\"\nmin = 2\nmax = 1\n",
        );
        let has = |line: &str, what: &str| {
            assert!(
                p.iter()
                    .any(|d| d.starts_with(&format!("t.toml:{line}:")) && d.contains(what)),
                "{what} at line {line} in {p:?}"
            )
        };
        has("2", "not a policy");
        has("4", "not an alert name");
        has("5", "no fault named `nope`");
        has("6", "fire_within");
        has("9", "unknown phase");
        has("7", "needs `max`, `min` or both");
        has("12", "min 2 is above max 1");
        assert_eq!(p.len(), 7, "{p:?}");
    }
}
