//! The run's one monotonic clock, with the wall-clock time it started so
//! reports can give both (docs/contract.md, "Time and phases").

use std::time::{Duration, Instant, SystemTime};

use crate::base::units::Micros;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    wall: SystemTime,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The clock whose zero is `offset_us` after this one's (earlier when
    /// negative): an agent's view of the runner's clock.
    pub fn shifted(&self, offset_us: i64) -> Clock {
        let d = Duration::from_micros(offset_us.unsigned_abs());
        let (start, wall) = if offset_us >= 0 {
            (self.start + d, self.wall + d)
        } else {
            (
                self.start.checked_sub(d).unwrap_or(self.start),
                self.wall - d,
            )
        };
        Clock { start, wall }
    }

    pub fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    pub fn at(&self, t: Micros) -> Instant {
        self.start + Duration::from_micros(t)
    }

    pub fn since(&self, i: Instant) -> Micros {
        i.saturating_duration_since(self.start).as_micros() as Micros
    }

    /// RFC 3339 UTC wall time of a run-clock instant, millisecond precision.
    pub fn wall(&self, t: Micros) -> String {
        humantime::format_rfc3339_millis(self.wall + Duration::from_micros(t)).to_string()
    }

    /// The run-clock instant of a wall-clock time (0 for one before the
    /// run started).
    pub fn of_wall(&self, t: SystemTime) -> Micros {
        t.duration_since(self.wall)
            .map_or(0, |d| d.as_micros() as Micros)
    }

    pub fn started_at(&self) -> String {
        humantime::format_rfc3339_seconds(self.wall).to_string()
    }

    /// Compact UTC stamp for directory names: 20261121T043609Z.
    pub fn stamp(&self) -> String {
        let s = humantime::format_rfc3339_seconds(self.wall).to_string();
        s.replace(['-', ':'], "")
    }
}
