//! Validation of `[[guard]]` tables: each guard watches exactly one thing,
//! with the keys its kind reads and no others; a PromQL guard has one
//! comparison and a `for` no shorter than its evaluation interval. Each
//! problem points at file:line:col with a hint. A PromQL expression that
//! Prometheus's own parser rejects (promtool, offline) is located here
//! too, from the parser's line:column inside the expression.

use std::collections::BTreeSet;
use std::ops::Range;

use super::Loaded;
use super::guard::{DEFAULT_INTERVAL, Guard, default_name};
use super::validate_alerts::{is_name, unbalanced};
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

/// Every problem of the scenario's guards.
pub(crate) fn validate_guards(l: &Loaded) -> Vec<Diagnostic> {
    let mut f = Found {
        l,
        list: Vec::new(),
    };
    let mut names = BTreeSet::new();
    for (i, g) in l.scenario.guard.iter().enumerate() {
        let span = g.span();
        let g = g.get_ref();
        one_watch(&mut f, g, &span);
        alert_keys(&mut f, g, &span);
        promql_keys(&mut f, g, &span);
        if let Some(u) = &g.on_unreachable
            && !["stop", "continue"].contains(&u.get_ref().as_str())
        {
            f.push(
                u.span(),
                format!("on_unreachable = \"{}\" is not a policy", u.get_ref()),
                "\"stop\" (the default) stops the drill when the guard cannot be read; \"continue\" goes on without it",
            );
        }
        let name = g
            .name
            .as_ref()
            .map_or_else(|| default_name(i, g), |n| n.get_ref().clone());
        if name.trim().is_empty() {
            f.push(
                g.name.as_ref().map_or(span.clone(), |n| n.span()),
                "a guard's name is empty",
                "name it, e.g. name = \"checkout-errors\"",
            );
        }
        if !names.insert(name.clone()) {
            f.push(
                g.name.as_ref().map_or(span.clone(), |n| n.span()),
                format!("two guards are named `{name}`"),
                "give each guard its own name (reports and JUnit show `guard:<name>`)",
            );
        }
    }
    f.list
}

fn one_watch(f: &mut Found, g: &Guard, span: &Range<usize>) {
    let mut watches: Vec<Range<usize>> = Vec::new();
    if let Some(a) = &g.alert {
        watches.push(a.span());
    }
    if let Some(q) = &g.promql {
        watches.push(q.span());
    }
    match &g.any_unexpected_alert {
        Some(b) if *b.get_ref() => watches.push(b.span()),
        Some(b) => f.push(
            b.span(),
            "any_unexpected_alert = false watches nothing",
            "remove the key, or set it to true to stop on any unexpected alert of `severity`",
        ),
        None => {}
    }
    match watches.len() {
        0 if g.any_unexpected_alert.is_none() => f.push(
            span.clone(),
            "a guard needs `alert`, `promql` or `any_unexpected_alert`",
            "e.g. alert = \"HighErrorRate\", or promql = '…' with above = 0.01, or any_unexpected_alert = true",
        ),
        0 | 1 => {}
        _ => f.push(
            watches[1].clone(),
            "a guard watches one thing: `alert`, `promql` or `any_unexpected_alert`",
            "split it into two [[guard]] tables",
        ),
    }
}

fn alert_keys(f: &mut Found, g: &Guard, span: &Range<usize>) {
    if let Some(a) = &g.alert
        && !is_name(a.get_ref())
    {
        f.push(
            a.span(),
            format!("`{}` is not an alert name", a.get_ref()),
            "the alertname of a rule, e.g. alert = \"HighErrorRate\"",
        );
    }
    for k in g.labels.keys() {
        if !is_name(k) {
            f.push(
                span.clone(),
                format!("`{k}` is not a label name"),
                "letters, digits and `_`, e.g. labels = { service = \"checkout\" }",
            );
        }
    }
    if let Some(a) = &g.alert
        && let Some(e) = f.l.scenario.alerts.iter().find(|e| {
            let e = e.get_ref();
            e.name.get_ref() == a.get_ref()
                && e.labels.iter().all(|(k, v)| g.labels.get(k) == Some(v))
        })
    {
        let line = Diagnostic::at(&f.l.path, &f.l.src, Some(e.span()), "").line;
        f.push(
            a.span(),
            format!(
                "this guard can never stop the drill: every `{}` alert it watches is one the drill expects ([[alerts]] at line {line})",
                a.get_ref()
            ),
            "a guard watches what the drill must not break: narrow it with labels the expected alert does not carry, or remove it",
        );
    }
    if g.promql.is_some() && !g.labels.is_empty() {
        f.push(
            span.clone(),
            "labels are for alert guards",
            "a PromQL guard selects its series in the expression itself",
        );
    }
    if let Some(s) = &g.severity {
        let any = g
            .any_unexpected_alert
            .as_ref()
            .is_some_and(|b| *b.get_ref());
        if !any {
            f.push(
                s.span(),
                "severity is for any_unexpected_alert guards",
                "an alert guard names its alert; add labels = { severity = \"…\" } to narrow it",
            );
        }
        let list = s.get_ref().list();
        if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
            f.push(
                s.span(),
                "an empty severity matches no alert",
                "e.g. severity = \"critical\" or severity = [\"critical\", \"page\"]",
            );
        }
    }
}

fn promql_keys(f: &mut Found, g: &Guard, span: &Range<usize>) {
    let Some(q) = &g.promql else {
        let only = [
            ("above", g.above.as_ref().map(|v| v.span())),
            ("below", g.below.as_ref().map(|v| v.span())),
            ("for", g.for_.as_ref().map(|v| v.span())),
            ("interval", g.interval.as_ref().map(|v| v.span())),
        ];
        for (key, at) in only {
            if let Some(at) = at {
                f.push(
                    at,
                    format!("`{key}` is for promql guards"),
                    "an alert guard stops when its alert fires; the rule's own `for` decides when",
                );
            }
        }
        return;
    };
    if q.get_ref().trim().is_empty() {
        f.push(
            q.span(),
            "the guard's expression is empty",
            "a PromQL expression, e.g. promql = 'sum(rate(http_requests_total{code=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))'",
        );
    } else if let Some(why) = unbalanced(q.get_ref()) {
        f.push(
            q.span(),
            format!("the guard's expression is not PromQL: {why}"),
            "check its brackets and quotes; write the expression in single quotes in TOML",
        );
    }
    match (&g.above, &g.below) {
        (None, None) => f.push(
            span.clone(),
            "a promql guard needs `above` or `below`",
            "e.g. above = 0.01 (stop when the value is over 1%)",
        ),
        (Some(_), Some(b)) => f.push(
            b.span(),
            "a promql guard compares one way: `above` or `below`, not both",
            "keep one; a second guard can watch the other side",
        ),
        _ => {}
    }
    let interval = g
        .interval
        .as_ref()
        .map_or(DEFAULT_INTERVAL, |d| *d.get_ref());
    if let Some(i) = &g.interval
        && i.get_ref().0.is_zero()
    {
        f.push(
            i.span(),
            "interval must be more than 0s",
            "how often drill reads the expression, e.g. interval = \"5s\"",
        );
    }
    if let Some(d) = &g.for_
        && !d.get_ref().0.is_zero()
        && *d.get_ref() < interval
    {
        f.push(
            d.span(),
            format!(
                "for = \"{}\" is shorter than the guard's evaluation interval ({interval})",
                d.get_ref()
            ),
            format!(
                "a breach is seen once per evaluation: raise `for` to at least \"{interval}\", or read more often with interval = \"{}\"",
                d.get_ref()
            ),
        );
    }
}

/// The guards' PromQL expressions, in file order: (guard index, expression).
pub(crate) fn expressions(l: &Loaded) -> Vec<(usize, String)> {
    l.scenario
        .guard
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            g.get_ref()
                .promql
                .as_ref()
                .map(|q| (i, q.get_ref().clone()))
        })
        .filter(|(_, q)| !q.trim().is_empty() && unbalanced(q).is_none())
        .collect()
}

/// Located diagnostics for expressions a PromQL parser rejected: `errors`
/// holds (guard index, the parser's message, which may begin with the
/// `line:col:` of the problem inside the expression). The caret points at
/// that place when the TOML string holds the expression verbatim (a literal
/// string, or a basic string without escapes), else at the string.
pub(crate) fn parse_errors(l: &Loaded, errors: &[(usize, String)], by: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, msg) in errors {
        let Some(q) = l
            .scenario
            .guard
            .get(*i)
            .and_then(|g| g.get_ref().promql.as_ref())
        else {
            continue;
        };
        let span = q.span();
        let raw = &l.src[span.clone()];
        let (at, rest) = split_position(msg);
        let verbatim = raw.len() == q.get_ref().len() + 2 && !raw.starts_with("\"\"\"");
        let span = match at {
            Some((1, col)) if verbatim && raw[1..].starts_with(q.get_ref().as_str()) => {
                let s = span.start + 1 + col.saturating_sub(1).min(q.get_ref().len());
                s..(s + 1).min(span.end - 1).max(s)
            }
            _ => span,
        };
        out.push(
            Diagnostic::at(
                &l.path,
                &l.src,
                Some(span),
                format!("the guard's expression is not valid PromQL: {rest}"),
            )
            .with_hint(format!(
                "{by} rejected it; test it in Prometheus's expression browser"
            )),
        );
    }
    out
}

/// The target a scenario's guards will read from: the lab (its own
/// Prometheus and Alertmanager), or a system target, by name, and whether the
/// targets file names its monitoring.
pub(crate) enum GuardTarget<'a> {
    Lab,
    System { name: &'a str, monitoring: bool },
}

/// What only the target and this machine can tell about the guards:
/// whether the target has the Prometheus/Alertmanager they read
/// (`lab_missing`: why the lab's cannot run here, if it cannot), and
/// whether each PromQL expression parses (`parse`: Prometheus's parser
/// offline, `None` when it is not installed — the target's Prometheus
/// checks it at preflight instead).
pub(crate) fn against_target(
    l: &Loaded,
    target: GuardTarget,
    lab_missing: Option<String>,
    parse: impl Fn(&str) -> Option<Result<(), String>>,
) -> Vec<Diagnostic> {
    let Some(first) = l.scenario.guard.first() else {
        return Vec::new();
    };
    let at = |msg: String, hint: String| {
        Diagnostic::at(&l.path, &l.src, Some(first.span()), msg).with_hint(hint)
    };
    let mut out = Vec::new();
    match target {
        GuardTarget::Lab => {
            if let Some(why) = lab_missing {
                out.push(at(
                    format!("a guard reads Prometheus and Alertmanager, and the lab cannot run them here: {why}"),
                    "install them, or remove the [[guard]] tables (a drill never runs unguarded when it has guards)".into(),
                ));
            }
        }
        GuardTarget::System {
            name,
            monitoring: false,
        } => out.push(at(
            format!("a guard reads Prometheus and Alertmanager, and target `{name}` names neither"),
            format!("add [targets.{name}.prometheus] and [targets.{name}.alertmanager] with the system's own url to the targets file"),
        )),
        // Named: the endpoints each guard needs are checked with the
        // rest of the target's monitoring.
        GuardTarget::System {
            monitoring: true, ..
        } => {}
    }
    let rejected: Vec<(usize, String)> = expressions(l)
        .into_iter()
        .filter_map(|(i, q)| match parse(&q) {
            Some(Err(e)) => Some((i, e)),
            _ => None,
        })
        .collect();
    out.extend(parse_errors(l, &rejected, "Prometheus's parser (promtool)"));
    out
}

/// Whether any guard reads Alertmanager (alert and any_unexpected_alert guards).
pub(crate) fn need_alertmanager(l: &Loaded) -> bool {
    l.scenario
        .guard
        .iter()
        .any(|g| g.get_ref().promql.is_none())
}

/// `1:13: parse error: …` → (Some((1, 13)), "parse error: …").
fn split_position(msg: &str) -> (Option<(usize, usize)>, &str) {
    let mut parts = msg.splitn(3, ':');
    let (Some(a), Some(b), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, msg);
    };
    match (a.trim().parse(), b.trim().parse()) {
        (Ok(line), Ok(col)) => (Some((line, col)), rest.trim_start()),
        _ => (None, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Loaded {
        let src = format!("description = \"d\"\n{extra}");
        crate::scenario::parse(std::path::Path::new("t.toml"), &src).expect("parses")
    }

    fn problems(extra: &str) -> Vec<String> {
        validate_guards(&load(extra))
            .into_iter()
            .map(|d| format!("{} {d}", d.location()))
            .collect()
    }

    #[test]
    fn well_formed_guards_pass() {
        let p = problems(
            "[[guard]]\nalert = \"HighErrorRate\"\nlabels = { service = \"checkout\" }\n\
             [[guard]]\nname = \"errors\"\npromql = 'sum(rate(x[5m]))'\nabove = 0.01\nfor = \"30s\"\ninterval = \"5s\"\non_unreachable = \"continue\"\n\
             [[guard]]\nany_unexpected_alert = true\nseverity = [\"critical\", \"page\"]\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn each_mistake_is_named_at_its_line() {
        let p = problems(
            "[[guard]]\nname = \"a\"\n\
             [[guard]]\nalert = \"X\"\npromql = 'up'\nabove = 1\n\
             [[guard]]\npromql = 'sum(up'\nbelow = 1\n\
             [[guard]]\npromql = 'up'\nabove = 1\nfor = \"500ms\"\n\
             [[guard]]\nalert = \"High Errors\"\nfor = \"30s\"\n\
             [[guard]]\npromql = 'up'\n\
             [[guard]]\nany_unexpected_alert = true\non_unreachable = \"ignore\"\n\
             [[guard]]\nalert = \"Y\"\nseverity = \"critical\"\n\
             [[guard]]\nname = \"a\"\nany_unexpected_alert = false\n",
        );
        let has = |line: &str, what: &str| {
            assert!(
                p.iter()
                    .any(|d| d.starts_with(&format!("t.toml:{line}:")) && d.contains(what)),
                "{what} at line {line} in {p:?}"
            )
        };
        has("2", "needs `alert`, `promql` or `any_unexpected_alert`");
        has("6", "watches one thing");
        has("9", "`(` is never closed");
        has("14", "shorter than the guard's evaluation interval (1s)");
        has("16", "not an alert name");
        has("17", "`for` is for promql guards");
        has("18", "needs `above` or `below`");
        has("22", "not a policy");
        has("25", "severity is for any_unexpected_alert");
        has("27", "two guards are named `a`");
        has("28", "watches nothing");
        assert_eq!(p.len(), 11, "{p:?}");
        let hint = p
            .iter()
            .find(|d| d.contains("evaluation interval"))
            .unwrap();
        assert!(hint.contains("interval = \"500ms\""), "{hint}");
    }

    #[test]
    fn a_guard_on_an_expected_alert_is_refused_and_a_narrower_one_passes() {
        let expected = "[[faults]]\ncomponent = \"istiod\"\nregion = \"primary\"\naction = \"down\"\nduration = \"5s\"\n\
            [[alerts]]\nname = \"HighErrorRate\"\nlabels = { service = \"reviews\" }\nfire_within = \"10s\"\n";
        let p = problems(&format!(
            "{expected}[[guard]]\nalert = \"HighErrorRate\"\nlabels = {{ service = \"reviews\", severity = \"critical\" }}\n"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("t.toml:12:") && p[0].contains("line 7"),
            "{p:?}"
        );
        let p = problems(&format!(
            "{expected}[[guard]]\nalert = \"HighErrorRate\"\nlabels = {{ service = \"checkout\" }}\n[[guard]]\nname = \"all\"\nalert = \"HighErrorRate\"\n"
        ));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_parser_error_points_inside_the_expression() {
        let l = load("[[guard]]\npromql = 'sum(rate(up[1m])) +'\nabove = 1\n");
        let ds = parse_errors(
            &l,
            &[(0, "1:20: parse error: unexpected end of input".into())],
            "promtool",
        );
        assert_eq!(ds.len(), 1);
        // Line 3, the quote at column 10, the expression's 20th character.
        assert_eq!(ds[0].location(), "t.toml:3:30");
        assert!(
            ds[0].message.contains("unexpected end of input"),
            "{}",
            ds[0]
        );
        // An escaped string: the whole value is pointed at.
        let l = load("[[guard]]\npromql = \"sum(up{a=\\\"b\\\"}\"\nabove = 1\n");
        let ds = parse_errors(&l, &[(0, "1:5: parse error: x".into())], "promtool");
        assert_eq!(ds[0].location(), "t.toml:3:10");
        assert_eq!(expressions(&l).len(), 0, "unbalanced: already reported");
    }
}
