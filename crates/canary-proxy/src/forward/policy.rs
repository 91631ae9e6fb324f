//! The forwarding policy, written once for every kind of request (the fast
//! HTTP/1.1 path, hyper's HTTP/1.1 and HTTP/2, gRPC, upgrades):
//! - [`target`]: which upstream serves the version routing chose;
//! - [`Failure`]: what a failed attempt at an upstream was, and the one
//!   place "the request was not sent yet" is defined;
//! - [`after`]: whether stable serves a request the canary failed, how the
//!   failure is counted, and what the client is answered otherwise;
//! - [`Tries`]: when a request is sent again on a new connection after a
//!   pooled one turned out closed.
//!
//! The request paths are adapters: they make the attempts and hand each
//! failure here.

use super::ctx::Ctx;
use super::journal;
use super::respond::{fail, record};
use crate::body::{BoxError, ProxyBody};
use crate::reply;
use crate::requests::Cause;
use crate::routes::Upstreams;
use crate::upstream::request_body::{BodyStalled, ClientBodyFailed};
use canary_core::Version;
use canary_core::upstream::Upstream;
use http::{Method, Response, StatusCode};
use http_body_util::LengthLimitError;
use std::time::Instant;

/// The version that serves a request routed to `version`, and its upstream:
/// stable when there is no canary upstream.
pub fn target(version: Version, ups: &Upstreams) -> (Version, &Upstream) {
    ups.serving(version)
}

/// Why an attempt at an upstream failed.
#[derive(Debug)]
pub enum Failure {
    /// The upstream did nothing with the request: no byte of it was written
    /// to any of its connections (the connection could not be made, or the
    /// client handed the request back unwritten, and no earlier try wrote
    /// it). Any method may then be sent elsewhere.
    NotSent(String),
    /// No response head within the response timeout.
    Timeout,
    /// The exchange failed once the request was (perhaps) written.
    Failed(BoxError),
}

impl Failure {
    /// What the failure is recorded as.
    fn reason(&self, ctx: &Ctx) -> String {
        match self {
            Failure::NotSent(why) => why.clone(),
            Failure::Timeout => timeout_reason(ctx),
            Failure::Failed(e) => e.to_string(),
        }
    }

    /// The failure's cause in the request log.
    fn cause(&self) -> Cause {
        match self {
            Failure::NotSent(_) => Cause::ConnectFailed,
            Failure::Timeout => Cause::Timeout,
            Failure::Failed(e) if is_protocol_error(e.as_ref()) => Cause::ProtocolError,
            Failure::Failed(_) => Cause::Reset,
        }
    }
}

/// Whether the upstream's answer was not valid HTTP (Envoy's UPE), rather
/// than cut off: from the in-task exchange or from hyper's parser.
fn is_protocol_error(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    match e.downcast_ref::<crate::upstream::h1::ExchangeError>() {
        Some(x) => matches!(x, crate::upstream::h1::ExchangeError::Protocol(_)),
        None => e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse),
    }
}

/// What follows a failed attempt.
// Made once per failure and moved straight into a match: boxing the answer
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum After<R> {
    /// Stable serves the request, handed back.
    Stable(R),
    /// The client gets this answer.
    Answer(Response<ProxyBody>),
}

/// After `version` failed the request: stable serves it when the canary
/// failed it and it can be sent again (`request`: the request, or a copy,
/// when the path has one in hand). A request never sent can be, whatever
/// its method; one the canary took and then failed (died, reset, hung) only
/// when its method is safe to repeat, so even a canary killed mid-request
/// costs the user nothing. Either way it counts as a canary failure.
///
/// A failure of the client's own (its body stalled, broke off, or went past
/// the limit) is answered 4xx and never counted against the version: a
/// canary must not be rolled back because clients on a bad network give up
/// their uploads.
pub fn after<R>(ctx: &Ctx, version: Version, failure: Failure, request: Option<R>) -> After<R> {
    if let Failure::Failed(e) = &failure {
        if let Some(answer) = client_fault(ctx, version, e) {
            return After::Answer(answer);
        }
    }
    let why = failure.reason(ctx);
    fail(ctx, version, None, &why);
    let again = matches!(failure, Failure::NotSent(_)) || is_safe(ctx.method());
    match request {
        Some(req) if version == Version::Canary && again => {
            ctx.w.shard.record_recovered(version, Instant::now());
            journal::fell_back(ctx, version, failure.cause(), &why);
            After::Stable(req)
        }
        _ => {
            let resp = answer(version, &failure, &why);
            journal::ended(ctx, version, Some(resp.status().as_u16()), Some(failure.cause()), &why);
            After::Answer(resp)
        }
    }
}

/// The client's answer when a failure is final.
fn answer(version: Version, failure: &Failure, why: &str) -> Response<ProxyBody> {
    let (status, code) = match failure {
        Failure::NotSent(_) => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
        Failure::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        Failure::Failed(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
    };
    reply::error(status, code, &format!("{version} upstream: {why}"))
}

/// The answer to a failure of the client's own, recorded with its status
/// and not as a failure; `None` for the upstream's failures.
fn client_fault(ctx: &Ctx, version: Version, e: &BoxError) -> Option<Response<ProxyBody>> {
    let limits = &ctx.w.cfg.proxy;
    let (status, code, msg) = if caused_by::<BodyStalled>(e) {
        let msg = format!("the request body stalled for {:?}", limits.body_read_timeout);
        (StatusCode::REQUEST_TIMEOUT, "body_timeout", msg)
    } else if caused_by::<ClientBodyFailed>(e) {
        (StatusCode::BAD_REQUEST, "body_broken", format!("the request body could not be read: {e}"))
    } else if caused_by::<LengthLimitError>(e) {
        let msg = format!("request body exceeds the limit of {} bytes", limits.max_body_bytes);
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", msg)
    } else {
        return None;
    };
    record(ctx, version, Some(status.as_u16()), false);
    journal::ended(ctx, version, Some(status.as_u16()), Some(Cause::ClientBody), &msg);
    Some(reply::error(status, code, &msg))
}

/// Why a request timed out, as recorded.
pub fn timeout_reason(ctx: &Ctx) -> String {
    format!("no response within {:?}", ctx.w.cfg.proxy.response_timeout)
}

/// Methods whose repetition changes nothing on the server (RFC 9110 section 9.2.1).
pub fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A request's tries at one upstream: a pooled connection first and, when
/// that one turns out closed by the upstream before it answered (it went
/// idle-stale just as it was picked), once more on a new connection. One
/// budget for every path: a second closed connection is the upstream's
/// doing, not the pool's.
#[derive(Debug, Default)]
pub struct Tries {
    retried: bool,
    /// An earlier try wrote the request's bytes: the upstream may have
    /// acted on it.
    written: bool,
}

impl Tries {
    /// Whether this try may take a pooled connection: only the first.
    pub fn pooled(&self) -> bool {
        !self.retried
    }

    /// The try's connection turned out closed before any response byte;
    /// `written`: whether the request went out on it. Whether to try again,
    /// on a new connection.
    pub fn stale(&mut self, written: bool) -> bool {
        self.written |= written;
        !std::mem::replace(&mut self.retried, true)
    }

    /// No connection could be had for this try: not sent, unless an earlier
    /// try wrote the request (a PUT or DELETE that may have been acted on
    /// must not be sent to stable again).
    pub fn no_connection(&self, e: impl std::error::Error + Send + Sync + 'static) -> Failure {
        if self.written { Failure::Failed(Box::new(e)) } else { Failure::NotSent(e.to_string()) }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_sent_again_once_after_a_stale_pooled_connection() {
        let mut t = Tries::default();
        assert!(t.pooled());
        assert!(t.stale(false));
        assert!(!t.pooled(), "the second try takes a new connection");
        assert!(!t.stale(false), "one budget: no third try");
    }

    #[test]
    fn a_request_written_on_a_stale_connection_is_no_longer_unsent() {
        let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let mut t = Tries::default();
        assert!(matches!(t.no_connection(refused()), Failure::NotSent(_)));
        t.stale(true);
        assert!(matches!(t.no_connection(refused()), Failure::Failed(_)));
        let mut unwritten = Tries::default();
        unwritten.stale(false);
        assert!(matches!(unwritten.no_connection(refused()), Failure::NotSent(_)));
    }

    #[test]
    fn only_safe_methods_are_repeated_after_the_canary_took_them() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(is_safe(&m), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(!is_safe(&m), "{m}");
        }
    }
}
