//! Per-second latency for the timeline chart. A second stays open (its
//! histogram alive) only until no request due in it can still complete; then
//! it is reduced to a few numbers, so memory stays flat however long the drill.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Micros;
use super::stats::{new_histogram, record_clamped};

/// Latency summary of the requests due in one second of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SecondPoint {
    pub second: u64,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

pub struct SecondLatency {
    horizon_s: u64,
    open: VecDeque<(u64, Histogram<u64>)>,
    spare: Vec<Histogram<u64>>,
    closed: Vec<SecondPoint>,
    /// Completions that arrived after their second was closed (dropped from the chart).
    pub late: u64,
}

impl SecondLatency {
    pub fn new(horizon_us: Micros) -> SecondLatency {
        SecondLatency {
            horizon_s: horizon_us.div_ceil(1_000_000) + 1,
            open: VecDeque::new(),
            spare: Vec::new(),
            closed: Vec::new(),
            late: 0,
        }
    }

    pub fn record(&mut self, due: Micros, latency: Micros) {
        if let Some(h) = self.slot(due / 1_000_000) {
            record_clamped(h, latency);
        }
    }

    /// Adds another recorder's histogram of second `sec` (an agent's delta):
    /// the same as recording each of its values here.
    pub fn merge(&mut self, sec: u64, other: &Histogram<u64>) {
        if let Some(h) = self.slot(sec) {
            // Same bounds and precision on both sides: `add` cannot fail.
            let _ = h.add(other);
        } else {
            self.late += other.len().saturating_sub(1);
        }
    }

    /// The open histogram of second `sec`, or None (counted late) when that
    /// second was already closed.
    fn slot(&mut self, sec: u64) -> Option<&mut Histogram<u64>> {
        if sec >= self.horizon_s {
            self.close_before(sec - self.horizon_s);
        }
        if self.closed.last().is_some_and(|p| p.second >= sec) {
            self.late += 1;
            return None;
        }
        let pos = self.open.iter().position(|(s, _)| *s >= sec);
        let idx = match pos {
            Some(i) if self.open[i].0 == sec => i,
            Some(i) => {
                let h = self.fresh();
                self.open.insert(i, (sec, h));
                i
            }
            None => {
                let h = self.fresh();
                self.open.push_back((sec, h));
                self.open.len() - 1
            }
        };
        Some(&mut self.open[idx].1)
    }

    fn fresh(&mut self) -> Histogram<u64> {
        self.spare.pop().unwrap_or_else(|| new_histogram(2))
    }

    fn close_before(&mut self, sec: u64) {
        while self.open.front().is_some_and(|(s, _)| *s < sec) {
            let (s, mut h) = self.open.pop_front().expect("checked non-empty");
            self.closed.push(SecondPoint {
                second: s,
                count: h.len(),
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            });
            h.reset();
            self.spare.push(h);
        }
    }

    /// Closes every second and returns the summaries, in order.
    pub fn finish(&mut self) -> Vec<SecondPoint> {
        self.close_before(u64::MAX);
        self.closed.clone()
    }

    /// Closed seconds so far plus a peek at the open ones (for the live line).
    pub fn latest_p99(&self) -> Option<u64> {
        self.open
            .iter()
            .rev()
            .find(|(_, h)| !h.is_empty())
            .map(|(_, h)| h.value_at_quantile(0.99))
            .or_else(|| self.closed.last().map(|p| p.p99_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_close_once_no_completion_can_arrive_and_memory_stays_bounded() {
        let mut s = SecondLatency::new(2_000_000);
        for sec in 0..100u64 {
            for i in 0..100u64 {
                s.record(sec * 1_000_000 + i * 10_000, 1_000 + i * 10);
            }
            assert!(s.open.len() <= 5, "open seconds bounded by the horizon");
        }
        let pts = s.finish();
        assert_eq!(pts.len(), 100);
        assert_eq!(pts[42].count, 100);
        assert!(
            pts[42].p99_us >= 1_970 && pts[42].p99_us <= 2_010,
            "{:?}",
            pts[42]
        );
        assert_eq!(s.late, 0);
    }

    #[test]
    fn out_of_order_completions_within_the_horizon_are_kept() {
        let mut s = SecondLatency::new(2_000_000);
        s.record(3_500_000, 10);
        s.record(1_500_000, 20);
        s.record(2_500_000, 30);
        let pts = s.finish();
        assert_eq!(
            pts.iter().map(|p| p.second).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }
}
