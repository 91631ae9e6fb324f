//! The admin API, on its own listener (loopback by default): health, metrics in
//! the seed's JSON shape and in Prometheus text, the routing state to read and
//! change, the event log, and the dynamic config file's status.
//!
//! # Layout
//! - [`metrics_json`]: `GET /api/v2/metrics`, the S10 shape, per version and
//!   combined, for the fleet when clustered.
//! - [`node_window`]: `GET /internal/v1/window`, this replica's part of that answer.
//! - [`routing`]: `GET /api/routing`, `PUT /api/routing/share`, `PUT /api/routing/excludes`.
//! - [`rollout`]: `GET /api/rollout`, `GET /api/rollouts`, `POST /api/rollout/{deploy,adjust,promote,pause,resume,rollback}`.
//! - [`flags`]: `GET /api/flags[?user=ID]`, `PUT|DELETE /api/flags/{name}`.
//! - [`dashboard`]: `/admin/monitoring`, its embedded assets, and `GET /api/stream`.
//! - [`chart_history`]: the charts' past, in the stream's first frame.
//! - [`login`]: the dashboard's login form, sessions and CSRF token.
//! - [`auth`]: the admin token on mutating calls.
//! - [`forward`]: in a cluster, commands sent on to the leader from any replica.
//! - [`body`]: request bodies read within a limit, refused in the API's JSON shape.
//! - [`plain`]: axum's own refusals (queries, paths, methods) in that shape too.
//! - this file: the router, health, events, flags-file status and `/metrics`.

pub mod auth;
pub mod body;
pub mod chart_history;
pub mod dashboard;
pub mod flags;
pub mod forward;
pub mod login;
pub mod logs;
pub mod logs_follow;
pub mod metrics_json;
pub mod node_window;
pub mod plain;
pub mod rollout;
pub mod routing;
pub mod shadow;

use crate::cluster::Cluster;
use crate::cluster::wire::WireSnapshot;
use crate::config::ServeConfig;
use crate::controller::Controller;
use crate::dynamic::FlagsStatus;
use crate::live::Live;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use canary_proxy::metrics::Metrics;
use canary_proxy::metrics::prometheus::{self, Gauges};
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Routing state.
    pub live: Arc<Live>,
    /// Measurements.
    pub metrics: Arc<Metrics>,
    /// Configuration.
    pub cfg: Arc<ServeConfig>,
    /// The dynamic config file's last load.
    pub flags: Arc<Mutex<FlagsStatus>>,
    /// The rollout controller.
    pub controller: Arc<Mutex<Controller>>,
    /// Its status as of its last look, for when it is busy.
    pub published: crate::controller::Published,
    /// The rollbacks it decided, by cause.
    pub rollbacks: crate::controller::exposition::Rollbacks,
    /// The dashboard's login sessions.
    pub sessions: Arc<auth::Sessions>,
    /// The cluster this replica belongs to, if any.
    pub cluster: Option<Arc<Cluster>>,
    /// The key users are hashed with in the request log, for `logs --user`.
    pub secret: canary_proxy::requests::user::UserKeySecret,
    /// The access log, when one is written: its counts go to `/metrics`.
    pub access_log: Option<Arc<canary_proxy::access_log::AccessLog>>,
    /// Tracing, when spans are exported: its counts go to `/metrics`.
    pub tracing: Option<Arc<canary_proxy::traces::Tracing>>,
    /// Shadow traffic's copies and comparisons.
    pub shadow: Arc<canary_proxy::shadow::Shadow>,
}

/// The admin API's routes.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v2/health", get(health))
        .route("/api/v2/metrics", get(metrics_json::handler))
        .route("/api/v2/logs", get(request_log))
        .route("/api/v2/shadow", get(shadow::handler))
        .route("/api/routing", get(routing::get_routing))
        .route("/api/routing/share", put(routing::put_share))
        .route("/api/routing/excludes", put(routing::put_excludes))
        .route("/api/events", get(events))
        .route("/api/flags-file", get(flags_file))
        .route("/metrics", get(prom))
        .route("/admin/monitoring", get(dashboard::page))
        .route("/admin/login", get(login::form).post(login::login))
        .route("/admin/logout", post(login::logout))
        .route("/admin/session", get(login::session))
        .route("/admin/assets/{name}", get(dashboard::asset))
        .route("/api/stream", get(dashboard::stream))
        .route("/api/rollout", get(rollout::status))
        .route("/api/rollouts", get(rollout::history))
        .route("/api/rollouts/{id}/report", get(rollout::report))
        .route("/api/rollouts/summary", get(rollout::summary))
        .route("/api/rollout/deploy", post(rollout::deploy))
        .route("/api/checklist/run", post(rollout::checklist))
        .route("/api/flags", get(flags::get_flags))
        .route("/api/flags/{name}", put(flags::put_flag).delete(flags::delete_flag))
        .route("/api/rollout/adjust", post(rollout::adjust))
        .route("/api/rollout/promote", post(rollout::promote))
        .route("/api/rollout/pause", post(rollout::pause))
        .route("/api/rollout/resume", post(rollout::resume))
        .route("/api/rollout/rollback", post(rollout::rollback))
        .route(crate::cluster::TOTALS_PATH, get(totals))
        .route(crate::cluster::WINDOW_PATH, get(node_window::handler))
        .route(crate::cluster::LOGS_PATH, get(logs::internal))
        .fallback(not_found)
        // Inside the token check: a caller is checked where it called.
        .layer(axum::middleware::from_fn_with_state(state.clone(), forward::to_leader))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        // Forms (the login) are held to the JSON bodies' limit.
        .layer(axum::extract::DefaultBodyLimit::max(body::LIMIT))
        .with_state(state);
    // Around the whole router, so a 405 reaches it with its `Allow` header
    // (which a route's own layers run before).
    Router::new().fallback_service(api).layer(axum::middleware::from_fn(plain::as_json))
}

/// A JSON error reply: `{"error": ..., "message": ...}`.
pub fn error(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": error, "message": message.into()}))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see GET /api/v2/health, /api/v2/metrics, /api/routing, /api/events, /metrics",
    )
}

async fn health(State(s): State<AdminState>) -> Json<serde_json::Value> {
    let ups = s.live.upstreams();
    let flags_error = s.flags.lock().ok().and_then(|f| f.last_error.clone());
    let etcd_error = s.cluster.as_ref().and_then(|c| c.etcd_error());
    let state_error = s.live.fault().map(|f| f.message());
    let degraded = flags_error.is_some() || etcd_error.is_some() || state_error.is_some();
    Json(json!({
        "status": if degraded { "degraded" } else { "healthy" },
        "state_error": state_error,
        "cluster": s.cluster.as_ref().map(|c| c.describe()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.metrics.uptime(Instant::now()).as_secs(),
        "rollout": s.cfg.rollout,
        "share": s.live.routing().share.percent(),
        "upstreams": {"stable": ups.stable.url(), "canary": ups.canary.as_ref().map(|c| c.url())},
        "flags_file_error": flags_error,
    }))
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<usize>,
}

async fn events(State(s): State<AdminState>, Query(q): Query<EventsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let live = Arc::clone(&s.live);
    match tokio::task::spawn_blocking(move || live.store().events(limit)).await {
        Ok(Ok(ev)) => Json(json!({"events": ev})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "state_file", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `GET /api/v2/logs`: the request log's records, or with `follow=true` a
/// stream of them as they are kept.
async fn request_log(State(s): State<AdminState>, Query(q): Query<logs::LogsQuery>) -> Response {
    let asked = match logs::asked(&s, &q) {
        Ok(a) => a,
        Err(msg) => return logs::refuse(msg),
    };
    match q.follow {
        Some(true) => logs_follow::stream(s, asked).into_response(),
        _ => logs::answer(&s, &asked).await,
    }
}

async fn flags_file(State(s): State<AdminState>) -> Response {
    match s.flags.lock() {
        Ok(f) => Json(f.clone()).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "flags status unavailable"),
    }
}

/// The leader's look a totals fetch belongs to, and the look whose totals
/// a new leader counts on from (see `cluster::looks`).
#[derive(Debug, Deserialize)]
struct TotalsQuery {
    look: Option<String>,
    from: Option<String>,
}

/// This replica's traffic totals, for the leader to judge the fleet; kept
/// by look, and, when asked, with those it served at an earlier look.
async fn totals(State(s): State<AdminState>, Query(q): Query<TotalsQuery>) -> Json<WireSnapshot> {
    let node = s.cluster.as_ref().map_or("", |c| c.node_id.as_str());
    let mut snap = WireSnapshot::now(node, &s.metrics);
    if let Some(c) = &s.cluster {
        c.served(crate::cluster::Internal::Totals);
        let parse = |q: &Option<String>| q.as_deref().and_then(crate::cluster::looks::parse);
        snap.base = parse(&q.from).and_then(|(term, n)| c.looks.at(term, n));
        if let Some((term, n)) = parse(&q.look) {
            c.looks.record(term, n, snap.versions.clone());
        }
    }
    Json(snap)
}

async fn prom(State(s): State<AdminState>) -> Response {
    let now = Instant::now();
    let g = Gauges {
        share: s.live.routing().share,
        in_flight: s.metrics.in_flight(),
        upgraded: s.metrics.upgraded(),
        uptime_secs: s.metrics.uptime(now).as_secs_f64(),
        rollout: &s.cfg.rollout,
    };
    let mut body = prometheus::render(&s.metrics.totals(), &g);
    // The rollout as the controller last published it (a scrape never
    // waits on it). In a cluster only the leader's is current, so only the
    // leader shows it: a query across replicas finds one rollout.
    let published = s.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(st) = published.filter(|_| s.cluster.as_ref().is_none_or(|c| c.is_leader())) {
        body.push_str(&crate::controller::exposition::render(&st, &s.rollbacks));
    }
    if let Some(c) = &s.cluster {
        body.push_str(&c.exposition());
    }
    if let Some(a) = &s.access_log {
        body.push_str(&a.exposition());
    }
    if let Some(t) = &s.tracing {
        body.push_str(&t.exposition());
    }
    body.push_str(&s.shadow.exposition());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
