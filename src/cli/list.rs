//! `drill list`: the scenarios drill can find and their one-line descriptions.

use crate::error::CliError;
use crate::scenario;

pub fn run() -> Result<i32, CliError> {
    let mut rows = Vec::new();
    for (name, path, src) in scenario::available() {
        let desc = match scenario::parse(&path, &src) {
            Ok(l) => l.scenario.description,
            Err(_) => "(invalid: run `drill validate` on it)".to_string(),
        };
        rows.push((name, desc, path.display().to_string()));
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, desc, path) in rows {
        println!("{name:<w$}  {desc}  [{path}]");
    }
    Ok(0)
}
