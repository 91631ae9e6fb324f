//! The respond phase: the upstream's answer made the client's, and every
//! outcome recorded in the worker's measurements (errors with their reason).

use super::ctx::Ctx;
use super::journal;
use crate::body::{Completion, ProxyBody, Recycle, UpstreamBody};
use crate::grpc;
use crate::headers::{X_CANARY_VERSION, strip_hop_by_hop};
use crate::metrics::{ErrorRecord, Outcome};
use canary_core::Version;
use http::{HeaderValue, Response, header};
use std::sync::Arc;
use std::time::Instant;

/// The upstream's response on its way to the client: hop-by-hop headers
/// stripped, `x-canary-version` added, the outcome recorded when the body
/// ends (see `body.rs`).
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
    // length is ignored and must not be forwarded). The in-task exchange never
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
    let log = journal::wanted(ctx, status).map(|sampled| {
        let mut e = journal::draft(ctx, version, sampled);
        (e.status, e.upstream_status, e.upstream_us) = (Some(status), Some(status), Some(e.duration_us));
        Box::new(e)
    });
    let mut done = Completion {
        w: Arc::clone(&ctx.w),
        conn: Some(conn),
        outcome,
        start: ctx.start,
        finished: false,
        latency_at_head: false,
        grpc: None,
        log,
        brief: journal::brief(ctx),
        shadow: shadowed(ctx, version, status, &parts.headers),
    };
    if ctx.grpc && status == 200 {
        watch_grpc(ctx, &parts.headers, &mut done);
    }
    Response::from_parts(parts, ProxyBody::Upstream { inner, done })
}

/// During a shadow step, the capture of stable's answer to a request to
/// copy (see `shadow::tee`).
fn shadowed(
    ctx: &Ctx,
    version: Version,
    status: u16,
    headers: &http::HeaderMap,
) -> Option<Box<crate::shadow::tee::Tee>> {
    let copy = ctx.shadow.as_ref().filter(|_| version == Version::Stable)?;
    let shadow = ctx.w.cfg.shadow.as_ref()?;
    let status = http::StatusCode::from_u16(status).ok()?;
    crate::shadow::tee::Tee::begin(shadow, Arc::clone(copy), status, headers)
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

/// Records a failure against `version`, with its reason.
pub(super) fn fail(ctx: &Ctx, version: Version, status: Option<u16>, why: &str) {
    remember(ctx, version, status, why);
    record(ctx, version, status, true);
}

/// Records the request's outcome.
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
        at_ms: crate::clock::now(),
        version,
        method: ctx.method.to_string(),
        path: path[..cut].to_string(),
        status,
        error: why.to_string(),
    });
}
