//! Whether a PromQL expression parses, asked of Prometheus's own parser
//! rather than a second one that could disagree with it: offline through
//! `promtool check rules` (Debian's `prometheus` package ships it beside
//! the server), online through a running Prometheus's
//! `/api/v1/format_query` (see `api::Prometheus::format_query`).

use std::process::Command;

/// The name of the offline checker.
pub(crate) const PROMTOOL: &str = "promtool";

/// `Some(Ok(()))` when promtool parses `expr`, `Some(Err(message))` with
/// the parser's `line:col: reason` when it does not, `None` when promtool
/// cannot be run here (not installed): the caller falls back to the live
/// Prometheus at preflight.
pub(crate) fn promtool_check(expr: &str) -> Option<Result<(), String>> {
    let dir = std::env::temp_dir().join(format!(
        "drill-promql-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join("guard.yml");
    let rule = serde_json::json!({
        "groups": [{"name": "drill", "rules": [{"record": "drill_guard", "expr": expr}]}]
    });
    // JSON is YAML: the expression is quoted whatever it holds.
    let written = std::fs::write(&file, rule.to_string());
    let out = written.ok().and_then(|()| {
        Command::new(PROMTOOL)
            .arg("check")
            .arg("rules")
            .arg(&file)
            .output()
            .ok()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if out.status.success() {
        return Some(Ok(()));
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    const MARK: &str = "could not parse expression: ";
    Some(Err(match text.find(MARK) {
        Some(i) => text[i + MARK.len()..]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        None => text.trim().to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promtool_accepts_promql_and_locates_what_it_rejects() {
        let Some(ok) = promtool_check("sum(rate(up[1m])) > 0.01") else {
            panic!("promtool runs (Debian's prometheus package; ci/test.sh installs it)");
        };
        assert_eq!(ok, Ok(()));
        let bad = promtool_check("sum(rate(up)) > 1").unwrap().unwrap_err();
        assert!(
            bad.starts_with("1:") && bad.contains("range vector"),
            "{bad}"
        );
        let bad = promtool_check("sum(up").unwrap().unwrap_err();
        assert!(bad.contains("unclosed left parenthesis"), "{bad}");
    }
}
