//! [`UnixMs`]: an instant as milliseconds since the Unix epoch, the one time
//! type of rollouts, events, the store and the admin API, and the one place
//! where it is converted to and from `SystemTime`, `jiff::Timestamp` and the
//! store's integers. Nothing here reads a clock: the caller passes the time in.
//!
//! It holds a `u64`, not an `i64`: every instant canary records is after the
//! epoch (a clock set before it reads as the epoch), the rollout records have
//! always held unsigned milliseconds, and a difference of two instants is then
//! a plain `u64` of milliseconds. Where a store keeps signed integers (SQLite),
//! [`UnixMs::from_i64`] and [`UnixMs::as_i64`] convert. It is written as the
//! bare number (`serde(transparent)`), so the wire and the stored records are
//! what they were when instants were integers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMs(u64);

impl UnixMs {
    /// The epoch itself.
    pub const EPOCH: UnixMs = UnixMs(0);

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> UnixMs {
        UnixMs(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// From a signed count of milliseconds (as SQLite stores it); a negative
    /// one is the epoch.
    pub fn from_i64(ms: i64) -> UnixMs {
        UnixMs(u64::try_from(ms).unwrap_or(0))
    }

    /// As a signed count of milliseconds (as SQLite stores it).
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// As `jiff`'s timestamp; `None` past jiff's range (year 9999).
    pub fn to_timestamp(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_millisecond(self.as_i64()).ok()
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

/// The wall clock's reading; before the epoch it is the epoch.
impl From<SystemTime> for UnixMs {
    fn from(t: SystemTime) -> UnixMs {
        let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        UnixMs(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A timestamp before the epoch is the epoch.
impl From<jiff::Timestamp> for UnixMs {
    fn from(t: jiff::Timestamp) -> UnixMs {
        UnixMs::from_i64(t.as_millisecond())
    }
}

/// An instant `ms` milliseconds later.
impl Add<u64> for UnixMs {
    type Output = UnixMs;

    fn add(self, ms: u64) -> UnixMs {
        UnixMs(self.0.saturating_add(ms))
    }
}

impl AddAssign<u64> for UnixMs {
    fn add_assign(&mut self, ms: u64) {
        *self = *self + ms;
    }
}

/// The milliseconds from `earlier` to `self`; 0 if `earlier` is later.
impl Sub for UnixMs {
    type Output = u64;

    fn sub(self, earlier: UnixMs) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The bare number, as on the wire.
impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::UnixMs;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn it_is_written_as_the_bare_number() {
        let t = UnixMs::from_millis(1_796_651_558_891);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1796651558891");
        assert_eq!(serde_json::from_str::<UnixMs>("1796651558891").unwrap(), t);
        assert_eq!(format!("{t:015}"), "001796651558891");
    }

    #[test]
    fn conversions_agree() {
        let t = UnixMs::from_millis(1_796_651_558_891);
        assert_eq!(UnixMs::from(t.to_system_time()), t);
        assert_eq!(UnixMs::from(t.to_timestamp().unwrap()), t);
        assert_eq!(UnixMs::from_i64(t.as_i64()), t);
        assert_eq!(UnixMs::from_i64(-5), UnixMs::EPOCH);
        assert_eq!(UnixMs::from(UNIX_EPOCH - Duration::from_secs(1)), UnixMs::EPOCH);
    }

    #[test]
    fn differences_are_milliseconds_and_never_negative() {
        let (a, b) = (UnixMs::from_millis(1_000), UnixMs::from_millis(1_250));
        assert_eq!(b - a, 250);
        assert_eq!(a - b, 0);
        assert_eq!(a + 250, b);
    }
}
