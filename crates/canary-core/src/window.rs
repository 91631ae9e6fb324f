//! The recent window the rollback judge looks at: the shortest run of the
//! latest ticks that holds at least `min_requests` canary requests (up to a
//! maximum length). Sized by samples rather than time, it is about one second
//! at 100 canary requests/s and longer at low traffic, so a rollback is never
//! decided on a handful of requests and never waits longer than it must.

use crate::judge::{ArmWindow, Observation};
use hdrhistogram::Histogram;
use std::collections::VecDeque;

/// Per-tick statistics of both versions, newest last.
#[derive(Debug, Clone, Default)]
pub struct TickRing {
    ticks: VecDeque<Observation>,
    max_ticks: usize,
}

impl TickRing {
    /// A ring keeping at most `max_ticks` ticks.
    pub fn new(max_ticks: usize) -> TickRing {
        TickRing { ticks: VecDeque::with_capacity(max_ticks), max_ticks: max_ticks.max(1) }
    }

    /// Adds one tick's statistics.
    pub fn push(&mut self, tick: Observation) {
        if self.ticks.len() == self.max_ticks {
            self.ticks.pop_front();
        }
        self.ticks.push_back(tick);
    }

    /// Forgets everything (the share changed: older ticks describe another mix).
    pub fn clear(&mut self) {
        self.ticks.clear();
    }

    /// The newest ticks merged, as few as hold `min_requests` canary requests
    /// (all of them if the ring never gets there).
    pub fn recent(&self, min_requests: u64) -> Observation {
        let mut out = Observation::default();
        for t in self.ticks.iter().rev() {
            merge(&mut out.stable, &t.stable);
            merge(&mut out.canary, &t.canary);
            if out.canary.requests >= min_requests {
                break;
            }
        }
        out
    }
}

/// Adds `from` into `into`; resources keep the newest reported values.
pub fn merge(into: &mut ArmWindow, from: &ArmWindow) {
    into.requests += from.requests;
    into.errors += from.errors;
    into.server_errors += from.server_errors;
    into.recovered += from.recovered;
    for (route, n) in &from.routes {
        // Most routes are there already: look up before allocating a key.
        match into.routes.get_mut(route) {
            Some(c) => c.add(n),
            None => {
                into.routes.insert(route.clone(), *n);
            }
        }
    }
    if let Some(h) = &from.latency {
        match into.latency.as_mut() {
            // Same bounds on both sides in practice; a mismatch would only lose
            // latency samples, never counts, so it is not an error worth raising.
            Some(acc) => {
                let _ = acc.add(h);
            }
            None => into.latency = Some(h.clone()),
        }
    }
    // A level, not a count: the latest reading stands.
    if from.health.is_some() {
        into.health.clone_from(&from.health);
    }
    if into.resources == Default::default() {
        into.resources = from.resources;
    }
}

/// A latency histogram with the bounds canary uses everywhere: 1 us to 1 h, 2 digits.
pub fn latency_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(canary: u64) -> Observation {
        Observation {
            canary: ArmWindow { requests: canary, errors: 1, ..ArmWindow::default() },
            ..Observation::default()
        }
    }

    #[test]
    fn takes_as_few_ticks_as_reach_the_minimum() {
        let mut r = TickRing::new(40);
        for n in [50, 50, 30, 30, 30, 30] {
            r.push(tick(n));
        }
        let w = r.recent(100);
        assert_eq!((w.canary.requests, w.canary.errors), (120, 4));
        assert_eq!(r.recent(10_000).canary.requests, 220, "all when short of the minimum");
    }

    #[test]
    fn forgets_the_oldest() {
        let mut r = TickRing::new(2);
        for n in [1, 2, 3] {
            r.push(tick(n));
        }
        assert_eq!(r.recent(u64::MAX).canary.requests, 5);
    }
}
