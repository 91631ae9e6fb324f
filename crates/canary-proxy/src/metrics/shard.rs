//! One worker's measurements: a ring of time slots per version, its own route
//! index, in-flight and upgraded-connection gauges, a short list of recent
//! errors, and its part of the request log (see `requests`).
//!
//! Only its worker writes to a shard; readers (the admin API) lock it briefly
//! to copy what they need. So the lock is uncontended on the hot path, and no
//! lock is shared between workers.

use super::slot::{Counts, RouteCounts, Slot, new_histogram};
use super::{RETAINED_SLOTS, SLOT_SECS};
use crate::requests::{self, Filter, Found, Keep, Log, Record};
use canary_core::Version;
use canary_core::judge::RouteCount;
use canary_core::time::UnixMs;
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// How many recent errors each worker keeps.
const RECENT_ERRORS: usize = 50;

/// The per-route slow bar until the controller sets it: the seed's p95 bar, 200 ms.
const DEFAULT_ROUTE_SLOW_US: u64 = 200_000;

/// The label every route past the cap is counted under.
pub const OTHER_ROUTE: &str = "other";

/// What happened to one request, recorded when its response ends.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The version that was tried.
    pub version: Version,
    /// The route index from [`Shard::route_index`].
    pub route: u16,
    /// The status sent to the client, if the upstream answered.
    pub status: Option<u16>,
    /// Whether the upstream failed to answer (refused, timed out, reset).
    pub failure: bool,
    /// Whether a gRPC call ended with a `grpc-status` that counts as an
    /// error (see `proxy::grpc`), though its HTTP status was 200.
    pub grpc_error: bool,
    /// Microseconds from the request's arrival to the end of the response.
    pub latency_us: u64,
}

/// One recent error, as listed by `jq '.recent_errors'`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: UnixMs,
    /// The version that failed.
    pub version: Version,
    /// The request method.
    pub method: String,
    /// The request path (cut to 200 bytes).
    pub path: String,
    /// The status, when the upstream answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: String,
}

#[derive(Debug)]
pub(super) struct ShardData {
    pub(super) versions: [Vec<Slot>; 2],
    pub(super) routes: Vec<std::sync::Arc<str>>,
    // Looked up on every request: a fast non-cryptographic hash is enough, the
    // labels are bounded by `max_routes` so flooding them gains nothing.
    route_ids: FxHashMap<Box<str>, u16>,
    max_routes: usize,
    pub(super) errors: VecDeque<ErrorRecord>,
    pub(super) totals: [Totals; 2],
}

/// Everything since the server started, for Prometheus counters.
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) counts: Counts,
    pub(super) latency: Option<Histogram<u64>>,
    pub(super) sum_us: u64,
    /// Requests and errors by this shard's route index, for the per-route judge.
    pub(super) routes: Vec<RouteCount>,
}

/// Totals since start, merged across workers.
#[derive(Debug, Default, Clone)]
pub struct TotalsSnapshot {
    /// Counts by outcome.
    pub counts: Counts,
    /// Latencies of answered requests, microseconds.
    pub latency: Option<Histogram<u64>>,
    /// Sum of those latencies, microseconds.
    pub sum_us: u64,
    /// Requests and errors by route label.
    pub routes: BTreeMap<String, RouteCount>,
}

/// One worker's measurements.
#[derive(Debug)]
pub struct Shard {
    data: Mutex<ShardData>,
    /// Answered requests slower than this count as slow on their route (the
    /// per-route latency test); set from `[policy] max_p95_ms`.
    route_slow_us: AtomicU64,
    in_flight: [AtomicI64; 2],
    upgraded: [AtomicI64; 2],
    started: Instant,
    /// The request log's part of this worker, under a lock of its own:
    /// taken only for a request that is kept.
    log: Mutex<Log>,
    /// The sampling draw's state (xorshift), this worker's alone.
    draw: AtomicU64,
    /// A draw below this keeps a successful request.
    sample: u64,
}

/// One open upgraded connection (a WebSocket, say) on a version, counted in
/// [`Shard::upgraded`] for as long as this lives.
#[derive(Debug)]
pub struct UpgradedGuard {
    shard: std::sync::Arc<Shard>,
    version: Version,
}

impl Drop for UpgradedGuard {
    fn drop(&mut self) {
        self.shard.upgraded[self.version.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shard {
    /// An empty shard keeping at most `max_routes` route labels, for worker
    /// `worker` of `workers`, whose request log keeps its part of `keep`.
    pub fn new(max_routes: usize, started: Instant, keep: &Keep, (worker, workers): (usize, usize)) -> Shard {
        let ring = || (0..RETAINED_SLOTS).map(|_| Slot::empty()).collect();
        let data = ShardData {
            versions: [ring(), ring()],
            routes: vec![OTHER_ROUTE.into()],
            route_ids: FxHashMap::default(),
            max_routes,
            errors: VecDeque::with_capacity(RECENT_ERRORS),
            totals: Default::default(),
        };
        Shard {
            data: Mutex::new(data),
            route_slow_us: AtomicU64::new(DEFAULT_ROUTE_SLOW_US),
            in_flight: Default::default(),
            upgraded: Default::default(),
            started,
            log: Mutex::new(Log::new(keep, worker, workers)),
            // Any odd start will do; each worker's differs so they do not
            // draw in step.
            draw: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ ((worker as u64) << 1 | 1)),
            sample: requests::threshold(keep.sample),
        }
    }

    /// Whether a successful request goes into the request log's sample: a
    /// draw of xorshift64*, a few instructions and no shared state.
    pub fn sampled(&self) -> bool {
        let mut x = self.draw.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.draw.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) < self.sample
    }

    /// The label of this shard's route `i`.
    pub fn route_label(&self, i: u16) -> std::sync::Arc<str> {
        self.lock().routes.get(usize::from(i)).map_or_else(|| OTHER_ROUTE.into(), std::sync::Arc::clone)
    }

    /// Keeps a request's record in the request log.
    pub fn keep(&self, r: Record) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).push(r);
    }

    /// Adds the request log's records `f` asks for to `out`.
    pub fn read_log(&self, f: &Filter, now: canary_core::time::UnixMs, out: &mut Found) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).read(f, now, out);
    }

    /// The index of route `label`, adding it while under the cap, else
    /// `other` (0); with the label as the shard keeps it when `named` (for
    /// a request whose entry will be made: no second lookup then).
    pub fn route_named(&self, label: &str, named: bool) -> (u16, Option<std::sync::Arc<str>>) {
        let mut d = self.lock();
        let i = Shard::index_in(&mut d, label);
        let name = named
            .then(|| d.routes.get(usize::from(i)).map_or_else(|| OTHER_ROUTE.into(), std::sync::Arc::clone));
        (i, name)
    }

    /// The index of route `label`, adding it while under the cap, else `other` (0).
    pub fn route_index(&self, label: &str) -> u16 {
        Shard::index_in(&mut self.lock(), label)
    }

    fn index_in(d: &mut ShardData, label: &str) -> u16 {
        if let Some(&i) = d.route_ids.get(label) {
            return i;
        }
        if d.routes.len() > d.max_routes {
            return 0;
        }
        // Under the cap, which is far below u16::MAX by construction of the config.
        let i = u16::try_from(d.routes.len()).unwrap_or(0);
        d.routes.push(label.into());
        d.route_ids.insert(label.into(), i);
        i
    }

    /// Sets the latency above which a request counts as slow on its route.
    pub fn set_route_slow_us(&self, us: u64) {
        self.route_slow_us.store(us, Ordering::Relaxed);
    }

    /// Records one finished request at `now`.
    pub fn record(&self, o: Outcome, now: Instant) {
        let tick = now.saturating_duration_since(self.started).as_secs() / SLOT_SECS;
        let slow_us = self.route_slow_us.load(Ordering::Relaxed);
        let mut d = self.lock();
        record_totals(&mut d.totals[o.version.index()], &o, slow_us);
        let slot = slot_for(&mut d.versions[o.version.index()], tick);
        count(&mut slot.counts, &o);
        if o.status.is_some() {
            slot.record_latency(o.latency_us);
        }
        let is_error = o.failure || o.grpc_error || o.status.is_some_and(|s| s >= 500);
        add_route(slot.route_mut(usize::from(o.route)), o.latency_us, is_error);
    }

    /// Notes that a failure just recorded on `v` was replayed on stable, so
    /// the client never saw it (the failure still counts against `v`).
    pub fn record_recovered(&self, v: Version, now: Instant) {
        let tick = now.saturating_duration_since(self.started).as_secs() / SLOT_SECS;
        let mut d = self.lock();
        d.totals[v.index()].counts.recovered += 1;
        slot_for(&mut d.versions[v.index()], tick).counts.recovered += 1;
    }

    /// Remembers an error for `recent_errors`, dropping the oldest past the bound.
    pub fn record_error(&self, e: ErrorRecord) {
        let mut d = self.lock();
        if d.errors.len() == RECENT_ERRORS {
            d.errors.pop_front();
        }
        d.errors.push_back(e);
    }

    /// Counts a request as started on `v`; pair with [`Shard::end`].
    pub fn begin(&self, v: Version) {
        self.in_flight[v.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request on `v` as finished.
    pub fn end(&self, v: Version) {
        self.in_flight[v.index()].fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests in flight for each version.
    pub fn in_flight(&self) -> [i64; 2] {
        [self.in_flight[0].load(Ordering::Relaxed), self.in_flight[1].load(Ordering::Relaxed)]
    }

    /// Counts an upgraded connection on `v` as open until the guard drops.
    pub fn upgraded_open(self: &std::sync::Arc<Self>, v: Version) -> UpgradedGuard {
        self.upgraded[v.index()].fetch_add(1, Ordering::Relaxed);
        UpgradedGuard { shard: std::sync::Arc::clone(self), version: v }
    }

    /// Upgraded connections open now for each version.
    pub fn upgraded(&self) -> [i64; 2] {
        [self.upgraded[0].load(Ordering::Relaxed), self.upgraded[1].load(Ordering::Relaxed)]
    }

    /// Adds this shard's totals into `out`.
    pub fn add_totals(&self, out: &mut [TotalsSnapshot; 2]) {
        let d = self.lock();
        for (o, t) in out.iter_mut().zip(&d.totals) {
            o.counts.add(&t.counts);
            o.sum_us += t.sum_us;
            // Route indexes are this shard's own: merge by label.
            for (i, n) in t.routes.iter().enumerate().filter(|(_, n)| n.requests > 0) {
                let label = d.routes.get(i).map_or(OTHER_ROUTE, |l| &**l);
                o.routes.entry(label.to_string()).or_default().add(n);
            }
            if let Some(h) = &t.latency {
                if o.latency.is_none() {
                    o.latency = new_histogram();
                }
                if let Some(merged) = o.latency.as_mut() {
                    // Same bounds everywhere (see `new_histogram`), so this cannot fail.
                    let _ = merged.add(h);
                }
            }
        }
    }

    /// A copy of the recent errors.
    pub fn recent_errors(&self) -> Vec<ErrorRecord> {
        self.lock().errors.iter().cloned().collect()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ShardData> {
        // A panic while holding the lock leaves counts that are still valid
        // numbers, so measurement goes on rather than failing every request.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn slot_for(ring: &mut [Slot], tick: u64) -> &mut Slot {
    // RETAINED_SLOTS is a small constant, so the cast and modulo are exact.
    let slot = &mut ring[(tick % RETAINED_SLOTS as u64) as usize];
    if slot.tick != tick {
        slot.reset(tick);
    }
    slot
}

fn count(c: &mut Counts, o: &Outcome) {
    c.requests += 1;
    if let Some(s) = o.status {
        c.by_class[class_index(s)] += 1;
    }
    c.upstream_failures += u64::from(o.failure || o.status.is_none());
    // Only answered calls: a failure or a 5xx is an error already.
    c.grpc_errors += u64::from(o.grpc_error && !o.failure && o.status.is_some_and(|s| s < 500));
}

fn record_totals(t: &mut Totals, o: &Outcome, slow_us: u64) {
    count(&mut t.counts, o);
    let i = usize::from(o.route);
    if t.routes.len() <= i {
        t.routes.resize(i + 1, RouteCount::default());
    }
    t.routes[i].requests += 1;
    t.routes[i].errors += u64::from(o.failure || o.grpc_error || o.status.is_none_or(|s| s >= 500));
    if o.status.is_some() {
        t.routes[i].slow += u64::from(o.latency_us > slow_us);
        if t.latency.is_none() {
            t.latency = new_histogram();
        }
        if let Some(h) = t.latency.as_mut() {
            h.saturating_record(o.latency_us.clamp(1, super::MAX_LATENCY_US));
        }
        t.sum_us += o.latency_us;
    }
}

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

fn add_route(r: &mut RouteCounts, us: u64, is_error: bool) {
    r.requests += 1;
    r.errors += u64::from(is_error);
    r.sum_us += us;
    r.max_us = r.max_us.max(us);
}
