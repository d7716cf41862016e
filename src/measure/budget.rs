//! Error budget consumed and burn rate (docs/contract.md).

/// Share of the period's error budget the drill consumed, in percent:
/// `(bad/all) × drill duration / ((1 − A) × P) × 100`.
pub(crate) fn budget_consumed_pct(
    bad: u64,
    all: u64,
    drill_s: f64,
    slo: f64,
    period_s: f64,
) -> f64 {
    if all == 0 || slo >= 1.0 || period_s <= 0.0 {
        return 0.0;
    }
    let bad_ratio = bad as f64 / all as f64;
    bad_ratio * drill_s / ((1.0 - slo) * period_s) * 100.0
}

/// How fast a phase burns budget relative to the SLO: `(bad/all) / (1 − A)`.
pub(crate) fn burn_rate(bad: u64, all: u64, slo: f64) -> f64 {
    if all == 0 || slo >= 1.0 {
        return 0.0;
    }
    (bad as f64 / all as f64) / (1.0 - slo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_matches_hand_computation() {
        // 99.95% over 30 days allows 21.6 min of full outage = 1296 s.
        // A 120 s drill with 5% bad requests is 6 s of full outage: 6/1296.
        let pct = budget_consumed_pct(50, 1000, 120.0, 0.9995, 30.0 * 86400.0);
        assert!((pct - 6.0 / 1296.0 * 100.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn burn_rate_is_error_ratio_over_allowed_ratio() {
        assert!((burn_rate(1, 1000, 0.999) - 1.0).abs() < 1e-9);
        assert!((burn_rate(10, 1000, 0.999) - 10.0).abs() < 1e-9);
        assert_eq!(burn_rate(0, 0, 0.999), 0.0);
    }
}
