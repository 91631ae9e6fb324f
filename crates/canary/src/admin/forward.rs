//! Commands reach the leader through any replica: a replica that does not
//! lead sends every state-changing `/api/` call on to the leader's admin API
//! and passes its answer back (`x-canary-forwarded-to` names the leader).
//!
//! The caller was already checked here (token, or dashboard session and CSRF
//! token); the forwarded call carries the admin token the replicas share, since
//! a dashboard session exists only on the replica that made it.
//!
//! A forwarded call names its replica's wire (`x-canary-wire`); a leader
//! refuses one from a newer wire (see `cluster::versions`).

use super::{AdminState, error};
use crate::cluster::peer::PeerLink;
use crate::cluster::versions::{WIRE, WIRE_HEADER};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use std::time::Duration;

/// The largest command body forwarded.
const MAX_BODY: usize = 1 << 20;

/// Marks a forwarded call, so it is never forwarded twice.
const FORWARDED_BY: &str = "x-canary-forwarded-by";

/// How long the leader has to answer a forwarded command.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The middleware: forwards when another replica leads.
pub async fn to_leader(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(cluster) = &s.cluster else { return next.run(req).await };
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    if cluster.is_leader() {
        return match newer_wire(&req) {
            Some(w) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "newer_follower",
                format!(
                    "this leader speaks wire {WIRE}, the replica that forwarded the command speaks wire \
                     {w}: it may carry options this release does not know; nothing was changed, retry in \
                     a few seconds (the newer replica takes the lead)"
                ),
            ),
            None => next.run(req).await,
        };
    }
    if req.headers().contains_key(FORWARDED_BY) {
        // Two replicas each taking the other for the leader, for a moment:
        // answer rather than bounce.
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "the leadership is changing hands; nothing was changed, retry in a few seconds",
        );
    }
    let Some(leader) = cluster.forward_to() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "no replica leads right now (an election is under way, or etcd cannot be reached: see \
             GET /api/v2/health); nothing was changed, retry in a few seconds",
        );
    };
    let id = cluster.leader().map(|l| l.id).unwrap_or_default();
    match forward(req, &cluster.link, &leader, s.cfg.admin_token.as_deref(), &cluster.node_id).await {
        Ok(mut resp) => {
            if let Ok(v) = id.parse() {
                resp.headers_mut().insert("x-canary-forwarded-to", v);
            }
            resp
        }
        Err(why) => error(
            StatusCode::BAD_GATEWAY,
            "leader_unreachable",
            format!(
                "the leader ({id} at {leader}) did not answer: {why}; the command may not have been carried out: check `canary status`"
            ),
        ),
    }
}

/// The wire of the replica that forwarded `req`, when it is newer than
/// this one's: such a command is refused, not carried out in part.
fn newer_wire(req: &Request) -> Option<u32> {
    let w: u32 = req.headers().get(WIRE_HEADER)?.to_str().ok()?.parse().ok()?;
    (w > WIRE).then_some(w)
}

async fn forward(
    req: Request,
    link: &PeerLink,
    leader: &str,
    token: Option<&str>,
    me: &str,
) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("the request body could not be read: {e}"))?
        .to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = http::Request::builder().method(parts.method.clone()).uri(link.url(leader, path));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::AUTHORIZATION && name != header::COOKIE {
            out = out.header(name, value);
        }
    }
    if let Some(t) = token {
        out = out.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    out = out.header(FORWARDED_BY, me).header(WIRE_HEADER, WIRE);
    let out = out.body(Full::new(body)).map_err(|e| e.to_string())?;
    let client = link.client::<Full<bytes::Bytes>>();
    let resp = tokio::time::timeout(TIMEOUT, client.request(out))
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status, parts.headers, Body::from(bytes)).into_response())
}
