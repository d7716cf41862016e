//! The trend chart: one panel per followed figure, one point per run, the
//! baseline (median of the previous passing runs) as a dashed line and the
//! regressions in red. Self-contained SVG, like the drill's timeline, and
//! written by the same writer.

use super::{Metric, Record, TrendPoint};
use crate::report::svg_writer::SvgWriter;

const W: f64 = 720.0;
const PANEL: f64 = 120.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 700.0;

/// A chart of `metrics` over `records`, with the points of `trend`.
pub(crate) fn render(records: &[Record], trend: &[TrendPoint], metrics: &[Metric]) -> String {
    let h = 40.0 + PANEL * metrics.len() as f64;
    let mut svg = SvgWriter::new(W, h, 0);
    let scenario = records.first().map_or("", |r| r.scenario.as_str());
    svg.text(
        format_args!(r#"x="{LEFT}" y="20" font-size="13" font-weight="bold""#),
        &format!("{scenario} — {} runs", records.len()),
    )
    .newline();
    for (i, m) in metrics.iter().enumerate() {
        let top = 40.0 + PANEL * i as f64;
        let points: Vec<&TrendPoint> = trend.iter().filter(|p| &p.metric == m).collect();
        panel(&mut svg, top, m, &points, records.len());
    }
    svg.finish()
}

fn panel(svg: &mut SvgWriter, top: f64, m: &Metric, points: &[&TrendPoint], runs: usize) {
    let (y0, y1) = (top + 14.0, top + PANEL - 24.0);
    let max = points
        .iter()
        .flat_map(|p| [p.value, p.baseline.map(|b| b.median)])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.15;
    let x = |run: usize| {
        if runs <= 1 {
            (LEFT + RIGHT) / 2.0
        } else {
            LEFT + (RIGHT - LEFT) * run as f64 / (runs - 1) as f64
        }
    };
    let y = |v: f64| y1 - (y1 - y0) * (v / max).clamp(0.0, 1.0);
    svg.text(
        format_args!(r#"x="{LEFT}" y="{}" font-weight="bold""#, top + 8.0),
        &format!("{} ({})", m.label(), m.unit()),
    )
    .newline();
    svg.element(
        "line",
        format_args!(r##"x1="{LEFT}" y1="{y1}" x2="{RIGHT}" y2="{y1}" stroke="#999""##),
        None,
    )
    .text(
        format_args!(r#"x="{}" y="{}" text-anchor="end""#, LEFT - 6.0, y1 + 4.0),
        "0",
    )
    .text(
        format_args!(r#"x="{}" y="{}" text-anchor="end""#, LEFT - 6.0, y0 + 4.0),
        &format!("{max:.3}"),
    )
    .newline();
    let line = |f: &dyn Fn(&TrendPoint) -> Option<f64>| -> String {
        points
            .iter()
            .filter_map(|p| {
                f(p).filter(|v| v.is_finite())
                    .map(|v| format!("{:.1},{:.1}", x(p.run), y(v)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    svg.polyline(
        &line(&|p| p.baseline.map(|b| b.median)),
        format_args!(r##"fill="none" stroke="#888" stroke-dasharray="5 4""##),
    )
    .newline();
    svg.polyline(
        &line(&|p| p.value),
        format_args!(r##"fill="none" stroke="#1f77b4" stroke-width="2""##),
    )
    .newline();
    for p in points {
        if let Some(v) = p.value.filter(|v| v.is_finite()) {
            let colour = if p.regression { "#d62728" } else { "#1f77b4" };
            svg.element(
                "circle",
                format_args!(
                    r#"cx="{:.1}" cy="{:.1}" r="4" fill="{colour}""#,
                    x(p.run),
                    y(v)
                ),
                Some(&format!(
                    "run {}: {v:.3}{}",
                    p.run + 1,
                    if p.regression { " (regression)" } else { "" }
                )),
            )
            .newline();
        }
    }
}
