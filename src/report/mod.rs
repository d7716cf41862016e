//! Reports a run writes (docs/contract.md): `results.json`, `junit.xml`,
//! `report.md` with `timeline.svg`. Renderers read only the result model.

mod alerts_md;
pub(crate) mod guards;
pub(crate) mod json;
pub(crate) mod junit;
pub(crate) mod markdown;
mod mermaid;
pub(crate) mod metrics;
pub(crate) mod summary;
pub(crate) mod svg;
pub(crate) mod svg_writer;
mod units;
mod vantages_md;

use std::path::{Path, PathBuf};

use crate::results::DrillResult;

/// Writes every report file of one drill into `dir` (created if needed).
pub(crate) fn write_all(dir: &Path, r: &DrillResult) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("results.json", json::render(r)),
        ("junit.xml", junit::render(std::slice::from_ref(r))),
        ("timeline.svg", svg::render(r)),
        ("report.md", markdown::render(r, "timeline.svg")),
    ];
    let mut out = Vec::new();
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::write(&p, body)?;
        out.push(p);
    }
    Ok(out)
}
