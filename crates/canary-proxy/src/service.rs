//! One request through the proxy, in named phases:
//! 1. **limits**: a declared body over the limit is answered 413 at once;
//! 2. **route**: read the facts (path, override, user key) and ask the core;
//! 3. **forward**: send to the chosen upstream; if the canary refuses the
//!    connection before the request was sent, count a canary failure and send
//!    the request to stable instead;
//! 4. **respond**: strip hop-by-hop headers, add `x-canary-version`, stream the
//!    body back; the outcome is recorded when the body ends (see `body.rs`).
//!
//! A request that asks to switch protocols (`Connection: upgrade`) is routed
//! the same way and then forwarded by `upgrade.rs`.
//!
//! The upstream is spoken to in HTTP/2 when its URL says so (`h2c://`, or an
//! `https://` upstream that picks h2): over its shared connection (`h2.rs`).
//! An `http://` upstream never goes near that code: one comparison of the
//! URL's protocol is all the HTTP/1.1 paths pay for it.

use super::body::{BoxError, Completion, ProxyBody, Recycle, UpstreamBody};
use super::grpc;
use super::h1;
use super::headers::{
    X_CANARY, X_CANARY_VERSION, asks_upgrade, has_hop_by_hop, ip_value, set_forwarded, strip_hop_by_hop,
    strip_present,
};
use super::in_flight::InFlight;
use super::pool::{BodyStalled, Checkout, ClientBody, ClientBodyFailed, Pool, UpstreamReqBody};
use super::{deadline, reply, upgrade};
use crate::settings::Settings;
use canary_core::proxy_config::UserKey;
use crate::routes::Routes;
use crate::metrics::{ErrorRecord, Outcome, Shard};
use canary_core::upstream::{Protocol, Upstream};
use canary_core::request::{Override, bounded_key, cookie_value};
use canary_core::routing::RequestFacts;
use canary_core::{Version, decide, path};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Sleep;

/// Everything one worker's requests share.
#[derive(Debug)]
pub struct Worker {
    /// Routing state.
    pub routes: Arc<Routes>,
    /// Configuration.
    pub cfg: Arc<Settings>,
    /// This worker's metrics.
    pub shard: Arc<Shard>,
    /// This worker's upstream connections.
    pub pool: Arc<Pool>,
}

/// The client at the other end of a connection, formatted once for all the
/// requests it sends: the address is the user key when a request has none,
/// and goes into `x-forwarded-for`.
#[derive(Debug)]
pub struct Peer {
    ip: HeaderValue,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Arc<Peer> {
        Arc::new(Peer { ip: ip_value(addr.ip()) })
    }

    /// The address, as a header value.
    pub fn ip(&self) -> &HeaderValue {
        &self.ip
    }
}

/// The request's identity for measurement and error records.
pub(super) struct Ctx {
    pub(super) w: Arc<Worker>,
    route: u16,
    start: Instant,
    method: Method,
    uri: Uri,
    version: http::Version,
    /// Whether the request is a gRPC call (see `grpc.rs`).
    grpc: bool,
    /// Whether the client sent `TE: trailers` (hop-by-hop, so stripped, but
    /// HTTP/2 allows it and gRPC servers may ask for it).
    te_trailers: bool,
    /// Whether the response is written by the lean client path, which takes
    /// an upstream's response head in its own form (see `h1::raw`).
    raw_head: bool,
}

impl Ctx {
    /// The context of a request the lean client path forwards from its own
    /// bytes (see `lean.rs`): HTTP/1.1, never a gRPC call (those have a body),
    /// its upstream's response head kept in the client's form.
    pub(super) fn lean(w: Arc<Worker>, route: u16, start: Instant, method: Method, uri: Uri) -> Ctx {
        let version = http::Version::HTTP_11;
        Ctx { w, route, start, method, uri, version, grpc: false, te_trailers: false, raw_head: true }
    }

    /// The request's route index in the worker's shard.
    pub(super) fn route(&self) -> u16 {
        self.route
    }

    /// When the request arrived.
    pub(super) fn start(&self) -> Instant {
        self.start
    }

    /// The request's method.
    pub(super) fn method(&self) -> &Method {
        &self.method
    }

    /// The request's target as the upstream gets it, but for a path prefix.
    pub(super) fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    }
}

/// Why a send failed.
// Boxing the request would allocate on every failed attempt; the value is
// moved once, straight into a match, so its size costs nothing.
#[allow(clippy::large_enum_variant)]
enum SendError {
    /// The request never left: it is handed back with the reason.
    NotSent(Request<UpstreamReqBody>, String),
    /// The upstream did not send a response head in time; the request comes
    /// back when the path kept it (the lean one does).
    Timeout(Option<Request<UpstreamReqBody>>),
    /// The exchange failed after the request was (partly) sent; the request
    /// comes back as with `Timeout`.
    Failed(BoxError, Option<Request<UpstreamReqBody>>),
}

impl SendError {
    /// The request handed back after the upstream took it and failed, if it
    /// is safe to send again (see [`replayable`]).
    fn take_safe_request(&mut self) -> Option<Request<UpstreamReqBody>> {
        match self {
            SendError::Timeout(r) | SendError::Failed(_, r) => r.take().filter(|r| is_safe(r.method())),
            SendError::NotSent(..) => None,
        }
    }
}

/// Handles one request; never fails (errors become replies).
pub async fn handle(
    w: Arc<Worker>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    if let Some(r) = too_large(&w.cfg, &req) {
        return Ok(r);
    }
    let (ctx, version, hop) = begin(w, &peer, req.method(), req.uri(), req.version(), req.headers(), start);
    if hop && req.version() == http::Version::HTTP_11 && asks_upgrade(req.headers()) {
        // Boxed: inline, the upgrade's larger future would grow every
        // request's future, which is moved and polled on the hot path.
        return Ok(Box::pin(upgrade::forward(&ctx, version, req, &peer)).await);
    }
    let req = prepare(req, &peer, hop, ctx.w.cfg.proxy.max_body_bytes, ctx.w.cfg.proxy.body_read_timeout);
    Ok(forward(&ctx, version, req).await)
}

/// Handles one body-less HTTP/1.1 request from the lean path (see `front`)
/// that `lean.rs` does not forward from its own bytes: a method hyper's client
/// sends (a body-less POST), or an upstream that speaks HTTP/2.
pub async fn handle_lean(
    w: Arc<Worker>,
    peer: &Peer,
    mut parts: http::request::Parts,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let (mut ctx, version, hop) =
        begin(w, peer, &parts.method, &parts.uri, parts.version, &parts.headers, start);
    ctx.raw_head = !ctx.grpc;
    if hop {
        strip_present(&mut parts.headers);
    }
    add_forwarded(&mut parts, peer);
    forward(&ctx, version, Request::from_parts(parts, UpstreamReqBody::Empty)).await
}

/// Routes a request and names it for measurement: its context, the version
/// it goes to, and whether it has hop-by-hop headers.
fn begin(
    w: Arc<Worker>,
    peer: &Peer,
    method: &Method,
    uri: &Uri,
    version: http::Version,
    headers: &http::HeaderMap,
    start: Instant,
) -> (Ctx, Version, bool) {
    let norm = path::normalize(uri.path());
    let to = decide_with(&w.routes.routing(), &facts(&w.cfg, headers, &norm, peer));
    let grpc = grpc::is_call(method, headers);
    let route = match grpc.then(|| grpc::label(uri.path())).flatten() {
        Some(label) => w.shard.route_index(label),
        None => w.shard.route_index(&w.cfg.routes.label(&norm)),
    };
    drop(norm);
    // An upgrade needs `Connection: upgrade`, a hop-by-hop header: the usual
    // request, which has none, pays only for the scan stripping needs anyway.
    let hop = has_hop_by_hop(headers);
    let te_trailers = hop && asks_trailers(headers);
    let (method, uri) = (method.clone(), uri.clone());
    let ctx = Ctx { route, start, method, uri, version, grpc, te_trailers, raw_head: false, w };
    (ctx, to, hop)
}

/// Whether `TE` names `trailers`.
fn asks_trailers(h: &http::HeaderMap) -> bool {
    h.get_all(header::TE).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')).any(|t| {
        t.trim_ascii().split(|&b| b == b';').next().is_some_and(|t| t.eq_ignore_ascii_case(b"trailers"))
    })
}

fn too_large(cfg: &Settings, req: &Request<Incoming>) -> Option<Response<ProxyBody>> {
    let len = req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
    (len > cfg.proxy.max_body_bytes).then(|| {
        let msg =
            format!("request body of {len} bytes exceeds the limit of {} bytes", cfg.proxy.max_body_bytes);
        reply::error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &msg)
    })
}

fn facts<'a>(cfg: &'a Settings, h: &'a http::HeaderMap, path: &'a str, peer: &'a Peer) -> Facts<'a> {
    let user = match &cfg.user_key {
        UserKey::Header(name) => h.get(name).map(HeaderValue::as_bytes),
        UserKey::Cookie(_) => None,
    };
    let fields = Fields { canary: h.get(&X_CANARY).map(HeaderValue::as_bytes), user, cookies: || cookies(h) };
    fields.facts(cfg, path, peer)
}

fn cookies(h: &http::HeaderMap) -> impl Iterator<Item = &[u8]> {
    h.get_all(header::COOKIE).iter().map(|v| v.as_bytes())
}

/// The request headers routing reads: `x-canary`, the user key's header (when
/// the key is one) and the cookies (each time they are asked for).
pub(super) struct Fields<'a, C> {
    pub(super) canary: Option<&'a [u8]>,
    pub(super) user: Option<&'a [u8]>,
    pub(super) cookies: C,
}

impl<'a, C: Fn() -> I, I: Iterator<Item = &'a [u8]>> Fields<'a, C> {
    /// What routing needs to know: the override (header, else cookie) and
    /// the user key (its header or cookie, else the client's address).
    pub(super) fn facts(self, cfg: &'a Settings, path: &'a str, peer: &'a Peer) -> Facts<'a> {
        let forced = self
            .canary
            .and_then(Override::parse)
            .or_else(|| (self.cookies)().find_map(|c| cookie_value(c, "x-canary")).and_then(Override::parse));
        let key = match &cfg.user_key {
            UserKey::Header(_) => self.user,
            UserKey::Cookie(name) => (self.cookies)().find_map(|c| cookie_value(c, name)),
        };
        let key = key.filter(|v| !v.is_empty()).map(bounded_key).unwrap_or(peer.ip.as_bytes());
        Facts { path, forced, key }
    }
}

/// What routing needs to know of a request; the user key falls back to the
/// client's address.
pub(super) struct Facts<'a> {
    path: &'a str,
    forced: Option<Override>,
    key: &'a [u8],
}

pub(super) fn decide_with(table: &canary_core::RoutingTable, f: &Facts<'_>) -> Version {
    decide(table, &RequestFacts { path: f.path, forced: f.forced, user_key: f.key }).version
}

/// `hop`: whether the request has hop-by-hop headers ([`has_hop_by_hop`]).
fn prepare(
    req: Request<Incoming>,
    peer: &Peer,
    hop: bool,
    limit: u64,
    idle: std::time::Duration,
) -> Request<UpstreamReqBody> {
    let (mut parts, body) = req.into_parts();
    if hop {
        strip_present(&mut parts.headers);
    }
    add_forwarded(&mut parts, peer);
    // Limited counts bytes as they stream, catching chunked bodies that grow
    // past the limit without declaring a length.
    let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    Request::from_parts(parts, UpstreamReqBody::Client(ClientBody::new(body, idle)))
}

/// Sets `x-forwarded-*` on a request from `peer`.
pub(super) fn add_forwarded(parts: &mut http::request::Parts, peer: &Peer) {
    // HTTP/2 carries the host in the `:authority` pseudo-header, not `Host`.
    // (The upstream's own `Host` replaces the client's later, in `retarget`.)
    let client_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    set_forwarded(&mut parts.headers, &peer.ip, client_host);
}

async fn forward(ctx: &Ctx, version: Version, req: Request<UpstreamReqBody>) -> Response<ProxyBody> {
    let ups = ctx.w.routes.upstreams();
    let (version, target) = match (version, &ups.canary) {
        (Version::Canary, Some(c)) => (Version::Canary, c),
        _ => (Version::Stable, &ups.stable),
    };
    let pending = InFlight::begin(&ctx.w.shard, version, ctx.route, ctx.start);
    // The lean path hands a failed request back; any other is copied first,
    // in case the canary fails it. A canary with a path prefix has already
    // rewritten the path of the request it hands back, so it is copied too.
    // Over HTTP/2 nothing comes back once the stream opened.
    let comes_back = lean(&req) && target.base_path().is_empty() && !ctx.w.pool.speaks_h2(target);
    let copy = if version == Version::Canary && !comes_back { replayable(&req) } else { None };
    let mut result = send(ctx, target, req).await;
    // Every way on records the outcome before it awaits anything else.
    pending.settle();
    let replay = match &mut result {
        Err(e) if version == Version::Canary => copy.or_else(|| e.take_safe_request()),
        _ => None,
    };
    match result {
        // hyper's client hands back a 101 to a request that did not ask for
        // one (the lean path refuses it while parsing): never tunnelled.
        Ok((resp, _)) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let why = "101 Switching Protocols to a request without Upgrade";
            fail(ctx, version, None, why);
            reply::error(StatusCode::BAD_GATEWAY, "upstream_failed", &format!("{version} upstream: {why}"))
        }
        Ok((resp, conn)) => respond(ctx, version, resp, conn),
        Err(SendError::NotSent(req, why)) if version == Version::Canary => {
            fail(ctx, version, None, &why);
            ctx.w.shard.record_recovered(version, Instant::now());
            Box::pin(forward(ctx, Version::Stable, req)).await
        }
        // The canary took the request and then failed it (died, reset, hung):
        // a request without a body whose method is safe to repeat is served
        // by stable instead, so even a canary killed mid-request costs the
        // user nothing. It still counts as a canary failure.
        Err(e @ (SendError::Timeout(_) | SendError::Failed(..))) if replay.is_some() => {
            let why = match &e {
                SendError::Failed(e, _) => e.to_string(),
                _ => timeout_reason(ctx),
            };
            fail(ctx, version, None, &why);
            match replay {
                Some(req) => {
                    ctx.w.shard.record_recovered(version, Instant::now());
                    Box::pin(forward(ctx, Version::Stable, req)).await
                }
                None => reply::error(StatusCode::BAD_GATEWAY, "upstream_failed", &why),
            }
        }
        Err(SendError::NotSent(_, why)) => unavailable(ctx, version, &why),
        Err(SendError::Timeout(_)) => timed_out(ctx, version),
        Err(SendError::Failed(e, _)) if caused_by::<BodyStalled>(&e) => {
            record(ctx, version, Some(408), false);
            let msg = format!("the request body stalled for {:?}", ctx.w.cfg.proxy.body_read_timeout);
            reply::error(StatusCode::REQUEST_TIMEOUT, "body_timeout", &msg)
        }
        // The client's doing, not the upstream's: a 4xx, never a failure
        // against the version (a canary must not be rolled back because
        // clients on a bad network give up their uploads).
        Err(SendError::Failed(e, _)) if caused_by::<ClientBodyFailed>(&e) => {
            record(ctx, version, Some(400), false);
            let msg = format!("the request body could not be read: {e}");
            reply::error(StatusCode::BAD_REQUEST, "body_broken", &msg)
        }
        Err(SendError::Failed(e, _)) if is_body_limit(&e) => {
            record(ctx, version, Some(413), false);
            let msg = format!("request body exceeds the limit of {} bytes", ctx.w.cfg.proxy.max_body_bytes);
            reply::error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &msg)
        }
        Err(SendError::Failed(e, _)) => failed(ctx, version, &e.to_string()),
    }
}

/// The upstream could not be reached: a failure, answered 502.
pub(super) fn unavailable(ctx: &Ctx, version: Version, why: &str) -> Response<ProxyBody> {
    fail(ctx, version, None, why);
    let msg = format!("{version} upstream: {why}");
    reply::error(StatusCode::BAD_GATEWAY, "upstream_unavailable", &msg)
}

/// No response head in time: a failure, answered 504.
pub(super) fn timed_out(ctx: &Ctx, version: Version) -> Response<ProxyBody> {
    let why = timeout_reason(ctx);
    fail(ctx, version, None, &why);
    let msg = format!("{version} upstream: {why}");
    reply::error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &msg)
}

/// The exchange failed once under way: a failure, answered 502.
pub(super) fn failed(ctx: &Ctx, version: Version, why: &str) -> Response<ProxyBody> {
    fail(ctx, version, None, why);
    reply::error(StatusCode::BAD_GATEWAY, "upstream_failed", &format!("{version} upstream: {why}"))
}

/// Why a request timed out, as recorded.
pub(super) fn timeout_reason(ctx: &Ctx) -> String {
    format!("no response within {:?}", ctx.w.cfg.proxy.response_timeout)
}

/// An upstream response head with its body and the connection behind it.
pub(super) type Sent = (Response<UpstreamBody>, Recycle);

/// The most bytes accepted in an upstream's response head.
pub(super) const MAX_RESPONSE_HEAD: usize = 128 * 1024;

// See `SendError` for why the large error is not boxed.
#[allow(clippy::result_large_err)]
async fn send(ctx: &Ctx, up: &Upstream, mut req: Request<UpstreamReqBody>) -> Result<Sent, SendError> {
    let (pool, timeout) = (&*ctx.w.pool, ctx.w.cfg.proxy.response_timeout);
    retarget(&mut req, up);
    if up.protocol() != Protocol::Http1 && pool.speaks_h2(up) {
        // Boxed: rare next to HTTP/1.1, and inline it would grow every
        // request's future.
        match Box::pin(send_h2(pool, up, req, timeout, ctx.te_trailers)).await? {
            Ok(sent) => return Ok(sent),
            // An https upstream that picked HTTP/1.1 by ALPN (perhaps after
            // the request was put in HTTP/2's form: `Host` goes back).
            Err(mut back) => {
                retarget(&mut back, up);
                req = back;
            }
        }
    }
    if ctx.te_trailers {
        // Added for an HTTP/2 canary that then failed: HTTP/1.1 takes no TE
        // without `Connection: TE`, so it stays on the HTTP/2 hop.
        req.headers_mut().remove(header::TE);
    }
    if lean(&req) {
        send_lean(pool, up, req, timeout, ctx.raw_head).await
    } else {
        let (resp, conn) = send_hyper(pool, up, req, timeout).await?;
        Ok((resp.map(UpstreamBody::Hyper), Recycle::Hyper(conn)))
    }
}

/// A body-less idempotent request over a plain pooled connection (see `h1`).
#[allow(clippy::result_large_err)]
async fn send_lean(
    pool: &Pool,
    up: &Upstream,
    req: Request<UpstreamReqBody>,
    timeout: std::time::Duration,
    raw_head: bool,
) -> Result<Sent, SendError> {
    let (parts, body) = req.into_parts();
    let want = LeanWant { timeout, head_request: parts.method == Method::HEAD, raw_head };
    let timer = std::pin::pin!(deadline::timer());
    match exchange_lean(pool, up, want, timer, |out| h1::encode_head(out, &parts)).await {
        Ok(sent) => Ok(sent),
        Err(LeanFailure::NotSent(why)) => Err(SendError::NotSent(Request::from_parts(parts, body), why)),
        Err(LeanFailure::Timeout) => Err(SendError::Timeout(Some(Request::from_parts(parts, body)))),
        Err(LeanFailure::Failed(e)) => Err(SendError::Failed(e, Some(Request::from_parts(parts, body)))),
    }
}

/// How a lean exchange is to go.
#[derive(Clone, Copy)]
pub(super) struct LeanWant {
    /// How long the upstream has to send its response head.
    pub(super) timeout: std::time::Duration,
    /// The request is HEAD: no body comes back.
    pub(super) head_request: bool,
    /// The response head may be kept in the client's form (see `h1::raw`).
    pub(super) raw_head: bool,
}

/// Why a lean exchange failed; its caller still holds the request.
pub(super) enum LeanFailure {
    /// The request never left.
    NotSent(String),
    /// No response head in time.
    Timeout,
    /// The exchange failed after the request was (perhaps) sent.
    Failed(BoxError),
}

/// A request head written by `encode` on a pooled plain connection to `up`
/// (a new one if the pooled one turns out closed), and the response head,
/// awaited with `timer` (see `deadline`).
pub(super) async fn exchange_lean(
    pool: &Pool,
    up: &Upstream,
    want: LeanWant,
    mut timer: Pin<&mut Sleep>,
    encode: impl Fn(&mut Vec<u8>),
) -> Result<Sent, LeanFailure> {
    let mut fresh = false;
    loop {
        // After one pooled connection turned out closed, only a new one is trusted.
        // Connecting is boxed (as in `checkout_lean`): its future, with TLS's
        // handshake, is larger than all the rest of the exchange.
        let got = if fresh { Box::pin(pool.connect_lean(up)).await } else { pool.checkout_lean(up).await };
        let mut conn = match got {
            Ok(c) => c,
            // Written once already (on the connection that went stale), so
            // it may have been acted on: not "never sent", which would let
            // a PUT or DELETE be sent again to stable.
            Err(e) if fresh => return Err(LeanFailure::Failed(Box::new(e))),
            Err(e) => return Err(LeanFailure::NotSent(e.to_string())),
        };
        let exchange = conn.exchange_with(&encode, want.head_request, MAX_RESPONSE_HEAD, want.raw_head);
        match deadline::within(timer.as_mut(), want.timeout, exchange).await {
            None => return Err(LeanFailure::Timeout),
            Some(Ok(head)) => {
                let body =
                    h1::body::Body::new(conn, head.framing, head.keep_alive, want.timeout).with_raw(head.raw);
                let mut resp = Response::new(UpstreamBody::Lean(body));
                *resp.status_mut() = head.status;
                *resp.headers_mut() = head.headers;
                return Ok((resp, Recycle::Lean(up.url_arc())));
            }
            Some(Err(h1::ExchangeError::Stale(_))) if !fresh => fresh = true,
            Some(Err(e)) => return Err(LeanFailure::Failed(Box::new(e))),
        }
    }
}

/// Any other request, through hyper's client.
#[allow(clippy::result_large_err)]
async fn send_hyper(
    pool: &Pool,
    up: &Upstream,
    mut req: Request<UpstreamReqBody>,
    timeout: std::time::Duration,
) -> Result<(Response<Incoming>, Checkout), SendError> {
    let mut attempt = 0;
    loop {
        // A pooled connection may have been closed by the upstream a moment
        // ago; after one such miss, only a fresh connection is trusted.
        let got = if attempt == 0 { pool.checkout(up).await } else { pool.connect(up).await };
        let mut conn = match got {
            Ok(c) => c,
            Err(e) => return Err(SendError::NotSent(req, e.to_string())),
        };
        match tokio::time::timeout(timeout, conn.sender.try_send_request(req)).await {
            Err(_) => return Err(SendError::Timeout(None)),
            Ok(Ok(resp)) => return Ok((resp, conn)),
            Ok(Err(mut e)) => match e.take_message() {
                Some(r) if attempt < 2 => req = r,
                Some(r) => return Err(SendError::NotSent(r, e.into_error().to_string())),
                None => return Err(SendError::Failed(Box::new(e.into_error()), None)),
            },
        }
        attempt += 1;
    }
}

/// Over the upstream's shared HTTP/2 connection; the request comes back
/// (`Ok(Err)`) when an `https://` upstream picked HTTP/1.1 instead.
#[allow(clippy::result_large_err)]
async fn send_h2(
    pool: &Pool,
    up: &Upstream,
    mut req: Request<UpstreamReqBody>,
    timeout: std::time::Duration,
    te_trailers: bool,
) -> Result<Result<Sent, Request<UpstreamReqBody>>, SendError> {
    let mut attempt = 0;
    loop {
        let mut sender = match pool.h2(up).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Err(req)),
            Err(e) => return Err(SendError::NotSent(req, e.to_string())),
        };
        if attempt == 0 {
            to_h2(&mut req, up, te_trailers);
        }
        match tokio::time::timeout(timeout, sender.try_send_request(req)).await {
            Err(_) => return Err(SendError::Timeout(None)),
            Ok(Ok(resp)) => return Ok(Ok((resp.map(UpstreamBody::Hyper), Recycle::Shared))),
            Ok(Err(mut e)) => match e.take_message() {
                // The connection died before the stream opened (its death is
                // seen by the next checkout): once more, on a new one.
                Some(r) if attempt == 0 => req = r,
                Some(r) => return Err(SendError::NotSent(r, e.into_error().to_string())),
                None => return Err(SendError::Failed(Box::new(e.into_error()), None)),
            },
        }
        attempt += 1;
    }
}

/// An HTTP/2 request names its target in the `:scheme` and `:authority`
/// pseudo-headers, which hyper takes from an absolute URI, instead of `Host`.
fn to_h2(req: &mut Request<UpstreamReqBody>, up: &Upstream, te_trailers: bool) {
    let pq = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri =
        Uri::builder().scheme(up.h2_scheme()).authority(up.authority().clone()).path_and_query(pq).build();
    if let Ok(uri) = uri {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = http::Version::HTTP_2;
    req.headers_mut().remove(header::HOST);
    if te_trailers {
        req.headers_mut().insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// A copy of a body-less GET, HEAD or OPTIONS request, kept so it can be
/// repeated on stable if the canary fails it after it was sent.
fn replayable(req: &Request<UpstreamReqBody>) -> Option<Request<UpstreamReqBody>> {
    use hyper::body::Body;
    if !is_safe(req.method()) || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(UpstreamReqBody::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// Methods whose repetition changes nothing on the server (RFC 9110 section 9.2.1).
pub(super) fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request takes the lean path (see `h1`).
fn lean(req: &Request<UpstreamReqBody>) -> bool {
    use hyper::body::Body;
    h1::eligible(req.method(), req.body().is_end_stream())
}

pub(super) fn retarget(req: &mut Request<UpstreamReqBody>, up: &Upstream) {
    // A request line in origin form (`/path?query`) is already what the
    // upstream needs when there is no prefix: leave it, saving a parse.
    let origin_form = req.uri().scheme().is_none() && req.uri().authority().is_none();
    if !(origin_form && up.base_path().is_empty()) {
        let pq = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        if let Ok(uri) = Uri::try_from(format!("{}{}", up.base_path(), pq)) {
            *req.uri_mut() = uri;
        }
    }
    req.headers_mut().insert(header::HOST, up.host_header().clone());
}

pub(super) fn respond(
    ctx: &Ctx,
    version: Version,
    resp: Response<UpstreamBody>,
    conn: Recycle,
) -> Response<ProxyBody> {
    let status = resp.status().as_u16();
    if status >= 500 {
        remember(ctx, version, Some(status), "upstream answered with a server error");
    }
    let (mut parts, mut inner) = resp.into_parts();
    // The client's protocol, not the upstream's: an HTTP/1.0 upstream must
    // not turn a keep-alive HTTP/1.1 client connection into a one-shot one.
    parts.version = ctx.version;
    strip_hop_by_hop(&mut parts.headers);
    // hyper's client keeps a Content-Length sent beside Transfer-Encoding,
    // and hyper's server refuses to write both (RFC 9112 section 6.3: the
    // length is ignored and must not be forwarded). The lean path never
    // keeps it, so only hyper's responses are checked.
    if matches!(conn, Recycle::Hyper(_)) && parts.headers.contains_key(header::TRANSFER_ENCODING) {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    if ctx.w.cfg.version_header {
        match inner.raw_mut() {
            Some(raw) => raw.push(X_CANARY_VERSION.as_str().as_bytes(), version.as_str().as_bytes()),
            None => {
                parts.headers.insert(X_CANARY_VERSION, HeaderValue::from_static(version.as_str()));
            }
        }
    }
    let outcome = Outcome {
        version,
        route: ctx.route,
        status: Some(status),
        failure: false,
        grpc_error: false,
        latency_us: 0,
    };
    let w = &ctx.w;
    let mut done = Completion {
        shard: Arc::clone(&w.shard),
        pool: Arc::clone(&w.pool),
        conn: Some(conn),
        outcome,
        start: ctx.start,
        finished: false,
        latency_at_head: false,
        grpc: None,
    };
    if ctx.grpc && status == 200 {
        watch_grpc(ctx, &parts.headers, &mut done);
    }
    Response::from_parts(parts, ProxyBody::Upstream { inner, done })
}

/// A gRPC call's response head: its latency is taken now (a stream may last
/// minutes, and its length says nothing of the upstream's speed), and its
/// status read from the head of a trailers-only response, or left for the
/// body to find in the trailers.
fn watch_grpc(ctx: &Ctx, headers: &http::HeaderMap, done: &mut Completion) {
    done.outcome.latency_us = ctx.start.elapsed().as_micros() as u64;
    done.latency_at_head = true;
    let codes = ctx.w.cfg.grpc_errors;
    match grpc::status(headers) {
        Some(code) if codes.counts(code) => {
            done.outcome.grpc_error = true;
            remember(ctx, done.outcome.version, Some(200), &grpc::describe(code, Some(headers)));
        }
        Some(_) => {}
        None => done.grpc = Some(Box::new(grpc::Pending { codes, path: ctx.uri.path().into() })),
    }
}

pub(super) fn fail(ctx: &Ctx, version: Version, status: Option<u16>, why: &str) {
    remember(ctx, version, status, why);
    record(ctx, version, status, true);
}

pub(super) fn record(ctx: &Ctx, version: Version, status: Option<u16>, failure: bool) {
    let now = Instant::now();
    let latency_us = now.duration_since(ctx.start).as_micros() as u64;
    ctx.w
        .shard
        .record(Outcome { version, route: ctx.route, status, failure, grpc_error: false, latency_us }, now);
    ctx.w.shard.end(version);
}

fn remember(ctx: &Ctx, version: Version, status: Option<u16>, why: &str) {
    let path = ctx.uri.path();
    let cut = (0..=path.len().min(200)).rev().find(|&i| path.is_char_boundary(i)).unwrap_or(0);
    ctx.w.shard.record_error(ErrorRecord {
        at_ms: crate::clock::now_ms(),
        version,
        method: ctx.method.to_string(),
        path: path[..cut].to_string(),
        status,
        error: why.to_string(),
    });
}

fn is_body_limit(e: &BoxError) -> bool {
    caused_by::<LengthLimitError>(e)
}

/// Whether `E` is `e` or somewhere in its chain of causes.
fn caused_by<E: std::error::Error + 'static>(e: &BoxError) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(s) = src {
        if s.is::<E>() {
            return true;
        }
        src = s.source();
    }
    false
}
