//! Turns the proxy's cumulative totals into per-tick statistics for the judge:
//! each tick is the difference between this reading and the last. In a
//! cluster, the leader does the same with every peer's totals
//! ([`FleetObserver`]).

use crate::cluster::fleet::Peers;
use crate::cluster::wire::WireSnapshot;
use canary_core::Version;
use canary_core::judge::{ArmWindow, Observation, RouteCount};
use canary_core::rollout::Look;
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
    /// One whose last reading is `last` (`None`: the first call reads).
    pub fn from(last: Option<[TotalsSnapshot; 2]>) -> Observer {
        Observer { last }
    }

    /// The last reading.
    pub fn last(&self) -> Option<&[TotalsSnapshot; 2]> {
        self.last.as_ref()
    }

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
    /// The look the previous leader's saved count is up to (see
    /// `cluster::looks`): a peer's traffic since is counted.
    from: Option<Look>,
    /// Every peer read in this term, with its process's start.
    seen: BTreeMap<String, UnixMs>,
    /// The latest look whose readings were added.
    counted_to: Option<Look>,
}

/// Where a peer's reading is counted from.
enum Start {
    /// Its previous reading.
    Last,
    /// Zero: its process started after the count it would add to.
    Zero,
    /// What it served at the previous leader's saved look.
    Base(Box<[TotalsSnapshot; 2]>),
    /// Nowhere: this reading is the baseline of the next.
    Baseline,
}

impl FleetObserver {
    /// An observer that begins at `since`, going on from a previous
    /// leader's count saved up to look `from`.
    pub fn new(since: UnixMs, from: Option<Look>) -> FleetObserver {
        FleetObserver { since, from, ..FleetObserver::default() }
    }

    /// What the peers served since the previous call. Nothing is lost or
    /// added twice: a peer's totals start at zero with its process, so one
    /// restarted, or started after this observer began, is counted whole;
    /// one read for the first time is counted from what it served at the
    /// previous leader's saved look, or whole if it started after that
    /// look, or else taken as a baseline (a peer of a release that keeps no
    /// looks, or whose looks are gone).
    pub fn tick(&mut self, peers: &Peers) -> Observation {
        let mut out = Observation::default();
        let readings = peers.all();
        let gone: Vec<String> =
            self.last.keys().filter(|id| !readings.iter().any(|(_, r)| r.node == **id)).cloned().collect();
        for id in &gone {
            self.last.remove(id);
        }
        self.dropped.extend(gone);
        for (look, r) in readings {
            let now = [r.versions[0].snapshot(), r.versions[1].snapshot()];
            let (s, c) = (Version::Stable.index(), Version::Canary.index());
            let mut add = |prev: &[TotalsSnapshot; 2]| {
                merge(&mut out.stable, &delta(&now[s], &prev[s]));
                merge(&mut out.canary, &delta(&now[c], &prev[c]));
            };
            match self.start(&r) {
                Start::Last => add(&self.last[&r.node].1),
                Start::Zero => add(&Default::default()),
                Start::Base(base) => add(&base),
                Start::Baseline => {}
            }
            self.counted_to = self.counted_to.filter(|c| c.term == look.term && c.n >= look.n).or(Some(look));
            self.seen.insert(r.node.clone(), r.boot);
            self.last.insert(r.node.clone(), (r.boot, now));
        }
        out
    }

    fn start(&self, r: &WireSnapshot) -> Start {
        if let Some((boot, _)) = self.last.get(&r.node) {
            return if *boot == r.boot { Start::Last } else { Start::Zero };
        }
        match self.seen.get(&r.node) {
            // Back after it was dropped: counted up to then.
            Some(boot) if *boot == r.boot => Start::Baseline,
            Some(_) => Start::Zero,
            None if r.boot >= self.since => Start::Zero,
            None => match (&r.base, self.from) {
                (Some(b), _) => Start::Base(Box::new([b[0].snapshot(), b[1].snapshot()])),
                (None, Some(f)) if r.boot > f.at => Start::Zero,
                _ => Start::Baseline,
            },
        }
    }

    /// The latest look whose readings are added: what the count saved
    /// with the rollout is up to.
    pub fn counted_to(&self) -> Option<Look> {
        self.counted_to
    }

    /// The peers dropped from the sum since the last call: their traffic is
    /// no longer added (a replica that comes back starts from a new reading).
    pub fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }
}
