//! What the terminal allows: how wide a table may be, and whether colour
//! may be used at all.

use std::io::IsTerminal;

use tabled::Table;
use tabled::settings::Width;
use tabled::settings::peaker::PriorityMax;

/// The width when stdout is not a terminal and `COLUMNS` does not say.
pub(super) const DEFAULT_WIDTH: usize = 100;

/// The width tables on stdout must fit: the terminal's when stdout is
/// one, else `COLUMNS` when set, else [`DEFAULT_WIDTH`].
pub(super) fn width() -> usize {
    let terminal = std::io::stdout()
        .is_terminal()
        .then(|| terminal_size::terminal_size_of(std::io::stdout()))
        .flatten()
        .map(|(w, _)| usize::from(w.0));
    width_of(terminal, std::env::var("COLUMNS").ok().as_deref())
}

/// The rule behind [`width`], apart from the process.
pub(super) fn width_of(terminal: Option<usize>, columns: Option<&str>) -> usize {
    terminal
        .or_else(|| columns.and_then(|c| c.trim().parse().ok()))
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WIDTH)
}

/// `table` at most `width` columns wide: the widest columns wrap first,
/// at word boundaries where a word fits.
pub(super) fn fit(table: &mut Table, width: usize) -> &mut Table {
    table.with(
        Width::wrap(width)
            .priority(PriorityMax::right())
            .keep_words(true),
    )
}

/// Whether colour may be used on a stream: never when `NO_COLOR` is set
/// and not empty (<https://no-color.org>), nor when the stream is not a
/// terminal.
pub(super) fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && !no_color(std::env::var_os("NO_COLOR").as_deref())
}

fn no_color(v: Option<&std::ffi::OsStr>) -> bool {
    v.is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_terminal_wins_then_columns_then_100() {
        assert_eq!(width_of(Some(80), Some("200")), 80);
        assert_eq!(width_of(None, Some("132")), 132);
        assert_eq!(width_of(None, Some("wide")), 100);
        assert_eq!(width_of(None, Some("0")), 100);
        assert_eq!(width_of(None, None), 100);
    }

    #[test]
    fn no_color_set_and_not_empty_turns_colour_off() {
        assert!(no_color(Some(OsStr::new("1"))));
        assert!(!no_color(Some(OsStr::new(""))));
        assert!(!no_color(None));
        assert!(!colour(false), "never on a pipe or file");
    }
}
