//! The schedule: when each send slot is due, which connection owns it, and
//! the pacer thread that releases the slots on time.

use crate::args::Args;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The pacer's first guess of how long before a slot to wake its connection
/// (a thread's sleep overshoots by tens of microseconds, waking the runtime adds
/// more); it adapts from there.
const FIRST_LEAD: Duration = Duration::from_micros(100);
/// How long after the last slot the backlog may take.
const GRACE: Duration = Duration::from_secs(5);

/// The schedule every connection follows.
pub(crate) struct Plan {
    pub(crate) t0: Instant,
    pub(crate) rate: f64,
    pub(crate) connections: u64,
    pub(crate) record_from: Instant,
    pub(crate) end: Instant,
    pub(crate) hard_end: Instant,
    pub(crate) request: Vec<u8>,
    pub(crate) addr: SocketAddr,
    /// Slots below this one are released: their connection may send them.
    pub(crate) released: AtomicU64,
    /// One per connection: woken when one of its slots is released.
    pub(crate) wake: Vec<Notify>,
    /// How long before its time the pacer releases a slot, in nanoseconds.
    pub(crate) lead_ns: AtomicI64,
}

impl Plan {
    /// When slot `n` is due.
    pub(crate) fn slot(&self, n: u64) -> Instant {
        self.t0 + Duration::from_secs_f64(n as f64 / self.rate)
    }
    pub(crate) fn measured(&self, at: Instant) -> bool {
        at >= self.record_from && at < self.end
    }

    /// The pacer thread: releases the slots in order, each a little before
    /// its time (`lead_ns`), sleeping in between; returns after the last one.
    pub(crate) fn pace(&self) {
        let mut n = 0;
        loop {
            let at = self.slot(n);
            if at >= self.end {
                // Every slot is released: connections still catching up need no more wake-ups.
                self.released.store(u64::MAX, Ordering::Release);
                return;
            }
            let lead = Duration::from_nanos(self.lead_ns.load(Ordering::Relaxed).max(0).unsigned_abs());
            let wake = at.checked_sub(lead).unwrap_or(at);
            let now = Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
            self.released.store(n + 1, Ordering::Release);
            if let Some(w) = self.wake.get((n % self.connections) as usize) {
                w.notify_one();
            }
            n += 1;
        }
    }

    /// Waits (connection `i`) until the pacer releases slot `n`, due at `at`.
    pub(crate) async fn wait_slot(&self, i: usize, n: u64, at: Instant) {
        let mut slept = false;
        while self.released.load(Ordering::Acquire) <= n {
            let Some(w) = self.wake.get(i) else { break };
            // notify_one leaves a permit when nobody waits, so no wake-up is lost
            // between the check above and this wait; a stale permit costs one more turn.
            w.notified().await;
            slept = true;
        }
        if slept {
            // Tune the pacer's lead so that half the wake-ups come before
            // their slot and half after: sends then leave within tens of
            // microseconds of their slot either way, with no busy waiting.
            let step = if Instant::now() > at { 1_000 } else { -1_000 };
            let lead = self.lead_ns.fetch_add(step, Ordering::Relaxed) + step;
            if !(0..=2_000_000).contains(&lead) {
                self.lead_ns.store(lead.clamp(0, 2_000_000), Ordering::Relaxed);
            }
        }
    }
}

/// The schedule for `args`, starting a moment from now.
pub(crate) fn plan(args: &Args, addr: SocketAddr) -> Plan {
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\nx-user-id: u1\r\n\r\n", args.path, args.authority)
        .into_bytes();
    let t0 = Instant::now() + Duration::from_millis(20);
    let record_from = t0 + args.warmup;
    let end = record_from + args.duration;
    Plan {
        t0,
        rate: args.rate,
        connections: args.connections as u64,
        record_from,
        end,
        hard_end: end + GRACE,
        request,
        addr,
        released: AtomicU64::new(0),
        wake: (0..args.connections).map(|_| Notify::new()).collect(),
        lead_ns: AtomicI64::new(FIRST_LEAD.as_nanos() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spread_evenly_over_connections() {
        let t0 = Instant::now();
        let plan = Plan {
            t0,
            rate: 1000.0,
            connections: 4,
            record_from: t0,
            end: t0 + Duration::from_secs(1),
            hard_end: t0 + Duration::from_secs(2),
            request: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            released: AtomicU64::new(0),
            wake: Vec::new(),
            lead_ns: AtomicI64::new(0),
        };
        // Connection 1 owns slots 1, 5, 9: 4 ms apart, 1 ms after connection 0's.
        assert_eq!(plan.slot(1) - t0, Duration::from_millis(1));
        assert_eq!(plan.slot(5) - plan.slot(1), Duration::from_millis(4));
    }
}
