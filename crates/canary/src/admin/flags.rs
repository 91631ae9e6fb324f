//! Feature flags over the admin API: `GET /api/flags` lists them;
//! `GET /api/flags?user=ID[&path=/x]` answers which are on for that user, for
//! services to ask; `PUT /api/flags/{name}` with `{"value": "on"|"off"|"25%"}`
//! sets one; `DELETE /api/flags/{name}` removes the API's value.

use super::body::{Example, JsonBody};
use super::{AdminState, error};
use crate::feature_flags::describe;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `?user=ID&path=/x`
#[derive(Deserialize)]
pub struct FlagsQuery {
    user: Option<String>,
    path: Option<String>,
}

/// `GET /api/flags`. A follower reads the flags from etcd first (within
/// `FRESH_WITHIN`), so a flag just set through another replica shows here
/// (read your writes); cut off from etcd, it answers with what it has.
pub async fn get_flags(State(s): State<AdminState>, Query(q): Query<FlagsQuery>) -> Json<Value> {
    if s.cluster.as_ref().is_some_and(|c| !c.is_leader() && c.etcd_error().is_none()) {
        let live = Arc::clone(&s.live);
        let _ = tokio::task::spawn_blocking(move || catch_up(&live)).await;
    }
    let all = s.live.flags.all();
    match q.user {
        None => Json(json!({"flags": all.iter().map(describe).collect::<Vec<_>>()})),
        Some(user) => {
            let on: Map<String, Value> =
                all.iter().map(|f| (f.name.clone(), json!(f.on_for(&user, q.path.as_deref())))).collect();
            Json(json!({"user": user, "flags": on}))
        }
    }
}

/// Takes the flags as etcd has them now, if it answers in time.
fn catch_up(live: &crate::live::Live) {
    match live.store().fresh(crate::controller::FRESH_WITHIN) {
        Ok(Some(f)) => {
            if let Some(flags) = &f.flags {
                live.flags.adopt_api(flags);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "flags: the shared state was not read in time"),
    }
}

/// The body of a set: `{"value": "on"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    value: String,
}

impl Example for SetBody {
    const EXAMPLE: &'static str = r#"{"value": "on"} (or "off", or a percentage such as "25%")"#;
}

/// `PUT /api/flags/{name}`
pub async fn put_flag(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    JsonBody(SetBody { value }): JsonBody<SetBody>,
) -> Response {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("flag name `{name}`: use letters, digits, - and _"),
        );
    }
    let (enabled, pct) = match canary_core::flags::parse_value(&value) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", format!("value `{value}`: {e}")),
    };
    let live = Arc::clone(&s.live);
    match tokio::task::spawn_blocking(move || live.flags.set(live.store(), &name, enabled, pct)).await {
        Ok(Ok(())) => get_flags(State(s), Query(FlagsQuery { user: None, path: None })).await.into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "state_file", format!("not changed: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `DELETE /api/flags/{name}`
pub async fn delete_flag(State(s): State<AdminState>, Path(name): Path<String>) -> Response {
    let live = Arc::clone(&s.live);
    let n = name.clone();
    match tokio::task::spawn_blocking(move || live.flags.unset(live.store(), &n)).await {
        Ok(Ok(true)) => {
            get_flags(State(s), Query(FlagsQuery { user: None, path: None })).await.into_response()
        }
        Ok(Ok(false)) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("flag `{name}` has no value set through the API"),
        ),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "state_file", format!("not changed: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
