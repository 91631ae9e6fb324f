//! A replica's reading over a window as JSON (`GET /internal/v1/window`), for
//! the replica answering `/api/v2/metrics` for the fleet: counts, per-route
//! figures and the latency histogram bucket by bucket (the encoding of
//! [`super::wire`]), so the sum of the replicas' readings is exact.

use super::wire::{buckets, histogram};
use canary_proxy::metrics::slot::{Counts, RouteCounts};
use canary_proxy::metrics::{ArmStats, ErrorRecord, Reading, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One version over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireArm {
    counts: Counts,
    /// `[value, count]` per non-empty bucket; the value is the bucket's highest.
    latency: Vec<[u64; 2]>,
    /// `[requests, errors, sum_us, max_us]` per route label.
    routes: BTreeMap<String, [u64; 4]>,
}

/// A replica's reading over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireWindow {
    /// The replica's node id.
    pub node: String,
    /// Its wire (see [`super::versions`]).
    #[serde(default = "super::versions::unnamed")]
    pub wire: u32,
    /// Seconds its window covers.
    pub seconds: f64,
    /// Per version, in `Version::index` order.
    pub versions: [WireArm; 2],
    /// Requests in flight now, per version.
    pub in_flight: [i64; 2],
    /// Upgraded connections open now, per version.
    pub upgraded: [i64; 2],
    /// Its most recent errors, newest first.
    pub errors: Vec<ErrorRecord>,
}

impl WireArm {
    fn of(a: &ArmStats) -> WireArm {
        let c = &a.counts;
        WireArm {
            counts: *c,
            latency: a.latency.as_ref().map(buckets).unwrap_or_default(),
            routes: a
                .routes
                .iter()
                .map(|(k, r)| (k.clone(), [r.requests, r.errors, r.sum_us, r.max_us]))
                .collect(),
        }
    }

    fn stats(&self, seconds: f64) -> ArmStats {
        ArmStats {
            counts: self.counts,
            // The windows' histograms count in u32, as the slots do.
            latency: histogram(&self.latency, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            routes: self
                .routes
                .iter()
                .map(|(k, [requests, errors, sum_us, max_us])| {
                    let r = RouteCounts {
                        requests: *requests,
                        errors: *errors,
                        sum_us: *sum_us,
                        max_us: *max_us,
                    };
                    (k.clone(), r)
                })
                .collect(),
            seconds,
        }
    }
}

impl WireWindow {
    /// From replica `node`'s reading.
    pub fn of(node: &str, r: &Reading) -> WireWindow {
        let s = &r.snapshot;
        WireWindow {
            node: node.to_string(),
            wire: super::versions::WIRE,
            seconds: s.seconds,
            versions: [WireArm::of(&s.arms[0]), WireArm::of(&s.arms[1])],
            in_flight: r.in_flight,
            upgraded: r.upgraded,
            errors: r.errors.clone(),
        }
    }

    /// Back into a reading.
    pub fn reading(self) -> Reading {
        let arms = [self.versions[0].stats(self.seconds), self.versions[1].stats(self.seconds)];
        Reading {
            snapshot: Snapshot { arms, seconds: self.seconds },
            in_flight: self.in_flight,
            upgraded: self.upgraded,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::Version;
    use canary_proxy::metrics::slot::new_histogram;

    fn arm(latencies: &[u64], seconds: f64) -> ArmStats {
        let mut h = new_histogram::<u32>().unwrap();
        latencies.iter().for_each(|v| h.record(*v).unwrap());
        let route = RouteCounts { requests: 3, errors: 1, sum_us: 5_120, max_us: 4_000 };
        ArmStats {
            counts: Counts {
                requests: 7,
                by_class: [0, 5, 0, 1, 1],
                upstream_failures: 1,
                recovered: 1,
                grpc_errors: 0,
            },
            latency: Some(h),
            routes: [("GET /a/{id}".to_string(), route)].into_iter().collect(),
            seconds,
        }
    }

    #[test]
    fn a_round_trip_keeps_both_versions_every_bucket_the_gauges_and_errors() {
        let error = ErrorRecord {
            at_ms: canary_core::time::UnixMs::from_millis(1_700_000_000_123),
            version: Version::Canary,
            method: "GET".into(),
            path: "/a/1".into(),
            status: Some(503),
            error: "upstream answered 503".into(),
        };
        let r = Reading {
            snapshot: Snapshot {
                arms: [arm(&[120, 950, 4_000], 42.5), arm(&[3_000_000], 42.5)],
                seconds: 42.5,
            },
            in_flight: [2, 1],
            upgraded: [0, 3],
            errors: vec![error],
        };
        let wire = WireWindow::of("b", &r);
        let json = serde_json::to_string(&wire).unwrap();
        let back: WireWindow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wire);
        assert_eq!(back.node, "b");
        let got = back.reading();
        assert_eq!((got.in_flight, got.upgraded, &got.errors), (r.in_flight, r.upgraded, &r.errors));
        assert_eq!(got.snapshot.seconds, 42.5);
        for (g, w) in got.snapshot.arms.iter().zip(&r.snapshot.arms) {
            assert_eq!((g.counts, &g.routes, g.seconds), (w.counts, &w.routes, w.seconds));
            let (gh, wh) = (g.latency.as_ref().unwrap(), w.latency.as_ref().unwrap());
            assert_eq!(gh.len(), wh.len());
            assert_eq!(buckets(gh), buckets(wh), "every bucket, exactly");
        }
    }

    #[test]
    fn an_empty_version_stays_without_a_histogram() {
        let empty =
            ArmStats { counts: Counts::default(), latency: None, routes: BTreeMap::new(), seconds: 5.0 };
        let r = Reading {
            snapshot: Snapshot { arms: [empty.clone(), empty], seconds: 5.0 },
            in_flight: [0, 0],
            upgraded: [0, 0],
            errors: Vec::new(),
        };
        let got = WireWindow::of("a", &r).reading();
        assert!(got.snapshot.arms.iter().all(|a| a.latency.is_none() && a.counts.requests == 0));
    }
}
