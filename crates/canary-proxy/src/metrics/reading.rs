//! One replica's reading over a window: its statistics, what it has open now
//! and its latest errors. `/api/v2/metrics` answers from one, and a replica
//! answering for its fleet adds the other replicas' readings to its own.

use super::{ErrorRecord, Metrics, Snapshot, WindowSpec};
use std::time::Instant;

/// One replica's window with its gauges and recent errors.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Both versions' statistics over the window.
    pub snapshot: Snapshot,
    /// Requests in flight now, per version.
    pub in_flight: [i64; 2],
    /// Upgraded connections open now, per version.
    pub upgraded: [i64; 2],
    /// The most recent errors, newest first.
    pub errors: Vec<ErrorRecord>,
}

impl Reading {
    /// This process's reading over `spec`, with at most `recent` errors.
    pub fn of(m: &Metrics, spec: WindowSpec, now: Instant, recent: usize) -> Reading {
        Reading {
            snapshot: m.window(spec, now),
            in_flight: m.in_flight(),
            upgraded: m.upgraded(),
            errors: m.recent_errors(recent),
        }
    }

    /// Adds another replica's reading of the same window: counts, histograms,
    /// routes and gauges add; the errors interleave newest first, at most
    /// `recent` kept. The window's length stays this one's: the replicas
    /// cover the same stretch of time, each from its own clock.
    pub fn add(&mut self, o: Reading, recent: usize) {
        self.snapshot.add(&o.snapshot);
        for v in 0..2 {
            self.in_flight[v] += o.in_flight[v];
            self.upgraded[v] += o.upgraded[v];
        }
        self.errors.extend(o.errors);
        // Stable, so errors at the same millisecond keep their replica's order.
        self.errors.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        self.errors.truncate(recent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ArmStats;
    use crate::metrics::slot::{Counts, RouteCounts, new_histogram};
    use canary_core::Version;

    fn arm(requests: u64, latencies: &[u64], route: (&str, u64, u64), seconds: f64) -> ArmStats {
        let mut h = new_histogram::<u32>().unwrap();
        latencies.iter().for_each(|v| h.record(*v).unwrap());
        let (name, n, max_us) = route;
        let r = RouteCounts { requests: n, errors: 1, sum_us: n * 1_000, max_us };
        ArmStats {
            counts: Counts {
                requests,
                by_class: [0, requests - 1, 0, 0, 1],
                upstream_failures: 0,
                recovered: 0,
                grpc_errors: 1,
            },
            latency: Some(h),
            routes: [(name.to_string(), r)].into_iter().collect(),
            seconds,
        }
    }

    fn error(at_ms: u64) -> ErrorRecord {
        ErrorRecord {
            at_ms: canary_core::time::UnixMs::from_millis(at_ms),
            version: Version::Stable,
            method: "GET".into(),
            path: "/".into(),
            status: Some(500),
            error: "upstream answered 500".into(),
        }
    }

    fn reading(seconds: f64, n: u64, route: &str, errors: &[u64]) -> Reading {
        let lat: Vec<u64> = (1..=n).map(|i| i * 1_000).collect();
        Reading {
            snapshot: Snapshot {
                arms: [
                    arm(n, &lat, (route, n, n * 1_000), seconds),
                    arm(2, &[500, 600], ("GET /", 2, 600), seconds),
                ],
                seconds,
            },
            in_flight: [1, 2],
            upgraded: [3, 0],
            errors: errors.iter().map(|&t| error(t)).collect(),
        }
    }

    #[test]
    fn readings_add_exactly_and_the_window_stays_the_local_one() {
        let mut a = reading(60.0, 4, "GET /", &[30, 10]);
        let b = reading(55.0, 6, "GET /b", &[40, 20, 5]);
        a.add(b, 4);
        let s = &a.snapshot;
        assert_eq!(s.seconds, 60.0);
        assert_eq!(s.arms[0].seconds, 60.0, "requests per second are over the asked window");
        assert_eq!(s.arms[0].counts.requests, 10);
        assert_eq!(s.arms[0].counts.by_class, [0, 8, 0, 0, 2]);
        assert_eq!(s.arms[1].counts.requests, 4);
        let h = s.arms[0].latency.as_ref().unwrap();
        assert_eq!(h.len(), 10, "histograms add sample by sample");
        assert_eq!(h.max(), h.highest_equivalent(6_000));
        // A route both replicas served adds up; one served by one stays as it was.
        let shared = s.arms[0].routes["GET /"];
        assert_eq!((shared.requests, shared.max_us), (4, 4_000));
        assert_eq!(s.arms[0].routes["GET /b"].requests, 6);
        assert_eq!(
            s.arms[1].routes["GET /"],
            RouteCounts { requests: 4, errors: 2, sum_us: 4_000, max_us: 600 }
        );
        assert_eq!((a.in_flight, a.upgraded), ([2, 4], [6, 0]));
        let at: Vec<u64> = a.errors.iter().map(|e| e.at_ms.as_millis()).collect();
        assert_eq!(at, [40, 30, 20, 10], "newest first, capped");
    }
}
