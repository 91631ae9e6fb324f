//! `GET /api/v2/shadow[?route=R]`: the shadow step's comparisons, per
//! route: the verdict and its counts, each difference with its count and
//! stable's own rate of it (noise), a few example pairs with secrets
//! redacted, the canary's latency on copies; and the requests not copied,
//! by reason. What `canary diff` prints and the dashboard shows.

use super::AdminState;
use crate::controller::shadow::{judged, policy};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// The query.
#[derive(Debug, Deserialize)]
pub struct Q {
    route: Option<String>,
}

/// The handler.
pub async fn handler(State(s): State<AdminState>, Query(q): Query<Q>) -> Json<Value> {
    let p = policy(&s.cfg.shadow_policy, &s.cfg.policy);
    let routes: Vec<Value> = judged(&s.shadow, &p)
        .into_iter()
        .filter(|(v, _)| q.route.as_deref().is_none_or(|r| r == v.route))
        .map(|(v, r)| {
            let examples: Vec<Value> = r
                .examples
                .iter()
                .map(|(d, pairs)| json!({"at": d.at, "kind": d.kind, "pairs": pairs}))
                .collect();
            let [p50, p95, p99] = r.latency_ms;
            let mut line = json!(v);
            line["latency_ms"] = json!({"p50": p50, "p95": p95, "p99": p99, "copies": r.timed});
            line["examples"] = json!(examples);
            line
        })
        .collect();
    let skipped: serde_json::Map<String, Value> =
        s.shadow.skipped().into_iter().map(|(why, n)| (why.as_str().to_string(), json!(n))).collect();
    Json(json!({
        "shadowing": s.live.routing().shadow,
        "policy": p,
        "routes": routes,
        "skipped": skipped,
    }))
}
