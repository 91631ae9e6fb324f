//! HTTP/1.1 protocol upgrades (WebSocket, and any other `Upgrade:`) through
//! the proxy.
//!
//! An upgrade request has been routed like any other (same sticky decision,
//! excludes, overrides, blocked canary). It then gets an upstream connection
//! of its own, never a pooled one, since it will not come back: the head goes
//! up with `Upgrade` and `Connection: upgrade` kept (the other hop-by-hop
//! headers are stripped as usual), and the answer comes back:
//! - `101 Switching Protocols`: passed to the client with its headers
//!   (`Sec-WebSocket-Accept`...); the upgrade counts once in the version's
//!   metrics, status 101 with the time to the 101 as latency, and the two
//!   connections are joined by a tunnel (`tunnel.rs`);
//! - anything else: a normal response, streamed and measured as usual.
//!
//! A canary that refuses the connection or fails the handshake counts as a
//! canary failure and the request goes to stable, as the policy decides for
//! every path (see `policy.rs`): nothing has been tunnelled yet.
//!
//! A request body is refused (400): the bytes after the head would be body to
//! one reader and the new protocol to another, which is how requests are
//! smuggled past a proxy, and no upgrade in use (WebSocket's handshake is a
//! body-less GET) sends one.

use super::ctx::{Ctx, Peer};
use super::in_flight::InFlight;
use super::journal;
use super::policy::{self, After, Failure};
use super::respond::{record, respond};
use super::rewrite::{add_forwarded, retarget};
use super::send::MAX_RESPONSE_HEAD;
use super::tunnel::{self, Rollback, Tunnel};
use crate::body::{ProxyBody, Recycle, UpstreamBody};
use crate::headers::{X_CANARY_VERSION, keep_upgrade};
use crate::reply;
use crate::upstream::h1::{self, Head};
use crate::upstream::request_body::UpstreamReqBody;
use canary_core::Version;
use canary_core::proxy_config::OnRollback;
use canary_core::upstream::{Protocol, Upstream};
use http::{HeaderValue, Request, Response, StatusCode, header, request};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use std::sync::Arc;
use tokio::sync::watch;

/// What the client's side of an upgrade needs once the upstream has switched.
struct Switch {
    client: OnUpgrade,
    /// The protocol the client asked for, in case the 101 does not repeat it.
    protocol: Option<HeaderValue>,
    /// Subscribed before the upstream is asked, so no rollback goes unseen.
    rollbacks: watch::Receiver<u64>,
}

/// Forwards an upgrade request to `version` (stable if the canary fails it).
pub(super) async fn forward(
    ctx: &Ctx,
    version: Version,
    mut req: Request<Incoming>,
    peer: &Peer,
) -> Response<ProxyBody> {
    use hyper::body::Body;
    if !req.body().is_end_stream() {
        let msg = "a request that asks to switch protocols must not have a body";
        return reply::error(StatusCode::BAD_REQUEST, "upgrade_with_body", msg);
    }
    let switch = Switch {
        client: hyper::upgrade::on(&mut req),
        protocol: req.headers().get(header::UPGRADE).cloned(),
        rollbacks: ctx.w.routes.canary_rollbacks(),
    };
    let (mut parts, _) = req.into_parts();
    keep_upgrade(&mut parts.headers, None);
    add_forwarded(&mut parts, peer);
    super::add_made(&mut parts.headers, ctx);
    let mut version = version;
    loop {
        let ups = ctx.w.routes.upstreams();
        let (v, target) = policy::target(version, &ups);
        version = v;
        let pending = InFlight::begin(ctx, version);
        let attempted = attempt(ctx, target, &parts).await;
        // Every way on records the outcome (or hands it on) before it awaits.
        pending.settle();
        let failure = match attempted {
            Ok((head, conn)) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                return switched(ctx, version, head, conn, switch);
            }
            Ok((head, conn)) => return refused(ctx, version, head, conn, target),
            Err(failure) => failure,
        };
        match policy::after(ctx, version, failure, Some(())) {
            After::Stable(()) => version = Version::Stable,
            After::Answer(resp) => return resp,
        }
    }
}

/// Sends the head on a new connection and reads the answer's head.
async fn attempt(ctx: &Ctx, up: &Upstream, parts: &request::Parts) -> Result<(Head, h1::Conn), Failure> {
    let mut req = Request::new(UpstreamReqBody::Empty);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.headers_mut() = parts.headers.clone();
    retarget(&mut req, up);
    let (head, _) = req.into_parts();
    if up.protocol() == Protocol::H2c {
        // An HTTP/1.1 upgrade has no HTTP/2 form but extended CONNECT, which
        // hyper's client cannot map an Upgrade request onto.
        return Err(Failure::NotSent(format!("{up} speaks HTTP/2 only and cannot take an HTTP/1.1 Upgrade")));
    }
    let mut conn = ctx.w.pool.connect_h1(up).await.map_err(|e| Failure::NotSent(e.to_string()))?;
    let timeout = ctx.w.cfg.proxy.response_timeout;
    match tokio::time::timeout(timeout, conn.exchange_upgrade(&head, MAX_RESPONSE_HEAD)).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) => Err(Failure::Failed(Box::new(e))),
        Ok(Ok(answer)) => Ok((answer, conn)),
    }
}

/// The upstream declined to switch: its answer is a normal response. The
/// connection is not pooled (it was opened for the upgrade).
fn refused(ctx: &Ctx, version: Version, head: Head, conn: h1::Conn, up: &Upstream) -> Response<ProxyBody> {
    let body = h1::body::Body::new(conn, head.framing, false, ctx.w.cfg.proxy.response_timeout);
    let mut resp = Response::new(UpstreamBody::H1(body));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    respond(ctx, version, resp, Recycle::H1(up.url_arc()))
}

/// The upstream switched: measure the upgrade, start the tunnel, and answer
/// the client with the 101 (hyper hands its connection to the tunnel once
/// the 101 is written).
fn switched(ctx: &Ctx, version: Version, head: Head, conn: h1::Conn, s: Switch) -> Response<ProxyBody> {
    record(ctx, version, Some(101), false);
    journal::upgraded(ctx, version, s.protocol.as_ref());
    let mut resp = Response::new(ProxyBody::Full(None));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *resp.headers_mut() = head.headers;
    keep_upgrade(resp.headers_mut(), s.protocol);
    let cfg = &ctx.w.cfg;
    if cfg.version_header {
        resp.headers_mut().insert(X_CANARY_VERSION, HeaderValue::from_static(version.as_str()));
    }
    let closes = version == Version::Canary && cfg.upgraded_on_rollback == OnRollback::Close;
    let rollback = closes.then(|| Rollback { rx: s.rollbacks, routes: Arc::clone(&ctx.w.routes) });
    let (upstream, early) = conn.into_io();
    tokio::spawn(tunnel::run(Tunnel {
        client: s.client,
        upstream,
        early: early.freeze(),
        idle: cfg.proxy.upgraded_idle_timeout,
        rollback,
        open: ctx.w.shard.upgraded_open(version),
    }));
    resp
}
