//! The route phase: a request's facts (normalised path, override, user key)
//! read from its headers, the core's decision, and the names it is measured
//! under (its route label, whether it is a gRPC call).

use super::ctx::{Ctx, Peer, Who, Worker};
use crate::grpc;
use crate::headers::{TRACEPARENT, X_CANARY, X_REQUEST_ID, has_hop_by_hop};
use crate::requests::entry::RequestId;
use crate::settings::Settings;
use crate::shadow::tee::{Body, Captured};
use crate::traces::context::{self, TraceContext};
use canary_core::proxy_config::UserKey;
use canary_core::request::{Override, bounded_key, cookie_value};
use canary_core::routing::RequestFacts;
use canary_core::{Version, decide, path};
use http::{HeaderValue, Method, Uri, header};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Routes a request and names it for measurement: its context, the version
/// it goes to, and whether it has hop-by-hop headers.
pub(super) fn begin(
    w: Arc<Worker>,
    peer: &Peer,
    method: &Method,
    uri: &Uri,
    version: http::Version,
    headers: &http::HeaderMap,
    start: Instant,
) -> (Ctx, Version, bool) {
    let norm = path::normalize(uri.path());
    let table = w.routes.routing();
    let mut who = decide_with(&table, &facts(&w.cfg, headers, &norm, peer), &w.cfg);
    name_request(&mut who, headers.get(&X_REQUEST_ID).cloned(), &w);
    trace_request(&mut who, headers.get(&TRACEPARENT).map(HeaderValue::as_bytes), &w);
    let to = who.decision.version;
    let grpc = grpc::is_call(method, headers);
    let named = w.shelf.is_some();
    let (route, route_label) = match grpc.then(|| grpc::label(uri.path())).flatten() {
        Some(label) => w.shard.route_named(label, named),
        None => w.shard.route_named(&w.cfg.routes.label(&norm), named),
    };
    // An upgrade needs `Connection: upgrade`, a hop-by-hop header: the usual
    // request, which has none, pays only for the scan stripping needs anyway.
    let hop = has_hop_by_hop(headers);
    let te_trailers = hop && asks_trailers(headers);
    let (method, uri) = (method.clone(), uri.clone());
    let bytes_in = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let raw_head = false;
    let mut ctx = Ctx {
        route,
        start,
        method,
        uri,
        version,
        grpc,
        te_trailers,
        raw_head,
        w,
        who,
        bytes_in,
        route_label,
        shadow: None,
    };
    if table.shadow {
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        let upgrade = hop && crate::headers::asks_upgrade(headers);
        // A body of unknown length (chunked) is not copied: its size is
        // only known once it was all sent.
        let body = (!chunked).then_some(bytes_in);
        let f = crate::shadow::pick::Facts { method: &ctx.method, path: &norm, upgrade, body };
        ctx.shadow = shadow_copy(&ctx, &table, &f, || headers.clone());
    }
    (ctx, to, hop)
}

/// During a shadow step, the copy of a request routed to stable by its
/// bucket, if it is one to copy (see `shadow::pick`); `headers` makes the
/// client's header map, only for a request chosen.
pub(super) fn shadow_copy(
    ctx: &Ctx,
    table: &canary_core::RoutingTable,
    f: &crate::shadow::pick::Facts<'_>,
    headers: impl FnOnce() -> http::HeaderMap,
) -> Option<Arc<crate::shadow::tee::Copy>> {
    use canary_core::routing::Reason;
    let shadow = ctx.w.cfg.shadow.as_ref()?;
    let d = ctx.who.decision;
    let bucketed = d.version == Version::Stable && matches!(d.reason, Reason::Bucket(_));
    if !(table.shadow && table.has_canary && !table.canary_blocked && bucketed) {
        return None;
    }
    let now_s = crate::clock::now().as_millis() / 1000;
    match crate::shadow::pick::choose(shadow, f, ctx.w.ids.random(), now_s) {
        Ok(noise) => {
            let route = ctx.route_label.clone().unwrap_or_else(|| ctx.w.shard.route_label(ctx.route));
            let body = match f.body {
                Some(n) if n > 0 => Body::Captured(Captured::new(n as usize)),
                _ => Body::Ready(bytes::Bytes::new()),
            };
            Some(crate::shadow::pick::copy(shadow, route, &ctx.method, &ctx.uri, headers(), body, noise))
        }
        Err(why) => {
            shadow.skip(why);
            None
        }
    }
}

/// Whether `TE` names `trailers`.
fn asks_trailers(h: &http::HeaderMap) -> bool {
    h.get_all(header::TE).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')).any(|t| {
        t.trim_ascii().split(|&b| b == b';').next().is_some_and(|t| t.eq_ignore_ascii_case(b"trailers"))
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
        let key = key.filter(|v| !v.is_empty()).map(bounded_key).unwrap_or(peer.ip().as_bytes());
        Facts { path, forced, key, client: peer.addr() }
    }
}

/// What routing needs to know of a request; the user key falls back to the
/// client's address.
pub(super) struct Facts<'a> {
    path: &'a str,
    forced: Option<Override>,
    key: &'a [u8],
    client: IpAddr,
}

/// The core's decision on a request, and who sent it: the user key is
/// hashed here, while its bytes are at hand (the request's end has only
/// the hash).
pub(super) fn decide_with(table: &canary_core::RoutingTable, f: &Facts<'_>, cfg: &Settings) -> Who {
    let decision = decide(table, &RequestFacts { path: f.path, forced: f.forced, user_key: f.key });
    let plain = cfg.access_log.as_ref().is_some_and(|a| a.options.plain_users);
    let user_key = plain.then(|| String::from_utf8_lossy(f.key).into());
    let user = cfg.user_secret.hash(f.key);
    Who { decision, user, user_key, request_id: None, client: f.client, trace: None }
}

/// Places the request in a trace, while tracing is on: the one its
/// `traceparent` names (traced if that says sampled), else, when
/// configured, a trace of its own (traced by the sampling ratio), which the
/// upstream is sent.
pub(super) fn trace_request(who: &mut Who, sent: Option<&[u8]>, w: &Worker) {
    let Some(t) = &w.cfg.tracing else { return };
    who.trace = trace(sent, w, t).map(Box::new);
}

/// The request's trace: its own, or one made for it.
fn trace(sent: Option<&[u8]>, w: &Worker, t: &crate::traces::Tracing) -> Option<TraceContext> {
    let span_id = w.ids.random().to_be_bytes();
    match sent.and_then(context::parse) {
        Some((trace_id, parent, flags)) => Some(TraceContext {
            trace_id,
            parent: Some(parent),
            span_id,
            sampled: flags & 1 == 1,
            made: false,
        }),
        // Only for a request that sent none: one whose header is not
        // understood passes on as it came, and no second is added.
        None if t.options.make && sent.is_none() => {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&w.ids.random().to_be_bytes());
            trace_id[8..].copy_from_slice(&w.ids.random().to_be_bytes());
            let sampled = t.samples(&trace_id);
            Some(TraceContext { trace_id, parent: None, span_id, sampled, made: true })
        }
        None => None,
    }
}

/// Gives the request its id: the one the client sent, else, while the
/// access log makes ids, a new one (which the upstream is sent too).
pub(super) fn name_request(who: &mut Who, sent: Option<HeaderValue>, w: &Worker) {
    who.request_id = match sent {
        Some(v) => Some(RequestId::Sent(v)),
        None if w.cfg.access_log.as_ref().is_some_and(|a| a.options.request_ids) => Some(w.ids.make()),
        None => None,
    };
}
