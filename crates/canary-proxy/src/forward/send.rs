//! One attempt at an upstream: the request sent on a connection the pool
//! gives, and the response head awaited within the response timeout. Three
//! ways, picked by the request and the upstream: the in-task HTTP/1.1
//! exchange for requests without a body ([`exchange_h1`]), hyper's HTTP/1.1
//! client for the rest, and the upstream's shared HTTP/2 connection. Each
//! takes its tries from the policy's [`Tries`] and reports a failure as the
//! policy's [`Failure`].

use super::ctx::Ctx;
use super::policy::{Failure, Tries};
use super::rewrite::{retarget, to_h2};
use crate::body::{Recycle, UpstreamBody};
use crate::deadline;
use crate::upstream::h1;
use crate::upstream::pool::{Checkout, Pool};
use crate::upstream::request_body::UpstreamReqBody;
use canary_core::upstream::{Protocol, Upstream};
use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use std::pin::Pin;
use tokio::time::Sleep;

/// An upstream response head with its body and the connection behind it.
pub(super) type Sent = (Response<UpstreamBody>, Recycle);

/// The most bytes accepted in an upstream's response head.
pub(crate) const MAX_RESPONSE_HEAD: usize = 128 * 1024;

/// A failed attempt, with the request when the way it went kept it (the
/// in-task exchange does; hyper hands back only a request it never wrote).
pub(super) struct Missed {
    /// What went wrong.
    pub(super) failure: Failure,
    /// The request, handed back.
    pub(super) request: Option<Request<UpstreamReqBody>>,
}

impl Missed {
    fn new(failure: Failure, request: Option<Request<UpstreamReqBody>>) -> Missed {
        Missed { failure, request }
    }
}

/// Sends `req` to `up` and awaits the response head.
// Boxing the request would allocate on every failed attempt; the value is
// moved once, straight into a match, so its size costs nothing.
#[allow(clippy::result_large_err)]
pub(super) async fn send(
    ctx: &Ctx,
    up: &Upstream,
    mut req: Request<UpstreamReqBody>,
) -> Result<Sent, Missed> {
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
    if in_task(&req) {
        send_h1(pool, up, req, timeout, ctx.raw_head).await
    } else {
        let (resp, conn) = send_hyper(pool, up, req, timeout).await?;
        Ok((resp.map(UpstreamBody::Hyper), Recycle::Hyper(conn)))
    }
}

/// Whether the request takes the in-task exchange (see `upstream::h1`).
pub(super) fn in_task(req: &Request<UpstreamReqBody>) -> bool {
    use hyper::body::Body;
    h1::eligible(req.method(), req.body().is_end_stream())
}

/// A body-less idempotent request over a plain pooled connection (see `h1`).
#[allow(clippy::result_large_err)]
async fn send_h1(
    pool: &Pool,
    up: &Upstream,
    req: Request<UpstreamReqBody>,
    timeout: std::time::Duration,
    raw_head: bool,
) -> Result<Sent, Missed> {
    let (parts, body) = req.into_parts();
    let want = H1Want { timeout, head_request: parts.method == Method::HEAD, raw_head };
    let timer = std::pin::pin!(deadline::timer());
    exchange_h1(pool, up, want, timer, |out| h1::encode_head(out, &parts))
        .await
        .map_err(|failure| Missed::new(failure, Some(Request::from_parts(parts, body))))
}

/// How an in-task exchange is to go.
#[derive(Clone, Copy)]
pub(super) struct H1Want {
    /// How long the upstream has to send its response head.
    pub(super) timeout: std::time::Duration,
    /// The request is HEAD: no body comes back.
    pub(super) head_request: bool,
    /// The response head may be kept in the client's form (see `h1::raw`).
    pub(super) raw_head: bool,
}

/// A request head written by `encode` on a pooled plain connection to `up`
/// (a new one if the pooled one turns out closed), and the response head,
/// awaited with `timer` (see `deadline`). The caller keeps the request.
pub(super) async fn exchange_h1(
    pool: &Pool,
    up: &Upstream,
    want: H1Want,
    mut timer: Pin<&mut Sleep>,
    encode: impl Fn(&mut Vec<u8>),
) -> Result<Sent, Failure> {
    let mut tries = Tries::default();
    loop {
        // Connecting is boxed (as in `checkout_h1`): its future, with TLS's
        // handshake, is larger than all the rest of the exchange.
        let got =
            if tries.pooled() { pool.checkout_h1(up).await } else { Box::pin(pool.connect_h1(up)).await };
        let mut conn = got.map_err(|e| tries.no_connection(e))?;
        let exchange = conn.exchange_with(&encode, want.head_request, MAX_RESPONSE_HEAD, want.raw_head);
        match deadline::within(timer.as_mut(), want.timeout, exchange).await {
            None => return Err(Failure::Timeout),
            Some(Ok(head)) => {
                let body =
                    h1::body::Body::new(conn, head.framing, head.keep_alive, want.timeout).with_raw(head.raw);
                let mut resp = Response::new(UpstreamBody::H1(body));
                *resp.status_mut() = head.status;
                *resp.headers_mut() = head.headers;
                return Ok((resp, Recycle::H1(up.url_arc())));
            }
            // Written on a connection that went stale: it may have been acted on.
            Some(Err(h1::ExchangeError::Stale(_))) if tries.stale(true) => {}
            Some(Err(e)) => return Err(Failure::Failed(Box::new(e))),
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
) -> Result<(Response<Incoming>, Checkout), Missed> {
    let mut tries = Tries::default();
    loop {
        let got = if tries.pooled() { pool.checkout(up).await } else { pool.connect(up).await };
        let mut conn = match got {
            Ok(c) => c,
            Err(e) => return Err(Missed::new(tries.no_connection(e), Some(req))),
        };
        match tokio::time::timeout(timeout, conn.sender.try_send_request(req)).await {
            Err(_) => return Err(Missed::new(Failure::Timeout, None)),
            Ok(Ok(resp)) => return Ok((resp, conn)),
            // hyper hands back a request it did not write: the connection
            // was closed by the upstream as it was picked.
            Ok(Err(mut e)) => match e.take_message() {
                Some(r) if tries.stale(false) => req = r,
                Some(r) => return Err(Missed::new(Failure::NotSent(e.into_error().to_string()), Some(r))),
                None => return Err(Missed::new(Failure::Failed(Box::new(e.into_error())), None)),
            },
        }
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
) -> Result<Result<Sent, Request<UpstreamReqBody>>, Missed> {
    let mut tries = Tries::default();
    let mut first = true;
    loop {
        // The connection is shared: a dead one is replaced by the next
        // checkout, so a retry needs no other connection choice.
        let mut sender = match pool.h2(up).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Err(req)),
            Err(e) => return Err(Missed::new(tries.no_connection(e), Some(req))),
        };
        if std::mem::take(&mut first) {
            to_h2(&mut req, up, te_trailers);
        }
        match tokio::time::timeout(timeout, sender.try_send_request(req)).await {
            Err(_) => return Err(Missed::new(Failure::Timeout, None)),
            Ok(Ok(resp)) => return Ok(Ok((resp.map(UpstreamBody::Hyper), Recycle::Shared))),
            // The connection died before the stream opened.
            Ok(Err(mut e)) => match e.take_message() {
                Some(r) if tries.stale(false) => req = r,
                Some(r) => return Err(Missed::new(Failure::NotSent(e.into_error().to_string()), Some(r))),
                None => return Err(Missed::new(Failure::Failed(Box::new(e.into_error())), None)),
            },
        }
    }
}
