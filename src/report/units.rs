//! How measured values read in the reports: each unit with the precision
//! its measurement has, trailing zeros trimmed, nothing rounded up to 100 %.

use crate::results::Unit;

/// A value in a check's unit: `3.21 s`, `12.3 ms`, `99.95 %`, `42`.
pub(super) fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Seconds => secs(v),
        Unit::Millis => ms(v),
        Unit::Percent => pct(v),
        Unit::Ratio => pct(v * 100.0),
        Unit::Count if v.is_finite() => format!("{}", v.round()),
        Unit::Unitless | Unit::Count => num(v, 3),
    }
}

pub(super) fn secs(v: f64) -> String {
    format!("{} s", num(v, 3))
}

pub(super) fn ms(v: f64) -> String {
    format!("{} ms", sig3(v))
}

pub(super) fn pct(v: f64) -> String {
    match num(v, 3) {
        // 99.9996 % of requests good is not all of them.
        s if s == "100" && v < 100.0 => ">99.999 %".into(),
        s => format!("{s} %"),
    }
}

/// Run-clock time as the fault timeline shows it: `t+12.345 s`.
pub(super) fn clock(t: f64) -> String {
    if t.is_finite() {
        format!("t+{t:.3} s")
    } else {
        "—".into()
    }
}

/// At most `decimals` decimals, trailing zeros trimmed: 41.2, 30, 0.004.
pub(super) fn num(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" { "0".into() } else { s.into() }
}

/// Three significant digits, never hiding integer digits: latencies come
/// from an HDR histogram with that precision (12.3, 2.13, 2000).
pub(super) fn sig3(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        (2 - a.log10().floor() as i32).clamp(0, 6) as usize
    };
    num(v, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_by_unit() {
        assert_eq!(value(3.2149, Unit::Seconds), "3.215 s");
        assert_eq!(value(30.0, Unit::Seconds), "30 s");
        assert_eq!(value(12.345, Unit::Millis), "12.3 ms");
        assert_eq!(value(0.0123, Unit::Millis), "0.0123 ms");
        assert_eq!(value(2000.4, Unit::Millis), "2000 ms");
        assert_eq!(value(99.95, Unit::Percent), "99.95 %");
        assert_eq!(value(99.99951, Unit::Percent), ">99.999 %");
        assert_eq!(value(100.0, Unit::Percent), "100 %");
        assert_eq!(value(0.9995, Unit::Ratio), "99.95 %");
        assert_eq!(value(17.6, Unit::Count), "18");
        assert_eq!(value(f64::NAN, Unit::Count), "n/a");
        assert_eq!(value(1.5, Unit::Unitless), "1.5");
        assert_eq!(value(f64::NAN, Unit::Seconds), "n/a s");
        assert_eq!(num(-0.0001, 3), "0");
    }
}
