//! `GET /metrics`: the Prometheus text exposition (format 0.0.4), written by
//! hand because every figure already lives in the shards; a client library
//! would only add a second copy. Checked by `promtool check metrics` in tests.

use super::shard::TotalsSnapshot;
use canary_core::{Share, Version};
use std::fmt::Write;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What the exposition shows besides the totals.
#[derive(Debug, Clone)]
pub struct Gauges<'a> {
    /// The current canary share.
    pub share: Share,
    /// Requests in flight, stable then canary.
    pub in_flight: [i64; 2],
    /// Upgraded connections (WebSockets...) open, stable then canary.
    pub upgraded: [i64; 2],
    /// Seconds since the server started.
    pub uptime_secs: f64,
    /// The rollout's name.
    pub rollout: &'a str,
}

/// Renders the exposition text.
pub fn render(totals: &[TotalsSnapshot; 2], g: &Gauges<'_>) -> String {
    let mut out = String::with_capacity(4096);
    gauge(&mut out, "canary_share_percent", "The canary's current share of traffic, in percent.");
    let _ = writeln!(out, "canary_share_percent{{rollout=\"{}\"}} {}", escape(g.rollout), g.share.percent());
    gauge(&mut out, "canary_uptime_seconds", "Seconds since canary serve started.");
    let _ = writeln!(out, "canary_uptime_seconds {:.3}", g.uptime_secs);
    gauge(&mut out, "canary_in_flight_requests", "Requests being proxied now, by version.");
    for v in Version::ALL {
        let _ = writeln!(out, "canary_in_flight_requests{{version=\"{v}\"}} {}", g.in_flight[v.index()]);
    }
    let name = "canary_upgraded_connections";
    gauge(
        &mut out,
        name,
        "Upgraded connections (WebSocket and other HTTP/1.1 upgrades) open now, by version.",
    );
    for v in Version::ALL {
        let _ = writeln!(out, "{name}{{version=\"{v}\"}} {}", g.upgraded[v.index()]);
    }
    requests(&mut out, totals);
    failures(&mut out, totals);
    grpc_errors(&mut out, totals);
    latency(&mut out, totals);
    out
}

/// A gauge's HELP and TYPE lines.
pub fn gauge(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn requests(out: &mut String, totals: &[TotalsSnapshot; 2]) {
    let name = "canary_requests_total";
    let _ =
        writeln!(out, "# HELP {name} Responses sent, by version and status class.\n# TYPE {name} counter");
    for v in Version::ALL {
        for (i, n) in totals[v.index()].counts.by_class.iter().enumerate() {
            let _ = writeln!(out, "{name}{{version=\"{v}\",class=\"{}xx\"}} {n}", i + 1);
        }
    }
}

fn failures(out: &mut String, totals: &[TotalsSnapshot; 2]) {
    let name = "canary_upstream_failures_total";
    let _ = writeln!(
        out,
        "# HELP {name} Requests the upstream did not answer (refused, timed out, reset).\n# TYPE {name} counter"
    );
    for v in Version::ALL {
        let _ = writeln!(out, "{name}{{version=\"{v}\"}} {}", totals[v.index()].counts.upstream_failures);
    }
}

fn grpc_errors(out: &mut String, totals: &[TotalsSnapshot; 2]) {
    let name = "canary_grpc_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} gRPC calls answered with a grpc-status counted as an error.\n# TYPE {name} counter"
    );
    for v in Version::ALL {
        let _ = writeln!(out, "{name}{{version=\"{v}\"}} {}", totals[v.index()].counts.grpc_errors);
    }
}

fn latency(out: &mut String, totals: &[TotalsSnapshot; 2]) {
    let name = "canary_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from request to end of response, by version.\n# TYPE {name} histogram"
    );
    for v in Version::ALL {
        let t = &totals[v.index()];
        let count = t.latency.as_ref().map_or(0, |h| h.len());
        for le in BUCKETS {
            let n = t.latency.as_ref().map_or(0, |h| h.count_between(0, (le * 1e6) as u64));
            let _ = writeln!(out, "{name}_bucket{{version=\"{v}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{version=\"{v}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{version=\"{v}\"}} {}", t.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{version=\"{v}\"}} {count}");
    }
}

/// A label value, escaped as the format asks.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
