//! `junit.xml`: one `<testsuite>` per drill and one `<testcase>` per check,
//! so CI (GitHub, GitLab, Jenkins) shows a drill's SLOs as tests, failures
//! reading like `rto 41.2s > 30s`.

use junit_report::{Duration, OffsetDateTime, Report, TestCase, TestCaseBuilder, TestSuite};

use super::model::{CheckStatus, DrillResult, Verdict};

/// The JUnit report of one drill or of a suite of drills.
pub fn render(results: &[DrillResult]) -> String {
    indent(&compact(results))
}

/// junit-report always writes a timestamp (the render time when none is
/// set); we give unparseable ones this stand-in and strip it afterwards, so
/// the report never claims a time the drill did not record.
const NO_TIMESTAMP: &str = " timestamp=\"1970-01-01T00:00:00Z\"";

fn compact(results: &[DrillResult]) -> String {
    let mut report = Report::new();
    report.add_testsuites(results.iter().map(suite));
    let mut out = Vec::new();
    // Writing to memory fails only on an I/O error, which a Vec never gives.
    report
        .write_xml(&mut out)
        .expect("JUnit XML writes to memory");
    String::from_utf8(out)
        .expect("junit-report writes UTF-8")
        .replace(NO_TIMESTAMP, "")
}

fn suite(r: &DrillResult) -> TestSuite {
    let mut suite = TestSuite::new(&xml_text(&r.scenario));
    suite.set_timestamp(parse_rfc3339(&r.started_at).unwrap_or(OffsetDateTime::UNIX_EPOCH));
    let classname = xml_text(&format!("drill.{}", r.scenario));
    for c in &r.checks {
        let name = xml_text(&c.name);
        let mut case = match c.status {
            CheckStatus::Pass => TestCase::success(&name, Duration::ZERO),
            CheckStatus::Fail => {
                TestCase::failure(&name, Duration::ZERO, "slo", &xml_text(&c.message))
            }
            CheckStatus::Skipped => TestCase::skipped(&name),
        };
        case.set_classname(&classname);
        suite.add_testcase(case);
    }
    if let (Verdict::Aborted | Verdict::Error, Some(reason)) = (r.verdict, &r.reason) {
        let reason = xml_text(reason);
        let mut case = TestCaseBuilder::error("drill", Duration::ZERO, r.verdict.name(), &reason);
        // Parsers fold newlines in attributes to spaces; keep the full text.
        if reason.contains('\n') {
            case.set_trace(&reason.replace("]]>", "]] >"));
        }
        case.set_classname(&classname);
        suite.add_testcase(case.build());
    }
    if r.verdict == Verdict::Inconclusive {
        // The generator's own trustworthiness, failed: measured vs bound.
        let why = r.load.distrust().unwrap_or_else(|| {
            r.reason
                .clone()
                .unwrap_or_else(|| "the measurements cannot be trusted".into())
        });
        let mut case = TestCase::failure(
            "load-generator",
            Duration::ZERO,
            "inconclusive",
            &xml_text(&why),
        );
        case.set_classname(&classname);
        suite.add_testcase(case);
    }
    if !r.manual_actions.is_empty() {
        let mut text = String::from(
            "MANUAL ACTION REQUIRED: a revert failed, the system may still be broken.\n",
        );
        for a in &r.manual_actions {
            text.push_str(&format!("- {a}\n"));
        }
        suite.set_system_err(&xml_text(&text).replace("]]>", "]] >"));
    }
    suite
}

/// Drops characters XML 1.0 cannot hold at all (escaping does not help), such
/// as the ANSI colour codes a failing command may put in a reason.
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

/// One element per line, indented, so the file is readable and its golden
/// copy diffs well. Breaks only between `>` and `<`, which outside CDATA is
/// always between two tags: quick-xml escapes both in attribute values. CDATA
/// is left on its line so system-out/err text keeps no added whitespace.
fn indent(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() + xml.len() / 4);
    let mut depth = 0usize;
    let mut after_open = false;
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let cdata = rest[start..].starts_with("<![CDATA[");
        let end = if cdata {
            rest[start..].find("]]>").map(|i| start + i + 2)
        } else {
            rest[start..].find('>').map(|i| start + i)
        };
        let Some(end) = end else { break };
        let (text, tag) = (&rest[..start], &rest[start..=end]);
        let closing = tag.starts_with("</");
        if closing {
            depth = depth.saturating_sub(1);
        }
        // Whitespace here would become part of some element's text.
        let inline = cdata || !text.is_empty() || out.ends_with("]]>") || (closing && after_open);
        if !inline && !out.is_empty() {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
        out.push_str(text);
        out.push_str(tag);
        after_open = !closing && !cdata && !tag.starts_with("<?") && !tag.ends_with("/>");
        if after_open {
            depth += 1;
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.push('\n');
    out
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, as the runner writes `started_at`.
/// Hand-parsed because junit-report builds `time` without its parser.
fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let b = s.trim().as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    // 60 is a leap second; time has none, so it becomes :59.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if sep(i, b".") {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - frac_start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == frac_start {
            return None;
        }
        nanos *= 10i64.pow(9u32.saturating_sub((i - frac_start) as u32));
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 3600 + m * 60) * if sign == b'+' { 1 } else { -1 }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_s;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::{sample_aborted, sample_pass, sample_result};
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
                Event::Text(t) => text.push_str(t.decode().unwrap().trim()),
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
        crate::report::testdata::assert_golden(
            "junit.xml",
            &render(&[sample_result(), sample_aborted()]),
        );
    }

    #[test]
    fn one_testsuite_per_drill_and_one_testcase_per_check() {
        let results = [sample_result(), sample_pass(), sample_aborted()];
        let (els, _) = parse(&render(&results));
        let suites: Vec<_> = named(&els, "testsuite").collect();
        assert_eq!(suites.len(), 3);
        assert_eq!(attr(suites[0], "name"), Some("region-failover"));
        assert_eq!(attr(suites[0], "tests"), Some("8"));
        assert_eq!(attr(suites[0], "failures"), Some("2"));
        assert_eq!(attr(suites[1], "failures"), Some("0"));
        // The aborted drill gets its reason as an extra `drill` error case.
        assert_eq!(attr(suites[2], "tests"), Some("9"));
        assert_eq!(attr(suites[2], "errors"), Some("1"));
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
    fn failures_carry_the_check_message_and_slo_type() {
        let (els, _) = parse(&render(&[sample_result()]));
        let failures: Vec<_> = named(&els, "failure").collect();
        assert_eq!(failures.len(), 2);
        assert_eq!(attr(failures[0], "message"), Some("rto 41.2s > 30s"));
        assert_eq!(attr(failures[0], "type"), Some("slo"));
        assert!(
            attr(failures[1], "message")
                .unwrap()
                .starts_with("not recovered")
        );
        assert_eq!(named(&els, "skipped").count(), 0);
        assert_eq!(named(&els, "error").count(), 0);
    }

    #[test]
    fn aborted_drill_has_skipped_checks_and_an_error_with_the_reason() {
        let (els, _) = parse(&render(&[sample_aborted()]));
        assert_eq!(named(&els, "skipped").count(), 7);
        let errors: Vec<_> = named(&els, "error").collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(attr(errors[0], "type"), Some("aborted"));
        assert_eq!(
            attr(errors[0], "message"),
            Some("steady state not met: baseline availability 97.1% < 99.5%")
        );
        let drill_case = named(&els, "testcase").last().unwrap();
        assert_eq!(attr(drill_case, "name"), Some("drill"));
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
    fn reason_without_aborted_or_error_verdict_adds_no_case() {
        let mut r = sample_result();
        r.reason = Some("ignored for a failed drill".into());
        let (els, _) = parse(&render(&[r]));
        assert_eq!(named(&els, "testcase").count(), 8);
    }

    #[test]
    fn timestamp_comes_from_started_at_or_is_left_out() {
        let mut bad = sample_pass();
        bad.started_at = "yesterday".into();
        let mut offset = sample_pass();
        offset.started_at = "2026-03-14T10:30:00.25+01:00".into();
        let (els, _) = parse(&render(&[sample_result(), bad, offset]));
        let suites: Vec<_> = named(&els, "testsuite").collect();
        assert_eq!(attr(suites[0], "timestamp"), Some("2026-03-14T09:30:00Z"));
        assert_eq!(attr(suites[1], "timestamp"), None);
        assert_eq!(
            attr(suites[2], "timestamp"),
            Some("2026-03-14T09:30:00.25Z")
        );
    }

    #[test]
    fn rfc3339_parsing_rejects_what_it_cannot_trust() {
        let ok = |s: &str| parse_rfc3339(s).map(|t| t.unix_timestamp());
        assert_eq!(ok("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ok("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(ok("2026-03-14t09:30:00.123456789123z"), Some(1_773_480_600));
        assert_eq!(ok("2026-03-14T09:30:00-02:30"), Some(1_773_480_600 + 9000));
        for bad in [
            "",
            "2026-03-14",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-14T24:00:00Z",
            "2026-03-14T09:30:00",
            "2026-03-14T09:30:00.Z",
            "2026-03-14T09:30:00Zjunk",
            "2026-03-14T09:30:00+1:00",
            "２０２６-03-14T09:30:00Z",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hostile_text_stays_valid_xml() {
        let mut r = sample_aborted();
        r.scenario = "a<b>&\"c\"".into();
        r.checks[0].message = "rto ]]> <oops> & \u{1b}[31mred\u{1b}[0m".into();
        r.reason = Some("line one\nline two ]]> end".into());
        r.manual_actions = vec!["kubectl scale deploy/x --replicas=3 ]]>".into()];
        let xml = render(&[r]);
        let (els, text) = parse(&xml);
        let failure = named(&els, "failure").next().unwrap();
        assert_eq!(
            attr(failure, "message"),
            Some("rto ]]> <oops> & [31mred[0m")
        );
        assert_eq!(
            attr(named(&els, "testsuite").next().unwrap(), "name"),
            Some("a<b>&\"c\"")
        );
        assert!(text.contains("line one\nline two ]] > end"), "{text}");
        assert!(text.contains("MANUAL ACTION REQUIRED"), "{text}");
        assert!(
            text.contains("- kubectl scale deploy/x --replicas=3 ]] >\n"),
            "{text}"
        );
    }

    #[test]
    fn indenting_changes_only_whitespace_between_tags() {
        let mut r = sample_aborted();
        r.reason = Some("two\nlines".into());
        r.manual_actions = vec!["revert by hand".into()];
        let results = [sample_result(), r];
        let raw = compact(&results);
        let pretty = render(&results);
        assert_eq!(parse(&raw), parse(&pretty));
        assert!(pretty.lines().count() > 20);
        assert!(
            pretty.contains("\n    <testcase name=\"steady-state\""),
            "{pretty}"
        );
        assert_eq!(
            render(&[]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites/>\n"
        );
    }
}
