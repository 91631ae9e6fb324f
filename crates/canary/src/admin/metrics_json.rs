//! `GET /api/v2/metrics`: the seed's metrics shape (S10), so the seed's own
//! `jq '.recent_errors'` and
//! `jq '.response_time | to_entries | sort_by(.value) | reverse | .[0:5]'` work.
//!
//! The top level is both versions combined; `versions.stable` and
//! `versions.canary` carry the same shape for each. Times are milliseconds,
//! rates are percentages (0.5 means 0.5%), and a figure with no data is `null`,
//! never a made-up 0. Query: `?window=1m|5m|10m|<N>s|<N>m` (default 1m) or
//! `?since_ms=<unix milliseconds>`.
//!
//! `scope`: in a cluster the answer is the fleet's by default (`"scope":
//! "fleet"`, every replica's reading added, and `replicas` saying which
//! answered); `?scope=node` answers for this replica alone. Without a cluster
//! the process is the whole fleet and answers `"scope": "node"`.

use super::{AdminState, error};
use crate::cluster::fleet_window;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canary_core::Version;
use canary_core::time::UnixMs;
use canary_proxy::metrics::{ArmStats, ErrorRecord, Reading, WindowSpec};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// How many recent errors the reply lists.
pub const RECENT: usize = 20;

/// The query string.
#[derive(Debug, Deserialize)]
pub struct MetricsQuery {
    window: Option<String>,
    since_ms: Option<UnixMs>,
    scope: Option<String>,
}

/// `GET /api/v2/metrics`
pub async fn handler(State(s): State<AdminState>, Query(q): Query<MetricsQuery>) -> Response {
    let (spec, label) = match parse_spec(&q) {
        Ok(x) => x,
        Err(msg) => return error(StatusCode::BAD_REQUEST, "invalid", msg),
    };
    let fleet = match q.scope.as_deref() {
        None | Some("fleet") => true,
        Some("node") => false,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!(
                    "scope `{other}`: expected `fleet` (every replica, the default) or `node` (this replica)"
                ),
            );
        }
    };
    let local = Reading::of(&s.metrics, spec, Instant::now(), RECENT);
    let (reading, coverage) = match s.cluster.as_ref().filter(|_| fleet) {
        Some(c) => {
            let token = s.cfg.admin_token.as_deref().or(s.cfg.viewer_token.as_deref());
            let (r, cov) = fleet_window::gather(c, &peer_query(&q, &label), token, local, RECENT).await;
            (r, Some(cov))
        }
        // Without a cluster this process is the whole fleet: its answer is the node's.
        None => (local, None),
    };
    let mut top = render(&reading, &label, s.live.routing().share.percent());
    if let Value::Object(m) = &mut top {
        m.insert("scope".into(), json!(if coverage.is_some() { "fleet" } else { "node" }));
        if let Some(cov) = coverage {
            m.insert("replicas".into(), json!(cov));
        }
    }
    Json(top).into_response()
}

/// The window as the peers are asked for it: the same spec, already checked.
fn peer_query(q: &MetricsQuery, label: &str) -> String {
    match q.since_ms {
        Some(ms) => format!("since_ms={ms}"),
        None => format!("window={label}"),
    }
}

/// The S10 shape of a reading, both versions combined at the top level.
fn render(r: &Reading, label: &str, share: f64) -> Value {
    let (snap, errors, in_flight, upgraded) = (&r.snapshot, &r.errors, r.in_flight, r.upgraded);
    let both = Gauges { in_flight: in_flight[0] + in_flight[1], upgraded: upgraded[0] + upgraded[1] };
    let mut top = shape(&snap.combined(), both, errors.iter());
    let versions: Map<String, Value> = Version::ALL
        .iter()
        .map(|&v| {
            let errs = errors.iter().filter(move |e| e.version == v);
            let g = Gauges { in_flight: in_flight[v.index()], upgraded: upgraded[v.index()] };
            (v.to_string(), shape(snap.arm(v), g, errs))
        })
        .collect();
    if let Value::Object(m) = &mut top {
        m.insert("window".into(), json!({"spec": label, "seconds": round(snap.seconds)}));
        m.insert("share".into(), json!(share));
        m.insert("versions".into(), Value::Object(versions));
    }
    top
}

/// The window asked for, and its label for the reply.
pub fn parse_spec(q: &MetricsQuery) -> Result<(WindowSpec, String), String> {
    if let Some(ms) = q.since_ms {
        let t = ms.to_system_time();
        return Ok((WindowSpec::Since(t), format!("since {ms}")));
    }
    let w = q.window.as_deref().unwrap_or("1m");
    let secs = parse_duration(w)
        .ok_or_else(|| format!("window `{w}`: expected a duration such as 1m, 5m, 10m or 30s"))?;
    if secs == 0 || secs > 600 {
        return Err(format!("window `{w}`: must be between 1s and 10m (the history kept)"));
    }
    Ok((WindowSpec::Last(Duration::from_secs(secs)), w.to_string()))
}

fn parse_duration(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        _ => None,
    }
}

/// What is open now, as opposed to counted over the window.
#[derive(Clone, Copy)]
struct Gauges {
    in_flight: i64,
    upgraded: i64,
}

/// The S10 shape for one set of statistics.
fn shape<'a>(a: &ArmStats, g: Gauges, errors: impl Iterator<Item = &'a ErrorRecord>) -> Value {
    let response_time: Map<String, Value> = a
        .routes
        .iter()
        .filter(|(_, r)| r.requests > 0)
        .map(|(k, r)| (k.clone(), json!(round(r.sum_us as f64 / r.requests as f64 / 1000.0))))
        .collect();
    let c = &a.counts;
    json!({
        "performance": {
            "p50_response_time": a.quantile_ms(0.50).map(round),
            "p95_response_time": a.quantile_ms(0.95).map(round),
            "p99_response_time": a.quantile_ms(0.99).map(round),
        },
        // Without a request there is no rate to give: null, not "0% errors".
        "reliability": {
            "error_rate": rate(c.requests, a.error_rate()),
            "uptime": rate(c.requests, a.availability()),
            "success_rate": rate(c.requests, a.success_rate()),
        },
        "capacity": {
            "requests_per_second": round(a.rps()),
            "concurrent_users": g.in_flight.max(0),
            "database_connections": Value::Null,
            "upgraded_connections": g.upgraded.max(0),
        },
        "requests": {
            "total": c.requests, "1xx": c.by_class[0], "2xx": c.by_class[1], "3xx": c.by_class[2],
            "4xx": c.by_class[3], "5xx": c.by_class[4], "upstream_failures": c.upstream_failures,
            "grpc_errors": c.grpc_errors, "replayed_on_stable": c.recovered,
        },
        "recent_errors": errors.collect::<Vec<_>>(),
        "response_time": response_time,
        "routes": routes(a),
    })
}

fn routes(a: &ArmStats) -> Value {
    a.routes
        .iter()
        .map(|(k, r)| {
            let mean = if r.requests == 0 { 0.0 } else { r.sum_us as f64 / r.requests as f64 / 1000.0 };
            (k.clone(), json!({"requests": r.requests, "errors": r.errors, "mean_ms": round(mean), "max_ms": round(r.max_us as f64 / 1000.0)}))
        })
        .collect::<Map<String, Value>>()
        .into()
}

/// A percentage of `requests`, or null when there were none.
fn rate(requests: u64, percent: f64) -> Value {
    if requests == 0 { Value::Null } else { json!(round(percent)) }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
