//! Measurement: what happened to every request, folded into fixed-size state
//! (HDR histograms per phase, fixed-width time buckets), and the math that turns
//! that state into the numbers docs/contract.md defines (RTO, outage, availability,
//! error budget). No IO here: everything is tested with synthetic streams.

pub(crate) mod budget;
pub(crate) mod delta;
pub(crate) mod impact;
pub(crate) mod recorder;
pub mod rpo;
pub(crate) mod seconds;
pub(crate) mod stats;

pub use delta::RecorderDelta;
pub use impact::{FaultImpact, RecoveryCriteria, Rto, fault_impact};
pub use recorder::Recorder;
pub use stats::{Bucket, PhaseStats};

use serde::{Deserialize, Serialize};

pub use crate::base::units::{Micros, secs};

/// The drill's phases, in order. `Warmup` is never measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Warmup,
    Baseline,
    Fault,
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Warmup,
        Phase::Baseline,
        Phase::Fault,
        Phase::Recovery,
    ];
    pub const MEASURED: [Phase; 3] = [Phase::Baseline, Phase::Fault, Phase::Recovery];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Baseline => "baseline",
            Phase::Fault => "fault",
            Phase::Recovery => "recovery",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a request was bad. Good requests are counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// An HTTP status outside the scenario's success set, by class.
    Status1xx,
    Status2xx,
    Status3xx,
    Status4xx,
    Status5xx,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection was refused (nothing listening).
    Refused,
    /// The connection was reset or closed after the request was written
    /// and before the whole answer (never resent: the server may have seen
    /// it).
    Reset,
    /// An answer with more header fields than drill reads (128).
    TooManyHeaders,
    /// An answer head longer than drill reads (64 KiB).
    HeadTooLong,
    /// An answer head that is not HTTP/1.x (bad status line, header…).
    BadAnswer,
    /// A bad or conflicting Content-Length.
    BadLength,
    /// A bad chunk size line in a chunked body.
    BadChunk,
    /// TLS refused: an untrusted certificate, a bad record…
    Tls,
    /// Anything else (DNS, an unknown I/O error…).
    Other,
    /// Never sent: the generator's in-flight limit was reached (a stalled
    /// target at a high rate). Bad, because the schedule asked for it.
    Saturated,
}

impl Cause {
    pub const ALL: [Cause; 16] = [
        Cause::Status1xx,
        Cause::Status2xx,
        Cause::Status3xx,
        Cause::Status4xx,
        Cause::Status5xx,
        Cause::Timeout,
        Cause::Refused,
        Cause::Reset,
        Cause::TooManyHeaders,
        Cause::HeadTooLong,
        Cause::BadAnswer,
        Cause::BadLength,
        Cause::BadChunk,
        Cause::Tls,
        Cause::Other,
        Cause::Saturated,
    ];
    pub const COUNT: usize = Cause::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            Cause::Status1xx => "1xx",
            Cause::Status2xx => "2xx",
            Cause::Status3xx => "3xx",
            Cause::Status4xx => "4xx",
            Cause::Status5xx => "5xx",
            Cause::Timeout => "timeout",
            Cause::Refused => "refused",
            Cause::Reset => "reset",
            Cause::TooManyHeaders => "too-many-headers",
            Cause::HeadTooLong => "head-too-long",
            Cause::BadAnswer => "bad-answer",
            Cause::BadLength => "bad-length",
            Cause::BadChunk => "bad-chunk",
            Cause::Tls => "tls",
            Cause::Other => "other",
            Cause::Saturated => "saturated",
        }
    }

    /// The class cause of an HTTP status that is not in the success set.
    pub fn of_status(status: u16) -> Cause {
        match status / 100 {
            1 => Cause::Status1xx,
            2 => Cause::Status2xx,
            3 => Cause::Status3xx,
            4 => Cause::Status4xx,
            5 => Cause::Status5xx,
            _ => Cause::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Good,
    Bad(Cause),
}

/// One finished request, as the load generator reports it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Intended send time on the open-loop schedule.
    pub due: Micros,
    /// When the request actually left (generator lag = sent − due).
    pub sent: Micros,
    /// When its answer (or its failure) was complete.
    pub done: Micros,
    pub outcome: Outcome,
    /// Whether latency is meaningful for this outcome: an HTTP answer or a
    /// timeout. Fast connection failures are counted but kept out of the
    /// latency histograms, where they would flatter the percentiles.
    pub has_latency: bool,
}

impl Sample {
    /// Latency as users see it: completion minus intended send time.
    pub fn latency(&self) -> Micros {
        self.done.saturating_sub(self.due)
    }
    /// Service time: completion minus actual send.
    pub fn service(&self) -> Micros {
        self.done.saturating_sub(self.sent)
    }
    pub fn lag(&self) -> Micros {
        self.sent.saturating_sub(self.due)
    }
}
