//! The endpoints, in the shape the seed's scripts and canary read:
//! - `GET /api/v2/health`: `{"status": "healthy"|"degraded"|"unhealthy", "version", "uptime_seconds", "checks"}`
//! - `GET /api/v2/health/db`: the service's database check (503 when it fails)
//! - `GET /api/v2/health/memory`: resident memory and its share of the machine
//! - `GET /api/v2/metrics`: `performance`, `reliability`, `capacity`,
//!   `recent_errors`, `response_time` (S10), plus `resources` (memory and CPU
//!   percent) that canary's judge reads.
//!
//! Times are ms and rates percent; a figure with no data is `null`.

use crate::probe::Probe;
use crate::process;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// Memory use above which `/health/memory` reports degraded, percent.
const MEMORY_DEGRADED: f64 = 80.0;

impl Probe {
    /// The router with the four endpoints; merge it into the service's router.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/api/v2/health", get(health))
            .route("/api/v2/health/db", get(db))
            .route("/api/v2/health/memory", get(memory))
            .route("/api/v2/metrics", get(metrics))
            .with_state(self.clone())
    }
}

fn db_check(p: &Probe) -> Option<Result<crate::DbStatus, String>> {
    p.inner.db.as_ref().map(|check| check())
}

async fn health(State(p): State<Probe>) -> Response {
    let db = db_check(&p);
    let mem = process::memory_percent();
    let db_ok = !matches!(db, Some(Err(_)));
    let mem_ok = mem.is_none_or(|m| m < MEMORY_DEGRADED);
    let status = match (db_ok, mem_ok) {
        (true, true) => "healthy",
        (false, _) => "unhealthy",
        (true, false) => "degraded",
    };
    let body = json!({
        "status": status,
        "version": p.inner.version,
        "uptime_seconds": p.inner.started.elapsed().as_secs(),
        "checks": {
            "database": match &db { None => json!("not configured"), Some(Ok(_)) => json!("ok"), Some(Err(e)) => json!(format!("failing: {e}")) },
            "memory": if mem_ok { "ok" } else { "high" },
        },
    });
    let code = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn db(State(p): State<Probe>) -> Response {
    match db_check(&p) {
        None => {
            (StatusCode::OK, Json(json!({"status": "healthy", "database": "not configured"}))).into_response()
        }
        Some(Ok(s)) => {
            let pct = if s.max == 0 { 0.0 } else { f64::from(s.in_use) * 100.0 / f64::from(s.max) };
            Json(json!({"status": "healthy", "latency_ms": s.latency_ms, "pool": {"in_use": s.in_use, "max": s.max, "percent": pct}})).into_response()
        }
        Some(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unhealthy", "error": e})))
            .into_response(),
    }
}

async fn memory(State(_p): State<Probe>) -> Json<Value> {
    let pct = process::memory_percent();
    let status = if pct.is_none_or(|m| m < MEMORY_DEGRADED) { "healthy" } else { "degraded" };
    Json(json!({"status": status, "rss_bytes": process::rss_bytes(), "memory_percent": pct}))
}

async fn metrics(State(p): State<Probe>) -> Json<Value> {
    let second = p.second();
    let sum = p.window().summary(second);
    let errors = p.window().recent_errors();
    let secs = (p.inner.started.elapsed().as_secs_f64()).clamp(1.0, crate::stats::WINDOW_SECS as f64);
    let rate = |n: u64| if sum.requests == 0 { 0.0 } else { n as f64 * 100.0 / sum.requests as f64 };
    let (p50, p95, p99) =
        sum.quantiles_ms.map_or((None, None, None), |(a, b, c)| (Some(a), Some(b), Some(c)));
    let pool = db_check(&p).and_then(Result::ok);
    Json(json!({
        "version": p.inner.version,
        "performance": {"p50_response_time": p50, "p95_response_time": p95, "p99_response_time": p99},
        "reliability": {
            "error_rate": rate(sum.errors),
            "success_rate": if sum.requests == 0 { 100.0 } else { 100.0 - rate(sum.errors) },
            // Availability: the share of seconds with traffic in which the
            // service answered at least one request without a server error.
            "uptime": if sum.busy_seconds == 0 { 100.0 } else { sum.up_seconds as f64 * 100.0 / sum.busy_seconds as f64 },
            "uptime_seconds": p.inner.started.elapsed().as_secs(),
        },
        "capacity": {
            "requests_per_second": sum.requests as f64 / secs,
            "concurrent_users": p.inner.in_flight.load(Ordering::Relaxed).max(0),
            "database_connections": pool.as_ref().map(|s| if s.max == 0 { 0.0 } else { f64::from(s.in_use) * 100.0 / f64::from(s.max) }),
            "database_pool": pool.as_ref().map(|s| json!({"in_use": s.in_use, "max": s.max})),
        },
        "resources": {"memory_percent": process::memory_percent(), "cpu_percent": p.inner.cpu.percent()},
        "recent_errors": errors,
        "response_time": sum.routes,
        "window_seconds": secs,
    }))
}
