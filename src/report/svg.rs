//! `timeline.svg`: good ratio and latency per second over the run, with the
//! phases and each fault's inject, end and recovery marked. Self-contained
//! (no scripts, fonts or links) so it shows wherever report.md is viewed.

use std::fmt::Write;

use super::svg_writer::{SvgWriter, esc};
use super::units::num;
use crate::results::{DrillResult, Recovery, TimelinePoint, Verdict};

const W: f64 = 900.0;
const H: f64 = 360.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 886.0;
/// Phase bands run from here; their labels sit above the top panel.
const BAND_TOP: f64 = 48.0;
/// Good-ratio panel (0–100 %).
const TOP: (f64, f64) = (64.0, 160.0);
/// Fault labels sit between the panels, in two rows.
const LABEL_ROWS: [f64; 2] = [173.0, 186.0];
/// Latency panel (log scale).
const BOTTOM: (f64, f64) = (196.0, 312.0);

const RED: &str = "#d62728";
const GREEN: &str = "#2ca02c";
const DARK_GREEN: &str = "#0b6e2b";
const BLUE: &str = "#1f77b4";
const P99: &str = "#6a3d9a";
const P50: &str = "#b9a3d6";
const MUTED: &str = "#555";
const ORANGE: &str = "#e6770b";
const GRID: &str = "#e3e3e3";
const TEXT: &str = "#333";
const FRAME: &str = "#999";
/// Good-ratio lines of the vantage points, in order (then repeated).
const VANTAGE: [&str; 4] = ["#17becf", "#8c564b", "#e377c2", "#bcbd22"];
/// A white outline under label text keeps it legible where lines cross it.
const HALO: &str =
    r#"stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke""#;

/// The timeline chart of one drill, about 900×360.
pub(crate) fn render(r: &DrillResult) -> String {
    let x = XScale::of(r);
    let lat = LogScale::of(&r.timeline);
    let mut svg = SvgWriter::new(W, H, 16 * 1024 + r.timeline.len() * 40);
    title(&mut svg, r);
    legend(&mut svg, r);
    vantage_legend(&mut svg, r);
    phases(&mut svg, r, &x);
    axes(&mut svg, &x, &lat);
    let threshold_y = y_ratio(r.recovery.ratio.clamp(0.0, 1.0));
    if r.recovery.ratio.is_finite() && r.recovery.ratio > 0.0 {
        svg.element(
            "line",
            format_args!(
                r#"x1="{LEFT}" y1="{threshold_y:.1}" x2="{RIGHT}" y2="{threshold_y:.1}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="5 4""#
            ),
            None,
        )
        .newline();
    }
    if r.timeline.is_empty() {
        for (top, bottom) in [TOP, BOTTOM] {
            svg.text(
                format_args!(
                    r#"x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}""#,
                    (LEFT + RIGHT) / 2.0,
                    (top + bottom) / 2.0 + 4.0
                ),
                "no timeline data",
            )
            .newline();
        }
    }
    let width = bucket_width(&r.timeline);
    let at = |p: &TimelinePoint| x.px(p.t_s + width / 2.0);
    series(
        &mut svg,
        &r.timeline,
        |p| Some((at(p), y_ratio(finite(p.good_ratio)?.clamp(0.0, 1.0)))),
        BLUE,
        1.8,
    );
    // Each vantage point's good ratio (agents), over the merged one.
    for (i, v) in r.vantages.iter().enumerate() {
        series(
            &mut svg,
            &r.timeline,
            |p| {
                let ratio = *v.good_ratio.get(p.t_s as usize)?;
                Some((at(p), y_ratio(finite(ratio)?.clamp(0.0, 1.0))))
            },
            VANTAGE[i % VANTAGE.len()],
            1.2,
        );
    }
    // Database writes acknowledged, as a share of the writes that ended in
    // that second (database drills only).
    series(
        &mut svg,
        &r.timeline,
        |p| {
            let (ok, failed) = (p.writes_ok?, p.writes_failed?);
            let all = ok + failed;
            (all > 0).then(|| (at(p), y_ratio(ok as f64 / all as f64)))
        },
        ORANGE,
        1.4,
    );
    series(
        &mut svg,
        &r.timeline,
        |p| Some((at(p), lat.px(finite(p.p50_ms)?))),
        P50,
        1.4,
    );
    series(
        &mut svg,
        &r.timeline,
        |p| Some((at(p), lat.px(finite(p.p99_ms)?))),
        P99,
        1.8,
    );
    faults(&mut svg, r, &x);
    alerts(&mut svg, r, &x);
    svg.finish()
}

fn title(svg: &mut SvgWriter, r: &DrillResult) {
    let (word, colour) = match r.verdict {
        Verdict::Pass => ("PASS", GREEN),
        Verdict::Fail => ("FAIL", RED),
        Verdict::Inconclusive => ("INCONCLUSIVE", "#c26a00"),
        Verdict::Aborted => ("ABORTED", "#c26a00"),
        Verdict::Error => ("ERROR", "#c26a00"),
    };
    // The verdict in its colour: a <tspan> inside the text, so raw markup.
    svg.raw(&format!(
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">drill: {} on {} — <tspan fill="{colour}">{word}</tspan></text>"#,
        esc(&r.scenario),
        esc(&r.target)
    ))
    .newline();
}

/// The vantage points' lines, named on the title row from the right.
fn vantage_legend(svg: &mut SvgWriter, r: &DrillResult) {
    let mut x = RIGHT;
    for (i, v) in r.vantages.iter().enumerate().rev() {
        let label = format!("from {}", v.name);
        x -= text_width(&label, 11.0);
        let colour = VANTAGE[i % VANTAGE.len()];
        svg.element(
            "line",
            format_args!(
                r#"x1="{:.1}" y1="16" x2="{:.1}" y2="16" stroke="{colour}" stroke-width="2""#,
                x - 20.0,
                x - 4.0
            ),
            None,
        )
        .text(format_args!(r#"x="{x:.1}" y="20" fill="{TEXT}""#), &label)
        .newline();
        x -= 32.0;
    }
}

fn legend(svg: &mut SvgWriter, r: &DrillResult) {
    let ratio = format!("recovery ratio {} %", num(r.recovery.ratio * 100.0, 2));
    let mut items: Vec<(&str, &str, &str)> = vec![
        ("good requests", BLUE, ""),
        (&ratio, MUTED, "5 4"),
        ("p99 latency", P99, ""),
        ("p50 latency", P50, ""),
        ("fault injected", RED, ""),
        ("fault ended", GREEN, ""),
    ];
    if r.faults.is_empty() {
        items.truncate(4);
    }
    if r.timeline.iter().any(|p| p.writes_ok.is_some()) {
        items.insert(1, ("writes ok", ORANGE, ""));
    }

    let mut x = LEFT;
    for &(label, colour, dash) in &items {
        svg.element(
            "line",
            format_args!(
                r#"x1="{x:.1}" y1="34" x2="{:.1}" y2="34" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}""#,
                x + 16.0
            ),
            None,
        )
        .text(
            format_args!(r#"x="{:.1}" y="38" fill="{TEXT}""#, x + 20.0),
            label,
        )
        .newline();
        x += 28.0 + text_width(label, 11.0);
    }
    if r.faults.is_empty() {
        return;
    }
    svg.element(
        "path",
        format_args!(
            r#"d="M{:.1},29 l5,0 l-2.5,5 z" fill="{DARK_GREEN}""#,
            x + 5.5
        ),
        None,
    )
    .text(
        format_args!(r#"x="{:.1}" y="38" fill="{TEXT}""#, x + 20.0),
        "traffic recovered",
    )
    .newline();
}

fn phases(svg: &mut SvgWriter, r: &DrillResult, x: &XScale) {
    for span in &r.phase_spans {
        if !(span.start_s.is_finite() && span.end_s.is_finite()) {
            continue;
        }
        let (x0, x1) = (x.px(span.start_s), x.px(span.end_s));
        if x1 - x0 < 0.5 {
            continue;
        }
        let fill = match span.phase.as_str() {
            "warmup" => "#f4f4f4",
            "baseline" => "#eff4fb",
            "fault" => "#fcf1f0",
            "recovery" => "#eef7ef",
            _ => "#f7f4ec",
        };
        svg.element(
            "rect",
            format_args!(
                r#"x="{x0:.1}" y="{BAND_TOP}" width="{:.1}" height="{:.1}" fill="{fill}""#,
                x1 - x0,
                BOTTOM.1 - BAND_TOP
            ),
            None,
        )
        .newline();
        // A label that does not fit its band would run into the next one.
        if text_width(&span.phase, 10.0) + 6.0 <= x1 - x0 {
            svg.text(
                format_args!(
                    r#"x="{:.1}" y="{:.1}" font-size="10" fill="{MUTED}" {HALO}"#,
                    x0 + 3.0,
                    BAND_TOP + 11.0
                ),
                &span.phase,
            )
            .newline();
        }
    }
}

fn axes(svg: &mut SvgWriter, x: &XScale, lat: &LogScale) {
    for (ratio, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
        let y = y_ratio(ratio);
        grid_line(svg, y, label);
    }
    for v in lat.ticks() {
        grid_line(svg, lat.px(v), &ms_label(v));
    }
    for (top, bottom, name) in [
        (TOP.0, TOP.1, "good requests"),
        (BOTTOM.0, BOTTOM.1, "latency (log)"),
    ] {
        svg.element(
            "rect",
            format_args!(
                r#"x="{LEFT}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="{FRAME}""#,
                RIGHT - LEFT,
                bottom - top
            ),
            None,
        )
        .text(
            format_args!(
                r#"transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="{MUTED}""#,
                (top + bottom) / 2.0
            ),
            name,
        )
        .newline();
    }
    for t in x.ticks() {
        let px = x.px(t);
        svg.element(
            "line",
            format_args!(
                r#"x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="{FRAME}""#,
                BOTTOM.1,
                BOTTOM.1 + 4.0
            ),
            None,
        )
        .text(
            format_args!(
                r#"x="{px:.1}" y="{}" text-anchor="middle" fill="{TEXT}""#,
                BOTTOM.1 + 16.0
            ),
            &num(t, 3),
        )
        .newline();
    }
    svg.text(
        format_args!(
            r#"x="{RIGHT}" y="{}" text-anchor="end" fill="{MUTED}""#,
            BOTTOM.1 + 32.0
        ),
        "run time (s)",
    )
    .newline();
}

fn grid_line(svg: &mut SvgWriter, y: f64, label: &str) {
    svg.element(
        "line",
        format_args!(r#"x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{GRID}""#),
        None,
    )
    .text(
        format_args!(
            r#"x="{:.1}" y="{:.1}" text-anchor="end" fill="{TEXT}""#,
            LEFT - 4.0,
            y + 4.0
        ),
        label,
    )
    .newline();
}

/// Inject (red) and end (green) lines across both panels, a marker where
/// traffic counted as recovered, and the fault's name and RTO between the
/// panels; a label that would overlap both rows is left out (the lines stay).
fn faults(svg: &mut SvgWriter, r: &DrillResult, x: &XScale) {
    let mut row_ends = [f64::NEG_INFINITY; LABEL_ROWS.len()];
    for f in &r.faults {
        let inject = finite(Some(f.injected_at_s));
        if let Some(t) = inject {
            vline(
                svg,
                x.px(t),
                "inject",
                RED,
                &format!("{} injected at t+{} s", f.name, num(t, 3)),
            );
        }
        if let Some(t) = finite(f.reverted_at_s) {
            vline(
                svg,
                x.px(t),
                "end",
                GREEN,
                &format!("{} {} at t+{} s", f.name, f.ended, num(t, 3)),
            );
        }
        if let Some(t) = finite(f.recovered_at_s) {
            let px = x.px(t);
            svg.element(
                "line",
                format_args!(
                    r#"class="recovered" x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="{DARK_GREEN}" stroke-dasharray="2 2""#,
                    TOP.0,
                    TOP.1
                ),
                None,
            )
            .element(
                "path",
                format_args!(
                    r#"d="M{:.1},{} l7,0 l-3.5,7 z" fill="{DARK_GREEN}""#,
                    px - 3.5,
                    TOP.0 - 7.0
                ),
                Some(&format!(
                    "traffic recovered from {} at t+{} s",
                    f.name,
                    num(t, 3)
                )),
            )
            .newline();
        }
        let Some(t) = inject else { continue };
        let rto = match f.rto_s {
            _ if matches!(f.action.as_str(), "switchover" | "failover") && r.rpo.is_some() => {
                let rpo = r.rpo.as_ref().expect("checked");
                let writes = rpo.write_rto_s.map_or("writes not back".to_string(), |w| {
                    format!("writes back in {} s", num(w, 2))
                });
                format!(
                    "RPO {} s, {} lost, {writes}",
                    num(rpo.rpo_s, 2),
                    rpo.lost_writes
                )
            }
            _ if f.recovery == Recovery::NoImpact => "no impact".to_string(),
            Some(v) => format!("RTO {} s", num(v, 1)),
            None => "not recovered".to_string(),
        };
        let label = format!("{} · {rto}", f.name);
        let (x0, width) = (x.px(t) + 3.0, text_width(&label, 10.0));
        // Near the right edge, the label ends at the line instead.
        let (anchor, start) = if x0 + width > W - 4.0 {
            ("end", x.px(t) - 3.0)
        } else {
            ("start", x0)
        };
        let left_edge = if anchor == "end" {
            start - width
        } else {
            start
        };
        if let Some(row) = row_ends.iter().position(|end| *end + 6.0 < left_edge) {
            row_ends[row] = left_edge + width;
            let colour = if f.rto_s.is_none() && f.recovery != Recovery::NoImpact {
                RED
            } else {
                "#333"
            };
            svg.text(
                format_args!(
                    r#"x="{start:.1}" y="{}" font-size="10" text-anchor="{anchor}" fill="{colour}" {HALO}"#,
                    LABEL_ROWS[row]
                ),
                &label,
            )
            .newline();
        }
    }
}

/// Each alert seen in Alertmanager: a bar along the top chart's floor from
/// firing to resolved (or the end of the chart), expected ones in the p99
/// colour, unexpected ones in red.
fn alerts(svg: &mut SvgWriter, r: &DrillResult, x: &XScale) {
    for (i, a) in r.alerts.iter().enumerate() {
        let Some(fired) = finite(a.fired_at_s) else {
            continue;
        };
        let end = finite(a.resolved_at_s).unwrap_or(r.duration_s);
        let (x0, x1) = (x.px(fired), x.px(end.max(fired)));
        let y = TOP.1 - 5.0 - 4.0 * (i % 3) as f64;
        let colour = if a.expected { P99 } else { RED };
        let tip = format!(
            "alert {} {} at t+{} s{}",
            a.alert,
            if a.expected {
                "fired"
            } else {
                "fired (unexpected)"
            },
            num(fired, 3),
            a.resolved_at_s
                .map_or(", still firing".to_string(), |t| format!(
                    ", resolved at t+{} s",
                    num(t, 3)
                ))
        );
        svg.element(
            "rect",
            format_args!(
                r#"class="alert" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="3" fill="{colour}""#,
                (x1 - x0).max(2.0)
            ),
            Some(&tip),
        )
        .newline();
    }
}

fn vline(svg: &mut SvgWriter, px: f64, class: &str, colour: &str, tip: &str) {
    svg.element(
        "line",
        format_args!(
            r#"class="{class}" x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="{colour}" stroke-width="1.5""#,
            TOP.0,
            BOTTOM.1
        ),
        Some(tip),
    )
    .newline();
}

/// One polyline per run of known values: a null (nothing due, nothing
/// completed) leaves a gap rather than a line drawn across it. A value with
/// no neighbour is drawn as a dot, or it would not show at all.
fn series(
    svg: &mut SvgWriter,
    points: &[TimelinePoint],
    at: impl Fn(&TimelinePoint) -> Option<(f64, f64)>,
    colour: &str,
    width: f64,
) {
    let mut d = String::new();
    let mut dots: Vec<(f64, f64)> = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    let mut flush = |run: &mut Vec<(f64, f64)>| {
        match run.as_slice() {
            [] => {}
            [(x, y)] => {
                dots.push((*x, *y));
            }
            [(x, y), rest @ ..] => {
                let _ = write!(d, "M{x:.1},{y:.1}");
                for (x, y) in rest {
                    let _ = write!(d, "L{x:.1},{y:.1}");
                }
            }
        }
        run.clear();
    };
    for p in points {
        match finite(Some(p.t_s)).and_then(|_| at(p)) {
            Some(xy) => run.push(xy),
            None => flush(&mut run),
        }
    }
    flush(&mut run);
    if !d.is_empty() {
        svg.element(
            "path",
            format_args!(
                r#"d="{d}" fill="none" stroke="{colour}" stroke-width="{width}" stroke-linejoin="round""#
            ),
            None,
        )
        .newline();
    }
    for (x, y) in &dots {
        svg.element(
            "circle",
            format_args!(
                r#"cx="{x:.1}" cy="{y:.1}" r="{:.1}" fill="{colour}""#,
                width + 0.6
            ),
            None,
        );
    }
    if !dots.is_empty() {
        svg.newline();
    }
}

/// A little headroom keeps a 100 % line off the panel's frame.
fn y_ratio(ratio: f64) -> f64 {
    TOP.1 - ratio * (TOP.1 - TOP.0 - 6.0)
}

/// Run time to pixels, over everything the chart shows.
struct XScale {
    start: f64,
    end: f64,
}

impl XScale {
    fn of(r: &DrillResult) -> XScale {
        let width = bucket_width(&r.timeline);
        let times = r
            .timeline
            .iter()
            .flat_map(|p| [p.t_s, p.t_s + width])
            .chain(r.phase_spans.iter().flat_map(|s| [s.start_s, s.end_s]))
            .chain(
                r.faults
                    .iter()
                    .flat_map(|f| [Some(f.injected_at_s), f.reverted_at_s, f.recovered_at_s])
                    .flatten(),
            )
            .filter(|t| t.is_finite());
        let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
        match (lo.is_finite(), hi > lo) {
            (true, true) => XScale {
                start: lo.min(0.0),
                end: hi,
            },
            (true, false) => XScale {
                start: lo.min(0.0),
                end: lo.max(0.0) + 1.0,
            },
            _ => XScale {
                start: 0.0,
                end: if r.duration_s.is_finite() && r.duration_s > 0.0 {
                    r.duration_s
                } else {
                    1.0
                },
            },
        }
    }

    fn px(&self, t: f64) -> f64 {
        LEFT + (t - self.start) / (self.end - self.start) * (RIGHT - LEFT)
    }

    /// About ten round ticks (1, 2 or 5 × 10ⁿ seconds apart).
    fn ticks(&self) -> Vec<f64> {
        let raw = (self.end - self.start) / 10.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(magnitude * 10.0);
        let first = (self.start / step).ceil() as i64;
        let last = (self.end / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

/// Milliseconds to pixels on a log scale whole decades wide: latency spans
/// from a couple of milliseconds to multi-second timeouts in one drill.
struct LogScale {
    lo: f64,
    hi: f64,
}

impl LogScale {
    fn of(points: &[TimelinePoint]) -> LogScale {
        let values = points
            .iter()
            .flat_map(|p| [p.p50_ms, p.p99_ms])
            .filter_map(finite)
            .filter(|v| *v > 0.0);
        let (min, max) = values.fold((f64::INFINITY, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if !min.is_finite() {
            return LogScale { lo: 0.0, hi: 3.0 };
        }
        // The bottom on a decade, the top just above the slowest value (often
        // a timeout) so a mostly empty decade does not squash the rest.
        let lo = min.max(0.001).log10().floor();
        let hi = (max.log10() + 0.08).max(lo + 1.0);
        LogScale { lo, hi }
    }

    fn px(&self, ms: f64) -> f64 {
        let decade = ms.max(10f64.powf(self.lo)).log10().clamp(self.lo, self.hi);
        BOTTOM.1 - (decade - self.lo) / (self.hi - self.lo) * (BOTTOM.1 - BOTTOM.0)
    }

    /// Each decade, and 2× and 5× as well when there are only one or two.
    fn ticks(&self) -> Vec<f64> {
        let steps: &[f64] = if self.hi - self.lo <= 2.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        (self.lo as i32..=self.hi.floor() as i32)
            .flat_map(|e| steps.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| v.log10() <= self.hi + 1e-9)
            .collect()
    }
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", num(ms / 1000.0, 3))
    } else {
        format!("{} ms", num(ms, 3))
    }
}

/// Width of the timeline's buckets (one second unless the runner coarsened
/// a long run), so each value is drawn at the middle of its bucket.
fn bucket_width(points: &[TimelinePoint]) -> f64 {
    let mut gaps: Vec<f64> = points
        .windows(2)
        .map(|w| w[1].t_s - w[0].t_s)
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    gaps.get(gaps.len() / 2).copied().unwrap_or(1.0)
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// Rough width of a label in Helvetica at `size`, to keep labels apart.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.56
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testdata::{sample_aborted, sample_result};
    use crate::results::{FaultResult, PhaseSpan};
    use quick_xml::events::{BytesStart, Event};

    type Element = (String, Vec<(String, String)>);

    /// Every element with its attributes; panics unless the SVG is
    /// well-formed XML with one root.
    fn parse(svg: &str) -> Vec<Element> {
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut elements = Vec::new();
        let (mut depth, mut roots) = (0, 0);
        let element = |e: &BytesStart| {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        value.into_owned(),
                    )
                })
                .collect();
            (name, attrs)
        };
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    roots += i32::from(depth == 0);
                    depth += 1;
                    elements.push(element(&e));
                }
                Event::Empty(e) => elements.push(element(&e)),
                Event::End(_) => depth -= 1,
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!((depth, roots), (0, 1), "not one balanced root:\n{svg}");
        assert_eq!(elements[0].0, "svg");
        elements
    }

    fn attr<'a>(e: &'a Element, key: &str) -> Option<&'a str> {
        e.1.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every coordinate is a finite number on the canvas.
    fn assert_on_canvas(elements: &[Element]) {
        let check = |v: &str, max: f64, what: &str| {
            let n: f64 = v
                .parse()
                .unwrap_or_else(|_| panic!("{what}={v:?} is not a number"));
            assert!(
                n.is_finite() && (-0.5..=max + 0.5).contains(&n),
                "{what}={v} off the canvas"
            );
        };
        for e in elements {
            for (k, v) in &e.1 {
                match k.as_str() {
                    "x" | "x1" | "x2" | "cx" | "width" => check(v, W, k),
                    "y" | "y1" | "y2" | "cy" | "height" => check(v, H, k),
                    "d" => {
                        for cmd in v.split(['M', 'L']).filter(|c| !c.is_empty()) {
                            let xy = cmd.split([' ', 'l', 'z']).next().unwrap();
                            let (x, y) =
                                xy.split_once(',').unwrap_or_else(|| panic!("bad path {v}"));
                            check(x, W, "path x");
                            check(y, H, "path y");
                        }
                    }
                    _ => assert!(!v.contains("NaN") && !v.contains("inf"), "{k}={v}"),
                }
            }
        }
    }

    fn with_class<'a>(
        elements: &'a [Element],
        class: &'a str,
    ) -> impl Iterator<Item = &'a Element> {
        elements
            .iter()
            .filter(move |e| attr(e, "class") == Some(class))
    }

    fn stroke_path<'a>(elements: &'a [Element], colour: &str) -> Option<&'a str> {
        elements
            .iter()
            .find(|e| e.0 == "path" && attr(e, "stroke") == Some(colour))
            .and_then(|e| attr(e, "d"))
    }

    #[test]
    fn sample_chart_is_well_formed_and_marks_every_fault() {
        let r = sample_result();
        let svg = render(&r);
        let els = parse(&svg);
        assert_on_canvas(&els);
        assert_eq!(
            (attr(&els[0], "width"), attr(&els[0], "height")),
            (Some("900"), Some("360"))
        );
        let injects: Vec<_> = with_class(&els, "inject").collect();
        assert_eq!(injects.len(), 2);
        assert!(injects.iter().all(|e| attr(e, "stroke") == Some(RED)));
        assert_eq!(
            with_class(&els, "end")
                .filter(|e| attr(e, "stroke") == Some(GREEN))
                .count(),
            2
        );
        // Only the ingress kill recovered.
        assert_eq!(with_class(&els, "recovered").count(), 1);
        // Inject lines sit where the faults were injected, in order.
        let x = |e: &Element| attr(e, "x1").unwrap().parse::<f64>().unwrap();
        assert!(x(injects[0]) < x(injects[1]));
        assert!(svg.contains("kill-primary-ingress · RTO 41.2 s"));
        assert!(
            svg.contains("switchover-database · RPO "),
            "database faults are labelled with their RPO"
        );
        assert!(
            svg.contains(
                r##">drill: region-failover on lab — <tspan fill="#d62728">FAIL</tspan>"##
            )
        );
        for phase in ["baseline", "fault", "recovery"] {
            assert!(svg.contains(&format!(">{phase}</text>")), "{phase}");
        }
        assert!(svg.contains(">recovery ratio 99 %<"));
    }

    #[test]
    fn alerts_are_marked_from_firing_to_resolved() {
        let mut r = sample_result();
        let alert = |name: &str, expected: bool, fired: f64, resolved: Option<f64>| {
            crate::results::AlertResult {
                alert: name.into(),
                expected,
                fault: None,
                fired_at_s: Some(fired),
                time_to_detect_s: None,
                resolved_at_s: resolved,
                time_to_resolve_s: None,
                fire_within_s: None,
                resolve_within_s: None,
                suppressed: false,
                note: None,
            }
        };
        r.alerts = vec![
            alert("IngressGatewayDown", true, 20.0, Some(30.0)),
            alert("HighErrorRate", false, 22.0, None),
        ];
        let svg = render(&r);
        let els = parse(&svg);
        assert_on_canvas(&els);
        let bars: Vec<_> = with_class(&els, "alert").collect();
        assert_eq!(bars.len(), 2);
        assert_eq!(attr(bars[0], "fill"), Some(P99));
        assert_eq!(attr(bars[1], "fill"), Some(RED), "unexpected in red");
        assert!(svg.contains("alert HighErrorRate fired (unexpected) at t+22 s, still firing"));
    }

    #[test]
    fn latency_is_on_a_log_scale_with_gaps_for_missing_seconds() {
        let svg = render(&sample_result());
        let els = parse(&svg);
        for label in [">1 ms<", ">10 ms<", ">100 ms<", ">1 s<"] {
            assert!(svg.contains(label), "{label}");
        }
        // The top is just above the 2 s timeouts, not a whole decade more.
        assert!(!svg.contains(">10 s<") && !svg.contains(">2 ms<"));
        // Seconds 11–12 have no latency: the p99 line breaks there, the good
        // ratio line does not.
        assert_eq!(stroke_path(&els, P99).unwrap().matches('M').count(), 2);
        assert_eq!(stroke_path(&els, BLUE).unwrap().matches('M').count(), 1);
        let lat = LogScale::of(&sample_result().timeline);
        assert!(lat.px(2000.0) < lat.px(6.4) && lat.px(6.4) < lat.px(2.1));
        assert!(
            (lat.px(10.0) - (lat.px(1.0) + lat.px(100.0)) / 2.0).abs() < 0.01,
            "decades are equal height"
        );
        assert!(
            (lat.px(2000.0) - BOTTOM.0).abs() < 10.0,
            "the slowest value is near the top"
        );
        // Within one decade, 2× and 5× ticks keep the scale readable.
        let narrow = LogScale { lo: 0.0, hi: 1.0 };
        assert_eq!(narrow.ticks(), [1.0, 2.0, 5.0, 10.0]);
    }

    #[test]
    fn null_and_non_finite_points_leave_gaps_not_nan() {
        let mut r = sample_result();
        r.timeline[5].good_ratio = None;
        r.timeline[20].good_ratio = Some(f64::NAN);
        r.timeline[30].p99_ms = Some(f64::INFINITY);
        r.timeline[31].p50_ms = Some(0.0);
        r.timeline[40].t_s = f64::NAN;
        r.faults[1].reverted_at_s = Some(f64::NEG_INFINITY);
        let svg = render(&r);
        let els = parse(&svg);
        assert_on_canvas(&els);
        assert_eq!(stroke_path(&els, BLUE).unwrap().matches('M').count(), 4);
    }

    #[test]
    fn a_single_point_is_drawn_as_dots() {
        let mut r = sample_result();
        r.timeline.truncate(1);
        r.phase_spans.clear();
        r.faults.clear();
        let els = parse(&render(&r));
        assert_on_canvas(&els);
        let dots: Vec<_> = els.iter().filter(|e| e.0 == "circle").collect();
        assert_eq!(dots.len(), 3, "good ratio, p50 and p99");
    }

    #[test]
    fn empty_timeline_says_so() {
        let mut r = sample_aborted();
        r.timeline.clear();
        r.phase_spans.clear();
        let svg = render(&r);
        let els = parse(&svg);
        assert_on_canvas(&els);
        assert_eq!(svg.matches(">no timeline data<").count(), 2);
        assert!(svg.contains("ABORTED"));
        assert!(
            !svg.contains("fault injected"),
            "no fault legend without faults"
        );
        assert!(
            !els.iter()
                .any(|e| e.0 == "path" && attr(e, "fill") == Some("none"))
        );
    }

    #[test]
    fn long_runs_keep_few_ticks_and_linear_size() {
        let mut r = sample_result();
        let base = r.timeline.clone();
        r.timeline = (0..1800)
            .map(|i| TimelinePoint {
                t_s: f64::from(i),
                ..base[i as usize % 60].clone()
            })
            .collect();
        r.phase_spans = vec![PhaseSpan {
            phase: "fault".into(),
            start_s: 0.0,
            end_s: 1800.0,
        }];
        r.faults = (0..40)
            .map(|i| FaultResult {
                injected_at_s: f64::from(i) * 45.0,
                ..r.faults[0].clone()
            })
            .collect();
        let svg = render(&r);
        let els = parse(&svg);
        assert_on_canvas(&els);
        let ticks = XScale::of(&r).ticks();
        assert!((5..=12).contains(&ticks.len()), "{ticks:?}");
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
        assert_eq!(with_class(&els, "inject").count(), 40);
        // Labels that would collide are dropped rather than overprinted.
        let labels = svg.matches("kill-primary-ingress · RTO").count();
        assert!((2..40).contains(&labels), "{labels}");
    }

    #[test]
    fn text_is_escaped() {
        let mut r = sample_result();
        r.scenario = "a<b>&\"c'".into();
        r.faults[0].name = "x</text><script>".into();
        r.phase_spans[1].phase = "f&f".into();
        let svg = render(&r);
        let els = parse(&svg);
        assert!(!els.iter().any(|e| e.0 == "script"));
        assert!(svg.contains("drill: a&lt;b&gt;&amp;&quot;c&apos; on lab"));
    }

    #[test]
    fn tick_steps_are_round() {
        let ticks = |start, end| XScale { start, end }.ticks();
        assert_eq!(
            ticks(0.0, 60.0),
            (0..=6).map(|i| f64::from(i) * 10.0).collect::<Vec<_>>()
        );
        assert_eq!(ticks(0.0, 1.0).len(), 11);
        assert_eq!(ticks(-5.0, 95.0)[0], 0.0);
        assert_eq!(ticks(0.0, 3600.0)[1], 500.0);
    }

    /// A line per vantage point in the good-ratio panel, in its own
    /// colour, named in the legend; at 0 % where that side saw nothing good.
    #[test]
    fn each_vantage_point_has_its_own_good_ratio_line() {
        let mut r = sample_result();
        let n = r.timeline.len();
        let side = |name: &str, ratio: f64| crate::results::VantageResult {
            name: name.into(),
            agents: Vec::new(),
            availability: Some(ratio),
            phases: Default::default(),
            faults: Vec::new(),
            good_ratio: vec![Some(ratio); n],
        };
        r.vantages = vec![side("primary", 0.0), side("secondary", 1.0)];
        let svg = render(&r);
        let elements = parse(&svg);
        assert_on_canvas(&elements);
        for (i, (name, ratio)) in [("primary", 0.0), ("secondary", 1.0)]
            .into_iter()
            .enumerate()
        {
            let line = elements
                .iter()
                .find(|e| e.0 == "path" && attr(e, "stroke") == Some(VANTAGE[i]))
                .unwrap_or_else(|| panic!("no line for {name}"));
            let y = format!(",{:.1}", y_ratio(ratio));
            assert!(attr(line, "d").unwrap().contains(&y), "{name}: {line:?}");
            assert!(
                svg.contains(&format!(">from {name}</text>")),
                "legend names {name}"
            );
        }
    }
}
