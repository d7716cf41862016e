//! Data loss of a database fault (docs/contract.md, "RPO"): which acknowledged
//! writes the new primary does not hold, how much time they span, and how
//! long writes were refused. Pure: the writer's log and the new primary's
//! rows in, an `RpoResult` out.

use crate::measure::{Micros, secs};
use crate::results::RpoResult;

/// What the database writer saw: one integer pair per acknowledged write
/// (the one record-per-request log docs/contract.md allows), and the writes whose
/// fate is unknown or known bad.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterLog {
    /// Acknowledged writes: (sequence number, acknowledgement time).
    /// Not necessarily in either order.
    pub acks: Vec<(u64, Micros)>,
    /// Sent but never acknowledged (the connection broke or the write timed
    /// out): each may or may not have been committed.
    pub indeterminate: Vec<u64>,
    /// Definitely not written: no connection to send on, or the server
    /// refused (read-only, …). (sequence number, when it failed.)
    pub failed: Vec<(u64, Micros)>,
    /// When each connection to a read-write server was established.
    pub connected: Vec<Micros>,
    /// Writes that came due in all.
    pub scheduled: u64,
}

impl WriterLog {
    /// The earliest acknowledgement at or after `t`.
    pub fn first_ack_after(&self, t: Micros) -> Option<Micros> {
        self.acks.iter().map(|&(_, a)| a).filter(|&a| a >= t).min()
    }
}

/// Computes the RPO of a fault injected at `inject` from the writer's log
/// and the sequence numbers the new primary holds (`survivors`, any order).
///
/// - lost writes: acknowledged, missing from `survivors`; ranges are runs of
///   consecutive lost sequence numbers.
/// - RPO time: ack time of the last lost write minus that of the last
///   surviving write acknowledged before it. When no write survived before
///   it, the window starts at the first lost write's ack (the writer saw
///   nothing earlier).
/// - indeterminate writes are counted apart, whether or not they survived.
/// - write RTO: inject to the first acknowledgement on a connection opened
///   at or after inject (the new primary, once the old connection broke);
///   with no new connection, the first acknowledgement after inject.
/// - sustained write RTO: inject to the first acknowledgement (no earlier
///   than the write RTO) of a write numbered after the last failed or
///   indeterminate one: from there on every write succeeded.
pub fn rpo(log: &WriterLog, survivors: &[u64], inject: Micros) -> RpoResult {
    let mut present = survivors.to_vec();
    if !present.is_sorted() {
        present.sort_unstable();
    }
    let survived = |seq: u64| present.binary_search(&seq).is_ok();

    let mut lost: Vec<(u64, Micros)> = log
        .acks
        .iter()
        .copied()
        .filter(|&(seq, _)| !survived(seq))
        .collect();
    lost.sort_unstable();
    let mut lost_ranges: Vec<(u64, u64)> = Vec::new();
    for &(seq, _) in &lost {
        match lost_ranges.last_mut() {
            Some((_, end)) if *end + 1 == seq => *end = seq,
            _ => lost_ranges.push((seq, seq)),
        }
    }

    let rpo_us = match lost.iter().map(|&(_, a)| a).max() {
        None => 0,
        Some(last_lost) => {
            let survivor_before = log
                .acks
                .iter()
                .filter(|&&(seq, a)| a <= last_lost && survived(seq))
                .map(|&(_, a)| a)
                .max();
            let first_lost = lost.iter().map(|&(_, a)| a).min().unwrap_or(last_lost);
            last_lost - survivor_before.unwrap_or(first_lost)
        }
    };

    let reconnect = log.connected.iter().copied().filter(|&c| c >= inject).min();
    let first_good = log.first_ack_after(reconnect.unwrap_or(inject));
    let last_bad = log
        .failed
        .iter()
        .map(|&(seq, _)| seq)
        .chain(log.indeterminate.iter().copied())
        .max();
    let sustained = match last_bad {
        None => first_good,
        Some(k) => log
            .acks
            .iter()
            .filter(|&&(seq, a)| seq > k && a >= inject)
            .map(|&(_, a)| a)
            .min()
            .zip(first_good)
            .map(|(s, f)| s.max(f)),
    };

    RpoResult {
        acknowledged: log.acks.len() as u64,
        lost_writes: lost.len() as u64,
        lost_ranges,
        rpo_s: secs(rpo_us),
        indeterminate: log.indeterminate.len() as u64,
        write_rto_s: first_good.map(|t| secs(t - inject)),
        write_rto_sustained_s: sustained.map(|t| secs(t - inject)),
        reads: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Micros = 1_000;

    /// Writes 1..=n acknowledged every 10 ms (write i at i × 10 ms).
    fn steady(n: u64) -> Vec<(u64, Micros)> {
        (1..=n).map(|i| (i, i * 10 * MS)).collect()
    }

    #[test]
    fn nothing_lost() {
        let log = WriterLog {
            acks: steady(100),
            connected: vec![0],
            scheduled: 100,
            ..Default::default()
        };
        let all: Vec<u64> = (1..=100).collect();
        let r = rpo(&log, &all, 500 * MS);
        assert_eq!(r.acknowledged, 100);
        assert_eq!(r.lost_writes, 0);
        assert!(r.lost_ranges.is_empty());
        assert_eq!(r.rpo_s, 0.0);
        assert_eq!(r.indeterminate, 0);
        // No reconnect: the first ack after inject (write 50 at 500 ms).
        assert_eq!(r.write_rto_s, Some(0.0));
        assert_eq!(r.write_rto_sustained_s, Some(0.0));
    }

    #[test]
    fn loss_at_the_tail() {
        // Writes 81..=100 were acknowledged by the old primary but never
        // shipped; the failover happened at 1.0 s, writes resume at 1.3 s.
        let mut acks = steady(100);
        acks.extend((105..=110).map(|i| (i, 1_300 * MS + (i - 105) * 10 * MS)));
        let log = WriterLog {
            acks,
            indeterminate: vec![101],
            failed: vec![(102, 1_100 * MS), (103, 1_150 * MS), (104, 1_200 * MS)],
            connected: vec![0, 1_290 * MS],
            scheduled: 110,
        };
        let mut survivors: Vec<u64> = (1..=80).collect();
        survivors.extend(105..=110);
        let r = rpo(&log, &survivors, 1_000 * MS);
        assert_eq!(r.lost_writes, 20);
        assert_eq!(r.lost_ranges, vec![(81, 100)]);
        // ack(100) − ack(80) = 1000 ms − 800 ms.
        assert!((r.rpo_s - 0.2).abs() < 1e-9, "{}", r.rpo_s);
        assert_eq!(r.indeterminate, 1);
        assert!((r.write_rto_s.unwrap() - 0.3).abs() < 1e-9);
        assert!((r.write_rto_sustained_s.unwrap() - 0.3).abs() < 1e-9);
    }

    #[test]
    fn gap_in_the_middle() {
        let log = WriterLog {
            acks: steady(30),
            ..Default::default()
        };
        let survivors: Vec<u64> = (1..=10).chain(21..=30).collect();
        let r = rpo(&log, &survivors, 0);
        assert_eq!(r.lost_writes, 10);
        assert_eq!(r.lost_ranges, vec![(11, 20)]);
        // ack(20) − ack(10).
        assert!((r.rpo_s - 0.1).abs() < 1e-9);
    }

    #[test]
    fn separate_ranges_and_nothing_survived_before() {
        let log = WriterLog {
            acks: steady(10),
            ..Default::default()
        };
        let r = rpo(&log, &[4, 5, 9], 0);
        assert_eq!(r.lost_ranges, vec![(1, 3), (6, 8), (10, 10)]);
        assert_eq!(r.lost_writes, 7);
        // last lost 10 (100 ms), last survivor before it 9 (90 ms).
        assert!((r.rpo_s - 0.01).abs() < 1e-9);
        // Everything lost: the window starts at the first lost ack.
        let r = rpo(&log, &[], 0);
        assert!((r.rpo_s - 0.09).abs() < 1e-9);
        assert_eq!(r.lost_ranges, vec![(1, 10)]);
    }

    #[test]
    fn indeterminate_writes_are_never_lost() {
        let log = WriterLog {
            acks: steady(10),
            indeterminate: vec![11, 12],
            ..Default::default()
        };
        // 11 made it to the new primary, 12 did not: neither is lost.
        let survivors: Vec<u64> = (1..=11).collect();
        let r = rpo(&log, &survivors, 0);
        assert_eq!(r.lost_writes, 0);
        assert_eq!(r.rpo_s, 0.0);
        assert_eq!(r.indeterminate, 2);
        let r = rpo(&log, &(1..=10).collect::<Vec<_>>(), 0);
        assert_eq!(r.lost_writes, 0);
        assert_eq!(r.indeterminate, 2);
    }

    #[test]
    fn unordered_acks_and_survivors_give_the_same_answer() {
        let mut acks = steady(50);
        let sorted = rpo(
            &WriterLog {
                acks: acks.clone(),
                ..Default::default()
            },
            &(1..=40).collect::<Vec<_>>(),
            0,
        );
        acks.reverse();
        acks.swap(3, 17);
        let mut survivors: Vec<u64> = (1..=40).rev().collect();
        survivors.swap(0, 20);
        let shuffled = rpo(
            &WriterLog {
                acks,
                ..Default::default()
            },
            &survivors,
            0,
        );
        assert_eq!(sorted, shuffled);
        assert_eq!(shuffled.lost_ranges, vec![(41, 50)]);
        assert!((shuffled.rpo_s - 0.1).abs() < 1e-9);
    }

    #[test]
    fn sustained_recovery_waits_for_the_last_failure() {
        // Inject at 1 s; new connection at 1.5 s, ack of write 60 at 1.5 s,
        // then write 61 fails again; from write 62 (1.7 s) all succeed.
        let mut acks: Vec<(u64, Micros)> = (1..=40).map(|i| (i, i * 25 * MS)).collect();
        acks.push((60, 1_500 * MS));
        acks.extend((62..=70).map(|i| (i, 1_700 * MS + (i - 62) * 10 * MS)));
        let log = WriterLog {
            acks,
            failed: (41..=59)
                .map(|i| (i, 1_000 * MS + i))
                .chain([(61, 1_600 * MS)])
                .collect(),
            connected: vec![0, 1_500 * MS],
            ..Default::default()
        };
        let all: Vec<u64> = (1..=70).collect();
        let r = rpo(&log, &all, 1_000 * MS);
        assert!((r.write_rto_s.unwrap() - 0.5).abs() < 1e-9);
        assert!((r.write_rto_sustained_s.unwrap() - 0.7).abs() < 1e-9);
        assert_eq!(r.lost_writes, 0);
    }

    #[test]
    fn never_recovered() {
        let log = WriterLog {
            acks: steady(10),
            failed: vec![(11, 200 * MS), (12, 300 * MS)],
            ..Default::default()
        };
        let r = rpo(&log, &(1..=10).collect::<Vec<_>>(), 150 * MS);
        assert_eq!(r.write_rto_s, None);
        assert_eq!(r.write_rto_sustained_s, None);
    }

    #[test]
    fn first_ack_after() {
        let log = WriterLog {
            acks: vec![(3, 30), (1, 10), (2, 20)],
            ..Default::default()
        };
        assert_eq!(log.first_ack_after(15), Some(20));
        assert_eq!(log.first_ack_after(31), None);
    }
}
