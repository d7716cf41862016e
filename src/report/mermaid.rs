//! The timeline as Mermaid `xychart-beta` charts, which GitHub and GitLab
//! render inline where Markdown is posted (PR comments, job summaries),
//! unlike `timeline.svg`, which only shows beside the report file.

use std::fmt::Write;

use crate::results::DrillResult;

/// Long drills are shown in buckets, so a chart stays readable and the
/// Markdown small; each bucket keeps its worst second.
const MAX_POINTS: usize = 120;

/// Good requests (%) per second, with the seconds a fault was active as
/// bars behind the line; None when no request was due.
pub(super) fn good_ratio_chart(r: &DrillResult) -> Option<String> {
    let b = buckets(r)?;
    let faults = fault_summary(r);
    let title = if faults.is_empty() {
        "Good requests per second (%)".to_string()
    } else {
        format!("Good requests per second (%); bars: fault active ({faults})")
    };
    let mut out = header(&title, &b, "good %", "0 --> 100");
    if b.iter().any(|x| x.fault) {
        let bars: Vec<&str> = b
            .iter()
            .map(|x| if x.fault { "100" } else { "0" })
            .collect();
        let _ = writeln!(out, "    bar [{}]", bars.join(", "));
    }
    let line: Vec<String> = b.iter().map(|x| number(x.good_pct)).collect();
    let _ = writeln!(out, "    line [{}]\n```", line.join(", "));
    Some(out)
}

/// p99 latency (ms) per second; None when no request was due.
pub(super) fn p99_chart(r: &DrillResult) -> Option<String> {
    let b = buckets(r)?;
    let top = b.iter().map(|x| x.p99_ms).fold(1.0, f64::max).ceil();
    let mut out = header(
        "p99 latency per second (ms), from intended send time",
        &b,
        "p99 ms",
        &format!("0 --> {top}"),
    );
    let line: Vec<String> = b.iter().map(|x| number(x.p99_ms)).collect();
    let _ = writeln!(out, "    line [{}]\n```", line.join(", "));
    Some(out)
}

fn header(title: &str, b: &[Bucket], y_label: &str, y_range: &str) -> String {
    let last = b.last().map_or(0.0, |x| x.t_s);
    format!(
        "```mermaid\nxychart-beta\n    title \"{}\"\n    x-axis \"run clock (s)\" {} --> {}\n    y-axis \"{y_label}\" {y_range}\n",
        quoted(title),
        number(b[0].t_s),
        number(last.max(b[0].t_s + 1.0))
    )
}

/// Seconds grouped into at most MAX_POINTS buckets.
struct Bucket {
    t_s: f64,
    /// The bucket's worst second; a second with nothing due carries the
    /// previous value.
    good_pct: f64,
    /// The worst p99; a second where requests were due but none completed
    /// shows the load timeout, the latency those requests got.
    p99_ms: f64,
    fault: bool,
}

fn buckets(r: &DrillResult) -> Option<Vec<Bucket>> {
    let points = &r.timeline;
    if points.iter().all(|p| p.requests == 0) {
        return None;
    }
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    let timeout_ms = r.load.timeout_s * 1000.0;
    let windows: Vec<(f64, f64)> = r
        .faults
        .iter()
        .map(|f| {
            let end = f.reverted_at_s.or(f.recovered_at_s).unwrap_or(r.duration_s);
            (f.injected_at_s, end.max(f.injected_at_s))
        })
        .collect();
    let (mut good, mut p99) = (100.0, 0.0);
    let mut out = Vec::new();
    for chunk in points.chunks(step) {
        let t0 = chunk[0].t_s;
        let t1 = chunk.last().map_or(t0, |p| p.t_s) + 1.0;
        let worst_good = chunk
            .iter()
            .filter_map(|p| p.good_ratio)
            .map(|g| g * 100.0)
            .reduce(f64::min);
        let worst_p99 = chunk
            .iter()
            .filter_map(|p| match (p.p99_ms, p.requests) {
                (Some(v), _) => Some(v),
                (None, 0) => None,
                (None, _) => Some(timeout_ms),
            })
            .reduce(f64::max);
        good = worst_good.unwrap_or(good);
        p99 = worst_p99.unwrap_or(p99);
        out.push(Bucket {
            t_s: t0,
            good_pct: good,
            p99_ms: p99,
            fault: windows.iter().any(|&(a, b)| a < t1 && b >= t0),
        });
    }
    Some(out)
}

/// `kill-primary-ingress t+8–44 s, …` for the title, the first three.
fn fault_summary(r: &DrillResult) -> String {
    let mut parts: Vec<String> = r
        .faults
        .iter()
        .take(3)
        .map(|f| match f.reverted_at_s {
            Some(end) => format!("{} t+{}–{} s", f.name, number(f.injected_at_s), number(end)),
            None => format!("{} from t+{} s", f.name, number(f.injected_at_s)),
        })
        .collect();
    if r.faults.len() > 3 {
        parts.push(format!("{} more", r.faults.len() - 3));
    }
    parts.join(", ")
}

/// One decimal at most, no trailing `.0`; non-finite values as 0 (Mermaid
/// has no gaps).
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{:.1}", v);
    s.strip_suffix(".0").unwrap_or(&s).to_string()
}

/// A title Mermaid reads as one string: no double quotes, no line breaks,
/// nothing that would end the code block.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\n' | '\r' | '`' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::results::testdata::{sample_aborted, sample_result};

    /// Checks a Mermaid xychart block the way its grammar reads it: the
    /// fence, the chart type, a quoted title, a numeric x range, a y axis,
    /// and data series of numbers, all of the same length. Returns the
    /// series by kind.
    pub(crate) fn parse_xychart(block: &str) -> Vec<(String, Vec<f64>)> {
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some("```mermaid"), "{block}");
        assert_eq!(lines.next(), Some("xychart-beta"), "{block}");
        assert_eq!(lines.next_back(), Some("```"), "{block}");
        let mut series = Vec::new();
        let (mut x, mut y) = (false, false);
        for l in lines {
            let l = l.trim();
            let (key, rest) = l.split_once(' ').unwrap_or((l, ""));
            match key {
                "title" => {
                    assert!(rest.starts_with('"') && rest.ends_with('"'), "{l}");
                    assert_eq!(rest.matches('"').count(), 2, "{l}");
                }
                "x-axis" | "y-axis" => {
                    let (label, range) = rest[1..].split_once("\" ").expect(l);
                    assert!(!label.contains('"'), "{l}");
                    let (lo, hi) = range.split_once(" --> ").expect(l);
                    let (lo, hi): (f64, f64) = (lo.parse().expect(l), hi.parse().expect(l));
                    assert!(lo < hi, "{l}");
                    if key == "x-axis" { x = true } else { y = true }
                }
                "line" | "bar" => {
                    let inner = rest
                        .strip_prefix('[')
                        .and_then(|r| r.strip_suffix(']'))
                        .expect(l);
                    let values: Vec<f64> = inner
                        .split(", ")
                        .map(|v| v.parse().unwrap_or_else(|_| panic!("{v:?} in {l}")))
                        .collect();
                    series.push((key.to_string(), values));
                }
                other => panic!("unexpected {other:?} in\n{block}"),
            }
        }
        assert!(x && y, "{block}");
        assert!(!series.is_empty(), "{block}");
        let n = series[0].1.len();
        assert!(series.iter().all(|s| s.1.len() == n), "{block}");
        series
    }

    #[test]
    fn good_ratio_chart_shows_the_dip_and_the_fault_windows() {
        let chart = good_ratio_chart(&sample_result()).unwrap();
        assert!(chart.contains("kill-primary-ingress t+8–44 s"), "{chart}");
        let series = parse_xychart(&chart);
        let (bar, line) = (&series[0], &series[1]);
        assert_eq!(bar.0, "bar");
        assert_eq!(line.1.len(), 60);
        assert_eq!(line.1[0], 100.0);
        assert_eq!(line.1[3], 99.0);
        assert_eq!(line.1[10], 0.0);
        // Faults active t+8..44 and t+52..56.
        assert_eq!(bar.1[7], 0.0);
        assert_eq!(bar.1[8], 100.0);
        assert_eq!(bar.1[44], 100.0);
        assert_eq!(bar.1[45], 0.0);
        assert_eq!(bar.1[53], 100.0);
    }

    #[test]
    fn p99_chart_shows_the_timeout_when_nothing_completed() {
        let series = parse_xychart(&p99_chart(&sample_result()).unwrap());
        let line = &series[0].1;
        assert_eq!(line[0], 6.4);
        // t+11: requests due, none completed: they waited the 2 s timeout.
        assert_eq!(line[11], 2000.0);
    }

    #[test]
    fn long_drills_are_bucketed_by_their_worst_second() {
        let mut r = sample_result();
        let base = r.timeline.clone();
        r.timeline = (0..10)
            .flat_map(|i| {
                base.iter().map(move |p| {
                    let mut p = p.clone();
                    p.t_s += 60.0 * f64::from(i);
                    p
                })
            })
            .collect();
        let series = parse_xychart(&good_ratio_chart(&r).unwrap());
        let line = &series[1].1;
        assert!(line.len() <= MAX_POINTS, "{}", line.len());
        // 600 s in buckets of 5: the bucket t+10..15 holds the zero.
        assert_eq!(line.len(), 120);
        assert_eq!(line[2], 0.0);
    }

    #[test]
    fn no_chart_without_requests_and_no_bars_without_faults() {
        let mut r = sample_result();
        for p in &mut r.timeline {
            p.requests = 0;
        }
        assert!(good_ratio_chart(&r).is_none());
        let aborted = good_ratio_chart(&sample_aborted()).unwrap();
        let series = parse_xychart(&aborted);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].0, "line");
    }

    #[test]
    fn titles_cannot_break_the_block() {
        let mut r = sample_result();
        r.faults[0].name = "say \"hi\"\n```".into();
        let chart = good_ratio_chart(&r).unwrap();
        parse_xychart(&chart);
        assert_eq!(chart.matches("```").count(), 2);
    }
}
