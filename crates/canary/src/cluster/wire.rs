//! A replica's traffic totals as JSON, for the leader to judge the fleet:
//! counts, per-route counts and the latency histogram bucket by bucket, so the
//! leader's merge is exact (HDR histograms add bucket-wise).
//!
//! `boot` identifies the replica's process: totals only grow within one, so a
//! new `boot` tells the reader to start over instead of subtracting.

use canary_core::judge::RouteCount;
use canary_core::time::UnixMs;
use canary_proxy::metrics::Metrics;
use canary_proxy::metrics::shard::TotalsSnapshot;
use canary_proxy::metrics::slot::{Counts, new_histogram};
use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One version's totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireTotals {
    counts: Counts,
    sum_us: u64,
    /// `[value, count]` per non-empty bucket; the value is the bucket's highest.
    latency: Vec<[u64; 2]>,
    /// `[requests, errors, slow]` per route label (a replica that counts no
    /// slow requests sends two numbers).
    routes: BTreeMap<String, Vec<u64>>,
}

/// A replica's totals for both versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireSnapshot {
    /// The replica's node id.
    pub node: String,
    /// Its wire (see [`super::versions`]).
    #[serde(default = "super::versions::unnamed")]
    pub wire: u32,
    /// Its process's start.
    pub boot: UnixMs,
    /// Per version, in `Version::index` order.
    pub versions: [WireTotals; 2],
    /// Asked for with `from`: the totals it served at that look (see
    /// [`super::looks`]), when it still has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<[WireTotals; 2]>,
}

impl WireSnapshot {
    /// Replica `node`'s totals now.
    pub fn now(node: &str, metrics: &Metrics) -> WireSnapshot {
        let t = metrics.totals();
        WireSnapshot {
            node: node.to_string(),
            wire: super::versions::WIRE,
            boot: UnixMs::from(metrics.started_wall()),
            versions: [WireTotals::of(&t[0]), WireTotals::of(&t[1])],
            base: None,
        }
    }
}

impl WireTotals {
    /// From a snapshot.
    pub fn of(t: &TotalsSnapshot) -> WireTotals {
        let c = &t.counts;
        let latency = t.latency.as_ref().map(buckets).unwrap_or_default();
        WireTotals {
            counts: *c,
            sum_us: t.sum_us,
            latency,
            routes: t.routes.iter().map(|(k, r)| (k.clone(), vec![r.requests, r.errors, r.slow])).collect(),
        }
    }

    /// Back into a snapshot; values out of the histogram's range are clamped into it.
    pub fn snapshot(&self) -> TotalsSnapshot {
        TotalsSnapshot {
            counts: self.counts,
            latency: histogram(&self.latency, |n| n),
            sum_us: self.sum_us,
            routes: self
                .routes
                .iter()
                .map(|(k, n)| {
                    let at = |i: usize| n.get(i).copied().unwrap_or(0);
                    (k.clone(), RouteCount { requests: at(0), errors: at(1), slow: at(2) })
                })
                .collect(),
        }
    }
}

/// A histogram's non-empty buckets as `[value, count]`, the value being the
/// bucket's highest: enough to rebuild it exactly with the same bounds.
pub fn buckets<C: Counter>(h: &Histogram<C>) -> Vec<[u64; 2]> {
    h.iter_recorded().map(|v| [v.value_iterated_to(), v.count_at_value().as_u64()]).collect()
}

/// Rebuilds a histogram from [`buckets`]; `None` when it holds nothing.
/// `count` narrows a count to the counter type (saturating: a bucket is never
/// worth failing a whole reading over).
pub fn histogram<C: Counter>(buckets: &[[u64; 2]], count: impl Fn(u64) -> C) -> Option<Histogram<C>> {
    let mut h = new_histogram::<C>()?;
    for [v, n] in buckets {
        h.saturating_record_n(*v, count(*n));
    }
    Some(h).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_keeps_counts_routes_and_every_bucket() {
        let mut h = new_histogram::<u64>().unwrap();
        for v in [120, 950, 4_000, 4_001, 250_000, 3_000_000] {
            h.record(v).unwrap();
        }
        let t = TotalsSnapshot {
            counts: Counts {
                requests: 6,
                by_class: [0, 4, 0, 0, 2],
                upstream_failures: 1,
                recovered: 1,
                grpc_errors: 1,
            },
            latency: Some(h.clone()),
            sum_us: 3_259_071,
            routes: [("GET /a".to_string(), RouteCount { requests: 6, errors: 3, slow: 2 })]
                .into_iter()
                .collect(),
        };
        let json = serde_json::to_string(&WireTotals::of(&t)).unwrap();
        let back: WireTotals = serde_json::from_str(&json).unwrap();
        let s = back.snapshot();
        assert_eq!(s.counts, t.counts);
        assert_eq!(s.sum_us, t.sum_us);
        assert_eq!(s.routes, t.routes);
        let got = s.latency.unwrap();
        assert_eq!(got.len(), h.len());
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(got.value_at_quantile(q), h.value_at_quantile(q), "q{q}");
        }
        // Merged with the original, the counts double bucket by bucket.
        let mut sum = h.clone();
        sum.add(&got).unwrap();
        assert_eq!(sum.len(), 2 * h.len());
        assert_eq!(sum.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
