//! The recorder: folds every finished request into per-phase HDR histograms
//! and fixed-width buckets keyed by intended send time. Its size depends on the
//! drill's length only through the bucket vector (one small struct per bucket).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::delta::{PhaseDelta, RecorderDelta, join_span};
use super::seconds::SecondLatency;
use super::stats::{Bucket, PhaseStats, new_histogram, record_clamped};
use super::{Cause, Micros, Outcome, Phase, Sample};

/// How the generator ran: its threads, its effective in-flight limit
/// (the scenario's, capped by the open-file limit) and its tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratorInfo {
    pub workers: usize,
    pub max_in_flight: usize,
    pub tick_us: Micros,
}

/// Everything measured about the HTTP load of one run.
pub struct Recorder {
    bucket_us: Micros,
    buckets: Vec<Bucket>,
    /// Phase starts, in order; a request belongs to the phase of its due time.
    marks: Vec<(Phase, Micros)>,
    phases: [PhaseStats; 4],
    seconds: SecondLatency,
    /// Send lag of requests due in the measured phases.
    lag: Histogram<u64>,
    sent: u64,
    sent_by_phase: [u64; 4],
    /// First and last actual send of the requests due in each phase.
    send_span: [Option<(Micros, Micros)>; 4],
    /// Per generator worker: every request due before this has been
    /// accounted for here (sent, or counted as not sent).
    frontiers: Vec<Micros>,
    generator: GeneratorInfo,
    /// The drill's end (run clock): requests due at or after it are not
    /// counted, by the runner's generator or by any agent, so every
    /// sender's count stops at the same instant however late it heard of
    /// the stop.
    end: Micros,
    /// An agent's recorder: results held until their phase is settled, and
    /// per-second latency kept as histograms for the next delta.
    agent: Option<AgentSide>,
}

/// What only an agent's recorder keeps.
struct AgentSide {
    /// Every phase mark before this instant is known: results due earlier
    /// can be attributed; later ones wait in `held`.
    settled: Micros,
    held_sent: Vec<(Micros, Micros)>,
    held_done: Vec<Sample>,
    seconds: BTreeMap<u64, Histogram<u64>>,
}

impl Recorder {
    /// `horizon` bounds how late a completion can arrive after its due time
    /// (the request timeout plus slack); it sizes the per-second latency ring.
    pub fn new(bucket_us: Micros, horizon_us: Micros) -> Recorder {
        assert!(bucket_us > 0);
        Recorder {
            bucket_us,
            buckets: Vec::new(),
            marks: vec![(Phase::Warmup, 0)],
            phases: Default::default(),
            seconds: SecondLatency::new(horizon_us),
            lag: new_histogram(3),
            sent: 0,
            sent_by_phase: [0; 4],
            send_span: [None; 4],
            frontiers: Vec::new(),
            generator: GeneratorInfo::default(),
            end: Micros::MAX,
            agent: None,
        }
    }

    /// Ends the drill at `at`: from now on, requests due at or after it are
    /// not counted (the earliest end given holds).
    pub fn close_at(&mut self, at: Micros) {
        self.end = self.end.min(at);
    }

    /// The drill's end, once [`Recorder::close_at`] set it.
    pub fn end(&self) -> Option<Micros> {
        (self.end < Micros::MAX).then_some(self.end)
    }

    /// The recorder of a `drill agent`: it holds each result until the
    /// runner says no later phase mark can precede its due time
    /// ([`Recorder::settle`]), and is drained into deltas
    /// ([`Recorder::take_delta`]) that the runner applies to its own.
    pub fn for_agent(bucket_us: Micros, horizon_us: Micros) -> Recorder {
        let mut r = Recorder::new(bucket_us, horizon_us);
        r.agent = Some(AgentSide {
            settled: 0,
            held_sent: Vec::new(),
            held_done: Vec::new(),
            seconds: BTreeMap::new(),
        });
        r
    }

    /// The generator starts `info.workers` senders whose schedule begins at
    /// `from`; until each has passed a phase's end, that phase is unfinished.
    pub fn expect_senders(&mut self, info: GeneratorInfo, from: Micros) {
        self.generator = info;
        self.frontiers = vec![from; info.workers];
    }

    /// Worker `w` has accounted for every request due before `due`
    /// (`Micros::MAX` once it stopped).
    pub fn note_frontier(&mut self, w: usize, due: Micros) {
        if let Some(f) = self.frontiers.get_mut(w) {
            *f = (*f).max(due);
        }
    }

    pub fn generator(&self) -> GeneratorInfo {
        self.generator
    }

    pub fn bucket_us(&self) -> Micros {
        self.bucket_us
    }

    /// Starts `phase` at `at`. Phases only move forward.
    pub fn mark(&mut self, phase: Phase, at: Micros) {
        let (last, last_at) = *self.marks.last().expect("marks never empty");
        if phase > last && at >= last_at {
            self.marks.push((phase, at));
        }
    }

    pub fn marks(&self) -> &[(Phase, Micros)] {
        &self.marks
    }

    pub fn phase_at(&self, t: Micros) -> Phase {
        let i = self.marks.partition_point(|&(_, start)| start <= t);
        self.marks[i.saturating_sub(1)].0
    }

    /// Start and end of a phase that began (end = next phase's start, or `now`).
    pub fn phase_span(&self, phase: Phase, now: Micros) -> Option<(Micros, Micros)> {
        let i = self.marks.iter().position(|&(p, _)| p == phase)?;
        let end = self.marks.get(i + 1).map_or(now, |&(_, t)| t);
        Some((self.marks[i].1, end))
    }

    /// Counts a request that left (for the generator's own rate).
    pub fn note_sent(&mut self, due: Micros, sent: Micros) {
        if let Some(a) = self.agent.as_mut()
            && due >= a.settled
        {
            a.held_sent.push((due, sent));
            return;
        }
        self.count_sent(due, sent);
    }

    fn count_sent(&mut self, due: Micros, sent: Micros) {
        if due >= self.end {
            return;
        }
        let phase = self.phase_at(due);
        self.sent += 1;
        self.sent_by_phase[phase.index()] += 1;
        let span = &mut self.send_span[phase.index()];
        *span = Some(span.map_or((sent, sent), |(a, b)| (a.min(sent), b.max(sent))));
        if phase != Phase::Warmup {
            record_clamped(&mut self.lag, sent.saturating_sub(due));
        }
    }

    pub fn record(&mut self, s: &Sample) {
        if let Some(a) = self.agent.as_mut()
            && s.due >= a.settled
        {
            a.held_done.push(*s);
            return;
        }
        self.count(s);
    }

    fn count(&mut self, s: &Sample) {
        if s.due >= self.end {
            return;
        }
        let phase = self.phase_at(s.due);
        let stats = &mut self.phases[phase.index()];
        match s.outcome {
            Outcome::Good => stats.good += 1,
            Outcome::Bad(c) => stats.bad[c.index()] += 1,
        }
        if s.has_latency {
            record_clamped(&mut stats.latency, s.latency());
            record_clamped(&mut stats.service, s.service());
            match self.agent.as_mut() {
                Some(a) => record_clamped(
                    a.seconds
                        .entry(s.due / 1_000_000)
                        .or_insert_with(|| new_histogram(2)),
                    s.latency(),
                ),
                None => self.seconds.record(s.due, s.latency()),
            }
        }

        let i = (s.due / self.bucket_us) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, Bucket::default());
        }
        let b = &mut self.buckets[i];
        match s.outcome {
            Outcome::Good => {
                b.good += 1;
                b.first_good_done = Some(b.first_good_done.map_or(s.done, |d| d.min(s.done)));
            }
            Outcome::Bad(c) => {
                b.bad[c.index()] += 1;
                b.first_bad_due = Some(b.first_bad_due.map_or(s.due, |d| d.min(s.due)));
            }
        }
    }

    /// Requests due in `p` that have not completed yet: those in flight, and
    /// at least one while a generator worker has not yet reached `p`'s end
    /// (its requests due there are not all sent). Exact when `p`'s end was
    /// marked before its last request was sent.
    pub fn unfinished(&self, p: Phase) -> u64 {
        let st = &self.phases[p.index()];
        let finished = st.total() - st.bad[Cause::Saturated.index()];
        let in_flight = self.sent_by_phase[p.index()].saturating_sub(finished);
        let end = self
            .marks
            .iter()
            .position(|&(q, _)| q == p)
            .and_then(|i| self.marks.get(i + 1))
            .map_or(Micros::MAX, |&(_, t)| t);
        let behind = self.frontiers.iter().any(|&f| f < end);
        if behind { in_flight.max(1) } else { in_flight }
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    pub fn phase(&self, p: Phase) -> &PhaseStats {
        &self.phases[p.index()]
    }

    pub fn lag(&self) -> &Histogram<u64> {
        &self.lag
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Requests sent that were due in `phases`, and the first and last
    /// actual send among them.
    pub fn sent_in(&self, phases: &[Phase]) -> (u64, Option<(Micros, Micros)>) {
        let mut n = 0;
        let mut span: Option<(Micros, Micros)> = None;
        for p in phases {
            n += self.sent_by_phase[p.index()];
            if let Some((a, b)) = self.send_span[p.index()] {
                span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
        }
        (n, span)
    }

    pub fn seconds(&mut self) -> &mut SecondLatency {
        &mut self.seconds
    }

    /// Good ratio of requests due in [from, to) that have completed so far.
    pub fn good_ratio_between(&self, from: Micros, to: Micros) -> Option<f64> {
        let (a, b) = (
            (from / self.bucket_us) as usize,
            to.div_ceil(self.bucket_us) as usize,
        );
        let (mut good, mut all) = (0u64, 0u64);
        for bk in self.buckets.iter().take(b).skip(a) {
            good += bk.good as u64;
            all += bk.total() as u64;
        }
        (all > 0).then(|| good as f64 / all as f64)
    }
}

/// Agent side and runner side of the delta protocol.
impl Recorder {
    /// The runner knows every phase mark before `at` (they were applied
    /// first): results due before it are attributed now. No-op on a
    /// runner's recorder.
    pub fn settle(&mut self, at: Micros) {
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        a.settled = a.settled.max(at);
        let settled = a.settled;
        let (sent, keep_sent): (Vec<_>, Vec<_>) = std::mem::take(&mut a.held_sent)
            .into_iter()
            .partition(|&(due, _)| due < settled);
        let (done, keep_done): (Vec<_>, Vec<_>) = std::mem::take(&mut a.held_done)
            .into_iter()
            .partition(|s| s.due < settled);
        a.held_sent = keep_sent;
        a.held_done = keep_done;
        for (due, at) in sent {
            self.count_sent(due, at);
        }
        for s in &done {
            self.count(s);
        }
    }

    /// Everything counted since the last call, and the frontier: every
    /// request due before it is in this delta or an earlier one (held
    /// results keep it back). The recorder's counts restart from zero.
    pub fn take_delta(&mut self) -> RecorderDelta {
        let mut d = RecorderDelta::default();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            if *b != Bucket::default() {
                d.buckets.insert(i as u32, std::mem::take(b));
            }
        }
        for (st, pd) in self.phases.iter_mut().zip(d.phases.iter_mut()) {
            *pd = PhaseDelta {
                good: std::mem::take(&mut st.good),
                bad: std::mem::take(&mut st.bad),
                latency: take_hist(&mut st.latency, 3),
                service: take_hist(&mut st.service, 3),
            };
        }
        d.lag = take_hist(&mut self.lag, 3);
        d.sent = std::mem::take(&mut self.sent);
        d.sent_by_phase = std::mem::take(&mut self.sent_by_phase);
        d.send_span = std::mem::take(&mut self.send_span);
        let mut frontier = self.frontiers.iter().copied().min().unwrap_or(0);
        if let Some(a) = self.agent.as_mut() {
            d.seconds = std::mem::take(&mut a.seconds);
            frontier = frontier.min(a.settled);
        }
        d.frontier = frontier;
        d
    }

    /// Adds a delta from sender `slot` (one of `expect_senders`' workers):
    /// exactly as if its requests had been recorded here.
    pub fn apply(&mut self, d: &RecorderDelta, slot: usize) {
        for (&i, b) in &d.buckets {
            let i = i as usize;
            if self.buckets.len() <= i {
                self.buckets.resize(i + 1, Bucket::default());
            }
            self.buckets[i].absorb(b);
        }
        for (pd, st) in d.phases.iter().zip(self.phases.iter_mut()) {
            pd.add_to(st);
        }
        if let Some(l) = &d.lag {
            let _ = self.lag.add(l);
        }
        self.sent += d.sent;
        for i in 0..4 {
            self.sent_by_phase[i] += d.sent_by_phase[i];
            self.send_span[i] = join_span(self.send_span[i], d.send_span[i]);
        }
        for (&sec, h) in &d.seconds {
            self.seconds.merge(sec, h);
        }
        self.note_frontier(slot, d.frontier);
    }

    /// Results an agent holds until their phase is settled.
    pub fn held(&self) -> usize {
        self.agent
            .as_ref()
            .map_or(0, |a| a.held_done.len() + a.held_sent.len())
    }
}

/// The histogram's content (None when empty), leaving an empty one.
fn take_hist(h: &mut Histogram<u64>, sigfig: u8) -> Option<Histogram<u64>> {
    (!h.is_empty()).then(|| std::mem::replace(h, new_histogram(sigfig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(due: u64, latency: u64, outcome: Outcome) -> Sample {
        Sample {
            due,
            sent: due,
            done: due + latency,
            outcome,
            has_latency: true,
        }
    }

    #[test]
    fn requests_belong_to_the_phase_of_their_due_time() {
        let mut r = Recorder::new(100_000, 2_000_000);
        r.mark(Phase::Baseline, 1_000_000);
        r.mark(Phase::Fault, 2_000_000);
        // Due in baseline, completes during the fault phase: still baseline.
        r.record(&sample(1_999_000, 500_000, Outcome::Good));
        r.record(&sample(2_000_000, 1_000, Outcome::Bad(Cause::Status5xx)));
        r.record(&sample(500_000, 1_000, Outcome::Good));
        assert_eq!(r.phase(Phase::Baseline).good, 1);
        assert_eq!(r.phase(Phase::Fault).bad_total(), 1);
        assert_eq!(r.phase(Phase::Warmup).good, 1);
        assert_eq!(
            r.phase(Phase::Baseline).latency.max(),
            r.phase(Phase::Baseline).latency.highest_equivalent(500_000)
        );
    }

    /// Once the drill's end is set, nothing due from then on counts: not on
    /// the runner's recorder, and not on an agent's, even for results it
    /// held (due after the end) until the runner's settle instant passed.
    #[test]
    fn requests_due_after_the_drill_end_are_not_counted_by_any_sender() {
        for agent in [false, true] {
            let mut r = if agent {
                Recorder::for_agent(100_000, 2_000_000)
            } else {
                Recorder::new(100_000, 2_000_000)
            };
            r.mark(Phase::Baseline, 0);
            if !agent {
                r.close_at(1_000_000);
            }
            for due in [100_000, 999_999, 1_000_000, 1_400_000] {
                r.note_sent(due, due);
                r.record(&sample(due, 1_000, Outcome::Good));
            }
            // An agent hears of the end after it recorded (and held) all.
            r.close_at(1_000_000);
            r.close_at(3_000_000);
            assert_eq!(r.end(), Some(1_000_000), "the earliest end holds");
            r.settle(Micros::MAX);
            let (good, sent) = if agent {
                let d = r.take_delta();
                (d.phases[Phase::Baseline as usize].good, d.sent_by_phase[1])
            } else {
                (r.phase(Phase::Baseline).good, r.sent())
            };
            assert_eq!((good, sent), (2, 2), "agent {agent}");
        }
    }

    #[test]
    fn buckets_keep_first_bad_due_and_first_good_completion() {
        let mut r = Recorder::new(100_000, 2_000_000);
        r.record(&sample(150_000, 80_000, Outcome::Good));
        r.record(&sample(120_000, 90_000, Outcome::Good));
        r.record(&sample(170_000, 1, Outcome::Bad(Cause::Refused)));
        r.record(&sample(130_000, 1, Outcome::Bad(Cause::Timeout)));
        let b = &r.buckets()[1];
        assert_eq!(b.good, 2);
        assert_eq!(b.bad_total(), 2);
        assert_eq!(b.first_good_done, Some(210_000));
        assert_eq!(b.first_bad_due, Some(130_000));
    }

    #[test]
    fn phases_never_move_backwards() {
        let mut r = Recorder::new(100_000, 2_000_000);
        r.mark(Phase::Fault, 5);
        r.mark(Phase::Baseline, 10);
        assert_eq!(r.marks().len(), 2);
        assert_eq!(r.phase_at(100), Phase::Fault);
    }
}
