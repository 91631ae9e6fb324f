//! The response body sent to clients: either the upstream's body streamed
//! through frame by frame, or a short body of our own (an error reply).
//!
//! Streaming the upstream body carries a [`Completion`]: when the body ends it
//! records the request's outcome and returns the connection to the pool; when
//! it is dropped early (client gone) or fails, it records that and lets the
//! connection close. For a gRPC call whose status comes at the end, it also
//! reads the trailers as they pass (see `grpc.rs`).

use super::grpc;
use super::headers::strip_trailer_fields;
use crate::forward::ctx::Worker;
use crate::forward::journal;
use crate::metrics::{ErrorRecord, Outcome};
use crate::requests::Cause;
use crate::requests::entry::Entry;
use crate::upstream::h1;
use crate::upstream::pool::Checkout;
use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
// The streamed variant is the common one; boxing it to shrink the rare error
// reply would cost an allocation on every proxied response.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ProxyBody {
    /// The upstream's body, streamed.
    Upstream {
        /// The body.
        inner: UpstreamBody,
        /// What to do when it ends.
        done: Completion,
    },
    /// A complete body of our own.
    Full(Option<Bytes>),
}

impl ProxyBody {
    /// A complete body.
    pub fn full(b: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Full(Some(b.into()))
    }

    /// Done with: dropped in place (which records its outcome and recycles
    /// its upstream connection, see the drop), leaving an empty body.
    pub fn finish(&mut self) {
        *self = ProxyBody::Full(None);
    }

    /// The response head in the client's form, when the upstream's was kept
    /// so (see `h1::raw`); the response's header map is then empty.
    pub fn take_raw_head(&mut self) -> Option<h1::raw::RawHead> {
        match self {
            ProxyBody::Upstream { inner: UpstreamBody::H1(b), .. } => b.take_raw(),
            _ => None,
        }
    }
}

/// An upstream's response body, from whichever client carried the exchange.
#[derive(Debug)]
pub enum UpstreamBody {
    /// From hyper's client (requests with a body, and HTTP/2 upstreams).
    Hyper(Incoming),
    /// Read straight from the connection (the in-task exchange, see `upstream::h1`).
    H1(h1::body::Body),
}

impl UpstreamBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self {
            // hyper's HTTP/1.1 client passes chunked trailers on as they came
            // (the in-task exchange's decoder strips them itself).
            UpstreamBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map_ok(|mut f| {
                    if let Some(t) = f.trailers_mut() {
                        strip_trailer_fields(t);
                    }
                    f
                })
                .map_err(Into::into),
            UpstreamBody::H1(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::H1(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::H1(b) => b.size_hint(),
        }
    }

    /// The response head in the client's form, if it was kept so.
    pub fn raw_mut(&mut self) -> Option<&mut h1::raw::RawHead> {
        match self {
            UpstreamBody::Hyper(_) => None,
            UpstreamBody::H1(b) => b.raw_mut(),
        }
    }

    /// The in-task exchange's connection, if it can carry another exchange.
    fn take_reusable(&mut self) -> Option<h1::Conn> {
        match self {
            UpstreamBody::Hyper(_) => None,
            UpstreamBody::H1(b) => b.take_reusable(),
        }
    }
}

/// The connection behind a response, to go back to the pool when it ends.
#[derive(Debug)]
pub enum Recycle {
    /// A hyper connection.
    Hyper(Checkout),
    /// A plain connection to the upstream with this key; the body holds it.
    H1(Arc<str>),
    /// A stream of a shared HTTP/2 connection: nothing to give back.
    Shared,
}

/// Records a request's outcome and recycles its connection, exactly once.
#[derive(Debug)]
pub struct Completion {
    /// The worker: its shard, pool and access log.
    pub w: Arc<Worker>,
    /// The connection, returned to the pool on a clean end.
    pub conn: Option<Recycle>,
    /// The outcome so far; completed with the latency at the end.
    pub outcome: Outcome,
    /// When the request arrived.
    pub start: Instant,
    /// Whether the body was read to its end.
    pub finished: bool,
    /// Whether `outcome.latency_us` was set when the head arrived (gRPC,
    /// whose streams may last minutes) rather than due at the body's end.
    pub latency_at_head: bool,
    /// A gRPC call whose `grpc-status` is still to come.
    pub grpc: Option<Box<grpc::Pending>>,
    /// The request's entry, drafted when it is to be written or kept (see
    /// `forward::journal`); completed and handed on when the body ends.
    pub log: Option<Box<Entry>>,
    /// What an undrafted request's entry is made from, if its answer
    /// breaks off.
    pub brief: journal::Brief,
    /// Stable's answer being captured for a shadow comparison.
    pub shadow: Option<Box<crate::shadow::tee::Tee>>,
}

impl Completion {
    fn finish(&mut self, body: &mut UpstreamBody, clean: bool) {
        self.finished = true;
        if let Some(tee) = self.shadow.take() {
            if clean { (*tee).complete() } else { (*tee).abandon() }
        }
        match self.conn.take().filter(|_| clean) {
            Some(Recycle::Hyper(c)) => self.w.pool.put(c),
            Some(Recycle::H1(key)) => {
                if let Some(c) = body.take_reusable() {
                    self.w.pool.put_h1(key, c);
                }
            }
            Some(Recycle::Shared) | None => {}
        }
    }

    /// The gRPC call ended with these trailers (`None`: with none at all).
    fn grpc_ended(&mut self, trailers: Option<&HeaderMap>) {
        let Some(call) = self.grpc.take() else { return };
        let Some(why) = call.ended(trailers) else { return };
        self.outcome.grpc_error = true;
        if let Some(e) = self.log.as_mut() {
            e.detail = Some(why.as_str().into());
        }
        self.w.shard.record_error(ErrorRecord {
            at_ms: crate::clock::now(),
            version: self.outcome.version,
            method: "POST".into(),
            path: call.path.into(),
            status: self.outcome.status,
            error: why,
        });
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let now = Instant::now();
        // A body that was never read to the end leaves the connection in the
        // middle of a response: it cannot be reused, so it is simply dropped.
        if !self.latency_at_head {
            self.outcome.latency_us = now.duration_since(self.start).as_micros() as u64;
        }
        self.w.shard.record(self.outcome, now);
        self.w.shard.end(self.outcome.version);
        self.hand_on(now);
        if let Some(tee) = self.shadow.take() {
            (*tee).abandon();
        }
    }
}

impl Completion {
    /// How the request ended, if not well: the upstream's doing first.
    fn cause(&self) -> Option<(Cause, &'static str)> {
        let o = &self.outcome;
        Some(if o.failure {
            (Cause::Reset, "the upstream's answer broke off")
        } else if o.grpc_error {
            (Cause::GrpcError, "the call ended with an error status")
        } else if o.status.is_some_and(|s| s >= 500) {
            (Cause::Upstream5xx, "upstream answered with a server error")
        } else if !self.finished {
            (Cause::ClientGone, "the client left before the answer ended")
        } else {
            return None;
        })
    }

    /// Completes the request's entry and hands it on (see
    /// `forward::journal`): the drafted one, or for a request undrafted
    /// whose answer broke off mid-body (a success until then), a brief one.
    fn hand_on(&mut self, end: Instant) {
        let cause = self.cause();
        let Some(mut e) = self.log.take() else {
            if let Some((c, why)) = cause {
                journal::finish(&self.w, journal::undrafted(&self.w, &self.brief, &self.outcome, c, why));
            }
            return;
        };
        e.time = crate::clock::at(end);
        e.status = self.outcome.status;
        e.duration_us = self.outcome.latency_us;
        if let Some((c, why)) = cause {
            e.cause = Some(c);
            e.detail.get_or_insert_with(|| why.into());
        }
        journal::finish(&self.w, e);
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream { inner, done } => match inner.poll_frame(cx) {
                Poll::Ready(None) => {
                    done.grpc_ended(None);
                    done.finish(inner, true);
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(e))) => {
                    done.outcome.failure = true;
                    done.finish(inner, false);
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Some(e), Some(data)) = (done.log.as_mut(), frame.data_ref()) {
                        e.bytes_out += data.len() as u64;
                    }
                    if let (Some(tee), Some(data)) = (done.shadow.as_mut(), frame.data_ref())
                        && !tee.push(data)
                    {
                        done.shadow = None;
                    }
                    if let Some(trailers) = frame.trailers_ref().filter(|_| done.grpc.is_some()) {
                        done.grpc_ended(Some(trailers));
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                other => other,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream { inner, .. } => inner.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper may not poll a body it already knows is empty (HEAD, 204, 304,
        // Content-Length: 0); such a response is complete and its connection
        // is fine to reuse.
        if let ProxyBody::Upstream { inner, done } = self
            && !done.finished
            && inner.is_end_stream()
        {
            done.grpc_ended(None);
            done.finish(inner, true);
        }
    }
}
