//! The rollout endpoints: status and history to read; deploy, adjust,
//! promote, pause, resume and rollback to act. Each refusal says why and
//! changes nothing (400 bad input, 409 wrong state, 503 state file).

use super::body::{Example, JsonBody, MaybeJsonBody};
use super::{AdminState, error};
use crate::controller::api::DeployRequest;
use crate::controller::clock;
use crate::controller::{self, Command, ControlError};
use crate::store::RolloutRecord;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canary_core::Share;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `GET /api/rollout`
pub async fn status(State(s): State<AdminState>) -> Response {
    let (c, published, live, cluster) =
        (Arc::clone(&s.controller), Arc::clone(&s.published), Arc::clone(&s.live), s.cluster.clone());
    let now = move || controller::status_now(&c, &published, &live, cluster.as_deref());
    match tokio::task::spawn_blocking(now).await {
        Ok(st) => Json(st).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

#[derive(Deserialize)]
/// `?limit=N`
pub struct HistoryQuery {
    limit: Option<usize>,
}

/// `GET /api/rollouts`: past and present rollouts, newest first.
pub async fn history(State(s): State<AdminState>, Query(q): Query<HistoryQuery>) -> Response {
    let live = Arc::clone(&s.live);
    let limit = q.limit.unwrap_or(50).min(1000);
    match tokio::task::spawn_blocking(move || live.store().rollouts(limit)).await {
        Ok(Ok(list)) => Json(json!({"rollouts": list})).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "state_file", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

impl Example for DeployRequest {
    const EXAMPLE: &'static str = r#"{"share": 10, "canary": "http://10.0.0.6:3000"} (optionally "steps": "10,25,50,75,100", "bake": "10m", "final_watch": "30m", "manual": true)"#;
}

/// `POST /api/rollout/deploy`
pub async fn deploy(State(s): State<AdminState>, JsonBody(req): JsonBody<DeployRequest>) -> Response {
    // Checked before the checklist runs: a typo in the plan is not worth
    // minutes of checks, and is said at once.
    let c = Arc::clone(&s.controller);
    let checked = req.clone();
    match tokio::task::spawn_blocking(move || controller::lock(&c).check_deploy(&checked)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
    let checks = if s.cfg.ops.checklist.is_empty() {
        None
    } else {
        let results = crate::ops::checklist::run(&s.cfg.ops.checklist, &req.confirm).await;
        if !crate::ops::checklist::all_passed(&results) && !req.force {
            let failed: Vec<String> =
                results.iter().filter(|r| !r.passed).map(|r| format!("{} ({})", r.name, r.detail)).collect();
            let msg = format!(
                "pre-deploy checklist failed: {}; fix it, or --force --reason TEXT",
                failed.join("; ")
            );
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "conflict", "message": msg, "checklist": results})),
            )
                .into_response();
        }
        Some(results)
    };
    run(s, move |c| c.deploy(&req, clock::now_ms(), checks)).await
}

/// The body of a checklist run: `{"confirm": ["rollback plan ready"]}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    #[serde(default)]
    confirm: Vec<String>,
}

impl Example for CheckBody {
    const EXAMPLE: &'static str = r#"{"confirm": ["rollback plan ready"]} (or no body)"#;
}

/// `POST /api/checklist/run`: runs the checklist, changes nothing.
pub async fn checklist(
    State(s): State<AdminState>,
    MaybeJsonBody(body): MaybeJsonBody<CheckBody>,
) -> Response {
    let confirm = body.map(|b| b.confirm).unwrap_or_default();
    let results = crate::ops::checklist::run(&s.cfg.ops.checklist, &confirm).await;
    Json(json!({"passed": crate::ops::checklist::all_passed(&results), "items": results})).into_response()
}

/// The body of adjust: `{"share": 25}`, with `"force": true` to move past a
/// failing verdict or to send a rolled-back canary traffic again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    share: f64,
    #[serde(default)]
    force: bool,
}

impl Example for AdjustBody {
    const EXAMPLE: &'static str = r#"{"share": 25} (and optionally "force": true)"#;
}

/// `POST /api/rollout/adjust`
pub async fn adjust(State(s): State<AdminState>, JsonBody(b): JsonBody<AdjustBody>) -> Response {
    match Share::from_percent(b.share) {
        Ok(share) => command(s, Command::Adjust { share, force: b.force }).await,
        Err(e) => {
            error(StatusCode::BAD_REQUEST, "invalid", format!("share: {e}; send {}", AdjustBody::EXAMPLE))
        }
    }
}

/// The body of promote: `{"full": false}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    #[serde(default)]
    full: bool,
}

impl Example for PromoteBody {
    const EXAMPLE: &'static str = r#"{"full": true} (or no body: the next step)"#;
}

/// `POST /api/rollout/promote`
pub async fn promote(
    State(s): State<AdminState>,
    MaybeJsonBody(body): MaybeJsonBody<PromoteBody>,
) -> Response {
    let full = body.is_some_and(|b| b.full);
    command(s, Command::Promote(full)).await
}

/// The body of pause and rollback: `{"reason": "..."}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

impl Example for ReasonBody {
    const EXAMPLE: &'static str = r#"{"reason": "why"} (or no body)"#;
}

/// `POST /api/rollout/pause`
pub async fn pause(State(s): State<AdminState>, MaybeJsonBody(body): MaybeJsonBody<ReasonBody>) -> Response {
    let why = body.and_then(|b| b.reason).unwrap_or_else(|| "no reason given".into());
    command(s, Command::Pause(why)).await
}

/// `POST /api/rollout/resume`
pub async fn resume(State(s): State<AdminState>) -> Response {
    command(s, Command::Resume).await
}

/// `POST /api/rollout/rollback`
pub async fn rollback(
    State(s): State<AdminState>,
    MaybeJsonBody(body): MaybeJsonBody<ReasonBody>,
) -> Response {
    let why = body.and_then(|b| b.reason).unwrap_or_else(|| "no reason given".into());
    command(s, Command::Rollback(why)).await
}

async fn command(s: AdminState, cmd: Command) -> Response {
    run(s, move |c| c.command(cmd, clock::now_ms())).await
}

async fn run<F>(s: AdminState, f: F) -> Response
where
    F: FnOnce(&mut controller::Controller) -> Result<controller::api::Status, ControlError> + Send + 'static,
{
    let c = Arc::clone(&s.controller);
    // Commands write the state file (fsync): keep them off the async thread.
    let act = move || {
        let mut g = controller::lock(&c);
        let outcome = f(&mut g);
        // What a status answered while the controller is busy shows this command too.
        g.publish();
        outcome
    };
    match tokio::task::spawn_blocking(act).await {
        Ok(Ok(st)) => Json(st).into_response(),
        Ok(Err(e @ ControlError::Invalid(_))) => error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        Ok(Err(e @ ControlError::Conflict(_))) => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        Ok(Err(e @ ControlError::Store(_))) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "state_file", e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `?format=json` (default markdown).
#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
}

/// The query of the summary: `?last=10&format=text`.
#[derive(Deserialize)]
pub struct SummaryQuery {
    last: Option<usize>,
    format: Option<String>,
}

/// `GET /api/rollouts/summary`: success indicators over the last N rollouts
/// (default 10), JSON or `format=text`.
pub async fn summary(State(s): State<AdminState>, Query(q): Query<SummaryQuery>) -> Response {
    let live = Arc::clone(&s.live);
    let last = q.last.unwrap_or(10);
    if !(1..=1000).contains(&last) {
        return error(StatusCode::BAD_REQUEST, "invalid", format!("last={last}: give 1 to 1000 rollouts"));
    }
    let as_text = q.format.as_deref() == Some("text");
    match tokio::task::spawn_blocking(move || crate::ops::summary::json(&live, last)).await {
        Ok(Ok(sum)) if as_text => {
            let t = crate::ops::summary::text(&sum);
            ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response()
        }
        Ok(Ok(sum)) => Json(sum).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "state_file", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `GET /api/rollouts/{id}/report`: the deployment report; `id` may be `latest`.
pub async fn report(
    State(s): State<AdminState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let live = Arc::clone(&s.live);
    let as_json = q.format.as_deref() == Some("json");
    let work = move || -> Result<Option<Response>, String> {
        let id = match id.as_str() {
            "latest" => live.store().rollouts(1).map_err(|e| e.to_string())?.first().map(RolloutRecord::id),
            n => Some(n.parse::<i64>().map_err(|_| format!("rollout `{n}` is not a number (or `latest`)"))?),
        };
        let Some(id) = id else { return Ok(None) };
        if as_json {
            let doc = crate::ops::report::json(&live, id).map_err(|e| e.to_string())?;
            return Ok(doc.map(|v| Json(v).into_response()));
        }
        Ok(crate::ops::report::markdown(&live, id).map_err(|e| e.to_string())?.map(|md| {
            ([(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response()
        }))
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "not_found", "no such rollout"),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, "invalid", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
