//! Diagnostics that point into a file: `file:line:col`, the offending line
//! with a caret under the span, and a hint. Shared by scenario and targets files.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The source line, for the caret display.
    pub source_line: String,
    pub span_len: usize,
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
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
            source_line: src[line_start..line_end].trim_end_matches('\r').to_string(),
            span_len: src[start..end].chars().count().max(1),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col` for one-line displays.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.col)
    }
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
        if !self.source_line.is_empty() {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", self.source_line)?;
            let lead: String = self
                .source_line
                .chars()
                .take(self.col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.span_len))?;
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
            Some("see the scenario reference in the README".to_string()),
        ),
    };
    let d = Diagnostic::at(file, src, e.span(), message);
    match hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
