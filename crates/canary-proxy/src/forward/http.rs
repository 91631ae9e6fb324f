//! The forward phase for a request held as `http::Request` (hyper's server,
//! and the fast path's requests it does not write itself): sent to the
//! routed version's upstream, and on a failure handed to the policy, which
//! may send it to stable.
//!
//! The upstream is spoken to in HTTP/2 when its URL says so (`h2c://`, or an
//! `https://` upstream that picks h2): over its shared connection. An
//! `http://` upstream never goes near that code: one comparison of the URL's
//! protocol is all the HTTP/1.1 paths pay for it.

use super::ctx::Ctx;
use super::in_flight::InFlight;
use super::journal;
use super::policy::{self, After};
use super::respond::{fail, respond};
use super::send::{Missed, in_task, send};
use crate::body::ProxyBody;
use crate::reply;
use crate::requests::Cause;
use crate::upstream::request_body::UpstreamReqBody;
use canary_core::Version;
use http::{Request, Response, StatusCode};

/// Sends `req` to `version`'s upstream and answers with what comes back.
pub(super) async fn forward(
    ctx: &Ctx,
    version: Version,
    req: Request<UpstreamReqBody>,
) -> Response<ProxyBody> {
    let ups = ctx.w.routes.upstreams();
    let (version, target) = policy::target(version, &ups);
    let pending = InFlight::begin(ctx, version);
    // The in-task exchange hands a failed request back; any other is copied
    // first, in case the canary fails it. A canary with a path prefix has
    // already rewritten the path of the request it hands back, so it is
    // copied too. Over HTTP/2 nothing comes back once the stream opened.
    let comes_back = in_task(&req) && target.base_path().is_empty() && !ctx.w.pool.speaks_h2(target);
    let copy = if version == Version::Canary && !comes_back { replayable(&req) } else { None };
    let result = send(ctx, target, req).await;
    // Every way on records the outcome before it awaits anything else.
    pending.settle();
    match result {
        // hyper's client hands back a 101 to a request that did not ask for
        // one (the fast path refuses it while parsing): never tunnelled.
        Ok((resp, _)) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let why = "101 Switching Protocols to a request without Upgrade";
            fail(ctx, version, None, why);
            journal::ended(ctx, version, Some(502), Some(Cause::ProtocolError), why);
            reply::error(StatusCode::BAD_GATEWAY, "upstream_failed", &format!("{version} upstream: {why}"))
        }
        Ok((resp, conn)) => respond(ctx, version, resp, conn),
        Err(Missed { failure, request }) => {
            let again = match failure {
                policy::Failure::NotSent(_) => request,
                _ => copy.or(request),
            };
            match policy::after(ctx, version, failure, again) {
                After::Stable(req) => Box::pin(forward(ctx, Version::Stable, req)).await,
                After::Answer(resp) => resp,
            }
        }
    }
}

/// A copy of a body-less GET, HEAD or OPTIONS request, kept so it can be
/// repeated on stable if the canary fails it after it was sent.
fn replayable(req: &Request<UpstreamReqBody>) -> Option<Request<UpstreamReqBody>> {
    use hyper::body::Body;
    if !policy::is_safe(req.method()) || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(UpstreamReqBody::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}
