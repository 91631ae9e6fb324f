//! The response body sent to clients: either the upstream's body streamed
//! through frame by frame, or a short body of our own (an error reply).
//!
//! Streaming the upstream body carries a [`Completion`]: when the body ends it
//! records the request's outcome and returns the connection to the pool; when
//! it is dropped early (client gone) or fails, it records that and lets the
//! connection close.

use super::pool::{Checkout, Pool};
use crate::metrics::{Outcome, Shard};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
#[derive(Debug)]
pub enum ProxyBody {
    /// The upstream's body, streamed.
    Upstream {
        /// The body.
        inner: Incoming,
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
}

/// Records a request's outcome and recycles its connection, exactly once.
#[derive(Debug)]
pub struct Completion {
    /// The worker's shard.
    pub shard: Arc<Shard>,
    /// The worker's pool.
    pub pool: Arc<Pool>,
    /// The connection, returned to the pool on a clean end.
    pub conn: Option<Checkout>,
    /// The outcome so far; completed with the latency at the end.
    pub outcome: Outcome,
    /// When the request arrived.
    pub start: Instant,
    /// Whether the body was read to its end.
    pub finished: bool,
}

impl Completion {
    fn finish(&mut self, clean: bool) {
        self.finished = true;
        if let Some(c) = self.conn.take().filter(|_| clean) {
            self.pool.put(c);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let now = Instant::now();
        // A body that was never read to the end leaves the connection in the
        // middle of a response: it cannot be reused, so it is simply dropped.
        self.outcome.latency_us = now.duration_since(self.start).as_micros() as u64;
        self.shard.record(self.outcome, now);
        self.shard.end(self.outcome.version);
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
            ProxyBody::Upstream { inner, done } => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(None) => {
                    done.finish(true);
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(e))) => {
                    done.outcome.failure = true;
                    done.finish(false);
                    Poll::Ready(Some(Err(e.into())))
                }
                other => other.map_err(Into::into),
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
            done.finish(true);
        }
    }
}
