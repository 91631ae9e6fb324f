//! A request's [`Entry`] (see `requests::entry`): made for every request
//! while the access log is on, else only for one the request log keeps (a
//! failure, a 5xx, a gRPC call, whose error may come in its trailers, or
//! one the sampling draw picked). [`finish`] hands it on: to the request
//! log when kept, and to the access log's queue.
//!
//! [`draft`] takes what the request's end will no longer have at hand (its
//! method, path and who sent it) while the request's context is here; the
//! end fills in the status, the time and the cause.

use super::ctx::{Ctx, Worker};
use crate::metrics::Outcome;
use crate::requests::entry::{Entry, MAX_ENTRY_PATH, Protocol};
use crate::requests::record::cut;
use crate::requests::record::{Cause, Reason};
use canary_core::Version;
use canary_core::routing::{Decision, Reason as Routed};
use canary_core::time::UnixMs;
use http::Method;

/// Whether a request that reached its answer gets an entry: always while
/// the access log is on; else when it is traced, a 5xx, a gRPC call, or
/// sampled for the request log.
pub(super) fn wanted(ctx: &Ctx, status: u16) -> Option<bool> {
    let sampled = ctx.w.shard.sampled();
    let traced = ctx.who.trace.as_ref().is_some_and(|t| t.sampled);
    (ctx.w.cfg.access_log.is_some() || traced || status >= 500 || ctx.grpc || sampled).then_some(sampled)
}

/// Why a request went to `version` (routed by `decision`), and the user's
/// bucket when that was the reason.
fn reason(decision: Decision, version: Version) -> (Reason, Option<u16>) {
    match decision.reason {
        _ if version != decision.version => (Reason::Fallback, None),
        Routed::NoCanary => (Reason::NoCanary, None),
        Routed::Blocked => (Reason::Blocked, None),
        Routed::Excluded => (Reason::Excluded, None),
        Routed::Forced => (Reason::Forced, None),
        Routed::Bucket(b) => (Reason::Bucket, Some(b)),
    }
}

/// The methods a [`Brief`] names by a number; another shows as `-`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// What an answer's body keeps of an undrafted request, in case it breaks
/// off: small copies, which every request pays for (no path, no address),
/// so a failure that comes mid-body still has a record.
#[derive(Debug, Clone, Copy)]
pub struct Brief {
    user: u64,
    decision: Decision,
    /// The method's index in [`METHODS`], or past it.
    method: u8,
    protocol: Protocol,
}

/// The brief of the request of `ctx`.
pub(super) fn brief(ctx: &Ctx) -> Brief {
    let method = METHODS.iter().position(|m| *m == ctx.method).unwrap_or(METHODS.len()) as u8;
    Brief { user: ctx.who.user, decision: ctx.who.decision, method, protocol: protocol(ctx) }
}

/// The entry of an undrafted request whose answer broke off: its path and
/// client unknown, shown as `-` and unspecified.
pub fn undrafted(w: &Worker, b: &Brief, o: &Outcome, cause: Cause, detail: &str) -> Box<Entry> {
    let (reason, bucket) = reason(b.decision, o.version);
    let method = METHODS.get(usize::from(b.method)).cloned();
    Box::new(Entry {
        time: crate::clock::now(),
        version: o.version,
        method: method.unwrap_or_else(|| Method::from_bytes(b"-").unwrap_or_default()),
        path: "-".into(),
        route: w.shard.route_label(o.route),
        status: o.status,
        upstream_status: o.status,
        duration_us: o.latency_us,
        upstream_us: None,
        user: b.user,
        user_key: None,
        request_id: None,
        reason,
        bucket,
        fallback: false,
        cause: Some(cause),
        detail: Some(detail.into()),
        protocol: b.protocol,
        client: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        bytes_in: 0,
        bytes_out: 0,
        sampled: false,
        trace: None,
        upstream: None,
    })
}

/// The entry of a request `version` serves, but for how and when it ended.
pub(super) fn draft(ctx: &Ctx, version: Version, sampled: bool) -> Entry {
    let who = &ctx.who;
    let (reason, bucket) = reason(who.decision, version);
    Entry {
        time: UnixMs::EPOCH,
        version,
        method: ctx.method.clone(),
        path: cut(ctx.uri.path(), MAX_ENTRY_PATH).into(),
        route: ctx.route_label.clone().unwrap_or_else(|| ctx.w.shard.route_label(ctx.route)),
        status: None,
        upstream_status: None,
        duration_us: ctx.start.elapsed().as_micros() as u64,
        upstream_us: None,
        user: who.user,
        user_key: who.user_key.clone(),
        request_id: who.request_id.clone(),
        reason,
        bucket,
        fallback: reason == Reason::Fallback,
        cause: None,
        detail: None,
        protocol: protocol(ctx),
        client: who.client,
        bytes_in: ctx.bytes_in,
        bytes_out: 0,
        sampled,
        trace: who.trace.as_deref().copied(),
        upstream: who.trace.is_some().then(|| ctx.w.routes.upstreams().serving(version).1.url_arc()),
    }
}

/// The client's protocol.
fn protocol(ctx: &Ctx) -> Protocol {
    match ctx.version {
        _ if ctx.grpc => Protocol::Grpc,
        http::Version::HTTP_2 => Protocol::Http2,
        http::Version::HTTP_10 => Protocol::Http10,
        _ => Protocol::Http11,
    }
}

/// Hands a finished entry on: to the request log if kept, to the access
/// log if on.
pub fn finish(w: &Worker, e: Box<Entry>) {
    if e.kept() {
        w.shard.keep(e.record());
    }
    let spans = w.spans.as_ref().filter(|_| e.trace.is_some_and(|t| t.sampled));
    match (&w.shelf, spans) {
        (Some(log), Some(spans)) => {
            spans.put(e.clone());
            log.put(e);
        }
        (Some(log), None) => log.put(e),
        (None, Some(spans)) => spans.put(e),
        (None, None) => {}
    }
}

/// A request that ended now, without an answer streamed from an upstream:
/// `status` (the upstream's, or the proxy's own answer), `cause` and its
/// words.
pub(super) fn ended(ctx: &Ctx, version: Version, status: Option<u16>, cause: Option<Cause>, detail: &str) {
    let mut e = Box::new(draft(ctx, version, false));
    e.time = crate::clock::now();
    e.status = status;
    e.cause = cause;
    e.detail = (!detail.is_empty()).then(|| detail.into());
    finish(&ctx.w, e);
}

/// A failure after which stable serves the client: kept in the request
/// log only. The access log's line and the span are stable's answer's (one
/// per request), which says `fallback`.
pub(super) fn fell_back(ctx: &Ctx, version: Version, cause: Cause, detail: &str) {
    let mut e = draft(ctx, version, false);
    e.time = crate::clock::now();
    e.cause = Some(cause);
    e.detail = Some(detail.into());
    e.fallback = true;
    ctx.w.shard.keep(e.record());
}

/// A switched upgrade, measured at its 101 (its tunnel is not a request):
/// written to the access log, traced, kept if the sampling draw picks it.
pub(super) fn upgraded(ctx: &Ctx, version: Version, protocol: Option<&http::HeaderValue>) {
    let sampled = ctx.w.shard.sampled();
    if !sampled && ctx.w.cfg.access_log.is_none() && !ctx.who.trace.as_ref().is_some_and(|t| t.sampled) {
        return;
    }
    let mut e = Box::new(draft(ctx, version, sampled));
    e.time = crate::clock::now();
    e.status = Some(101);
    e.upstream_status = Some(101);
    let websocket = protocol.is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
    e.protocol = if websocket { Protocol::WebSocket } else { Protocol::Upgrade };
    finish(&ctx.w, e);
}
