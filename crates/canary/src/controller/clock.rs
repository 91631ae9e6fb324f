//! The controller's clock: milliseconds since the Unix epoch as read once,
//! at its first use, then advanced by the monotonic clock only. Bakes, holds
//! and step times are measured with it, so a step of the wall clock (NTP
//! correcting a drifted clock, a person's `date -s`, a VM resumed) neither
//! ends a bake early nor stretches it. Its price: after such a step, the
//! times a rollout records differ from the wall clock by the step's size
//! until canary restarts; events and logs keep the wall clock.

use canary_core::time::UnixMs;
use std::sync::OnceLock;
use std::time::Instant;

/// The wall clock and the monotonic clock, read together once.
static ANCHOR: OnceLock<(Instant, UnixMs)> = OnceLock::new();

/// Now, in epoch milliseconds that never jump with the wall clock.
pub fn now_ms() -> UnixMs {
    let (at, wall) = ANCHOR.get_or_init(|| (Instant::now(), crate::store::now()));
    *wall + u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_only_moves_forward_with_the_monotonic_clock() {
        let a = super::now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = super::now_ms();
        assert!((20..1_000).contains(&(b - a)), "{a} -> {b}");
        assert!(
            a.as_millis().abs_diff(crate::store::now().as_millis()) < 60_000,
            "anchored to the wall clock at first use"
        );
    }
}
