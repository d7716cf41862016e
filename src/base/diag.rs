//! Diagnostics that point into a file: `file:line:col`, the offending line
//! with a caret under the span, and a hint. Shared by scenario and targets files.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Widest stretch of a source line a diagnostic shows (characters as
/// displayed); a longer line is cut to a window around the column.
const MAX_EXCERPT: usize = 100;

/// One error in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The source line as displayed: control characters escaped, cut to a
    /// window around the column when long.
    excerpt: String,
    /// Displayed characters before the caret, and the caret's width.
    caret_at: usize,
    caret_len: usize,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// Builds a diagnostic from a byte span of `src` (None: whole file, 1:1).
    pub fn at(
        file: &Path,
        src: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let span = span.unwrap_or(0..0);
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let col = src[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(src, span.end.clamp(start, line_end));
        let text = src[line_start..line_end].trim_end_matches('\r');
        let (excerpt, caret_at, caret_len) = excerpt(
            text,
            start - line_start,
            end.min(line_start + text.len()) - line_start,
        );
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message: escape(&message.into()),
            excerpt,
            caret_at,
            caret_len,
            hint: None,
        }
    }

    /// A diagnostic about a whole file (it is missing, unreadable, not
    /// text): no line or column is shown, since none would be true.
    pub fn file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            line: 0,
            col: 0,
            ..Diagnostic::at(file, "", None, message)
        }
    }

    /// The diagnostic with `secret` starred out of its source excerpt (one
    /// `*` per character, so the caret stays under its span): for input
    /// refused because it carries a secret, which must not be echoed.
    pub fn hiding(mut self, secret: &str) -> Diagnostic {
        if !secret.is_empty() {
            let stars = "*".repeat(secret.chars().count());
            self.excerpt = self.excerpt.replace(&escape(secret), &stars);
        }
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(escape(&hint.into()));
        self
    }

    /// `file:line:col` for one-line displays.
    pub fn location(&self) -> String {
        if self.line == 0 {
            return escape(&self.file.display().to_string());
        }
        format!(
            "{}:{}:{}",
            escape(&self.file.display().to_string()),
            self.line,
            self.col
        )
    }
}

/// Shows `s` with control characters (ANSI escapes, CR, LF, …) written out
/// as `\u{1b}`, so a name or value echoed to a terminal cannot restyle it,
/// move the cursor or hide text.
pub fn escape(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    s.chars().map(escape_char).collect()
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\t'
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_char(c: char) -> String {
    if needs_escape(c) {
        format!("\\u{{{:x}}}", c as u32)
    } else {
        c.to_string()
    }
}

/// The displayed line, the caret's offset and width, for the bytes
/// `start..end` of `text`: escaped, and cut to [`MAX_EXCERPT`] characters
/// around the span with `…` where something was left out.
fn excerpt(text: &str, start: usize, end: usize) -> (String, usize, usize) {
    // Each character as displayed, and whether it lies before or in the span.
    let shown: Vec<(String, usize)> = text
        .char_indices()
        .map(|(i, c)| (escape_char(c), i))
        .collect();
    let width = |r: &[(String, usize)]| r.iter().map(|(e, _)| e.chars().count()).sum::<usize>();
    let first = shown
        .iter()
        .position(|(_, i)| *i >= start)
        .unwrap_or(shown.len());
    let last = shown
        .iter()
        .position(|(_, i)| *i >= end)
        .unwrap_or(shown.len());
    if width(&shown) <= MAX_EXCERPT {
        let line: String = shown.iter().map(|(e, _)| e.as_str()).collect();
        return (
            line,
            width(&shown[..first]),
            width(&shown[first..last]).max(1),
        );
    }
    // Keep a third of the window as context on the left of the caret.
    let mut from = first;
    while from > 0 && width(&shown[from - 1..first]) <= MAX_EXCERPT / 3 {
        from -= 1;
    }
    let mut to = from;
    while to < shown.len() && width(&shown[from..=to]) <= MAX_EXCERPT {
        to += 1;
    }
    let mut line = String::new();
    if from > 0 {
        line.push('…');
    }
    line.extend(shown[from..to].iter().map(|(e, _)| e.as_str()));
    if to < shown.len() {
        line.push('…');
    }
    let caret_at = usize::from(from > 0) + width(&shown[from..first]);
    let caret_len = width(&shown[first..last.clamp(first, to)]).max(1);
    (line, caret_at, caret_len)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        writeln!(f, "  --> {}", self.location())?;
        if !self.excerpt.is_empty() {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", self.excerpt)?;
            // Tabs stay tabs under the line so the caret lines up.
            let lead: String = self
                .excerpt
                .chars()
                .take(self.caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.caret_len))?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "  = hint: {h}")?;
        }
        Ok(())
    }
}

/// Several diagnostics for one file (validation reports all it finds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Turns a `toml` deserialization error into a diagnostic, with a hint drawn
/// from its message where serde lists what was expected.
pub fn from_toml(file: &Path, src: &str, e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim().to_string();
    // serde lists what it expected after ", expected "; drill's own unit
    // errors put their advice after "; ". Either becomes the hint.
    let (message, hint) = match msg
        .split_once(", expected ")
        .or_else(|| msg.split_once("; "))
    {
        Some((head, "nothing")) => (
            head.to_string(),
            Some("check the TOML syntax on this line".to_string()),
        ),
        Some((head, rest)) if msg.contains(", expected ") => {
            (head.to_string(), Some(format!("expected {rest}")))
        }
        Some((head, rest)) => (head.to_string(), Some(rest.to_string())),
        None => (
            msg,
            Some("see the scenario reference in docs/scenarios.md".to_string()),
        ),
    };
    if message.contains("recursion limit") || message.contains("cannot recurse") {
        // The parser gives up deep inside without a span; point where the
        // nesting starts instead of at 1:1.
        let at = nesting_start(src);
        return Diagnostic::at(
            file,
            src,
            Some(at),
            "this nests too deeply for drill to read (the TOML parser's recursion limit)",
        )
        .with_hint(
            "a scenario or targets file needs a few levels of tables, keys and arrays: flatten this, or remove what was generated by mistake",
        );
    }
    let d = Diagnostic::at(file, src, e.span(), message);
    match hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

/// Where the deepest nesting of `src` starts: the outermost bracket of the
/// deepest run of `[`/`{` in values, or the line of the longest dotted key,
/// or for a chain of ever longer table headers (`[[a]]`, `[[a.a]]`, …) the
/// first header of the chain.
fn nesting_start(src: &str) -> Range<usize> {
    const DEEP: usize = 64;
    // Brackets in values (outside strings; headers reset the count).
    let (mut depth, mut opened_at, mut in_str) = (0usize, 0usize, None::<u8>);
    for (i, b) in src.bytes().enumerate() {
        match (in_str, b) {
            (Some(q), _) if b == q => in_str = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => in_str = Some(b),
            (None, b'\n') if depth == 0 => {}
            (None, b'[' | b'{') => {
                let line_start = src[..i].rfind('\n').map_or(0, |n| n + 1);
                let header = depth == 0 && src[line_start..i].trim().is_empty();
                if !header {
                    if depth == 0 {
                        opened_at = i;
                    }
                    depth += 1;
                    if depth > DEEP {
                        return opened_at..opened_at + 1;
                    }
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Dotted keys and headers: the line with the most dots.
    let key_of = |line: &str| -> String {
        let t = line.trim();
        if t.starts_with('[') {
            t.trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .to_string()
        } else {
            t.split('=').next().unwrap_or("").trim().to_string()
        }
    };
    let mut offset = 0;
    let mut lines = Vec::new();
    for line in src.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let Some(deepest) = (0..lines.len()).max_by_key(|&i| key_of(lines[i].1).matches('.').count())
    else {
        return 0..0;
    };
    let mut first = deepest;
    let path = key_of(lines[deepest].1);
    if lines[deepest].1.trim_start().starts_with('[') {
        // Walk back over the headers this one extends.
        for i in (0..deepest).rev() {
            let l = lines[i].1.trim_start();
            if l.starts_with('[') {
                let k = key_of(l);
                if path.starts_with(&format!("{k}.")) {
                    first = i;
                } else {
                    break;
                }
            }
        }
    }
    let (start, line) = lines[first];
    let indent = line.len() - line.trim_start().len();
    start + indent..start + line.trim_end().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_reported_where_it_starts_not_at_1_1() {
        let cases = [
            (
                format!(
                    "description = \"x\"\n[load]\npath = \"/\"\nrate = 1\n{} = 1\n",
                    "a.b".repeat(20_000)
                ),
                5,
            ),
            (
                format!(
                    "description = \"x\"\n\n{}",
                    (1..=300)
                        .map(|i| format!("[[{}]]\n", vec!["a"; i].join(".")))
                        .collect::<String>()
                ),
                3,
            ),
            (
                format!(
                    "description = \"x\"\n[load]\nx = 1\nbody = {}1{}\n",
                    "[".repeat(400),
                    "]".repeat(400)
                ),
                4,
            ),
        ];
        for (src, line) in cases {
            let e = toml::from_str::<toml::Table>(&src).expect_err("too deep");
            let d = from_toml(Path::new("t.toml"), &src, &e);
            assert_eq!(d.line, line, "{d}");
            assert!(d.message.contains("nests too deeply"), "{d}");
            assert!(d.hint.is_some());
        }
    }

    #[test]
    fn points_at_line_and_column_with_a_caret() {
        let src = "a = 1\nrate = \"fast\"\n";
        let start = src.find("\"fast\"").unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), src, Some(start..start + 6), "bad rate")
            .with_hint("a number");
        assert_eq!((d.line, d.col), (2, 8));
        let text = d.to_string();
        assert!(text.contains("--> s.toml:2:8"), "{text}");
        assert!(text.contains("2 | rate = \"fast\""), "{text}");
        assert!(text.contains("  |        ^^^^^^"), "{text}");
        assert!(text.contains("hint: a number"), "{text}");
    }

    #[test]
    fn control_characters_and_ansi_escapes_are_shown_escaped() {
        let src = "name = \"\u{1b}[31mred\u{7}\"\n";
        let d = Diagnostic::at(Path::new("s.toml"), src, Some(7..18), "fault `\u{1b}[2Jx`")
            .with_hint("not \r\n this");
        let text = d.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\r'),
            "{text:?}"
        );
        assert!(text.contains("fault `\\u{1b}[2Jx`"), "{text}");
        assert!(text.contains("name = \"\\u{1b}[31mred\\u{7}\""), "{text}");
        assert!(text.contains("hint: not \\u{d}\\u{a} this"), "{text}");
        // The caret sits under the escaped value, as wide as it is shown.
        let caret = text.lines().find(|l| l.contains('^')).unwrap();
        assert_eq!(
            caret,
            format!("  | {}{}", " ".repeat(7), "^".repeat(20)),
            "{text}"
        );
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_around_the_column() {
        let long = "x".repeat(1_000_000);
        let src = format!("path = \"{long}\"\nrate = 1 bad\n");
        let at = 9 + 500_000;
        let d = Diagnostic::at(Path::new("s.toml"), &src, Some(at..at + 3), "here");
        assert_eq!((d.line, d.col), (1, at + 1));
        let text = d.to_string();
        assert!(text.len() < 600, "{} bytes shown", text.len());
        let shown = text.lines().find(|l| l.starts_with("1 | ")).unwrap();
        assert!(
            shown.starts_with("1 | …x") && shown.ends_with("x…"),
            "{shown}"
        );
        let caret = text.lines().find(|l| l.contains('^')).unwrap();
        let offset = caret.find('^').unwrap() - "  | ".len();
        assert_eq!(shown["1 | ".len()..].chars().nth(offset), Some('x'));
        assert_eq!(caret.matches('^').count(), 3);
        // Near the start, only the end is cut.
        let d = Diagnostic::at(Path::new("s.toml"), &src, Some(0..4), "key");
        let shown = d.to_string();
        let shown = shown.lines().find(|l| l.starts_with("1 | ")).unwrap();
        assert!(
            shown.starts_with("1 | path = \"x") && shown.ends_with('…'),
            "{shown}"
        );
    }

    #[test]
    fn header_errors_point_at_the_header() {
        let src = "description = \"x\"\n[load]\npath = \"/\"\nrate = 1\n\n[load]\nrate = 2\n";
        let e = toml::from_str::<crate::scenario::Scenario>(src).unwrap_err();
        let d = from_toml(Path::new("s.toml"), src, &e);
        assert_eq!((d.line, d.col), (6, 2), "{d}");
        let src = "description = \"x\"\n\n[lo ad]\n";
        let e = toml::from_str::<crate::scenario::Scenario>(src).unwrap_err();
        let d = from_toml(Path::new("s.toml"), src, &e);
        assert_eq!(d.line, 3, "{d}");
    }
}
