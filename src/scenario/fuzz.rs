//! Property-based fuzzing of the two input parsers (scenario files and the
//! targets file), bounded so it runs in `cargo test`: inputs are a valid
//! file mutated by random edits (characters TOML and drill care about,
//! duplicated lines, `key = value` pairs of known keys with odd values).
//! Whatever the input, parsing and validation must not panic, and every
//! rejection must be a diagnostic with a place in the file (line and
//! column from 1) and a message, as `drill validate` shows them (exit 2).

use std::path::Path;

use proptest::prelude::*;

use crate::base::diag::Diagnostic;
use crate::targets::Targets;

const SCENARIO: &str = r#"description = "fuzz base"

[load]
path = "/productpage"
rate = 50
timeout = "1s"
headers = { "user-agent" = "drill" }

[phases]
warmup = "1s"
baseline = "5s"
recovery = "10s"

[[faults]]
name = "kill"
component = "reviews"
region = "primary"
action = "delete"
count = 1

[[checks]]
kind = "availability"
phase = "fault"
min = "99%"
"#;

const TARGETS: &str = r#"[targets.s]
kind = "http"
url = "http://127.0.0.1:8080"
database = { dsn_env = "DRILL_DB_DSN", switchover = "true" }

[targets.k]
kind = "kubernetes"
url = "https://bookinfo.example.com"
contexts = { primary = "a", secondary = "b" }
ingress = { primary = "http://10.0.0.1", secondary = "http://10.0.0.2" }

[targets.k.components.reviews]
selector = "app=reviews"

[targets.l]
kind = "lab"
lab = { restart_delay = "1s", mesh = { attempts = 2 } }
"#;

/// Characters that change TOML's and drill's reading of a file.
const ALPHABET: &[char] = &[
    '[', ']', '{', '}', '=', '"', '\'', '.', ',', '#', '\n', ' ', '0', '1', '9', '-', '_', ':',
    '/', '@', '%', '\\', 'a', 'x', 's', 'm', 'h', '\u{0}', '\u{1b}', 'é', '\u{202e}',
];

const KEYS: &[&str] = &[
    "rate",
    "timeout",
    "path",
    "name",
    "until",
    "duration",
    "count",
    "percent",
    "action",
    "component",
    "region",
    "url",
    "selector",
    "kind",
    "min",
    "max",
    "phase",
    "warmup",
    "baseline",
    "recovery",
    "headers_env",
    "dsn_env",
    "attempts",
    "lab",
    "contexts",
    "workers",
    "tick",
    "max_send_lag",
    "after",
    "delay",
    "status",
];

const VALUES: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "0.0001",
    "\"\"",
    "\"0s\"",
    "\"10h\"",
    "\"1ms\"",
    "\"abc\"",
    "\"http://u:p@h\"",
    "\"ftp://h\"",
    "\"http://h#f\"",
    "\"app in ((\"",
    "\"a\\nb\"",
    "[]",
    "{}",
    "true",
    "\"recovered\"",
    "\"healed\"",
    "\"150%\"",
    "\"-5%\"",
    "{ a = 1 }",
    "[[1]]",
    "\"\\u001b[31m\"",
    "18446744073709551616",
];

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    DupLine(usize),
    Pair(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = proptest::sample::select(ALPHABET);
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::DupLine),
        (any::<usize>(), 0..KEYS.len(), 0..VALUES.len()).prop_map(|(l, k, v)| Edit::Pair(l, k, v)),
    ]
}

/// `base` with the edits applied, at character positions taken modulo its
/// length (so every edit lands somewhere).
fn mutate(base: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Insert(i, c) => chars.insert(i % (n + 1).min(chars.len() + 1), c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % n);
            }
            Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
            Edit::DupLine(i) | Edit::Pair(i, _, _) => {
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                if lines.is_empty() {
                    continue;
                }
                let at = i % lines.len();
                let extra = match *e {
                    Edit::Pair(_, k, v) => format!("{} = {}\n", KEYS[k], VALUES[v]),
                    _ => lines[at].to_string(),
                };
                let mut out = String::new();
                for (j, l) in lines.iter().enumerate() {
                    out.push_str(l);
                    if j == at {
                        if !l.ends_with('\n') {
                            out.push('\n');
                        }
                        out.push_str(&extra);
                    }
                }
                chars = out.chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// A rejection as the user sees it: placed in the file, with a message.
fn located(d: &Diagnostic, src: &str) -> Result<(), TestCaseError> {
    prop_assert!(!d.message.is_empty(), "empty message: {d}\n{src}");
    prop_assert!(
        d.line >= 1 && d.col >= 1,
        "no location: {d}\n--- input ---\n{src}"
    );
    // The end of the file (after its last newline) is a place too.
    prop_assert!(
        d.line <= src.lines().count() + 1,
        "a line past the end: {d}\n--- input ---\n{src}"
    );
    Ok(())
}

proptest! {
    // 400 cases each (well under a second); PROPTEST_CASES runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_mutated_scenario_never_panics_and_every_rejection_is_located(
        edits in proptest::collection::vec(edit(), 1..8)
    ) {
        let src = mutate(SCENARIO, &edits);
        let path = Path::new("fuzz.toml");
        match super::parse(path, &src) {
            Err(ds) => {
                for d in &ds.0 {
                    located(d, &src)?;
                }
            }
            Ok(l) => match super::validate::validate(&l, &crate::targets::lab::catalogue(), "lab") {
                Err(ds) => {
                    for d in &ds.0 {
                        located(d, &src)?;
                    }
                }
                Ok(()) => {
                    // What validates must plan.
                    let _ = super::Plan::resolve(&l);
                }
            },
        }
    }

    #[test]
    fn a_mutated_targets_file_never_panics_and_every_rejection_is_located(
        edits in proptest::collection::vec(edit(), 1..8)
    ) {
        let src = mutate(TARGETS, &edits);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, &src).unwrap();
        if let Err(ds) = Targets::load(Some(&path)) {
            for d in &ds.0 {
                located(d, &src)?;
            }
        }
    }
}

#[test]
fn the_bases_are_valid() {
    let l = super::parse(Path::new("fuzz.toml"), SCENARIO).unwrap();
    super::validate::validate(&l, &crate::targets::lab::catalogue(), "lab").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drill.toml");
    std::fs::write(&path, TARGETS).unwrap();
    Targets::load(Some(&path)).unwrap();
}
