//! Statistics over a window of time, merged across workers: counts, error and
//! success rates, requests per second, latency percentiles and per-route figures.

use super::shard::{Shard, ShardData};
use super::slot::{Counts, RouteCounts, Slot, new_histogram};
use super::{RETAINED_SLOTS, SLOT_SECS};
use canary_core::Version;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Which stretch of time to summarise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowSpec {
    /// The last so much time (clamped to the ten minutes retained).
    Last(Duration),
    /// Since an instant (clamped to the ten minutes retained).
    Since(SystemTime),
}

/// One version's statistics over a window.
#[derive(Debug, Clone)]
pub struct ArmStats {
    /// Counts by outcome.
    pub counts: Counts,
    /// Latencies of answered requests, microseconds.
    pub latency: Option<Histogram<u32>>,
    /// Per-route counts by label.
    pub routes: BTreeMap<String, RouteCounts>,
    /// Seconds the window covers (shorter than asked just after start).
    pub seconds: f64,
}

/// Per-route figures for the API.
pub type RouteStats = RouteCounts;

/// Both versions over one window.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Stable at index 0, canary at 1.
    pub arms: [ArmStats; 2],
    /// Seconds covered.
    pub seconds: f64,
}

impl Snapshot {
    /// One version's statistics.
    pub fn arm(&self, v: Version) -> &ArmStats {
        &self.arms[v.index()]
    }

    /// Both versions added together.
    pub fn combined(&self) -> ArmStats {
        let mut all = self.arms[0].clone();
        all.merge(&self.arms[1]);
        all
    }

    /// Adds another snapshot of the same window (another replica's), version
    /// by version; the window's length stays this one's.
    pub fn add(&mut self, o: &Snapshot) {
        for (a, b) in self.arms.iter_mut().zip(&o.arms) {
            a.merge(b);
        }
    }
}

impl ArmStats {
    fn empty(seconds: f64) -> ArmStats {
        ArmStats { counts: Counts::default(), latency: None, routes: BTreeMap::new(), seconds }
    }

    fn merge(&mut self, o: &ArmStats) {
        self.counts.add(&o.counts);
        merge_hist(&mut self.latency, o.latency.as_ref());
        for (k, r) in &o.routes {
            self.routes.entry(k.clone()).or_default().add(r);
        }
    }

    /// Errors (5xx and upstream failures) as a percentage of requests; 0 with no requests.
    pub fn error_rate(&self) -> f64 {
        pct(self.counts.errors(), self.counts.requests)
    }

    /// Requests that were not errors, as a percentage; 100 with no requests.
    pub fn success_rate(&self) -> f64 {
        if self.counts.requests == 0 { 100.0 } else { 100.0 - self.error_rate() }
    }

    /// Requests the upstream answered at all, as a percentage: its availability.
    pub fn availability(&self) -> f64 {
        let answered = self.counts.requests - self.counts.upstream_failures.min(self.counts.requests);
        if self.counts.requests == 0 { 100.0 } else { pct(answered, self.counts.requests) }
    }

    /// Requests per second over the window.
    pub fn rps(&self) -> f64 {
        if self.seconds <= 0.0 { 0.0 } else { self.counts.requests as f64 / self.seconds }
    }

    /// The latency at quantile `q` (0..1) in milliseconds; `None` with no samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let h = self.latency.as_ref().filter(|h| !h.is_empty())?;
        Some(h.value_at_quantile(q) as f64 / 1000.0)
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

fn merge_hist(into: &mut Option<Histogram<u32>>, from: Option<&Histogram<u32>>) {
    let Some(from) = from else { return };
    if into.is_none() {
        *into = new_histogram();
    }
    if let Some(h) = into.as_mut() {
        // Every histogram here is made by `new_histogram` with the same bounds,
        // so adding cannot fail on a range mismatch; it saturates on overflow.
        let _ = h.add(from);
    }
}

/// Merges every shard's slots that fall in `spec`.
pub(super) fn collect(
    shards: &[Arc<Shard>],
    spec: WindowSpec,
    now_tick: u64,
    clock: (Duration, SystemTime),
) -> Snapshot {
    let (uptime, started) = clock;
    let first = first_tick(spec, now_tick, started);
    let seconds = (uptime.as_secs_f64() - (first * SLOT_SECS) as f64).max(0.0);
    let mut arms = [ArmStats::empty(seconds), ArmStats::empty(seconds)];
    for shard in shards {
        let d = shard.lock();
        for v in Version::ALL {
            add_slots(&mut arms[v.index()], &d, v, first..=now_tick);
        }
    }
    Snapshot { arms, seconds }
}

pub(super) fn first_tick(spec: WindowSpec, now_tick: u64, started: SystemTime) -> u64 {
    let oldest = (now_tick + 2).saturating_sub(RETAINED_SLOTS as u64);
    let wanted = match spec {
        WindowSpec::Last(d) => {
            let slots = d.as_secs().div_ceil(SLOT_SECS).max(1);
            (now_tick + 1).saturating_sub(slots)
        }
        WindowSpec::Since(t) => t.duration_since(started).map(|d| d.as_secs() / SLOT_SECS).unwrap_or(0),
    };
    wanted.max(oldest).min(now_tick)
}

/// Each slot from `first` to `last`, merged across shards, one snapshot
/// per slot (a slot nobody was served in is an empty one), oldest first.
pub(super) fn per_slot(shards: &[Arc<Shard>], first: u64, last: u64) -> Vec<(u64, Snapshot)> {
    let secs = SLOT_SECS as f64;
    let mut by_tick: BTreeMap<u64, [ArmStats; 2]> =
        (first..=last).map(|t| (t, [ArmStats::empty(secs), ArmStats::empty(secs)])).collect();
    for shard in shards {
        let d = shard.lock();
        for v in Version::ALL {
            for slot in &d.versions[v.index()] {
                if let Some(arms) = by_tick.get_mut(&slot.tick) {
                    add_slot(&mut arms[v.index()], slot, &d.routes);
                }
            }
        }
    }
    by_tick.into_iter().map(|(t, arms)| (t, Snapshot { arms, seconds: secs })).collect()
}

fn add_slots(arm: &mut ArmStats, d: &ShardData, v: Version, ticks: std::ops::RangeInclusive<u64>) {
    for slot in d.versions[v.index()].iter().filter(|s| ticks.contains(&s.tick)) {
        add_slot(arm, slot, &d.routes);
    }
}

fn add_slot(arm: &mut ArmStats, slot: &Slot, names: &[std::sync::Arc<str>]) {
    arm.counts.add(&slot.counts);
    merge_hist(&mut arm.latency, slot.latency.as_ref());
    for (i, r) in slot.routes.iter().enumerate().filter(|(_, r)| r.requests > 0) {
        let name = names.get(i).map_or("other", |n| n);
        arm.routes.entry(name.to_string()).or_default().add(r);
    }
}
