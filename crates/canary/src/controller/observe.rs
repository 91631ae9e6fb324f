//! Turns the proxy's cumulative totals into per-tick statistics for the judge:
//! each tick is the difference between this reading and the last. In a
//! cluster, the leader does the same with every peer's totals
//! ([`FleetObserver`]).

use crate::cluster::fleet::Peers;
use canary_core::Version;
use canary_core::judge::{ArmWindow, Observation, RouteCount};
use canary_core::time::UnixMs;
use canary_core::window::merge;
use canary_proxy::metrics::Metrics;
use canary_proxy::metrics::shard::TotalsSnapshot;
use std::collections::BTreeMap;

/// Remembers the last reading.
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<[TotalsSnapshot; 2]>,
}

impl Observer {
    /// What happened since the previous call (nothing on the first).
    pub fn tick(&mut self, metrics: &Metrics) -> Observation {
        let now = metrics.totals();
        let obs = match &self.last {
            Some(prev) => Observation {
                stable: delta(&now[Version::Stable.index()], &prev[Version::Stable.index()]),
                canary: delta(&now[Version::Canary.index()], &prev[Version::Canary.index()]),
                ..Observation::default()
            },
            None => Observation::default(),
        };
        self.last = Some(now);
        obs
    }
}

/// Each route's requests and errors since the previous reading (routes
/// without a request since are left out).
fn routes(
    now: &BTreeMap<String, RouteCount>,
    prev: &BTreeMap<String, RouteCount>,
) -> BTreeMap<String, RouteCount> {
    now.iter()
        .filter_map(|(label, n)| {
            let p = prev.get(label).copied().unwrap_or_default();
            let d = RouteCount {
                requests: n.requests.saturating_sub(p.requests),
                errors: n.errors.saturating_sub(p.errors),
                slow: n.slow.saturating_sub(p.slow),
            };
            (d.requests > 0).then(|| (label.clone(), d))
        })
        .collect()
}

/// What happened between two readings of one version's totals.
pub fn delta(now: &TotalsSnapshot, prev: &TotalsSnapshot) -> ArmWindow {
    let (c, p) = (&now.counts, &prev.counts);
    let latency = match (&now.latency, &prev.latency) {
        (Some(n), Some(p)) => {
            let mut d = n.clone();
            // Totals only grow, so the earlier reading is always contained in
            // the later one and the subtraction cannot underflow.
            d.subtract(p).ok().map(|_| d)
        }
        (Some(n), None) => Some(n.clone()),
        _ => None,
    };
    ArmWindow {
        requests: c.requests.saturating_sub(p.requests),
        errors: c.errors().saturating_sub(p.errors()),
        // A failed gRPC call is the upstream answering with an error, as a 5xx is.
        server_errors: c.server_errors().saturating_sub(p.server_errors()),
        recovered: c.recovered.saturating_sub(p.recovered),
        routes: routes(&now.routes, &prev.routes),
        health: None,
        latency,
        resources: Default::default(),
    }
}

/// The last reading of each peer the leader added.
#[derive(Debug, Default)]
pub struct FleetObserver {
    last: BTreeMap<String, (UnixMs, [TotalsSnapshot; 2])>,
    /// Peers whose readings went away since they were last taken.
    dropped: Vec<String>,
    /// When this observer began (a term's start): a peer whose process
    /// started later has served nothing before it.
    since: UnixMs,
}

impl FleetObserver {
    /// An observer that begins at `since`.
    pub fn new(since: UnixMs) -> FleetObserver {
        FleetObserver { since, ..FleetObserver::default() }
    }

    /// What the peers served since the previous call. A peer's totals start
    /// at zero with its process, so one restarted, or started after this
    /// observer began, is counted whole: nothing it served is lost. One
    /// already running when this observer began is taken as a baseline: its
    /// past is not this look's traffic.
    pub fn tick(&mut self, peers: &Peers) -> Observation {
        let mut out = Observation::default();
        let readings = peers.all();
        let gone: Vec<String> =
            self.last.keys().filter(|id| !readings.iter().any(|r| r.node == **id)).cloned().collect();
        for id in &gone {
            self.last.remove(id);
        }
        self.dropped.extend(gone);
        for r in readings {
            let now = [r.versions[0].snapshot(), r.versions[1].snapshot()];
            let zero = [TotalsSnapshot::default(), TotalsSnapshot::default()];
            let prev = match self.last.get(&r.node) {
                Some((boot, prev)) if *boot == r.boot => Some(prev),
                Some(_) => Some(&zero),
                None if r.boot >= self.since => Some(&zero),
                None => None,
            };
            if let Some(prev) = prev {
                let (s, c) = (Version::Stable.index(), Version::Canary.index());
                merge(&mut out.stable, &delta(&now[s], &prev[s]));
                merge(&mut out.canary, &delta(&now[c], &prev[c]));
            }
            self.last.insert(r.node.clone(), (r.boot, now));
        }
        out
    }

    /// The peers dropped from the sum since the last call: their traffic is
    /// no longer added (a replica that comes back starts from a new reading).
    pub fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }
}
