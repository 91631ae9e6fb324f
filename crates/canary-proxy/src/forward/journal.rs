//! A request's record in the request log (see `requests`), made only when
//! the request is kept: a failure, a 5xx, a gRPC call (its error may come
//! in the trailers) or a request the sampling draw picked.
//!
//! [`draft`] takes what the request's end will no longer have at hand (its
//! method, path and who sent it) while the request's context is here; the
//! end fills in the status, the time and the cause.

use super::ctx::Ctx;
use crate::requests::record::{Cause, MAX_PATH, Reason, Record, cut};
use crate::requests::user::UserKeySecret;
use canary_core::Version;
use canary_core::routing::Reason as Routed;

/// The record of a request `version` serves, but for how it ended.
pub(super) fn draft(ctx: &Ctx, version: Version) -> Record {
    let who = &ctx.who;
    let (reason, bucket) = match who.decision.reason {
        _ if version != who.decision.version => (Reason::Fallback, None),
        Routed::NoCanary => (Reason::NoCanary, None),
        Routed::Blocked => (Reason::Blocked, None),
        Routed::Excluded => (Reason::Excluded, None),
        Routed::Forced => (Reason::Forced, None),
        Routed::Bucket(b) => (Reason::Bucket, Some(b)),
    };
    Record {
        time_ms: crate::clock::now(),
        seq: 0,
        replica: None,
        version,
        method: ctx.method.as_str().into(),
        path: cut(ctx.uri.path(), MAX_PATH).into(),
        route: ctx.w.shard.route_label(ctx.route),
        status: None,
        duration_us: ctx.start.elapsed().as_micros() as u64,
        user: UserKeySecret::show(who.user),
        request_id: who.request_id.as_ref().and_then(|v| v.to_str().ok()).map(|v| cut(v, MAX_PATH).into()),
        reason,
        bucket,
        fallback: false,
        cause: None,
        detail: None,
        protocol: protocol(ctx).into(),
        client: who.client.to_string(),
    }
}

/// The client's protocol as records name it.
fn protocol(ctx: &Ctx) -> &'static str {
    match ctx.version {
        _ if ctx.grpc => "gRPC",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Keeps the record of a request that ended now: `status` (the upstream's,
/// or the proxy's own answer), `cause` and its words, and whether stable
/// serves the client instead.
pub(super) fn keep(ctx: &Ctx, version: Version, status: Option<u16>, cause: Option<Cause>, detail: &str) {
    let mut r = draft(ctx, version);
    r.status = status;
    r.cause = cause;
    r.detail = (!detail.is_empty()).then(|| detail.into());
    ctx.w.shard.keep(r);
}

/// Keeps a switched upgrade's record if the sampling draw picks it: it is
/// measured at its 101, its tunnel is not a request.
pub(super) fn sample_upgrade(ctx: &Ctx, version: Version, protocol: Option<&http::HeaderValue>) {
    if !ctx.w.shard.sampled() {
        return;
    }
    let mut r = draft(ctx, version);
    r.status = Some(101);
    let websocket = protocol.is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
    r.protocol = if websocket { "WebSocket".into() } else { "HTTP/1.1 upgrade".into() };
    ctx.w.shard.keep(r);
}

/// Keeps a failure after which stable serves the client.
pub(super) fn keep_fallen_back(ctx: &Ctx, version: Version, cause: Cause, detail: &str) {
    let mut r = draft(ctx, version);
    r.cause = Some(cause);
    r.detail = Some(detail.into());
    r.fallback = true;
    ctx.w.shard.keep(r);
}
