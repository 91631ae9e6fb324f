//! Reading and changing the routing state over the admin API. A change is
//! persisted with its event before it takes effect; a refused value changes
//! nothing and says why.

use super::body::{Example, JsonBody};
use super::{AdminState, error};
use crate::live::{Change, Source};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canary_core::Share;
use canary_core::exclude::Excludes;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `GET /api/routing`
pub async fn get_routing(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(describe(&s))
}

fn describe(s: &AdminState) -> serde_json::Value {
    let t = s.live.routing();
    let ups = s.live.upstreams();
    json!({
        "rollout": t.rollout,
        "share": t.share.percent(),
        "excludes": t.excludes.patterns(),
        "stable": ups.stable.url(),
        "canary": ups.canary.as_ref().map(|c| c.url()),
        "version_header": s.cfg.version_header,
        // After a rollback every request goes to stable, `x-canary: always`
        // included, until the next deploy or a forced adjust.
        "canary_blocked": t.canary_blocked,
        "overrides": if t.canary_blocked { "ignored: the canary was rolled back" } else { "honoured" },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
/// The body of `PUT /api/routing/share`.
pub struct ShareBody {
    share: serde_json::Value,
    #[serde(default)]
    force: bool,
}

impl Example for ShareBody {
    const EXAMPLE: &'static str =
        r#"{"share": 25} (a number or a string such as "12.5"; "force": true after a rollback)"#;
}

/// `PUT /api/routing/share` with `{"share": 25}` (a number or a string such as
/// "12.5"). After a rollback a share above 0 is refused (409) unless
/// `"force": true`, which also lifts the block.
pub async fn put_share(State(s): State<AdminState>, JsonBody(b): JsonBody<ShareBody>) -> Response {
    let parsed = match &b.share {
        serde_json::Value::Number(n) => n.as_f64().map(Share::from_percent),
        serde_json::Value::String(t) => Some(t.parse::<Share>()),
        _ => None,
    };
    match parsed {
        Some(Ok(share)) if s.live.routing().canary_blocked && share > Share::ZERO && !b.force => error(
            StatusCode::CONFLICT,
            "canary_blocked",
            format!(
                "the canary was rolled back and gets no traffic until the next deploy; \
                 to send it {share} anyway, add \"force\": true"
            ),
        ),
        Some(Ok(share)) => {
            let blocked = (b.force && share > Share::ZERO).then_some(false);
            apply(s, Change { share: Some(share), blocked, ..Change::default() }).await
        }
        Some(Err(e)) => bad(format!("share: {e}")),
        None => bad("share: expected a number from 0 to 100".to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
/// The body of `PUT /api/routing/excludes`.
pub struct ExcludesBody {
    excludes: Vec<String>,
}

impl Example for ExcludesBody {
    const EXAMPLE: &'static str = r#"{"excludes": ["/api/admin/*"]}"#;
}

/// `PUT /api/routing/excludes` with `{"excludes": ["/api/admin/*"]}`.
pub async fn put_excludes(State(s): State<AdminState>, JsonBody(b): JsonBody<ExcludesBody>) -> Response {
    match Excludes::new(&b.excludes) {
        Ok(ex) => apply(s, Change { excludes: Some(ex), ..Change::default() }).await,
        Err(e) => bad(e.to_string()),
    }
}

fn bad(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

async fn apply(s: AdminState, change: Change) -> Response {
    let live = Arc::clone(&s.live);
    // The write fsyncs the state file; keep it off the async threads.
    match tokio::task::spawn_blocking(move || live.apply(change, Source::Api)).await {
        Ok(Ok(_)) => Json(describe(&s)).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "state_file", format!("not changed: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
