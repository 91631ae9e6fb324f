//! The routing snapshot the workers read: the routing table and the two
//! upstreams, each behind an `ArcSwap` (a load is a few atomic operations and
//! never blocks), and a counter of the canary's rollbacks that open tunnels
//! to the canary watch to close on one.
//!
//! The data plane only reads it. The control plane decides what goes in
//! (persisting it first) and [`Routes::publish`]es it.

use arc_swap::{ArcSwap, Guard};
use canary_core::upstream::Upstream;
use canary_core::{RoutingTable, Version};
use std::sync::Arc;
use tokio::sync::watch;

/// The two upstreams, replaced together.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstreams {
    /// Stable.
    pub stable: Upstream,
    /// Canary, if configured.
    pub canary: Option<Upstream>,
}

impl Upstreams {
    /// The version that serves a request routed to `version`, and its
    /// upstream: stable when there is no canary upstream.
    pub fn serving(&self, version: Version) -> (Version, &Upstream) {
        match (version, &self.canary) {
            (Version::Canary, Some(c)) => (Version::Canary, c),
            _ => (Version::Stable, &self.stable),
        }
    }
}

/// What the workers route by.
#[derive(Debug)]
pub struct Routes {
    table: ArcSwap<RoutingTable>,
    upstreams: ArcSwap<Upstreams>,
    /// Counts the canary's rollbacks (the table becoming `canary_blocked`).
    rollbacks: watch::Sender<u64>,
}

impl Routes {
    /// Routes by `table` to `upstreams`.
    pub fn new(table: RoutingTable, upstreams: Upstreams) -> Routes {
        Routes {
            table: ArcSwap::from_pointee(table),
            upstreams: ArcSwap::from_pointee(upstreams),
            rollbacks: watch::Sender::new(0),
        }
    }

    /// The current routing table (lock-free).
    pub fn routing(&self) -> Guard<Arc<RoutingTable>> {
        self.table.load()
    }

    /// The current routing table, as an owned pointer.
    pub fn routing_full(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// The current upstreams (lock-free).
    pub fn upstreams(&self) -> Guard<Arc<Upstreams>> {
        self.upstreams.load()
    }

    /// A receiver that changes each time the canary is rolled back from now
    /// on (the routing table becomes `canary_blocked`).
    pub fn canary_rollbacks(&self) -> watch::Receiver<u64> {
        self.rollbacks.subscribe()
    }

    /// Routes by `table` (and `upstreams`, when given) from the next request
    /// on. Callers serialise their publishes: the control plane holds its
    /// own lock around deciding and publishing.
    pub fn publish(&self, table: Arc<RoutingTable>, upstreams: Option<Upstreams>) {
        // Upstreams first: a request that sees the new table (say, canary
        // enabled) must find the canary it points to.
        if let Some(u) = upstreams {
            self.upstreams.store(Arc::new(u));
        }
        let newly_blocked = table.canary_blocked && !self.table.load().canary_blocked;
        self.table.store(table);
        // After the swap: a tunnel that wakes up finds no new user going to
        // the canary it leaves.
        if newly_blocked {
            self.rollbacks.send_modify(|n| *n += 1);
        }
    }
}
