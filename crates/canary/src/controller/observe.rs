//! Turns the proxy's cumulative totals into per-tick statistics for the judge:
//! each tick is the difference between this reading and the last. In a
//! cluster, the leader does the same with every replica's totals, its own
//! among them, as its rounds read them ([`FleetObserver`]).

use crate::cluster::rounds::Peers;
use crate::cluster::wire::WireSnapshot;
use canary_core::Version;
use canary_core::judge::{ArmWindow, Observation, RouteCount};
use canary_core::rollout::CountedTo;
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

/// The last reading of each replica the leader added (its own included).
#[derive(Debug, Default)]
pub struct FleetObserver {
    last: BTreeMap<String, (UnixMs, [TotalsSnapshot; 2])>,
    /// Replicas dropped from the sum, with their last readings: one that
    /// comes back (the same process) is counted on from there.
    parked: BTreeMap<String, (UnixMs, [TotalsSnapshot; 2])>,
    /// Replicas whose readings went away since they were last taken.
    dropped: Vec<String>,
    /// When this observer began (a term's start): a replica whose process
    /// started later has served nothing before it.
    since: UnixMs,
    /// Where the previous leader's saved count stopped (see `cluster::looks`).
    from: Option<CountedTo>,
    /// Where this observer's count stops.
    counted_to: Option<CountedTo>,
}

/// Where a replica's reading is counted from.
enum Start {
    /// Its previous reading.
    Last,
    /// Its reading when it was dropped from the sum.
    Parked,
    /// Zero: its process started after the count it would add to.
    Zero,
    /// What it served where the previous leader's saved count stopped.
    Base(Box<[TotalsSnapshot; 2]>),
    /// Nowhere: this reading is the baseline of the next.
    Baseline,
}

impl FleetObserver {
    /// An observer that begins at `since`, going on from a previous
    /// leader's count saved up to `from`.
    pub fn new(since: UnixMs, from: Option<CountedTo>) -> FleetObserver {
        FleetObserver { since, from, ..FleetObserver::default() }
    }

    /// What the replicas served since the previous call, by the latest
    /// round finished. Nothing is lost or added twice: a replica's totals
    /// start at zero with its process, so one restarted, or started after
    /// this observer began, is counted whole; one read for the first time
    /// is counted from what it served where the previous leader's count
    /// stopped, or whole if it started after that, or else taken as a
    /// baseline (a replica of a release that keeps no looks, or whose
    /// answer there is gone).
    pub fn tick(&mut self, peers: &Peers) -> Observation {
        let mut out = Observation::default();
        let Some((round, readings)) = peers.latest() else { return out };
        let gone: Vec<String> =
            self.last.keys().filter(|id| !readings.iter().any(|(_, r)| r.node == **id)).cloned().collect();
        for id in gone {
            if let Some(last) = self.last.remove(&id) {
                self.parked.insert(id.clone(), last);
            }
            self.dropped.push(id);
        }
        let mut behind = BTreeMap::new();
        for (n, r) in readings {
            let now = [r.versions[0].snapshot(), r.versions[1].snapshot()];
            let prev = match self.start(&r) {
                Start::Last => self.last.remove(&r.node).map(|(_, p)| p),
                Start::Parked => self.parked.remove(&r.node).map(|(_, p)| p),
                Start::Zero => Some(Default::default()),
                Start::Base(base) => Some(*base),
                Start::Baseline => None,
            };
            if let Some(prev) = prev {
                let (s, c) = (Version::Stable.index(), Version::Canary.index());
                merge(&mut out.stable, &delta(&now[s], &prev[s]));
                merge(&mut out.canary, &delta(&now[c], &prev[c]));
            }
            if n < round.n {
                behind.insert(r.node.clone(), n);
            }
            self.last.insert(r.node, (r.boot, now));
        }
        self.counted_to = Some(CountedTo { look: round, behind });
        out
    }

    fn start(&self, r: &WireSnapshot) -> Start {
        let same = |kept: Option<&(UnixMs, [TotalsSnapshot; 2])>| kept.map(|(boot, _)| *boot == r.boot);
        match (same(self.last.get(&r.node)), same(self.parked.get(&r.node))) {
            (Some(true), _) => return Start::Last,
            (_, Some(true)) => return Start::Parked,
            (Some(false), _) | (_, Some(false)) => return Start::Zero,
            (None, None) => {}
        }
        if r.boot >= self.since {
            return Start::Zero;
        }
        match (&r.base, &self.from) {
            (Some(b), _) => Start::Base(Box::new([b[0].snapshot(), b[1].snapshot()])),
            (None, Some(f)) if r.boot > f.of(&r.node).at => Start::Zero,
            _ => Start::Baseline,
        }
    }

    /// Where this observer's count stops: what the rollout saves.
    pub fn counted_to(&self) -> Option<&CountedTo> {
        self.counted_to.as_ref()
    }

    /// The replicas dropped from the sum since the last call: their traffic
    /// is no longer added (one that comes back is counted on from where it left).
    pub fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::WireTotals;
    use canary_core::rollout::Look;

    const SINCE: u64 = 10_000;

    fn totals(canary: u64) -> [WireTotals; 2] {
        let mut t = TotalsSnapshot::default();
        t.counts.requests = canary;
        [WireTotals::default(), WireTotals::of(&t)]
    }

    /// Replica `node`, started at `boot`, having sent `canary` requests to the canary.
    fn reading(node: &str, boot: u64, canary: u64) -> WireSnapshot {
        WireSnapshot {
            node: node.into(),
            boot: UnixMs::from_millis(boot),
            versions: totals(canary),
            ..WireSnapshot::default()
        }
    }

    fn look(n: u64) -> Look {
        Look { term: 2, n, at: UnixMs::from_millis(SINCE + n) }
    }

    /// Peers with the gate open, and a way to finish rounds on them.
    fn peers() -> (Peers, u64) {
        let p = Peers::default();
        p.open(None);
        let epoch = p.gate().map(|(e, _)| e).unwrap();
        (p, epoch)
    }

    fn round(p: &Peers, epoch: u64, n: u64, readings: Vec<(&str, Option<WireSnapshot>)>) {
        p.put_round(epoch, look(n), readings.into_iter().map(|(id, r)| (id.to_string(), r)).collect());
    }

    fn from(n: u64) -> Option<CountedTo> {
        Some(CountedTo { look: Look { term: 1, n, at: UnixMs::from_millis(5_000) }, ..CountedTo::default() })
    }

    #[test]
    fn each_replica_is_counted_from_where_the_previous_leaders_count_stopped() {
        let (p, e) = peers();
        let mut o = FleetObserver::new(UnixMs::from_millis(SINCE), from(7));
        let mut kept = reading("kept", 1_000, 50);
        kept.base = Some(totals(30));
        let rounds = vec![
            ("kept", Some(kept)),
            // Started after the saved round (no answer there): counted whole.
            ("late", Some(reading("late", 6_000, 8))),
            // A release that keeps no rounds: read once as a baseline.
            ("old", Some(reading("old", 1_000, 100))),
            // Started after this leader's term began.
            ("new", Some(reading("new", SINCE + 1, 3))),
        ];
        round(&p, e, 1, rounds);
        assert_eq!(o.tick(&p).canary.requests, 20 + 8 + 3);
        round(&p, e, 2, vec![("old", Some(reading("old", 1_000, 104))), ("kept", None)]);
        assert_eq!(o.tick(&p).canary.requests, 4);
        let counted = o.counted_to().unwrap();
        assert_eq!(counted.look.n, 2);
        assert_eq!(counted.behind.get("kept"), Some(&1), "a replica missed since is counted up to its round");
    }

    #[test]
    fn a_replica_dropped_and_back_goes_on_from_its_last_reading_and_a_restarted_one_from_zero() {
        let (p, e) = peers();
        let mut o = FleetObserver::new(UnixMs::from_millis(SINCE), None);
        round(&p, e, 1, vec![("a", Some(reading("a", 1_000, 10))), ("b", Some(reading("b", 1_000, 10)))]);
        assert_eq!(o.tick(&p).canary.requests, 0, "first readings are baselines");
        p.retain(&["b".into()]);
        round(&p, e, 2, vec![("b", Some(reading("b", 1_000, 12)))]);
        assert_eq!(o.tick(&p).canary.requests, 2);
        assert_eq!(o.take_dropped(), vec!["a".to_string()]);
        round(&p, e, 3, vec![("a", Some(reading("a", 1_000, 15))), ("b", Some(reading("b", 2_000, 1)))]);
        assert_eq!(o.tick(&p).canary.requests, 5 + 1, "a from its last reading, b restarted from zero");
    }

    #[test]
    fn nothing_is_counted_before_a_round_finishes() {
        let (p, _) = peers();
        let mut o = FleetObserver::new(UnixMs::from_millis(SINCE), None);
        assert_eq!(o.tick(&p).canary.requests, 0);
        assert!(o.counted_to().is_none());
    }
}
