//! `GET /internal/v1/window?window=..|since_ms=..`: this replica's reading over
//! a window, exact (see `cluster::window_wire`), for the replica answering
//! `/api/v2/metrics` for the fleet. The window is parsed as `/api/v2/metrics`
//! parses it, so both answer for the same stretch of time.

use super::metrics_json::{MetricsQuery, RECENT, parse_spec};
use super::{AdminState, error};
use crate::cluster::window_wire::WireWindow;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canary_proxy::metrics::Reading;
use std::time::Instant;

/// `GET /internal/v1/window`
pub async fn handler(State(s): State<AdminState>, Query(q): Query<MetricsQuery>) -> Response {
    if let Some(c) = &s.cluster {
        c.served(crate::cluster::Internal::Window);
    }
    let (spec, _) = match parse_spec(&q) {
        Ok(x) => x,
        Err(msg) => return error(StatusCode::BAD_REQUEST, "invalid", msg),
    };
    let reading = Reading::of(&s.metrics, spec, Instant::now(), RECENT);
    let node = s.cluster.as_ref().map_or("", |c| c.node_id.as_str());
    Json(WireWindow::of(node, &reading)).into_response()
}
