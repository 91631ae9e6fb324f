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
    /// One shard per worker, each keeping at most `max_routes` route labels.
    pub fn new(workers: usize, max_routes: usize) -> Metrics {
        let started = Instant::now();
        let shards = (0..workers.max(1)).map(|_| Arc::new(Shard::new(max_routes, started))).collect();
        Metrics { shards, started, started_wall: SystemTime::now() }
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
