//! A request from the lean client path (see `front`) forwarded as its client
//! sent it: routed from the values its head parser noted, and its upstream
//! request head written from the client's own header lines, with the
//! upstream's `Host` and the `x-forwarded-*` headers. No header map, no
//! `http::Request` is built on the way up.
//!
//! This takes the common case: a method the lean upstream exchange sends
//! (`h1::eligible`) to HTTP/1.1 upstreams. A request for which either
//! upstream speaks HTTP/2, or with another method (a body-less POST, which
//! hyper's client sends), is turned into `http`'s parts and served by
//! `service` as before.
//!
//! A failure is answered and recorded as `service` does. The request is kept
//! whole (it is immutable bytes), so a canary that fails it is replaced by
//! stable without a copy: at once when it was never sent, and for a method
//! safe to repeat when the canary took it and then failed.

use super::body::ProxyBody;
use super::front::head::Lean;
use super::h1;
use super::service::{
    self, Ctx, Fields, LeanFailure, LeanWant, Peer, Sent, Worker, decide_with, fail, respond,
};
use crate::routes::Upstreams;
use canary_core::upstream::Upstream;
use arc_swap::Guard;
use canary_core::{Version, path};
use http::{Method, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Sleep;

/// Handles one lean-path request; `timer`: the client connection's, for the
/// wait for the response head (see `deadline`).
// The request is borrowed, not moved: moved, its few hundred bytes would be
// copied into this future and again into its locals.
pub async fn handle(w: Arc<Worker>, peer: &Peer, req: &Lean, timer: Pin<&mut Sleep>) -> Response<ProxyBody> {
    let ups = w.routes.upstreams();
    if !takes(&w, &ups, &req.method) {
        // Boxed: hyper's client and HTTP/2 make this future several times
        // the size of the common one, and every request's would carry it.
        return Box::pin(service::handle_lean(w, peer, req.to_parts())).await;
    }
    let start = Instant::now();
    let (ctx, version) = begin(w, peer, req, start);
    forward(&ctx, version, req, peer, timer, ups).await
}

/// Whether the request is forwarded from its own bytes: a method the lean
/// exchange sends, to upstreams that speak HTTP/1.1.
fn takes(w: &Worker, ups: &Upstreams, method: &Method) -> bool {
    if !h1::eligible(method, true) {
        return false;
    }
    !w.pool.speaks_h2(&ups.stable) && ups.canary.as_ref().is_none_or(|c| !w.pool.speaks_h2(c))
}

/// Routes the request and names it for measurement.
fn begin(w: Arc<Worker>, peer: &Peer, req: &Lean, start: Instant) -> (Ctx, Version) {
    let norm = path::normalize(req.uri.path());
    let user = req.value(req.seen.user);
    let fields = Fields { canary: req.value(req.seen.canary), user, cookies: || req.cookies() };
    let to = decide_with(&w.routes.routing(), &fields.facts(&w.cfg, &norm, peer));
    let route = w.shard.route_index(&w.cfg.routes.label(&norm));
    drop(norm);
    (Ctx::lean(w, route, start, req.method.clone(), req.uri.clone()), to)
}

async fn forward(
    ctx: &Ctx,
    version: Version,
    req: &Lean,
    peer: &Peer,
    mut timer: Pin<&mut Sleep>,
    ups: Guard<Arc<Upstreams>>,
) -> Response<ProxyBody> {
    let (version, target) = match (version, &ups.canary) {
        (Version::Canary, Some(c)) => (Version::Canary, c),
        _ => (Version::Stable, &ups.stable),
    };
    ctx.w.shard.begin(version);
    let failure = match send(ctx, target, req, peer, timer.as_mut()).await {
        Ok((resp, conn)) => return respond(ctx, version, resp, conn),
        Err(f) => f,
    };
    // Served by stable instead: a request the canary never got, or one it
    // took and failed whose method is safe to repeat. Still a canary failure.
    let replay = version == Version::Canary
        && (matches!(failure, LeanFailure::NotSent(_)) || service::is_safe(&req.method));
    if replay {
        let why = match &failure {
            LeanFailure::NotSent(why) => why.clone(),
            LeanFailure::Timeout => service::timeout_reason(ctx),
            LeanFailure::Failed(e) => e.to_string(),
        };
        fail(ctx, version, None, &why);
        ctx.w.shard.record_recovered(version, Instant::now());
        let ups = ctx.w.routes.upstreams();
        return Box::pin(forward(ctx, Version::Stable, req, peer, timer, ups)).await;
    }
    match failure {
        LeanFailure::NotSent(why) => service::unavailable(ctx, version, &why),
        LeanFailure::Timeout => service::timed_out(ctx, version),
        LeanFailure::Failed(e) => service::failed(ctx, version, &e.to_string()),
    }
}

async fn send(
    ctx: &Ctx,
    up: &Upstream,
    req: &Lean,
    peer: &Peer,
    timer: Pin<&mut Sleep>,
) -> Result<Sent, LeanFailure> {
    let want = LeanWant {
        timeout: ctx.w.cfg.proxy.response_timeout,
        head_request: req.method == Method::HEAD,
        raw_head: true,
    };
    service::exchange_lean(&ctx.w.pool, up, want, timer, |out| encode(out, ctx, req, up, peer)).await
}

/// The upstream's request head: the request line (with the upstream's path
/// prefix), its `Host`, the client's lines, and `x-forwarded-*`.
fn encode(out: &mut Vec<u8>, ctx: &Ctx, req: &Lean, up: &Upstream, peer: &Peer) {
    out.extend_from_slice(ctx.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(up.base_path().as_bytes());
    out.extend_from_slice(ctx.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(up.host_header().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&req.lines);
    out.extend_from_slice(b"x-forwarded-for: ");
    // The chain the client sent, extended, when it is plain text.
    if let Some(prev) = req.value(req.seen.forwarded_for).filter(|v| is_text(v)) {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer.ip().as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(host) = req.value(req.seen.host) {
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether a header value is non-empty visible ASCII (what `HeaderValue::to_str` takes).
fn is_text(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}
