//! A request from the fast client path (see `client::h1_fast`) forwarded as
//! its client sent it: routed from the values its head parser noted, and its upstream
//! request head written from the client's own header lines, with the
//! upstream's `Host` and the `x-forwarded-*` headers. No header map, no
//! `http::Request` is built on the way up.
//!
//! This takes the common case: a method the in-task upstream exchange sends
//! (`upstream::h1::eligible`) to HTTP/1.1 upstreams. A request for which either
//! upstream speaks HTTP/2, or with another method (a body-less POST, which
//! hyper's client sends), is turned into `http`'s parts and served by
//! `forward::http`.
//!
//! A failure goes to the policy as every path's does. The request is kept
//! whole (it is immutable bytes), so whenever the policy sends it to stable
//! it is in hand, without a copy.

use super::ctx::{Ctx, Peer, Worker};
use super::policy::{self, After, Failure};
use super::respond::respond;
use super::route::{Fields, decide_with, name_request, shadow_copy, trace_request};
use super::send::{H1Want, Sent, exchange_h1};
use crate::body::ProxyBody;
use crate::client::h1_fast::head::Plain;
use crate::routes::Upstreams;
use crate::shadow;
use crate::upstream::h1;
use arc_swap::Guard;
use canary_core::upstream::Upstream;
use canary_core::{Version, path};
use http::{HeaderValue, Method, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Sleep;

/// Handles one fast-path request; `timer`: the client connection's, for the
/// wait for the response head (see `deadline`).
// The request is borrowed, not moved: moved, its few hundred bytes would be
// copied into this future and again into its locals.
pub async fn handle(w: Arc<Worker>, peer: &Peer, req: &Plain, timer: Pin<&mut Sleep>) -> Response<ProxyBody> {
    let ups = w.routes.upstreams();
    if !takes(&w, &ups, &req.method) {
        // Boxed: hyper's client and HTTP/2 make this future several times
        // the size of the common one, and every request's would carry it.
        return Box::pin(super::handle_parts(w, peer, req.to_parts())).await;
    }
    let start = Instant::now();
    let (ctx, version) = begin(w, peer, req, start);
    forward(&ctx, version, req, peer, timer, ups).await
}

/// Whether the request is forwarded from its own bytes: a method the in-task
/// exchange sends, to upstreams that speak HTTP/1.1.
fn takes(w: &Worker, ups: &Upstreams, method: &Method) -> bool {
    if !h1::eligible(method, true) {
        return false;
    }
    !w.pool.speaks_h2(&ups.stable) && ups.canary.as_ref().is_none_or(|c| !w.pool.speaks_h2(c))
}

/// Routes the request and names it for measurement.
fn begin(w: Arc<Worker>, peer: &Peer, req: &Plain, start: Instant) -> (Ctx, Version) {
    let norm = path::normalize(req.uri.path());
    let user = req.value(req.seen.user);
    let fields = Fields { canary: req.value(req.seen.canary), user, cookies: || req.cookies() };
    let table = w.routes.routing();
    let mut who = decide_with(&table, &fields.facts(&w.cfg, &norm, peer), &w.cfg);
    // Checked by httparse, whose rules are `http`'s: the conversion holds.
    let sent = req.value(req.seen.request_id).and_then(|v| HeaderValue::from_bytes(v).ok());
    name_request(&mut who, sent, &w);
    trace_request(&mut who, req.value(req.seen.traceparent), &w);
    let to = who.decision.version;
    let route = w.shard.route_named(&w.cfg.routes.label(&norm), w.shelf.is_some());
    let mut ctx = Ctx::fast(w, route, start, (req.method.clone(), req.uri.clone()), who);
    if table.shadow {
        // The fast path takes no body and no upgrade.
        let f = shadow::pick::Facts { method: &req.method, path: &norm, upgrade: false, body: Some(0) };
        ctx.shadow = shadow_copy(&ctx, &table, &f, || req.to_parts().headers);
        // Stable's answer is compared, so its head is read into a header map.
        ctx.raw_head = ctx.shadow.is_none();
    }
    (ctx, to)
}

async fn forward(
    ctx: &Ctx,
    version: Version,
    req: &Plain,
    peer: &Peer,
    mut timer: Pin<&mut Sleep>,
    ups: Guard<Arc<Upstreams>>,
) -> Response<ProxyBody> {
    let (version, target) = policy::target(version, &ups);
    ctx.w.shard.begin(version);
    let failure = match send(ctx, target, req, peer, timer.as_mut()).await {
        Ok((resp, conn)) => return respond(ctx, version, resp, conn),
        Err(f) => f,
    };
    match policy::after(ctx, version, failure, Some(())) {
        After::Stable(()) => {
            let ups = ctx.w.routes.upstreams();
            Box::pin(forward(ctx, Version::Stable, req, peer, timer, ups)).await
        }
        After::Answer(resp) => resp,
    }
}

async fn send(
    ctx: &Ctx,
    up: &Upstream,
    req: &Plain,
    peer: &Peer,
    timer: Pin<&mut Sleep>,
) -> Result<Sent, Failure> {
    let want = H1Want {
        timeout: ctx.w.cfg.proxy.response_timeout,
        head_request: req.method == Method::HEAD,
        raw_head: ctx.raw_head,
    };
    exchange_h1(&ctx.w.pool, up, want, timer, |out| encode(out, ctx, req, up, peer)).await
}

/// The upstream's request head: the request line (with the upstream's path
/// prefix), its `Host`, the client's lines, and `x-forwarded-*`.
fn encode(out: &mut Vec<u8>, ctx: &Ctx, req: &Plain, up: &Upstream, peer: &Peer) {
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
    if let Some(t) = ctx.who.trace.as_deref().filter(|t| t.made) {
        out.extend_from_slice(b"traceparent: ");
        out.extend_from_slice(&t.header());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(id) = ctx.who.made_id() {
        out.extend_from_slice(b"x-request-id: ");
        out.extend_from_slice(id);
        out.extend_from_slice(b"\r\n");
    }
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
