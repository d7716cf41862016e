//! Which pods a `delete` fault takes: all, `count` of them, or a share,
//! chosen with the run's seed so a drill can be replayed pod for pod.
//! The generator is spelled out here (splitmix64 and Fisher–Yates) rather
//! than borrowed, so the choice for a seed does not change with a crate upgrade.

/// How many pods to take out of `n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Amount {
    All,
    Count(u32),
    /// A share in 0..=1; rounded up, so any share above zero takes one pod.
    Share(f64),
}

impl Amount {
    pub(crate) fn of(self, n: usize) -> usize {
        match self {
            Amount::All => n,
            Amount::Count(c) => (c as usize).min(n),
            Amount::Share(p) => ((n as f64 * p.clamp(0.0, 1.0)).ceil() as usize).min(n),
        }
    }
}

/// Picks `amount` of `names`, deterministically for a given seed and salt
/// (the fault's name, so two faults of one run pick independently). The
/// choice does not depend on the order the API listed the pods in.
pub(crate) fn choose(names: &[String], amount: Amount, seed: u64, salt: &str) -> Vec<String> {
    let mut sorted: Vec<String> = names.to_vec();
    sorted.sort();
    sorted.dedup();
    let take = amount.of(sorted.len());
    let mut state = seed ^ fnv1a(salt);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // Partial Fisher–Yates: the first `take` slots are the sample.
    for i in 0..take {
        let j = i + (next() % (sorted.len() - i) as u64) as usize;
        sorted.swap(i, j);
    }
    sorted.truncate(take);
    sorted.sort();
    sorted
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("reviews-v1-{i:02}")).collect()
    }

    #[test]
    fn amounts_round_up_and_never_exceed_what_exists() {
        assert_eq!(Amount::All.of(3), 3);
        assert_eq!(Amount::Count(5).of(3), 3);
        assert_eq!(Amount::Count(2).of(3), 2);
        assert_eq!(Amount::Share(0.5).of(3), 2);
        assert_eq!(Amount::Share(0.01).of(3), 1);
        assert_eq!(Amount::Share(0.0).of(3), 0);
    }

    #[test]
    fn the_same_seed_picks_the_same_pods_whatever_the_listing_order() {
        let a = choose(&pods(10), Amount::Count(3), 42, "delete-reviews");
        let mut reversed = pods(10);
        reversed.reverse();
        assert_eq!(a, choose(&reversed, Amount::Count(3), 42, "delete-reviews"));
        assert_eq!(a.len(), 3);
        // Pinned: a change here changes which pods users' replays delete.
        assert_eq!(a, ["reviews-v1-03", "reviews-v1-06", "reviews-v1-07"]);
    }

    #[test]
    fn different_seeds_or_faults_spread_over_the_pods() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            for p in choose(&pods(10), Amount::Count(1), seed, "f") {
                seen.insert(p);
            }
        }
        assert!(seen.len() >= 8, "only {seen:?} ever chosen");
        let differ = (0..20).any(|s| {
            choose(&pods(10), Amount::Count(2), s, "a")
                != choose(&pods(10), Amount::Count(2), s, "b")
        });
        assert!(differ);
    }
}
