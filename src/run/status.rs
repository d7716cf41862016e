//! The live status line on a terminal: elapsed, phase, rate, good ratio,
//! p99. Quiet when stderr is not a terminal, under CI, or with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::base::clock::Clock;
use crate::measure::{Micros, Recorder};

/// Whether progress goes to the terminal.
pub fn live(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// One status line from the recorder's state.
pub fn line(rec: &mut Recorder, now: Micros, phase: &str) -> String {
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

/// Redraws the line every 250 ms until the returned guard is dropped.
pub fn spawn(
    clock: Clock,
    rec: Arc<Mutex<Recorder>>,
    phase: Arc<Mutex<String>>,
    rate: f64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = clock.now();
            let p = phase.lock().expect("phase lock").clone();
            let l = line(&mut rec.lock().expect("recorder lock"), now, &p);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{l}  rate {rate}/s");
            let _ = err.flush();
        }
    })
}

/// Clears the status line (before printing a log line or at the end).
pub fn clear() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}
