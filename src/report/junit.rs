//! `junit.xml`: one `<testsuite>` per drill and one `<testcase>` per check,
//! so CI (GitHub, GitLab, Jenkins) shows a drill's SLOs as tests. A failure
//! says what was measured against what, where (phase or fault) and which
//! report section to read, both in `message` (one line) and as text (GitLab
//! shows only the text); a skipped check says why; each testsuite has the
//! run's properties.
//!
//! Written with `quick-junit` (nextest's writer: escaping, counts and the
//! element layout are its job). Two things are drill's own:
//!
//! - **Times add up.** A testsuite's `time` is the drill's duration. The
//!   checks judge overlapping spans of it (the baseline, a fault's inject to
//!   recovery, the whole drill), and reporters add testcase times up, so
//!   each testcase's `time` is its span scaled by one factor per drill,
//!   chosen so that the testcases add up to the suite's time at most
//!   (factor 1 when they already do). A longer span stays a longer time; a
//!   failure's text names its span (the phase's or the fault's times). A skipped check is weighted by
//!   the span it would have judged, or the drill when that never began, so
//!   it has a time too.
//! - **The root validates against Jenkins xunit's junit-10.xsd**, which has
//!   no `skipped` or `timestamp` on `<testsuites>`: quick-junit always
//!   writes `skipped` there, so that one attribute is taken off the root
//!   (each `<testsuite>` keeps its own `skipped` count).

use std::fmt::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::units::{clock, value};
use crate::results::{
    CheckName, CheckResult, CheckStatus, DrillResult, FaultResult, Recovery, Verdict,
};

/// The JUnit report of one drill or of a suite of drills.
pub(crate) fn render(results: &[DrillResult]) -> String {
    let mut report = Report::new("drill");
    report.set_time(secs(results.iter().map(|r| finite(r.duration_s)).sum()));
    for r in results {
        report.add_test_suite(suite(r).into_junit());
    }
    let xml = report
        .to_string()
        .expect("a report of plain strings serialises");
    without_root_skipped(&xml)
}

/// Takes the `skipped` attribute off the `<testsuites>` start tag only
/// (junit-10.xsd rejects it there; testsuites keep theirs).
fn without_root_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let end = start + xml[start..].find('>').unwrap_or(0);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml.to_string();
    };
    let close =
        at + " skipped=\"".len() + tag[at + " skipped=\"".len()..].find('"').unwrap_or(0) + 1;
    format!("{}{}{}", &xml[..start + at], &tag[close..], &xml[end..])
}

/// One drill as a testsuite, before it is written.
struct Suite {
    name: String,
    time_s: f64,
    timestamp: Option<chrono::DateTime<chrono::FixedOffset>>,
    properties: Vec<(&'static str, String)>,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    classname: String,
    /// The span of the drill this case judged (or would have), before the
    /// suite's cases are scaled to add up to its time.
    span_s: f64,
    outcome: Outcome,
}

enum Outcome {
    Pass,
    /// An SLO check that failed: one-line message, full text.
    Failure {
        /// `slo` for a check; `inconclusive` for the generator's own.
        kind: &'static str,
        message: String,
        text: String,
    },
    /// The drill itself stopped (aborted or error).
    Error {
        kind: &'static str,
        message: String,
        text: String,
    },
    Skipped {
        message: String,
    },
}

impl Suite {
    /// The factor that makes the cases' spans add up to the suite's time
    /// at most.
    fn scale(&self) -> f64 {
        let total: f64 = self.cases.iter().map(|c| c.span_s).sum();
        if total > self.time_s && total > 0.0 {
            self.time_s / total
        } else {
            1.0
        }
    }

    fn into_junit(self) -> TestSuite {
        let scale = self.scale();
        let mut ts = TestSuite::new(self.name.as_str());
        ts.set_time(secs(self.time_s));
        if let Some(t) = self.timestamp {
            ts.set_timestamp(t);
        }
        ts.add_properties(
            self.properties
                .iter()
                .map(|(k, v)| Property::new(*k, v.as_str())),
        );
        for c in self.cases {
            ts.add_test_case(c.into_junit(scale));
        }
        ts
    }
}

impl Case {
    fn into_junit(self, scale: f64) -> TestCase {
        let status = match self.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Failure {
                kind,
                message,
                text,
            } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type(kind).set_message(message).set_description(text);
                s
            }
            Outcome::Error {
                kind,
                message,
                text,
            } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type(kind).set_message(message).set_description(text);
                s
            }
            Outcome::Skipped { message } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(message);
                s
            }
        };
        let mut tc = TestCase::new(self.name.as_str(), status);
        tc.set_classname(self.classname.as_str());
        // Milliseconds, rounded down, so that rounding cannot push the
        // cases past the suite's time.
        let ms = (self.span_s * scale * 1000.0).floor();
        tc.set_time(Duration::from_millis(if ms > 0.0 { ms as u64 } else { 0 }));
        tc
    }
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(if v > 0.0 && v.is_finite() { v } else { 0.0 })
}

fn suite(r: &DrillResult) -> Suite {
    let classname = format!("drill.{}", r.scenario);
    let mut cases: Vec<Case> = r
        .checks
        .iter()
        .map(|c| Case {
            name: c.name.to_string(),
            classname: classname.clone(),
            // A skipped check whose span never began waited the drill out.
            span_s: match span_s(r, c) {
                s if s <= 0.0 && c.status == CheckStatus::Skipped => finite(r.duration_s),
                s => s,
            },
            outcome: outcome(r, c),
        })
        .collect();
    if !r.manual_actions.is_empty() {
        manual_actions(r, &classname, &mut cases);
    }
    if let (Verdict::Aborted | Verdict::Error, Some(reason)) = (r.verdict, &r.reason) {
        cases.push(Case {
            name: "drill".into(),
            classname: classname.clone(),
            span_s: finite(r.duration_s),
            outcome: Outcome::Error {
                kind: r.verdict.name(),
                message: one_line(reason),
                text: format!(
                    "{reason}\nThe drill stopped {}; checks it could not measure are skipped.\nsee report.md § Fault timeline",
                    if r.verdict == Verdict::Aborted {
                        "before it finished (aborted)"
                    } else {
                        "on an error"
                    }
                ),
            },
        });
    }
    if r.verdict == Verdict::Inconclusive {
        // The generator's own trustworthiness, failed: measured vs bound.
        let why = r.load.distrust().unwrap_or_else(|| {
            r.reason
                .clone()
                .unwrap_or_else(|| "the measurements cannot be trusted".into())
        });
        cases.push(Case {
            name: "load-generator".into(),
            classname: classname.clone(),
            span_s: finite(r.duration_s),
            outcome: Outcome::Failure {
                kind: "inconclusive",
                message: one_line(&why),
                text: format!(
                    "{why}\nThe load generator's own measurements are not trustworthy, so no verdict on the SLOs is given.\nsee report.md § Load generator"
                ),
            },
        });
    }
    let mut properties = vec![
        ("run_id", r.run_id.clone()),
        ("seed", r.seed.to_string()),
        ("target", r.target.clone()),
        ("target_kind", r.target_kind.clone()),
        ("scenario", r.scenario.clone()),
    ];
    if let Some(file) = r.settings.get("scenario.file") {
        properties.push(("scenario_file", file.clone()));
    }
    properties.extend([
        ("drill_version", r.drill_version.clone()),
        ("started_at", r.started_at.clone()),
        ("verdict", r.verdict.name().to_string()),
    ]);
    Suite {
        name: r.scenario.clone(),
        time_s: finite(r.duration_s),
        timestamp: chrono::DateTime::parse_from_rfc3339(&r.started_at).ok(),
        properties,
        cases,
    }
}

/// A failed revert leaves work for a person: it goes into the failing
/// `faults-reverted` testcase, the one CI shows, never a suite-level
/// `system-err` that GitLab hides.
fn manual_actions(r: &DrillResult, classname: &str, cases: &mut Vec<Case>) {
    let mut text =
        String::from("MANUAL ACTION REQUIRED: a revert failed, the system may still be broken.\n");
    for a in &r.manual_actions {
        let _ = writeln!(text, "- {a}");
    }
    text.push_str("see report.md (top) and `drill cleanup`");
    let reverted = CheckName::FaultsReverted.to_string();
    let i = match cases.iter().position(|c| c.name == reverted) {
        Some(i) => i,
        None => {
            cases.push(Case {
                name: reverted,
                classname: classname.into(),
                span_s: finite(r.duration_s),
                outcome: Outcome::Pass,
            });
            cases.len() - 1
        }
    };
    let case = &mut cases[i];
    case.outcome = match std::mem::replace(&mut case.outcome, Outcome::Pass) {
        Outcome::Failure {
            message, text: t, ..
        } => Outcome::Failure {
            kind: "slo",
            message: format!("MANUAL ACTION REQUIRED: {message}"),
            text: format!("{text}\n\n{t}"),
        },
        _ => Outcome::Failure {
            kind: "slo",
            message: "MANUAL ACTION REQUIRED: a revert failed".into(),
            text,
        },
    };
}

/// Where a check looked: a fault (named after the colon), a phase, or the
/// whole drill. Custom check names fall back to the whole drill.
enum Scope<'a> {
    Fault(&'a FaultResult),
    Phase(&'a str, f64, f64),
    Drill,
}

fn scope<'a>(r: &'a DrillResult, c: &CheckResult) -> Scope<'a> {
    let subject = match (&c.name, c.name.subject()) {
        (_, Some(s)) => s,
        (CheckName::SteadyState, None) => "baseline",
        (_, None) => return Scope::Drill,
    };
    if let Some(f) = r.faults.iter().find(|f| f.name == subject) {
        return Scope::Fault(f);
    }
    match r.phase_spans.iter().find(|p| p.phase == subject) {
        Some(p) => Scope::Phase(&p.phase, p.start_s, p.end_s),
        None => Scope::Drill,
    }
}

/// The span a check judged: a phase's length, inject to recovered for an
/// RTO (to the end of observation when never recovered), inject to end for
/// other fault checks, the drill for drill-wide ones.
fn span_s(r: &DrillResult, c: &CheckResult) -> f64 {
    let end = observation_end(r);
    let s = match scope(r, c) {
        Scope::Phase(_, start, stop) => stop - start,
        Scope::Fault(f) if matches!(c.name, CheckName::Rto(_)) => match f.recovery {
            Recovery::NoImpact => 0.0,
            Recovery::Recovered | Recovery::NotRecovered => {
                f.recovered_at_s.unwrap_or(end) - f.injected_at_s
            }
        },
        Scope::Fault(f) => f.reverted_at_s.unwrap_or(end) - f.injected_at_s,
        Scope::Drill => r.duration_s,
    };
    finite(s).max(0.0)
}

fn observation_end(r: &DrillResult) -> f64 {
    r.phase_spans
        .iter()
        .map(|p| p.end_s)
        .fold(finite(r.duration_s), f64::max)
}

fn outcome(r: &DrillResult, c: &CheckResult) -> Outcome {
    match c.status {
        CheckStatus::Pass => Outcome::Pass,
        CheckStatus::Skipped => Outcome::Skipped {
            message: match (&r.reason, r.verdict) {
                (Some(reason), Verdict::Aborted | Verdict::Error)
                    if !c.message.contains(reason.as_str()) =>
                {
                    format!("{} — {}", c.message, one_line(reason))
                }
                _ => c.message.clone(),
            },
        },
        CheckStatus::Fail => failure(r, c),
    }
}

/// `rto 41.2s > 30s for fault `kill-primary-ingress` (ingress-gateway/primary)`
/// as the message; the text adds measured, threshold, when, and where to look.
fn failure(r: &DrillResult, c: &CheckResult) -> Outcome {
    let measured = match c.measured {
        Some(v) => value(v, c.unit),
        None if matches!(c.name, CheckName::Rto(_)) => "not recovered".into(),
        None => "not measured".into(),
    };
    let threshold = c.threshold.map_or("—".into(), |v| value(v, c.unit));
    let (where_, detail, section) = match scope(r, c) {
        Scope::Fault(f) => {
            let place = match &f.region {
                Some(region) => format!("{}/{region}", f.component),
                None => f.component.clone(),
            };
            let ended = match f.reverted_at_s {
                Some(t) => format!("ended {} at {}", f.ended, clock(t)),
                None => format!("ended {}", f.ended),
            };
            (
                format!(" for fault `{}` ({place})", f.name),
                format!(
                    "fault: `{}` — {} {place}, injected at {}, {ended}",
                    f.name,
                    f.action,
                    clock(f.injected_at_s)
                ),
                if c.name.is_data_loss() {
                    "Data loss (RPO)"
                } else {
                    "Faults"
                },
            )
        }
        Scope::Phase(phase, start, stop) => (
            format!(" in phase `{phase}`"),
            format!("phase: {phase}, {} to {}", clock(start), clock(stop)),
            "Phases",
        ),
        Scope::Drill => (
            String::new(),
            format!(
                "over the whole drill ({} to {})",
                clock(0.0),
                clock(observation_end(r))
            ),
            match c.name {
                CheckName::ErrorBudget => "Error budget",
                CheckName::FaultsReverted => "Fault timeline",
                _ => "Checks",
            },
        ),
    };
    let message = one_line(&c.message);
    // Verdict-only checks (steady-state, faults-reverted) have no figures
    // beyond their message.
    let figures = if c.measured.is_none() && c.threshold.is_none() {
        String::new()
    } else {
        format!("measured: {measured}\nthreshold: {threshold}\n")
    };
    Outcome::Failure {
        kind: "slo",
        message: format!("{message}{where_}; see report.md § {section}"),
        text: format!("{message}{where_}\n{figures}{detail}\nsee: report.md § {section}"),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CheckStatus;
    use crate::results::testdata::{sample_aborted, sample_pass, sample_result};
    use quick_xml::events::{BytesStart, Event};

    /// An element's name and attributes.
    type Element = (String, Vec<(String, String)>);

    /// Every element of a JUnit file with its attributes, in document order,
    /// plus the text of all text and CDATA nodes; panics if it is not XML.
    fn parse(xml: &str) -> (Vec<Element>, String) {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut elements = Vec::new();
        let mut text = String::new();
        let element = |e: &BytesStart| {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap();
                    (key, value.into_owned())
                })
                .collect();
            (name, attrs)
        };
        let mut open = 0i32;
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    open += 1;
                    elements.push(element(&e));
                }
                Event::Empty(e) => elements.push(element(&e)),
                Event::End(_) => open -= 1,
                // Indentation between tags is not part of any text.
                Event::Text(t) => {
                    let t = t.decode().unwrap();
                    if !t.trim().is_empty() {
                        text.push_str(&t);
                    }
                }
                Event::GeneralRef(r) => match r.resolve_char_ref().unwrap() {
                    Some(c) => text.push(c),
                    None => text.push_str(match r.decode().unwrap().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unknown entity &{other};"),
                    }),
                },
                Event::CData(t) => text.push_str(std::str::from_utf8(&t).unwrap()),
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(open, 0, "unbalanced XML:\n{xml}");
        (elements, text)
    }

    fn attr<'a>(el: &'a Element, key: &str) -> Option<&'a str> {
        el.1.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn named<'a>(els: &'a [Element], name: &'a str) -> impl Iterator<Item = &'a Element> {
        els.iter().filter(move |e| e.0 == name)
    }

    #[test]
    fn golden_junit() {
        // The failing sample plus an aborted one, for skipped and error cases.
        crate::results::testdata::assert_golden(
            "junit.xml",
            &render(&[sample_result(), sample_aborted()]),
        );
    }

    #[test]
    fn one_testsuite_per_drill_and_one_testcase_per_check() {
        let results = [sample_result(), sample_pass(), sample_aborted()];
        let (els, _) = parse(&render(&results));
        let root = named(&els, "testsuites").next().unwrap();
        assert_eq!(attr(root, "tests"), Some("25"));
        assert_eq!(attr(root, "failures"), Some("3"));
        assert_eq!(attr(root, "errors"), Some("1"));
        // junit-10.xsd has no `skipped` on the root; the suites carry it.
        assert_eq!(attr(root, "skipped"), None);
        assert_eq!(attr(root, "time"), Some("128.000"));
        let suites: Vec<_> = named(&els, "testsuite").collect();
        assert_eq!(suites.len(), 3);
        assert_eq!(attr(suites[0], "name"), Some("region-failover"));
        assert_eq!(attr(suites[0], "tests"), Some("8"));
        assert_eq!(attr(suites[0], "failures"), Some("2"));
        assert_eq!(attr(suites[0], "time"), Some("60.000"));
        assert_eq!(attr(suites[1], "failures"), Some("0"));
        // The aborted drill gets its reason as an extra `drill` error case.
        assert_eq!(attr(suites[2], "tests"), Some("9"));
        assert_eq!(attr(suites[2], "errors"), Some("1"));
        assert_eq!(attr(suites[2], "skipped"), Some("7"));
        assert_eq!(attr(suites[2], "time"), Some("8.000"));
        let cases: Vec<_> = named(&els, "testcase").collect();
        assert_eq!(cases.len(), 8 + 8 + 9);
        assert!(
            cases
                .iter()
                .all(|c| attr(c, "classname") == Some("drill.region-failover"))
        );
        assert_eq!(attr(cases[0], "name"), Some("steady-state"));
        assert_eq!(attr(cases[7], "name"), Some("faults-reverted"));
    }

    #[test]
    fn testcase_times_keep_the_spans_proportions_and_add_up_to_the_suite() {
        let (els, _) = parse(&render(&[sample_result(), sample_pass(), sample_aborted()]));
        // Every testsuite: its cases add up to its time at most (junit2html
        // and friends add them up), and not far below when spans overlap.
        let mut i = 0;
        for suite in named(&els, "testsuite") {
            let n: usize = attr(suite, "tests").unwrap().parse().unwrap();
            let time: f64 = attr(suite, "time").unwrap().parse().unwrap();
            let cases: Vec<f64> = named(&els, "testcase")
                .skip(i)
                .take(n)
                .map(|c| attr(c, "time").unwrap().parse().unwrap())
                .collect();
            i += n;
            let sum: f64 = cases.iter().sum();
            assert!(sum <= time + 1e-9, "cases {sum} > suite {time}");
            assert!(
                sum > time - 0.001 * n as f64 - 1e-9,
                "cases {sum} ≪ suite {time}"
            );
            // Skipped cases have a time too.
            assert!(cases.iter().all(|&t| t > 0.0), "{cases:?}");
        }
        // The failing sample's spans: baseline 8 s, RTO 41.2 s (inject t+8 →
        // recovered t+49.2), the drill 60 s; their ratios survive the scaling.
        let time = |name: &str| -> f64 {
            let c = named(&els, "testcase")
                .find(|c| attr(c, "name") == Some(name))
                .unwrap();
            attr(c, "time").unwrap().parse().unwrap()
        };
        let base = time("steady-state");
        assert!((time("rto:kill-primary-ingress") / base - 41.2 / 8.0).abs() < 0.01);
        assert!((time("error-budget") / base - 60.0 / 8.0).abs() < 0.01);
        assert!((time("rpo:switchover-database") / base - 0.5).abs() < 0.01);
    }

    #[test]
    fn a_suite_whose_spans_fit_keeps_them_unscaled() {
        let mut r = sample_pass();
        r.checks.truncate(1); // steady-state: the 8 s baseline of a 60 s drill
        let (els, _) = parse(&render(&[r]));
        let c = named(&els, "testcase").next().unwrap();
        assert_eq!(attr(c, "time"), Some("8.000"));
    }

    #[test]
    fn failures_say_what_against_what_and_where_to_look() {
        let (els, text) = parse(&render(&[sample_result()]));
        let failures: Vec<_> = named(&els, "failure").collect();
        assert_eq!(failures.len(), 2);
        assert_eq!(
            attr(failures[0], "message"),
            Some(
                "rto 41.2s > 30s for fault `kill-primary-ingress` (ingress-gateway/primary); see report.md § Faults"
            )
        );
        assert_eq!(attr(failures[0], "type"), Some("slo"));
        assert!(
            attr(failures[1], "message")
                .unwrap()
                .starts_with("not recovered")
        );
        // The element's text, which GitLab shows, carries the figures.
        for line in [
            "measured: 41.2 s",
            "threshold: 30 s",
            "fault: `kill-primary-ingress` — kill ingress-gateway/primary, injected at t+8.000 s, ended healed at t+44.000 s",
            "measured: not recovered",
            "see: report.md § Faults",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        assert_eq!(named(&els, "skipped").count(), 0);
        assert_eq!(named(&els, "error").count(), 0);
    }

    #[test]
    fn phase_and_drill_wide_failures_name_their_span() {
        let mut r = sample_result();
        r.checks[2].status = CheckStatus::Fail;
        r.checks[6].status = CheckStatus::Fail;
        let (els, text) = parse(&render(&[r]));
        let messages: Vec<_> = named(&els, "failure")
            .map(|f| attr(f, "message").unwrap().to_string())
            .collect();
        assert_eq!(
            messages[0],
            "p99 6.4ms ≤ 50ms in phase `baseline`; see report.md § Phases"
        );
        assert!(
            messages[3].ends_with("; see report.md § Error budget"),
            "{messages:?}"
        );
        assert!(
            text.contains("phase: baseline, t+0.000 s to t+8.000 s"),
            "{text}"
        );
        assert!(
            text.contains("over the whole drill (t+0.000 s to t+60.000 s)"),
            "{text}"
        );
    }

    #[test]
    fn aborted_drill_has_skipped_checks_with_the_reason_and_an_error() {
        let (els, text) = parse(&render(&[sample_aborted()]));
        let skipped: Vec<_> = named(&els, "skipped").collect();
        assert_eq!(skipped.len(), 7);
        assert_eq!(
            attr(skipped[0], "message"),
            Some(
                "not evaluated: drill aborted — steady state not met: baseline availability 97.1% < 99.5%"
            )
        );
        let errors: Vec<_> = named(&els, "error").collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(attr(errors[0], "type"), Some("aborted"));
        assert_eq!(
            attr(errors[0], "message"),
            Some("steady state not met: baseline availability 97.1% < 99.5%")
        );
        assert!(
            text.contains("checks it could not measure are skipped"),
            "{text}"
        );
        let drill_case = named(&els, "testcase").last().unwrap();
        assert_eq!(attr(drill_case, "name"), Some("drill"));
        // The whole 8 s drill, scaled with the other cases to add up to 8 s.
        let t: f64 = attr(drill_case, "time").unwrap().parse().unwrap();
        assert!(t > 0.5 && t < 8.0, "{t}");
        // Skipped cases carry a time and a reason.
        let skipped = named(&els, "testcase")
            .filter(|c| attr(c, "name") == Some("availability:baseline"))
            .last()
            .unwrap();
        assert!(attr(skipped, "time").unwrap().parse::<f64>().unwrap() > 0.0);
    }

    /// A generator that fell behind: one failing `load-generator` case that
    /// reads the measured lag against its bound.
    #[test]
    fn an_inconclusive_drill_fails_the_load_generator_case() {
        let mut r = sample_pass();
        r.load.generator_behind = true;
        r.load.lag_p99_ms = 191.0;
        r.load.max_send_lag_ms = 5.0;
        r.verdict = Verdict::Inconclusive;
        let (els, _) = parse(&render(&[r]));
        let case = named(&els, "testcase")
            .find(|c| attr(c, "name") == Some("load-generator"))
            .expect("load-generator testcase");
        let i = els.iter().position(|e| std::ptr::eq(e, case)).unwrap();
        let failure = &els[i + 1];
        assert_eq!(failure.0, "failure");
        assert_eq!(attr(failure, "type"), Some("inconclusive"));
        assert_eq!(
            attr(failure, "message"),
            Some("the load generator fell behind: send lag p99 191.00ms > 5ms (max_send_lag)")
        );
        let passing = render(&[sample_pass()]);
        assert!(!passing.contains("load-generator"));
    }

    #[test]
    fn properties_identify_the_run() {
        let (els, _) = parse(&render(&[sample_result()]));
        let props: Vec<(String, String)> = named(&els, "property")
            .map(|p| {
                (
                    attr(p, "name").unwrap().to_string(),
                    attr(p, "value").unwrap().to_string(),
                )
            })
            .collect();
        let get = |k: &str| props.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("run_id"), Some("20260314T093000Z-7f3a"));
        assert_eq!(get("seed"), Some("5280703954370554100"));
        assert_eq!(get("target"), Some("lab"));
        assert_eq!(get("scenario_file"), Some("scenarios/region-failover.toml"));
        assert_eq!(get("drill_version"), Some("0.1.0"));
        assert_eq!(get("started_at"), Some("2026-03-14T09:30:00Z"));
        assert_eq!(get("verdict"), Some("fail"));
    }

    #[test]
    fn manual_actions_fail_the_faults_reverted_testcase() {
        let mut r = sample_result();
        r.manual_actions = vec!["kubectl -n shop scale deploy/reviews --replicas=3".into()];
        r.checks[7].status = CheckStatus::Fail;
        r.checks[7].message = "not reverted or healed: scale-reviews (revert-failed)".into();
        let xml = render(&[r.clone()]);
        assert!(!xml.contains("system-err"), "{xml}");
        let (els, text) = parse(&xml);
        let failures: Vec<_> = named(&els, "failure").collect();
        assert_eq!(failures.len(), 3);
        assert!(
            attr(failures[2], "message")
                .unwrap()
                .starts_with("MANUAL ACTION REQUIRED: not reverted or healed: scale-reviews")
        );
        assert!(
            text.contains("- kubectl -n shop scale deploy/reviews --replicas=3\n"),
            "{text}"
        );
        // Even when the check itself passed, the case fails with the actions.
        r.checks[7].status = CheckStatus::Pass;
        let (els, text) = parse(&render(&[r]));
        assert_eq!(named(&els, "failure").count(), 3);
        assert!(text.contains("MANUAL ACTION REQUIRED"), "{text}");
    }

    #[test]
    fn timestamp_comes_from_started_at_or_is_left_out() {
        let mut bad = sample_pass();
        bad.started_at = "yesterday".into();
        let mut offset = sample_pass();
        offset.started_at = "2026-03-14T10:30:00.25+01:00".into();
        let (els, _) = parse(&render(&[sample_result(), bad, offset]));
        let suites: Vec<_> = named(&els, "testsuite").collect();
        assert_eq!(
            attr(suites[0], "timestamp"),
            Some("2026-03-14T09:30:00.000+00:00")
        );
        assert_eq!(attr(suites[1], "timestamp"), None);
        // The run's own offset, kept (RFC 3339, milliseconds).
        assert_eq!(
            attr(suites[2], "timestamp"),
            Some("2026-03-14T10:30:00.250+01:00")
        );
    }

    #[test]
    fn hostile_text_stays_valid_xml() {
        let mut r = sample_aborted();
        r.scenario = "a<b>&\"c\"".into();
        r.checks[0].message = "rto ]]> <oops> & \u{1b}[31mred\u{1b}[0m".into();
        r.reason = Some("line one\nline two ]]> end\r".into());
        r.manual_actions = vec!["kubectl scale deploy/x --replicas=3 ]]>".into()];
        let xml = render(&[r]);
        let (els, text) = parse(&xml);
        let failure = named(&els, "failure").next().unwrap();
        assert!(
            attr(failure, "message")
                .unwrap()
                .starts_with("rto ]]> <oops> & red in phase `baseline`"),
            "{xml}"
        );
        assert_eq!(
            attr(named(&els, "testsuite").next().unwrap(), "name"),
            Some("a<b>&\"c\"")
        );
        assert!(text.contains("line one\nline two ]]> end"), "{text:?}");
        assert!(text.contains("MANUAL ACTION REQUIRED"), "{text}");
        assert!(
            text.contains("- kubectl scale deploy/x --replicas=3 ]]>\n"),
            "{text}"
        );
    }

    #[test]
    fn no_drills_give_an_empty_root_with_zero_totals() {
        assert_eq!(
            render(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"drill\" tests=\"0\" failures=\"0\" errors=\"0\" time=\"0.000\">\n</testsuites>\n"
        );
    }

    /// Jenkins' xunit plugin validates JUnit files against its junit-10.xsd
    /// (fixtures/xsd/, vendored with its source and license); PyPI's
    /// `xmlschema` does the same here. A failing, a passing, an aborted, an
    /// inconclusive drill and one with hostile text all pass; the old root
    /// (with `skipped`) is rejected, so the test can fail.
    #[test]
    fn junit_validates_against_jenkins_xunit_junit_10_xsd() {
        let xsd =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xsd/junit-10.xsd");
        let dir = tempfile::tempdir().unwrap();
        let mut inconclusive = sample_pass();
        inconclusive.verdict = Verdict::Inconclusive;
        let mut hostile = sample_aborted();
        hostile.reason = Some("a <b> & \u{1b}[31mc\u{1b}[0m ]]>".into());
        hostile.manual_actions = vec!["kubectl scale deploy/x --replicas=3".into()];
        let good = dir.path().join("junit.xml");
        std::fs::write(
            &good,
            render(&[
                sample_result(),
                sample_pass(),
                sample_aborted(),
                inconclusive,
                hostile,
            ]),
        )
        .unwrap();
        let bad = dir.path().join("old-root.xml");
        std::fs::write(
            &bad,
            render(&[sample_result()]).replacen(
                "<testsuites name=\"drill\"",
                "<testsuites name=\"drill\" skipped=\"0\"",
                1,
            ),
        )
        .unwrap();
        let script = r#"
import sys, xmlschema
schema = xmlschema.XMLSchema(sys.argv[1])
for f in sys.argv[2:]:
    errors = list(schema.iter_errors(f))
    print(f, "valid" if not errors else "invalid: " + str(errors[0]).splitlines()[0])
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .args([&xsd, &good, &bad])
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "xmlschema could not run (pip install xmlschema; ci/test.sh does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].ends_with("junit.xml valid"), "{stdout}");
        assert!(lines[1].contains("old-root.xml invalid"), "{stdout}");
    }

    /// Reads a failing, a passing and an aborted drill's JUnit with PyPI's
    /// `junitparser` (and renders it with `junit2html`): independent
    /// consumers, as CI systems are. ci/test.sh installs both.
    #[test]
    fn independent_consumers_read_times_failures_skips_and_properties() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("junit.xml");
        std::fs::write(
            &file,
            render(&[sample_result(), sample_pass(), sample_aborted()]),
        )
        .unwrap();
        let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = {"root": [xml.tests, xml.failures, xml.errors, xml.skipped, xml.time], "suites": []}
for s in xml:
    cases = []
    for c in s:
        r = [(type(x).__name__, x.message, x.text) for x in c.result]
        cases.append([c.name, c.time, r])
    props = {p.name: p.value for p in s.properties()}
    out["suites"].append({"name": s.name, "time": s.time, "tests": s.tests,
                          "skipped": s.skipped, "props": props, "cases": cases})
print(json.dumps(out))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&file)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "junitparser could not read the file (pip install junitparser junit2html; ci/test.sh does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // junitparser adds the root's time up from the testcases: no more
        // than the drills' 128 s.
        assert_eq!(
            v["root"].as_array().unwrap()[..4],
            serde_json::json!([25, 3, 1, 7]).as_array().unwrap()[..]
        );
        let t = v["root"][4].as_f64().unwrap();
        assert!(t <= 128.0 && t > 127.9, "{t}");
        let suites = v["suites"].as_array().unwrap();
        // Its suite times are the cases' sums: within a millisecond per
        // case of the drills' 60 s and 8 s, never above.
        let t0 = suites[0]["time"].as_f64().unwrap();
        assert!(t0 <= 60.0 && t0 > 59.99, "{t0}");
        let t2 = suites[2]["time"].as_f64().unwrap();
        assert!(t2 <= 8.0 && t2 > 7.99, "{t2}");
        assert_eq!(suites[2]["skipped"], 7);
        assert_eq!(suites[0]["props"]["seed"], "5280703954370554100");
        assert_eq!(suites[1]["props"]["verdict"], "pass");
        assert_eq!(
            suites[2]["props"]["scenario_file"],
            "scenarios/region-failover.toml"
        );
        let rto = &suites[0]["cases"][3];
        assert_eq!(rto[0], "rto:kill-primary-ingress");
        // 41.2 s of a 60 s drill whose checks' spans add up to 197.2 s.
        let t = rto[1].as_f64().unwrap();
        assert!((t - 41.2 * 60.0 / 197.2).abs() < 0.002, "{t}");
        assert_eq!(rto[2][0][0], "Failure");
        assert!(
            rto[2][0][1]
                .as_str()
                .unwrap()
                .starts_with("rto 41.2s > 30s for fault")
        );
        assert!(
            rto[2][0][2]
                .as_str()
                .unwrap()
                .contains("measured: 41.2 s\nthreshold: 30 s")
        );
        assert_eq!(suites[1]["cases"][3][2], serde_json::json!([]));
        let skipped = &suites[2]["cases"][1][2][0];
        assert_eq!(skipped[0], "Skipped");
        assert!(
            skipped[1]
                .as_str()
                .unwrap()
                .contains("steady state not met")
        );
        let drill = &suites[2]["cases"][8][2][0];
        assert_eq!(drill[0], "Error");

        let html = dir.path().join("junit.html");
        let out = std::process::Command::new("python3")
            .args(["-m", "junit2htmlreport"])
            .arg(&file)
            .arg(&html)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "junit2html failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let html = std::fs::read_to_string(html).unwrap();
        // It shows the failure text, not just the test's name.
        assert!(
            html.contains("measured: 41.2 s") && html.contains("threshold: 30 s"),
            "{html}"
        );
    }
}
