//! One time slot of one version on one worker: counts by status class,
//! upstream failures, a latency histogram and per-route counts.

use super::MAX_LATENCY_US;
use hdrhistogram::Histogram;

/// Counts by outcome. Serialised as is between replicas (a field a peer's
/// older build lacks reads as 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Requests routed to this version, failed ones included.
    pub requests: u64,
    /// Responses by status class: index 0 is 1xx ... index 4 is 5xx.
    pub by_class: [u64; 5],
    /// Requests the upstream never answered: refused, timed out, reset.
    pub upstream_failures: u64,
    /// Of those failures, the ones replayed on stable: the client never saw them.
    pub recovered: u64,
    /// Answered gRPC calls whose `grpc-status` counts as an error (their
    /// HTTP status is 200, so they are in `by_class` as 2xx too).
    pub grpc_errors: u64,
}

impl Counts {
    /// Adds another set of counts.
    pub fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.upstream_failures += o.upstream_failures;
        self.recovered += o.recovered;
        self.grpc_errors += o.grpc_errors;
        for (a, b) in self.by_class.iter_mut().zip(o.by_class) {
            *a += b;
        }
    }

    /// 5xx responses, upstream failures and failed gRPC calls: what counts
    /// as an error.
    pub fn errors(&self) -> u64 {
        self.by_class[4] + self.upstream_failures + self.grpc_errors
    }

    /// Errors the upstream answered with: 5xx responses and failed gRPC calls.
    pub fn server_errors(&self) -> u64 {
        self.by_class[4] + self.grpc_errors
    }
}

/// Per-route counts within a slot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RouteCounts {
    /// Requests.
    pub requests: u64,
    /// Errors (5xx, upstream failure or failed gRPC call).
    pub errors: u64,
    /// Sum of latencies in microseconds, for the mean.
    pub sum_us: u64,
    /// The slowest request in microseconds.
    pub max_us: u64,
}

impl RouteCounts {
    /// Adds another route's counts.
    pub fn add(&mut self, o: &RouteCounts) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.sum_us += o.sum_us;
        self.max_us = self.max_us.max(o.max_us);
    }
}

/// One slot: which tick it holds, and what happened in it.
#[derive(Debug)]
pub struct Slot {
    /// The slot number held; a slot whose tick is old is stale and reused.
    pub tick: u64,
    /// Counts by outcome.
    pub counts: Counts,
    /// Latencies of answered requests, in microseconds. Allocated on first use
    /// so an idle version costs no memory.
    pub latency: Option<Histogram<u32>>,
    /// Per-route counts, indexed by the shard's route index.
    pub routes: Vec<RouteCounts>,
}

impl Slot {
    /// An empty slot that holds no tick yet.
    pub fn empty() -> Slot {
        Slot { tick: u64::MAX, counts: Counts::default(), latency: None, routes: Vec::new() }
    }

    /// Empties the slot for `tick`, keeping its allocations.
    pub fn reset(&mut self, tick: u64) {
        self.tick = tick;
        self.counts = Counts::default();
        if let Some(h) = self.latency.as_mut() {
            h.reset();
        }
        self.routes.iter_mut().for_each(|r| *r = RouteCounts::default());
    }

    /// Records one latency, allocating the histogram if needed.
    pub fn record_latency(&mut self, us: u64) {
        if self.latency.is_none() {
            self.latency = new_histogram();
        }
        if let Some(h) = self.latency.as_mut() {
            h.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// The counts of route `idx`, growing the table as needed.
    pub fn route_mut(&mut self, idx: usize) -> &mut RouteCounts {
        if self.routes.len() <= idx {
            self.routes.resize(idx + 1, RouteCounts::default());
        }
        &mut self.routes[idx]
    }
}

/// A latency histogram: 1 us to one hour at two significant digits (1% error).
pub fn new_histogram<C: hdrhistogram::Counter>() -> Option<Histogram<C>> {
    // The bounds are constants that satisfy the constructor's rules
    // (low >= 1, high >= 2 * low, sigfig <= 5), so this never returns None.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).ok()
}
