//! `drill list`: the scenarios drill can find and their one-line descriptions.

use serde::Serialize;

use super::Output;
use crate::base::error::CliError;
use crate::scenario;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `text` for people, `json` for programs.
    #[arg(short, long, value_enum, default_value_t, env = "DRILL_OUTPUT")]
    pub output: Output,
}

/// One scenario as `-o json` shows it.
#[derive(Serialize)]
struct Entry {
    name: String,
    description: String,
    /// A path, or `<built-in>/NAME.toml`.
    path: String,
    /// False when the file does not parse (`drill validate` says why).
    valid: bool,
}

pub(super) fn run(a: Args) -> Result<i32, CliError> {
    let entries: Vec<Entry> = scenario::available()
        .into_iter()
        .map(|(name, path, src)| {
            let parsed = scenario::parse(&path, &src).ok();
            Entry {
                name,
                valid: parsed.is_some(),
                description: parsed.map_or_else(
                    || "(invalid: run `drill validate` on it)".to_string(),
                    |l| l.scenario.description,
                ),
                path: path.display().to_string(),
            }
        })
        .collect();
    if a.output == Output::Json {
        #[derive(Serialize)]
        struct Listing {
            scenarios: Vec<Entry>,
        }
        super::print_json(&Listing { scenarios: entries });
        return Ok(0);
    }
    let w = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in entries {
        println!("{:<w$}  {}  [{}]", e.name, e.description, e.path);
    }
    Ok(0)
}
