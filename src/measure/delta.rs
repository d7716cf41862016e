//! What a recorder gathered since it was last drained, in a form that travels
//! (JSON, histograms in hdrhistogram's V2 serialized form, base64) and merges
//! exactly: counts add, histograms `add`, first/last instants take min/max.
//! Applying the deltas of several recorders that each saw part of a stream
//! gives exactly what one recorder fed the whole stream holds.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::Micros;
use super::stats::{Bucket, PhaseStats};

/// Everything recorded since the last drain. `None` histograms are empty.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecorderDelta {
    /// Bucket index (due / bucket width) → what was added there.
    pub buckets: BTreeMap<u32, Bucket>,
    /// Per phase (warmup, baseline, fault, recovery).
    pub phases: [PhaseDelta; 4],
    #[serde(with = "opt_hist")]
    pub lag: Option<Histogram<u64>>,
    pub sent: u64,
    pub sent_by_phase: [u64; 4],
    pub send_span: [Option<(Micros, Micros)>; 4],
    /// Per-second latency (second of due time → histogram, 2 significant digits).
    #[serde(with = "hist_map")]
    pub seconds: BTreeMap<u64, Histogram<u64>>,
    /// Every request due before this is accounted for in this delta or an
    /// earlier one.
    pub frontier: Micros,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseDelta {
    pub good: u64,
    pub bad: [u64; super::Cause::COUNT],
    #[serde(with = "opt_hist")]
    pub latency: Option<Histogram<u64>>,
    #[serde(with = "opt_hist")]
    pub service: Option<Histogram<u64>>,
}

impl PhaseDelta {
    pub fn is_empty(&self) -> bool {
        self.good == 0 && self.bad.iter().all(|&b| b == 0) && self.latency.is_none()
    }

    /// Adds this delta's counts and histograms to a phase's totals.
    pub fn add_to(&self, st: &mut PhaseStats) {
        st.good += self.good;
        for (a, b) in st.bad.iter_mut().zip(self.bad) {
            *a += b;
        }
        add_opt(&mut st.latency, self.latency.as_ref());
        add_opt(&mut st.service, self.service.as_ref());
    }

    fn merge(&mut self, o: PhaseDelta) {
        self.good += o.good;
        for (a, b) in self.bad.iter_mut().zip(o.bad) {
            *a += b;
        }
        merge_opt(&mut self.latency, o.latency);
        merge_opt(&mut self.service, o.service);
    }
}

impl RecorderDelta {
    /// Folds a later delta into this one (an agent re-sends an unacknowledged
    /// delta merged with the new one).
    pub fn merge(&mut self, o: RecorderDelta) {
        for (i, b) in o.buckets {
            self.buckets.entry(i).or_default().absorb(&b);
        }
        for (p, q) in self.phases.iter_mut().zip(o.phases) {
            p.merge(q);
        }
        merge_opt(&mut self.lag, o.lag);
        self.sent += o.sent;
        for i in 0..4 {
            self.sent_by_phase[i] += o.sent_by_phase[i];
            self.send_span[i] = join_span(self.send_span[i], o.send_span[i]);
        }
        for (s, h) in o.seconds {
            match self.seconds.get_mut(&s) {
                Some(mine) => add_hist(mine, &h),
                None => {
                    self.seconds.insert(s, h);
                }
            }
        }
        self.frontier = self.frontier.max(o.frontier);
    }

    /// Requests completed (or counted as not sent) in this delta.
    pub fn completed(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| p.good + p.bad.iter().sum::<u64>())
            .sum()
    }
}

pub(crate) fn join_span(
    a: Option<(Micros, Micros)>,
    b: Option<(Micros, Micros)>,
) -> Option<(Micros, Micros)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (x, None) | (None, x) => x,
    }
}

/// Both sides are built with the same bounds and precision, so `add` only
/// fails on a corrupt peer; the values are then clamped in one by one.
fn add_hist(h: &mut Histogram<u64>, o: &Histogram<u64>) {
    if h.add(o).is_err() {
        for v in o.iter_recorded() {
            h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

fn add_opt(h: &mut Histogram<u64>, o: Option<&Histogram<u64>>) {
    if let Some(o) = o {
        add_hist(h, o);
    }
}

fn merge_opt(h: &mut Option<Histogram<u64>>, o: Option<Histogram<u64>>) {
    match (h.as_mut(), o) {
        (Some(mine), Some(o)) => add_hist(mine, &o),
        (None, Some(o)) => *h = Some(o),
        (_, None) => {}
    }
}

pub(crate) fn hist_to_b64(h: &Histogram<u64>) -> Result<String, String> {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| format!("histogram serialization: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

pub(crate) fn hist_from_b64(s: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("histogram: {e:?}"))
}

mod opt_hist {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};

    pub(super) fn serialize<S: Serializer>(
        h: &Option<Histogram<u64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match h {
            Some(h) => s.serialize_some(&super::hist_to_b64(h).map_err(S::Error::custom)?),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Histogram<u64>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::hist_from_b64(&s).map_err(D::Error::custom))
            .transpose()
    }
}

mod hist_map {
    use std::collections::BTreeMap;

    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};

    pub(super) fn serialize<S: Serializer>(
        m: &BTreeMap<u64, Histogram<u64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = BTreeMap::new();
        for (k, h) in m {
            out.insert(*k, super::hist_to_b64(h).map_err(S::Error::custom)?);
        }
        serde::Serialize::serialize(&out, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u64, Histogram<u64>>, D::Error> {
        BTreeMap::<u64, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| Ok((k, super::hist_from_b64(&v).map_err(D::Error::custom)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cause, Outcome, Phase, Recorder, Sample};
    use super::*;

    const MS: Micros = 1_000;

    /// A known stream: request i due at i ms for 6 s, its latency and
    /// outcome a fixed function of i (good, 5xx, timeouts, refused without
    /// latency, some not sent), sent with a small lag.
    fn stream() -> Vec<Sample> {
        (0..6_000u64)
            .map(|i| {
                let due = i * MS;
                let latency = 200 + (i * 7_919) % 50_000 + if i % 97 == 0 { 900_000 } else { 0 };
                let (outcome, has_latency) = match i % 50 {
                    7 => (Outcome::Bad(Cause::Status5xx), true),
                    13 => (Outcome::Bad(Cause::Timeout), true),
                    21 => (Outcome::Bad(Cause::Refused), false),
                    33 => (Outcome::Bad(Cause::Saturated), false),
                    _ => (Outcome::Good, true),
                };
                Sample {
                    due,
                    sent: due + i % 300,
                    done: due + latency,
                    outcome,
                    has_latency,
                }
            })
            .collect()
    }

    fn marks(r: &mut Recorder) {
        r.mark(Phase::Baseline, 1_000 * MS);
        r.mark(Phase::Fault, 2_500 * MS);
        r.mark(Phase::Recovery, 4_200 * MS);
    }

    fn feed(r: &mut Recorder, s: &Sample) {
        if s.outcome != Outcome::Bad(Cause::Saturated) {
            r.note_sent(s.due, s.sent);
        }
        r.record(s);
    }

    /// The same numbers, compared field by field.
    fn assert_same(a: &mut Recorder, b: &mut Recorder) {
        assert_eq!(a.buckets(), b.buckets());
        for p in Phase::ALL {
            let (x, y) = (a.phase(p), b.phase(p));
            assert_eq!((x.good, x.bad), (y.good, y.bad), "{p:?}");
            assert_eq!(x.availability(), y.availability(), "{p:?}");
            assert_eq!(x.latency, y.latency, "{p:?} latency");
            assert_eq!(x.service, y.service, "{p:?} service");
            for q in [0.5, 0.99, 0.999, 1.0] {
                assert_eq!(
                    x.latency.value_at_quantile(q),
                    y.latency.value_at_quantile(q)
                );
            }
        }
        assert_eq!(a.lag(), b.lag());
        assert_eq!(a.sent(), b.sent());
        for p in Phase::ALL {
            assert_eq!(a.sent_in(&[p]), b.sent_in(&[p]), "{p:?}");
        }
        assert_eq!(a.seconds().finish(), b.seconds().finish());
    }

    /// Two agents fed alternate requests (request i on agent i mod 2, as
    /// the runner splits the schedule), drained every 100 ms with the
    /// runner's settle instant 300 ms behind, their deltas sent as JSON
    /// and applied: exactly the numbers of one recorder fed the whole stream.
    #[test]
    fn two_halves_merged_equal_the_whole_stream() {
        let all = stream();
        let mut whole = Recorder::new(100 * MS, 3_000 * MS);
        marks(&mut whole);
        for s in &all {
            feed(&mut whole, s);
        }

        let mut agents = [
            Recorder::for_agent(100 * MS, 3_000 * MS),
            Recorder::for_agent(100 * MS, 3_000 * MS),
        ];
        let mut merged = Recorder::new(100 * MS, 3_000 * MS);
        marks(&mut merged);
        merged.expect_senders(
            crate::measure::recorder::GeneratorInfo {
                workers: 2,
                max_in_flight: 10,
                tick_us: 1_000,
            },
            0,
        );
        // Completions arrive in completion order, as from a generator.
        let mut by_done: Vec<_> = all.iter().enumerate().collect();
        by_done.sort_by_key(|(_, s)| s.done);
        let mut next = 0;
        for tick in 1..=80u64 {
            let now = tick * 100 * MS;
            while next < by_done.len() && by_done[next].1.done <= now {
                let (i, s) = by_done[next];
                feed(&mut agents[i % 2], s);
                next += 1;
            }
            for (slot, a) in agents.iter_mut().enumerate() {
                // The runner's marks reach the agent before the settle instant.
                if now >= 1_000 * MS {
                    marks(a);
                }
                a.settle(now.saturating_sub(300 * MS));
                let wire = serde_json::to_string(&a.take_delta()).unwrap();
                let d: RecorderDelta = serde_json::from_str(&wire).unwrap();
                merged.apply(&d, slot);
            }
        }
        for (slot, a) in agents.iter_mut().enumerate() {
            a.settle(Micros::MAX);
            assert_eq!(a.held(), 0);
            merged.apply(&a.take_delta(), slot);
        }
        assert_eq!(next, all.len());
        assert_eq!(merged.phase(Phase::Fault).total(), 1_700);
        assert_same(&mut merged, &mut whole);
    }

    /// A result due after the settle instant waits for its phase: a mark
    /// that arrives later still decides it.
    #[test]
    fn results_wait_until_their_phase_is_settled() {
        let mut a = Recorder::for_agent(100 * MS, 3_000 * MS);
        a.mark(Phase::Baseline, 0);
        a.settle(1_000 * MS);
        let s = Sample {
            due: 1_500 * MS,
            sent: 1_500 * MS,
            done: 1_600 * MS,
            outcome: Outcome::Good,
            has_latency: true,
        };
        a.note_sent(s.due, s.sent);
        a.record(&s);
        let d = a.take_delta();
        assert_eq!((d.completed(), d.frontier), (0, 0));
        a.mark(Phase::Fault, 1_200 * MS);
        a.settle(2_000 * MS);
        let d = a.take_delta();
        assert_eq!(d.phases[Phase::Fault as usize].good, 1);
        assert_eq!(d.sent_by_phase[Phase::Fault as usize], 1);
    }

    /// An unacknowledged delta merged with the next one carries the same
    /// numbers as the two applied one after the other.
    #[test]
    fn a_resent_merged_delta_equals_both_applied() {
        let all = stream();
        let mut a = Recorder::for_agent(100 * MS, 3_000 * MS);
        marks(&mut a);
        let (mut one, mut two) = (
            Recorder::new(100 * MS, 3_000 * MS),
            Recorder::new(100 * MS, 3_000 * MS),
        );
        for r in [&mut one, &mut two] {
            marks(r);
        }
        for s in &all[..3_000] {
            feed(&mut a, s);
        }
        a.settle(Micros::MAX);
        let mut first = a.take_delta();
        for s in &all[3_000..] {
            feed(&mut a, s);
        }
        a.settle(Micros::MAX);
        let second = a.take_delta();
        one.apply(&first, 0);
        one.apply(&second, 0);
        first.merge(second);
        two.apply(&first, 0);
        assert_same(&mut one, &mut two);
        assert_eq!(two.phase(Phase::Warmup).total(), 1_000);
    }
}
