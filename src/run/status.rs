//! What a drill shows while it runs, besides its event lines: elapsed,
//! phase, requests sent, good ratio and p99.
//!
//! - On a terminal (stderr is a TTY, not under CI): one live status line,
//!   drawn by `indicatif` and redrawn four times a second; it is cut to the
//!   terminal's width and event lines print above it.
//! - In a log (stderr is a file or a pipe, or `CI` is set): a plain
//!   heartbeat line every [`HEARTBEAT`], so a CI log never sits silent
//!   through a long phase, and no cursor control at all.
//! - With `--quiet`: nothing.
//!
//! No colour either way, so `NO_COLOR` has nothing to turn off here.
//!
//! Event lines print in the order of their run-clock time, not of their
//! arrival: some are known a little after they happen (an alert seen by the
//! poller, a lab process's exit), so each line is held for [`HOLD`] and the
//! lines due are printed sorted (equal times keep their arrival order). The
//! rest is printed, sorted, when the drill ends.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::base::clock::Clock;
use crate::measure::{Micros, Recorder};

/// How often the heartbeat line is written to a log.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often the live line is redrawn on a terminal.
const REDRAW: Duration = Duration::from_millis(250);
/// How long an event line waits for earlier ones that arrive late.
pub(crate) const HOLD: Micros = 1_000_000;

/// Where the progress of a drill goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `--quiet`: neither events nor status.
    Quiet,
    /// A terminal: a live status line under the event lines.
    Live,
    /// A log: event lines and a heartbeat line every [`HEARTBEAT`].
    Heartbeat,
}

impl Mode {
    /// The mode for this process: its stderr and the `CI` variable.
    pub(crate) fn detect(quiet: bool) -> Mode {
        Mode::of(
            quiet,
            std::io::stderr().is_terminal(),
            std::env::var_os("CI").is_some(),
        )
    }

    /// The rule, apart from the process: live only on a terminal outside CI.
    pub(crate) fn of(quiet: bool, terminal: bool, ci: bool) -> Mode {
        match (quiet, terminal && !ci) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Live,
            (false, false) => Mode::Heartbeat,
        }
    }
}

/// The drill's stderr while it runs: event lines, in time order, and the
/// live line or the heartbeat.
#[derive(Debug)]
pub(crate) struct Status {
    mode: Mode,
    bar: Option<ProgressBar>,
    /// Shared with the heartbeat, whose lines take their place in time.
    held: Arc<Mutex<Ordered>>,
}

impl Status {
    pub(crate) fn new(mode: Mode) -> Status {
        Status {
            mode,
            bar: None,
            held: Arc::default(),
        }
    }

    /// An event line for run-clock time `at`; printed once nothing earlier
    /// can still arrive (see [`Status::release`]).
    pub(crate) fn event(&mut self, at: Micros, line: String) {
        if self.mode != Mode::Quiet {
            self.held.lock().expect("held lock").push(at, line);
        }
    }

    /// Prints the event lines up to [`HOLD`] before `now`, in time order.
    pub(crate) fn release(&mut self, now: Micros) {
        self.print_until(now.saturating_sub(HOLD));
    }

    /// Prints every event line still held, in time order (the drill's end).
    pub(crate) fn flush(&mut self) {
        self.print_until(Micros::MAX);
    }

    /// The held lines up to `upto`, on stderr (above the live line, if shown).
    fn print_until(&self, upto: Micros) {
        let due = self.held.lock().expect("held lock").release(upto);
        match &self.bar {
            Some(bar) => bar.suspend(|| due.iter().for_each(|l| eprintln!("{l}"))),
            None => due.iter().for_each(|l| eprintln!("{l}")),
        }
    }

    /// Starts showing the status until [`Status::finish`]: the live line or
    /// the heartbeat, as the mode says; nothing when quiet.
    pub(crate) fn start(
        &mut self,
        clock: Clock,
        rec: Arc<Mutex<Recorder>>,
        phase: Arc<Mutex<String>>,
        rate: f64,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let now_line = move || {
            let p = phase.lock().expect("phase lock").clone();
            let l = line(&mut rec.lock().expect("recorder lock"), clock.now(), &p);
            format!("{l}  rate {rate}/s")
        };
        match self.mode {
            Mode::Quiet => None,
            Mode::Live => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                // `wide_msg` cuts the line to the terminal's width.
                bar.set_style(
                    ProgressStyle::with_template("{wide_msg}").expect("a valid template"),
                );
                self.bar = Some(bar.clone());
                Some(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(REDRAW);
                    loop {
                        tick.tick().await;
                        bar.set_message(now_line());
                    }
                }))
            }
            Mode::Heartbeat => {
                // Held like an event line, so it prints in time order.
                let held = self.held.clone();
                Some(tokio::spawn(heartbeat(now_line, move |l| {
                    let mut held = held.lock().expect("held lock");
                    let now = clock.now();
                    held.push(now, l.to_string());
                    for l in held.release(now.saturating_sub(HOLD)) {
                        eprintln!("{l}");
                    }
                })))
            }
        }
    }

    /// Removes the live line (the end of the load, or a stop).
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Lines held until their time is released, then given back sorted by
/// time, equal times in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Ordered {
    held: Vec<(Micros, String)>,
}

impl Ordered {
    pub(crate) fn push(&mut self, at: Micros, line: String) {
        self.held.push((at, line));
    }

    /// The lines at or before `upto`, in time order; the rest stay held.
    pub(crate) fn release(&mut self, upto: Micros) -> Vec<String> {
        // A stable sort: equal times keep the order they arrived in.
        self.held.sort_by_key(|(at, _)| *at);
        let due = self.held.partition_point(|(at, _)| *at <= upto);
        self.held.drain(..due).map(|(_, l)| l).collect()
    }
}

/// Every [`HEARTBEAT`] (not at once: the run has just said what it starts),
/// one `status` line to `out`, until aborted.
async fn heartbeat(now_line: impl Fn() -> String, out: impl Fn(&str)) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tick.tick().await;
        out(&format!("  status  {}", now_line().trim_start()));
    }
}

/// One status line from the recorder's state.
pub(crate) fn line(rec: &mut Recorder, now: Micros, phase: &str) -> String {
    // Requests due in the last two seconds that have completed.
    let from = now.saturating_sub(2_000_000);
    let ratio = rec.good_ratio_between(from, now);
    let sent = rec.sent();
    let p99 = rec.seconds().latest_p99();
    let total_s = now as f64 / 1e6;
    format!(
        "{:>6.1}s  {:<9} sent {:>8}  good {:>8}  p99 {:>9}",
        total_s,
        phase,
        sent,
        ratio.map_or("—".to_string(), |r| format!("{:.2}%", r * 100.0)),
        p99.map_or("—".to_string(), |us| format!(
            "{:.1}ms",
            us as f64 / 1000.0
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_only_on_a_terminal_outside_ci_and_nothing_when_quiet() {
        assert_eq!(Mode::of(false, true, false), Mode::Live);
        assert_eq!(Mode::of(false, true, true), Mode::Heartbeat);
        assert_eq!(Mode::of(false, false, false), Mode::Heartbeat);
        assert_eq!(Mode::of(true, true, false), Mode::Quiet);
        assert_eq!(Mode::of(true, false, true), Mode::Quiet);
    }

    /// The order the old runner printed at the end of a drill with an
    /// alert: the silence's expiry (t+54) before the alert's episode
    /// (t+25…t+33), which it only logged afterwards.
    #[test]
    fn event_lines_come_out_in_time_order_whatever_their_arrival() {
        let s = |t: f64| (t * 1e6) as Micros;
        let mut o = Ordered::default();
        o.push(s(20.0), "t+20 fault reverted".into());
        assert_eq!(o.release(s(19.0)), Vec::<String>::new(), "not yet due");
        o.push(s(54.0), "t+54 silence expired".into());
        o.push(s(25.0), "t+25 alert firing".into());
        o.push(s(33.0), "t+33 alert resolved".into());
        o.push(s(25.0), "t+25 second at the same time".into());
        assert_eq!(
            o.release(s(30.0)),
            [
                "t+20 fault reverted",
                "t+25 alert firing",
                "t+25 second at the same time"
            ]
        );
        o.push(s(31.0), "t+31 late but still held".into());
        assert_eq!(
            o.release(Micros::MAX),
            [
                "t+31 late but still held",
                "t+33 alert resolved",
                "t+54 silence expired"
            ]
        );
    }

    /// A log gets a plain line every 10 s, the first after 10 s, and
    /// nothing that moves a cursor.
    #[tokio::test(start_paused = true)]
    async fn a_log_gets_a_plain_heartbeat_every_ten_seconds() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let n = Arc::new(Mutex::new(0));
        let task = tokio::spawn(heartbeat(
            move || {
                let mut n = n.lock().unwrap();
                *n += 1;
                format!(
                    "  {:>4.1}s  fault     sent {:>8}",
                    *n as f64 * 10.0,
                    *n * 100
                )
            },
            move |l| sink.lock().unwrap().push(l.to_string()),
        ));
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(lines.lock().unwrap().is_empty(), "nothing before 10 s");
        tokio::time::sleep(Duration::from_millis(25_000)).await;
        task.abort();
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "  status  10.0s  fault     sent      100",
                "  status  20.0s  fault     sent      200",
                "  status  30.0s  fault     sent      300",
            ]
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\u{1b}') && !l.contains('\r'))
        );
    }
}
