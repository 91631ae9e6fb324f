//! One request through the proxy, in named phases:
//! 1. **limits** ([`limits`]): a declared body over the limit is answered
//!    413 at once;
//! 2. **route** ([`route`]): read the facts (path, override, user key) and
//!    ask the core;
//! 3. **forward** ([`http`], [`fast`], [`upgrade`]): send to the chosen
//!    upstream ([`send`]); a failure goes to the [`policy`], which decides
//!    whether stable serves the request instead and how it is counted;
//! 4. **respond** ([`respond`]): strip hop-by-hop headers, add
//!    `x-canary-version`, stream the body back; the outcome is recorded when
//!    the body ends (see `body.rs`).
//!
//! Three adapters run the forward phase over the one policy: [`http`] for a
//! request held as `http::Request` (HTTP/1.1 with a body, HTTP/2, gRPC),
//! [`fast`] for a plain HTTP/1.1 request forwarded from its client's bytes,
//! and [`upgrade`] for a request that switches protocols, whose connection
//! then becomes a [`tunnel`]. [`ctx`] holds what they share, [`rewrite`] the
//! request as the upstream gets it, [`in_flight`] counts a request whose
//! client leaves, and [`journal`] makes a kept request's record.

pub mod ctx;
pub mod fast;
pub mod http;
pub mod in_flight;
pub mod journal;
pub mod limits;
pub mod policy;
pub mod respond;
pub mod rewrite;
pub mod route;
pub mod send;
pub mod tunnel;
pub mod upgrade;

use crate::body::ProxyBody;
use crate::headers::{TRACEPARENT, X_REQUEST_ID, asks_upgrade, strip_present};
use crate::requests::entry::RequestId;
use crate::upstream::request_body::UpstreamReqBody;
use ctx::{Peer, Worker};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// Handles one request from hyper's server; never fails (errors become replies).
pub async fn handle(
    w: Arc<Worker>,
    peer: Arc<Peer>,
    req: ::http::Request<Incoming>,
) -> Result<::http::Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    if let Some(r) = limits::too_large(&w.cfg, &req) {
        return Ok(r);
    }
    let (ctx, version, hop) =
        route::begin(w, &peer, req.method(), req.uri(), req.version(), req.headers(), start);
    if hop && req.version() == ::http::Version::HTTP_11 && asks_upgrade(req.headers()) {
        // Boxed: inline, the upgrade's larger future would grow every
        // request's future, which is moved and polled on the hot path.
        return Ok(Box::pin(upgrade::forward(&ctx, version, req, &peer)).await);
    }
    let mut req = rewrite::prepare(req, &peer, hop, &ctx.w.cfg);
    add_made(req.headers_mut(), &ctx);
    if let Some(crate::shadow::tee::Body::Captured(c)) = ctx.shadow.as_ref().map(|c| &c.body) {
        req.body_mut().capture(std::sync::Arc::clone(c));
    }
    Ok(http::forward(&ctx, version, req).await)
}

/// Handles one body-less HTTP/1.1 request from the fast client path that
/// `fast.rs` does not forward from its own bytes: a method hyper's client
/// sends (a body-less POST), or an upstream that speaks HTTP/2.
pub async fn handle_parts(
    w: Arc<Worker>,
    peer: &Peer,
    mut parts: ::http::request::Parts,
) -> ::http::Response<ProxyBody> {
    let start = Instant::now();
    let (mut ctx, version, hop) =
        route::begin(w, peer, &parts.method, &parts.uri, parts.version, &parts.headers, start);
    ctx.raw_head = !ctx.grpc && ctx.shadow.is_none();
    if hop {
        strip_present(&mut parts.headers);
    }
    rewrite::add_forwarded(&mut parts, peer);
    add_made(&mut parts.headers, &ctx);
    http::forward(&ctx, version, ::http::Request::from_parts(parts, UpstreamReqBody::Empty)).await
}

/// Adds what the proxy made for the request and the upstream must be sent:
/// its request id, its `traceparent`.
pub(super) fn add_made(h: &mut ::http::HeaderMap, ctx: &ctx::Ctx) {
    if let Some(id) = ctx.who.made_id() {
        h.insert(X_REQUEST_ID, RequestId::Made(*id).to_header());
    }
    if let Some(t) = ctx.who.trace.as_deref().filter(|t| t.made) {
        // Hex digits and dashes: always a valid header value.
        if let Ok(v) = ::http::HeaderValue::from_bytes(&t.header()) {
            h.insert(TRACEPARENT, v);
        }
    }
}
