//! A fault's effect on traffic: time to impact, outage time and RTO, exactly
//! as docs/contract.md defines them, computed from the due-time buckets.
//!
//! Windows slide over the bucket grid one bucket at a time. A window is bad
//! when its good ratio is below the criteria's ratio; a window with no
//! requests at all carries no evidence and counts as good.

use super::{Bucket, Micros};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecoveryCriteria {
    pub window_us: Micros,
    /// Good ratio every window of a recovered stretch must reach (0..=1).
    pub ratio: f64,
    pub hold_us: Micros,
}

impl Default for RecoveryCriteria {
    fn default() -> Self {
        RecoveryCriteria {
            window_us: 1_000_000,
            ratio: 0.99,
            hold_us: 10_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rto {
    /// No bad window after the injection.
    NoImpact,
    /// Recovered this long after the start of the inject step.
    Recovered(Micros),
    /// No recovered stretch before the observation ended.
    NotRecovered,
}

impl Rto {
    pub fn micros(self) -> Option<Micros> {
        match self {
            Rto::NoImpact => Some(0),
            Rto::Recovered(us) => Some(us),
            Rto::NotRecovered => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultImpact {
    pub rto: Rto,
    /// First bad request's intended send time minus the inject start.
    pub time_to_impact: Option<Micros>,
    /// Total length of bad buckets from the injection to `outage_until`.
    pub outage: Micros,
    /// When the recovered stretch began (absolute), for the chart.
    pub recovered_at: Option<Micros>,
}

/// Measures one fault injected at `inject` (start of its inject step).
/// `observed_until` ends the observation (no window may reach past it);
/// `outage_until` bounds the outage sum (the next fault's inject, or the end).
pub fn fault_impact(
    buckets: &[Bucket],
    bucket_us: Micros,
    inject: Micros,
    observed_until: Micros,
    outage_until: Micros,
    c: &RecoveryCriteria,
) -> FaultImpact {
    let w = (c.window_us / bucket_us).max(1) as usize;
    let h = (c.hold_us / bucket_us).max(w as u64) as usize;
    let first = (inject / bucket_us) as usize;
    // Only buckets wholly observed count.
    let end = ((observed_until / bucket_us) as usize).min(buckets.len());

    let bad_bucket = |b: &Bucket| b.total() > 0 && (b.good as f64) < c.ratio * b.total() as f64;
    // Buckets wholly before the next fault's inject belong to this fault.
    let outage_end = ((outage_until / bucket_us) as usize).min(buckets.len());
    let outage = buckets
        .get(first..outage_end.max(first))
        .unwrap_or(&[])
        .iter()
        .filter(|b| bad_bucket(b))
        .count() as Micros
        * bucket_us;

    // Prefix sums of good and all, so each window costs O(1).
    let mut good = vec![0u64; end + 1];
    let mut all = vec![0u64; end + 1];
    for i in 0..end {
        good[i + 1] = good[i] + buckets[i].good as u64;
        all[i + 1] = all[i] + buckets[i].total() as u64;
    }
    let window_bad = |k: usize| {
        let (g, a) = (good[k + w] - good[k], all[k + w] - all[k]);
        a > 0 && (g as f64) < c.ratio * a as f64
    };
    let last_window = end.checked_sub(w);

    // The first bad window must lie before the next fault's inject: a later
    // impact is that fault's, not this one's.
    let impact_end = outage_end.min(end);
    let first_bad = last_window
        .and_then(|last| (first..=last.min(impact_end.saturating_sub(w))).find(|&k| window_bad(k)));
    let Some(kb) = first_bad else {
        return FaultImpact {
            rto: Rto::NoImpact,
            time_to_impact: None,
            outage,
            recovered_at: None,
        };
    };

    let time_to_impact = buckets[first..end]
        .iter()
        .filter_map(|b| b.first_bad_due)
        .filter(|&d| d >= inject && d < outage_until)
        .min()
        .map(|d| d - inject);

    // The first stretch of h buckets, starting after the first bad window,
    // in which every window is good.
    let windows_per_stretch = h - w + 1;
    let mut run = 0usize;
    let mut stretch = None;
    if let Some(last) = last_window {
        for k in kb + 1..=last {
            if window_bad(k) {
                run = 0;
                continue;
            }
            run += 1;
            if run == windows_per_stretch {
                stretch = Some(k + 1 - windows_per_stretch);
                break;
            }
        }
    }
    let Some(s) = stretch else {
        return FaultImpact {
            rto: Rto::NotRecovered,
            time_to_impact,
            outage,
            recovered_at: None,
        };
    };
    // The stretch starts at the earliest completion of a good request due in
    // it: a stalled target whose late answers are good recovers when it answers.
    let start = buckets[s..s + h]
        .iter()
        .filter_map(|b| b.first_good_done)
        .min()
        .unwrap_or(s as Micros * bucket_us);
    FaultImpact {
        rto: Rto::Recovered(start.saturating_sub(inject)),
        time_to_impact,
        outage,
        recovered_at: Some(start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Cause, Outcome, Recorder, Sample};

    const MS: u64 = 1_000;
    const S: u64 = 1_000_000;

    /// A synthetic open-loop stream: `rate` requests/s for `len`, each request's
    /// outcome and latency decided by `f(due)`.
    fn stream(rate: u64, len: u64, f: impl Fn(u64) -> (Outcome, u64)) -> Recorder {
        let mut r = Recorder::new(100 * MS, 5 * S);
        let step = S / rate;
        let mut due = 0;
        while due < len {
            let (outcome, latency) = f(due);
            r.record(&Sample {
                due,
                sent: due,
                done: due + latency,
                outcome,
                has_latency: true,
            });
            due += step;
        }
        r
    }

    fn impact(r: &Recorder, inject: u64, end: u64) -> FaultImpact {
        fault_impact(
            r.buckets(),
            r.bucket_us(),
            inject,
            end,
            end,
            &RecoveryCriteria::default(),
        )
    }

    #[test]
    fn clean_outage_gives_rto_from_inject_to_first_good_answer() {
        // Inject at 20 s; every request due in [20.5 s, 23 s) is refused.
        let r = stream(1000, 60 * S, |d| {
            if (20_500 * MS..23 * S).contains(&d) {
                (Outcome::Bad(Cause::Refused), 100)
            } else {
                (Outcome::Good, 2 * MS)
            }
        });
        let i = impact(&r, 20 * S, 60 * S);
        assert_eq!(i.rto, Rto::Recovered(3 * S + 2 * MS));
        assert_eq!(i.time_to_impact, Some(500 * MS));
        assert_eq!(i.outage, 2_500 * MS);
    }

    #[test]
    fn no_bad_window_is_no_impact() {
        // A single bad request per second stays above 99% at 1000 req/s.
        let r = stream(1000, 40 * S, |d| {
            if d.is_multiple_of(S) && d > 20 * S {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        let i = impact(&r, 20 * S, 40 * S);
        assert_eq!(i.rto, Rto::NoImpact);
        assert_eq!(i.rto.micros(), Some(0));
        assert_eq!(i.time_to_impact, None);
    }

    #[test]
    fn never_recovering_is_not_recovered() {
        let r = stream(100, 40 * S, |d| {
            if d >= 21 * S {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        let i = impact(&r, 20 * S, 40 * S);
        assert_eq!(i.rto, Rto::NotRecovered);
        assert_eq!(i.rto.micros(), None);
        assert_eq!(i.time_to_impact, Some(S));
        assert_eq!(i.outage, 19 * S);
    }

    #[test]
    fn recovery_must_hold_for_the_whole_hold_time() {
        // Outage 20–22 s, a 4 s good blip, outage again 26–28 s, then good.
        let r = stream(100, 60 * S, |d| {
            let bad = (20 * S..22 * S).contains(&d) || (26 * S..28 * S).contains(&d);
            if bad {
                (Outcome::Bad(Cause::Timeout), 2 * S)
            } else {
                (Outcome::Good, 10 * MS)
            }
        });
        let i = impact(&r, 20 * S, 60 * S);
        assert_eq!(i.rto, Rto::Recovered(8 * S + 10 * MS));
        assert_eq!(i.outage, 4 * S);
    }

    #[test]
    fn stretch_cut_short_by_end_of_observation_is_not_recovered() {
        let r = stream(100, 30 * S, |d| {
            if (20 * S..25 * S).contains(&d) {
                (Outcome::Bad(Cause::Reset), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        // Recovery from 25 s needs 10 s of hold, but observation ends at 30 s.
        assert_eq!(impact(&r, 20 * S, 30 * S).rto, Rto::NotRecovered);
        let r = stream(100, 40 * S, |d| {
            if (20 * S..25 * S).contains(&d) {
                (Outcome::Bad(Cause::Reset), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        assert_eq!(impact(&r, 20 * S, 35 * S).rto, Rto::Recovered(5 * S + MS));
    }

    #[test]
    fn stalled_target_recovers_when_it_answers_not_when_requests_were_due() {
        // The target stalls from 20 s to 25 s, then answers everything queued
        // (good). Timeout 2 s: requests due 20–23 s time out; those due 23–25 s
        // are answered at 25 s.
        let r = stream(100, 60 * S, |d| {
            if (20 * S..23 * S).contains(&d) {
                (Outcome::Bad(Cause::Timeout), 2 * S)
            } else if (23 * S..25 * S).contains(&d) {
                (Outcome::Good, 25 * S - d)
            } else {
                (Outcome::Good, MS)
            }
        });
        let i = impact(&r, 20 * S, 60 * S);
        assert_eq!(i.rto, Rto::Recovered(5 * S));
        assert_eq!(i.time_to_impact, Some(0));
        assert_eq!(i.outage, 3 * S);
    }

    #[test]
    fn impact_after_the_next_fault_belongs_to_that_fault() {
        // Fault A at 10 s has no effect; fault B at 20 s causes 20–23 s.
        let r = stream(100, 60 * S, |d| {
            if (20 * S..23 * S).contains(&d) {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        let a = fault_impact(
            r.buckets(),
            r.bucket_us(),
            10 * S,
            60 * S,
            20 * S,
            &RecoveryCriteria::default(),
        );
        assert_eq!(a.rto, Rto::NoImpact);
        assert_eq!(a.outage, 0);
        let b = fault_impact(
            r.buckets(),
            r.bucket_us(),
            20 * S,
            60 * S,
            60 * S,
            &RecoveryCriteria::default(),
        );
        assert_eq!(b.rto, Rto::Recovered(3 * S + MS));
    }

    #[test]
    fn a_next_fault_injected_mid_bucket_keeps_its_impact() {
        // Fault A at 10 s (no effect); fault B at 20.05 s, mid-bucket, causes
        // errors from 20.05 s: none of them is A's.
        let r = stream(100, 60 * S, |d| {
            if (20_050 * MS..23 * S).contains(&d) {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        let a = fault_impact(
            r.buckets(),
            r.bucket_us(),
            10 * S,
            60 * S,
            20_050 * MS,
            &RecoveryCriteria::default(),
        );
        assert_eq!(a.rto, Rto::NoImpact);
        assert_eq!(a.time_to_impact, None);
        assert_eq!(a.outage, 0);
    }

    #[test]
    fn impact_before_the_injection_is_not_counted() {
        let r = stream(100, 60 * S, |d| {
            if (5 * S..7 * S).contains(&d) {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        assert_eq!(impact(&r, 20 * S, 60 * S).rto, Rto::NoImpact);
    }

    #[test]
    fn custom_window_ratio_and_hold() {
        // 10% errors from 20 s: bad at 99%, fine at 85%.
        let r = stream(100, 60 * S, |d| {
            if d >= 20 * S && (d / (10 * MS)).is_multiple_of(10) {
                (Outcome::Bad(Cause::Status5xx), MS)
            } else {
                (Outcome::Good, MS)
            }
        });
        let strict = impact(&r, 20 * S, 60 * S);
        assert_eq!(strict.rto, Rto::NotRecovered);
        let lax = RecoveryCriteria {
            window_us: 2 * S,
            ratio: 0.85,
            hold_us: 5 * S,
        };
        let i = fault_impact(r.buckets(), r.bucket_us(), 20 * S, 60 * S, 60 * S, &lax);
        assert_eq!(i.rto, Rto::NoImpact);
    }
}
