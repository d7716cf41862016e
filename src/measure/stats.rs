//! What the recorder counts, shared by the recorder, its deltas and the
//! per-second latency: the histogram bounds, a bucket of requests due in one
//! slice of time and a phase's counts and latency.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{Cause, Micros};

/// Highest latency the histograms hold: one hour, in microseconds.
pub(crate) const HIST_MAX_US: u64 = 3_600_000_000;

pub(crate) fn new_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, sigfig).expect("static histogram bounds are valid")
}

pub(crate) fn record_clamped(h: &mut Histogram<u64>, v: u64) {
    h.saturating_record(v.clamp(1, HIST_MAX_US));
}

/// Requests *due* in one fixed-width slice of time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub good: u32,
    pub bad: [u32; Cause::COUNT],
    /// Intended send time of the earliest bad request due here.
    pub first_bad_due: Option<Micros>,
    /// Earliest completion of a good request due here.
    pub first_good_done: Option<Micros>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            good: 0,
            bad: [0; Cause::COUNT],
            first_bad_due: None,
            first_good_done: None,
        }
    }
}

impl Bucket {
    pub fn bad_total(&self) -> u32 {
        self.bad.iter().sum()
    }
    pub fn total(&self) -> u32 {
        self.good + self.bad_total()
    }

    /// Adds another recorder's counts for the same slice of time.
    pub fn absorb(&mut self, o: &Bucket) {
        self.good += o.good;
        for (a, b) in self.bad.iter_mut().zip(o.bad) {
            *a += b;
        }
        self.first_bad_due = min_opt(self.first_bad_due, o.first_bad_due);
        self.first_good_done = min_opt(self.first_good_done, o.first_good_done);
    }
}

fn min_opt(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (x, None) | (None, x) => x,
    }
}

/// Counts and latency of one phase.
#[derive(Clone, Debug)]
pub struct PhaseStats {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub good: u64,
    pub bad: [u64; Cause::COUNT],
}

impl Default for PhaseStats {
    fn default() -> Self {
        PhaseStats {
            latency: new_histogram(3),
            service: new_histogram(3),
            good: 0,
            bad: [0; Cause::COUNT],
        }
    }
}

impl PhaseStats {
    pub fn total(&self) -> u64 {
        self.good + self.bad.iter().sum::<u64>()
    }
    pub fn bad_total(&self) -> u64 {
        self.bad.iter().sum()
    }
    /// good / all, or None when nothing was due.
    pub fn availability(&self) -> Option<f64> {
        let all = self.total();
        (all > 0).then(|| self.good as f64 / all as f64)
    }
}
