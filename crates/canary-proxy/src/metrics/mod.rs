//! What the proxy measures, per version and per route, and the windows it answers.
//!
//! # Layout
//! - [`slot`]: one time slot's counts, latency histogram and per-route counts.
//! - [`shard`]: one worker's ring of slots; the hot path records into its own
//!   shard only, under a lock no other worker takes.
//! - [`window`]: merges the shards' slots over a window (1, 5, 10 minutes, or
//!   since an instant) into per-version statistics.
//! - [`prometheus`]: the text exposition for `GET /metrics`.
//! - [`reading`]: a window with the gauges and recent errors, as
//!   `/api/v2/metrics` answers it, and the sum of several replicas' readings.
//!
//! Data enters through [`Shard::record`] (one call per finished request) and
//! leaves through [`Metrics::window`]. Time is counted in slots of
//! [`SLOT_SECS`] seconds since the server started.

pub mod prometheus;
pub mod reading;
pub mod shard;
pub mod slot;
pub mod window;

pub use reading::Reading;
pub use shard::{ErrorRecord, Outcome, Shard, UpgradedGuard};
pub use window::{ArmStats, RouteStats, Snapshot, WindowSpec};

use crate::requests::{Filter, Found, Keep};
use canary_core::time::UnixMs;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The length of one time slot. Windows are whole slots, so "since T" is exact
/// to within one slot.
pub const SLOT_SECS: u64 = 5;

/// How much history each shard keeps: ten minutes, plus the slot being filled
/// and one spare so the oldest slot is never overwritten while it is read.
pub const RETAINED_SLOTS: usize = (600 / SLOT_SECS as usize) + 2;

/// The longest latency recorded exactly, in microseconds; longer ones count as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The measurements of all workers.
#[derive(Debug)]
pub struct Metrics {
    shards: Vec<Arc<Shard>>,
    started: Instant,
    started_wall: SystemTime,
}

impl Metrics {
    /// One shard per worker, each keeping at most `max_routes` route labels,
    /// and a request log of the default size.
    pub fn new(workers: usize, max_routes: usize) -> Metrics {
        Metrics::keeping(workers, max_routes, &Keep::default())
    }

    /// One shard per worker, each keeping at most `max_routes` route labels,
    /// and a request log keeping `keep` in all.
    pub fn keeping(workers: usize, max_routes: usize, keep: &Keep) -> Metrics {
        let started = Instant::now();
        let n = workers.max(1);
        let shards = (0..n).map(|i| Arc::new(Shard::new(max_routes, started, keep, (i, n)))).collect();
        Metrics { shards, started, started_wall: SystemTime::now() }
    }

    /// The request log's records `f` asks for, as of `now`, oldest first,
    /// at most the newest `limit`.
    pub fn requests(&self, f: &Filter, now: UnixMs, limit: usize) -> Found {
        let mut found = Found::default();
        self.shards.iter().for_each(|s| s.read_log(f, now, &mut found));
        found.finish(limit);
        found
    }

    /// Worker `i`'s shard.
    pub fn shard(&self, i: usize) -> Arc<Shard> {
        Arc::clone(&self.shards[i % self.shards.len()])
    }

    /// The slot number of `now`.
    pub fn tick(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / SLOT_SECS
    }

    /// Time since the server started.
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The wall-clock time the server started.
    pub fn started_wall(&self) -> SystemTime {
        self.started_wall
    }

    /// Each complete slot since `since` (within the ten minutes retained),
    /// merged across workers, with the wall-clock time it ended: a chart's
    /// past, for a page opened mid-rollout.
    pub fn slots(&self, since: SystemTime, now: Instant) -> Vec<(SystemTime, Snapshot)> {
        let now_tick = self.tick(now);
        let Some(last) = now_tick.checked_sub(1) else { return Vec::new() };
        let first = window::first_tick(WindowSpec::Since(since), now_tick, self.started_wall);
        let end = |tick: u64| self.started_wall + Duration::from_secs((tick + 1) * SLOT_SECS);
        window::per_slot(&self.shards, first, last).into_iter().map(|(t, s)| (end(t), s)).collect()
    }

    /// Statistics over `spec`, merged across workers.
    pub fn window(&self, spec: WindowSpec, now: Instant) -> Snapshot {
        window::collect(&self.shards, spec, self.tick(now), (self.uptime(now), self.started_wall))
    }

    /// Everything since the server started, per version, merged across workers.
    pub fn totals(&self) -> [shard::TotalsSnapshot; 2] {
        let mut out: [shard::TotalsSnapshot; 2] = Default::default();
        for s in &self.shards {
            s.add_totals(&mut out);
        }
        out
    }

    /// Sets the latency above which a request counts as slow on its route,
    /// in every worker's shard.
    pub fn set_route_slow_ms(&self, ms: f64) {
        let us = (ms * 1000.0).clamp(1.0, MAX_LATENCY_US as f64) as u64;
        self.shards.iter().for_each(|s| s.set_route_slow_us(us));
    }

    /// Requests in flight for each version, summed across workers.
    pub fn in_flight(&self) -> [i64; 2] {
        self.shards.iter().fold([0, 0], |acc, s| {
            let f = s.in_flight();
            [acc[0] + f[0], acc[1] + f[1]]
        })
    }

    /// Upgraded connections (WebSockets...) open now for each version,
    /// summed across workers.
    pub fn upgraded(&self) -> [i64; 2] {
        self.shards.iter().fold([0, 0], |acc, s| {
            let u = s.upgraded();
            [acc[0] + u[0], acc[1] + u[1]]
        })
    }

    /// The most recent errors, newest first, at most `limit`.
    pub fn recent_errors(&self, limit: usize) -> Vec<ErrorRecord> {
        let mut all: Vec<ErrorRecord> = self.shards.iter().flat_map(|s| s.recent_errors()).collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        all.truncate(limit);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::Version;

    fn served(version: Version) -> Outcome {
        Outcome { version, route: 0, status: Some(200), failure: false, grpc_error: false, latency_us: 1_000 }
    }

    #[test]
    fn each_complete_slot_is_read_on_its_own_with_the_time_it_ended() {
        let m = Metrics::new(2, 10);
        let at = |secs: u64| m.started + Duration::from_secs(secs);
        m.shard(0).record(served(Version::Canary), at(1));
        m.shard(1).record(served(Version::Canary), at(6));
        m.shard(0).record(served(Version::Stable), at(7));
        // The slot being filled (the third) is left out.
        m.shard(0).record(served(Version::Canary), at(11));
        let slots = m.slots(m.started_wall, at(12));
        let counts: Vec<[u64; 2]> = slots
            .iter()
            .map(|(_, s)| [s.arm(Version::Stable).counts.requests, s.arm(Version::Canary).counts.requests])
            .collect();
        assert_eq!(counts, vec![[0, 1], [1, 1]]);
        let ends: Vec<SystemTime> = slots.iter().map(|(end, _)| *end).collect();
        assert_eq!(
            ends,
            vec![m.started_wall + Duration::from_secs(5), m.started_wall + Duration::from_secs(10)]
        );
        assert!(m.slots(m.started_wall, at(3)).is_empty(), "no slot is complete yet");
    }
}
