//! The wall clock, for the instants an outcome is recorded at.
//!
//! [`now`] reads it. [`at`] turns a monotonic instant already in hand (a
//! request's end, read for its latency) into wall time without reading the
//! wall clock again: the request path makes one for every request while
//! the access log is on. It goes by the offset between the two clocks as
//! last read (by [`now`], by [`refresh`], which the access log's writer
//! calls every few milliseconds, or by [`at`] itself when that reading is
//! over a second old), so a step of the wall clock is followed within a
//! second.

use canary_core::time::UnixMs;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

/// The monotonic clock's zero.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Wall-clock milliseconds at [`BASE`], as last read.
static WALL_AT_BASE: AtomicU64 = AtomicU64::new(0);

/// Milliseconds after [`BASE`] of the last read of the wall clock.
static READ_AT: AtomicU64 = AtomicU64::new(0);

/// How old the last reading may be before [`at`] reads the wall clock again.
const FRESH_MS: u64 = 1_000;

/// Now, as the wall clock says (the epoch for a clock set before it).
pub fn now() -> UnixMs {
    let base = *BASE.get_or_init(|| {
        // Both set before anyone can read them: [`at`] never sees a base
        // without its wall time.
        let b = Instant::now();
        WALL_AT_BASE.store(UnixMs::from(SystemTime::now()).as_millis(), Ordering::Relaxed);
        b
    });
    let wall = UnixMs::from(SystemTime::now());
    let since = base.elapsed().as_millis() as u64;
    WALL_AT_BASE.store(wall.as_millis().saturating_sub(since), Ordering::Relaxed);
    READ_AT.store(since, Ordering::Relaxed);
    wall
}

/// Reads the wall clock, so [`at`] follows a step of it.
pub fn refresh() {
    now();
}

/// The wall-clock time of `t`, a monotonic instant of the recent past.
pub fn at(t: Instant) -> UnixMs {
    let Some(base) = BASE.get() else { return now() };
    let since = t.saturating_duration_since(*base).as_millis() as u64;
    if since.saturating_sub(READ_AT.load(Ordering::Relaxed)) > FRESH_MS {
        now();
    }
    UnixMs::from_millis(WALL_AT_BASE.load(Ordering::Relaxed) + since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_instant_reads_as_the_wall_clock_did() {
        let before = now();
        let t = Instant::now();
        let after = now();
        let seen = at(t);
        // Milliseconds are cut, not rounded: one either way.
        assert!(seen.as_millis() + 1 >= before.as_millis() && seen.as_millis() <= after.as_millis() + 1);
        let later = at(t + Duration::from_secs(2));
        assert_eq!(later - seen, 2_000);
    }
}
