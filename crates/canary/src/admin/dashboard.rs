//! The monitoring dashboard (S11) at `/admin/monitoring`: a page and its
//! assets embedded in the binary (no CDN; uPlot vendored, see
//! `assets/vendor/uplot/SOURCE.md`), fed by `GET /api/stream`, a server-sent
//! event stream of both versions' live figures and the rollout's state.

use super::{AdminState, chart_history};
use crate::controller;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use canary_core::Version;
use canary_proxy::metrics::WindowSpec;
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAGE: &str = include_str!("../../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../../assets/dashboard/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard/dashboard.css");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

/// `GET /admin/monitoring`
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /admin/assets/{name}`
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        "uplot.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uplot.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => {
            return super::error(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                format!("no asset `{name}`"),
            );
        }
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// `GET /api/stream`: one JSON event a second. The first goes out at once,
/// with the charts' past (`history`, see [`super::chart_history`]), so a
/// page that just opened draws the step so far.
pub async fn stream(State(s): State<AdminState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = stream::unfold((s, true), |(s, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut snapshot = frame(&s).await;
        if first {
            snapshot["history"] = Value::Array(chart_history::points(&s).await);
        }
        Some((Ok(Event::default().data(snapshot.to_string())), (s, false)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

async fn frame(s: &AdminState) -> Value {
    let (c, published, live, cluster) =
        (Arc::clone(&s.controller), Arc::clone(&s.published), Arc::clone(&s.live), s.cluster.clone());
    let now = move || controller::status_now(&c, &published, &live, cluster.as_deref());
    let status = tokio::task::spawn_blocking(now).await.ok();
    let snap = s.metrics.window(WindowSpec::Last(Duration::from_secs(10)), Instant::now());
    let thresholds = status.as_ref().and_then(|st| st.thresholds.clone());
    json!({
        "t": crate::store::now(),
        "rollout_name": s.cfg.rollout,
        "state": status.as_ref().map_or("idle".to_string(), |st| st.state.clone()),
        "share": s.live.routing().share.percent(),
        "cluster": status.as_ref().and_then(|st| st.cluster.clone()),
        "rollout": status.and_then(|st| st.rollout),
        "stable": chart_history::arm(snap.arm(Version::Stable)),
        "canary": chart_history::arm(snap.arm(Version::Canary)),
        "thresholds": thresholds.map(|t| json!({"error_rate": t.error_rate, "rollback_error_rate": t.rollback_error_rate, "p95": t.p95_ms, "rollback_p95": t.rollback_p95_ms})),
    })
}
