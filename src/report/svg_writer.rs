//! The one SVG writer: the document's frame (opening tag, white background,
//! closing tag), elements with or without a `<title>` tooltip, text, and
//! escaping. The timeline (`svg.rs`) and the history's trend chart both
//! draw with it; what they draw, and where, stays theirs.
//!
//! Attributes are written by the caller (`format_args!`), because each
//! chart rounds its coordinates its own way; everything that comes from
//! the user (names, labels, tooltips) goes through [`esc`] here.

use std::fmt::{self, Write};

/// An SVG document being written, one element per call.
pub(crate) struct SvgWriter {
    out: String,
}

impl SvgWriter {
    /// The opening tag (`width`×`height`, Helvetica 11) and an opaque white
    /// background, so dark-mode viewers do not put black text on a black page.
    pub(crate) fn new(width: f64, height: f64, capacity: usize) -> SvgWriter {
        let mut out = String::with_capacity(capacity);
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            out,
            r#"<rect width="{width}" height="{height}" fill="white"/>"#
        );
        SvgWriter { out }
    }

    /// The document, closed.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// `<name attrs/>`, or with a tooltip `<name attrs><title>…</title></name>`.
    pub(crate) fn element(
        &mut self,
        name: &str,
        attrs: fmt::Arguments,
        title: Option<&str>,
    ) -> &mut Self {
        let _ = match title {
            None => write!(self.out, "<{name} {attrs}/>"),
            Some(t) => write!(
                self.out,
                "<{name} {attrs}><title>{}</title></{name}>",
                esc(t)
            ),
        };
        self
    }

    /// `<text attrs>body</text>`, the body escaped.
    pub(crate) fn text(&mut self, attrs: fmt::Arguments, body: &str) -> &mut Self {
        let _ = write!(self.out, "<text {attrs}>{}</text>", esc(body));
        self
    }

    /// `<polyline points="…" attrs/>`.
    pub(crate) fn polyline(&mut self, points: &str, attrs: fmt::Arguments) -> &mut Self {
        self.element(
            "polyline",
            format_args!(r#"points="{points}" {attrs}"#),
            None,
        )
    }

    /// Ends the current line of the document (one idea per line keeps the
    /// file diffable).
    pub(crate) fn newline(&mut self) {
        self.out.push('\n');
    }

    /// Markup written as is (a `<tspan>` inside a title, a path's `d`).
    pub(crate) fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }
}

/// Text for XML content and attributes; characters XML 1.0 cannot hold are dropped.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => {
                out.push(c)
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_framed_and_its_text_escaped() {
        let mut w = SvgWriter::new(100.0, 50.0, 0);
        w.text(format_args!(r#"x="1" y="2""#), "a <b> & \"c\" 'd'\u{1}")
            .element("line", format_args!(r#"x1="0""#), Some("tip <1>"))
            .element("circle", format_args!(r#"r="4""#), None)
            .polyline("1,2 3,4", format_args!(r#"fill="none""#))
            .newline();
        let svg = w.finish();
        assert_eq!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\" viewBox=\"0 0 100 50\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n\
             <rect width=\"100\" height=\"50\" fill=\"white\"/>\n\
             <text x=\"1\" y=\"2\">a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</text>\
             <line x1=\"0\"><title>tip &lt;1&gt;</title></line>\
             <circle r=\"4\"/>\
             <polyline points=\"1,2 3,4\" fill=\"none\"/>\n\
             </svg>\n"
        );
    }
}
