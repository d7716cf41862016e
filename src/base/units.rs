//! Human units in scenario files: durations (`250ms`, `90s`, `1m30s`) and
//! percentages (`99.95%`). Parse errors carry a hint the diagnostic shows.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A duration written with units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn micros(self) -> u64 {
        self.0.as_micros() as u64
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

pub fn parse_duration(s: &str) -> Result<Dur, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. `90s`, `250ms` or `1m30s`".into());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "`{t}` is not a duration; write e.g. `90s`, `250ms` or `1m30s`"
            ));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{}` is not a number", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(format!("`{t}` has no unit; write e.g. `{t}s` or `{t}ms`")),
            u => {
                return Err(format!(
                    "unknown unit `{u}` in `{t}`; use us, ms, s, m, h or d"
                ));
            }
        };
        total += n * scale;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("`{t}` is out of range"));
    }
    Ok(Dur(Duration::from_secs_f64(total)))
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        if us == 0 {
            return write!(f, "0s");
        }
        if us.is_multiple_of(1_000_000) {
            let s = us / 1_000_000;
            return match (s / 86400, s % 86400) {
                (d, 0) if d > 0 => write!(f, "{d}d"),
                _ if s >= 60 && s.is_multiple_of(60) && s < 86400 => write!(f, "{}m", s / 60),
                _ if s > 60 => write!(f, "{}m{}s", s / 60, s % 60),
                _ => write!(f, "{s}s"),
            };
        }
        if us.is_multiple_of(1000) {
            return write!(f, "{}ms", us / 1000);
        }
        write!(f, "{}us", us)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"90s\", \"250ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "durations need a unit: write \"{v}s\" or \"{v}ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!("durations need a unit: write \"{v}s\"")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A percentage, held as a fraction (`"99.95%"` → 0.9995).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

pub fn parse_percent(s: &str) -> Result<Percent, String> {
    let t = s.trim();
    let Some(num) = t.strip_suffix('%') else {
        return Err(format!("`{t}` is not a percentage; write e.g. \"99.95%\""));
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a percentage; write e.g. \"99.95%\""))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("`{t}` is outside 0%..100%"));
    }
    Ok(Percent(v / 100.0))
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", fmt_pct(self.0 * 100.0))
    }
}

/// Up to three decimals, trailing zeros trimmed: 99.95, 100, 0.5.
pub fn fmt_pct(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage string such as \"99.95%\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
                parse_percent(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                Err(E::custom(format!("write percentages as strings: \"{v}%\"")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                Err(E::custom(format!("write percentages as strings: \"{v}%\"")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A threshold whose unit depends on the check: a duration, a percentage or
/// a plain count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantity {
    Duration(Dur),
    Percent(Percent),
    Count(u64),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Duration(d) => d.fmt(f),
            Quantity::Percent(p) => p.fmt(f),
            Quantity::Count(n) => n.fmt(f),
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration (\"30s\"), a percentage (\"99.9%\") or a whole number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                if v.trim_end().ends_with('%') {
                    parse_percent(v).map(Quantity::Percent).map_err(E::custom)
                } else {
                    parse_duration(v).map(Quantity::Duration).map_err(E::custom)
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(Quantity::Count)
                    .map_err(|_| E::custom("a count cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Microseconds on the run's monotonic clock (0 = run start).
pub type Micros = u64;

/// Microseconds as seconds.
pub fn secs(us: Micros) -> f64 {
    us as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_the_forms_users_write() {
        assert_eq!(parse_duration("250ms").unwrap(), Dur::millis(250));
        assert_eq!(parse_duration("90s").unwrap(), Dur::secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), Dur::secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Dur::millis(1500));
        assert_eq!(parse_duration("30d").unwrap(), Dur::secs(30 * 86400));
        assert!(parse_duration("90").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn durations_print_back_readably() {
        for s in ["250ms", "90s", "1m30s", "5m", "30d", "0s"] {
            assert_eq!(
                parse_duration(s).unwrap().to_string(),
                if s == "90s" {
                    "1m30s".into()
                } else {
                    s.to_string()
                }
            );
        }
    }

    #[test]
    fn percentages_are_fractions() {
        assert!((parse_percent("99.95%").unwrap().0 - 0.9995).abs() < 1e-12);
        assert_eq!(parse_percent("100%").unwrap().0, 1.0);
        assert!(parse_percent("99.95").is_err());
        assert!(parse_percent("101%").unwrap_err().contains("outside"));
        assert_eq!(Percent(0.9995).to_string(), "99.95%");
    }
}
