//! The body a request carries upstream: the client's, cut off past the size
//! limit and past a pause longer than the body read timeout, with the client's
//! failures told apart from the upstream's; or none.

use http_body_util::{LengthLimitError, Limited};
use hyper::body::Incoming;
use std::future::Future;

/// The body sent upstream: the client's body (cut off past the size limit,
/// and past a pause longer than the body read timeout), or none, for a
/// body-less request replayed on stable after the canary failed.
#[derive(Debug)]
pub enum UpstreamReqBody {
    /// The client's body.
    Client(ClientBody),
    /// No body.
    Empty,
}

/// A client's request body with a limit on how long it may stall.
#[derive(Debug)]
pub struct ClientBody {
    inner: Limited<Incoming>,
    idle: std::time::Duration,
    // Armed only while the client is silent, so a steady upload costs nothing.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// During a shadow step, where the body's chunks are kept for the copy.
    capture: Option<std::sync::Arc<crate::shadow::tee::Captured>>,
}

impl ClientBody {
    /// Wraps `inner`; a pause longer than `idle` ends the body with [`BodyStalled`].
    pub fn new(inner: Limited<Incoming>, idle: std::time::Duration) -> ClientBody {
        ClientBody { inner, idle, timer: None, capture: None }
    }
}

impl UpstreamReqBody {
    /// Keeps each chunk of the client's body in `capture` as it goes up.
    pub fn capture(&mut self, capture: std::sync::Arc<crate::shadow::tee::Captured>) {
        if let UpstreamReqBody::Client(b) = self {
            b.capture = Some(capture);
        }
    }
}

/// The client stopped sending its body.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no body data for {0:?}")]
pub struct BodyStalled(pub std::time::Duration);

/// The client's body broke off: the client closed or reset its connection
/// halfway, or broke the body's framing. Told apart from the upstream's
/// failures, which it is not.
#[derive(Debug, thiserror::Error)]
#[error("the request body broke off: {0}")]
pub struct ClientBodyFailed(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl hyper::body::Body for UpstreamReqBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        use std::task::Poll;
        let UpstreamReqBody::Client(b) = self.get_mut() else { return Poll::Ready(None) };
        match std::pin::Pin::new(&mut b.inner).poll_frame(cx) {
            Poll::Pending => {
                let idle = b.idle;
                let timer = b.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(Some(Err(e))) if !e.is::<LengthLimitError>() => {
                Poll::Ready(Some(Err(Box::new(ClientBodyFailed(e)))))
            }
            ready => {
                b.timer = None;
                if let (Some(c), Poll::Ready(Some(Ok(frame)))) = (&b.capture, &ready)
                    && let Some(data) = frame.data_ref()
                {
                    c.push(data);
                }
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamReqBody::Client(b) => b.inner.is_end_stream(),
            UpstreamReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            UpstreamReqBody::Client(b) => b.inner.size_hint(),
            UpstreamReqBody::Empty => hyper::body::SizeHint::with_exact(0),
        }
    }
}
