//! The fast client-side HTTP/1.1 path: a plain connection's requests read,
//! routed, forwarded and answered without hyper's server.
//!
//! hyper's server parses every request into its own structures, drives the
//! service through a dispatcher, and keeps its read and write buffers (and
//! the slot for the service's future) for as long as the connection lives:
//! about 32 KB for a keep-alive connection doing nothing. Here a connection
//! waiting for its next request holds its socket and a small future; the read
//! buffer is allocated when bytes arrive and given back once the request that
//! used it is done, and each request's work lives in an allocation of its own
//! that ends with the response.
//!
//! Only the plain case is served here (see [`head`]): anything else (a body,
//! an upgrade, HTTP/1.0, a malformed head, HTTP/2's preface) hands the
//! connection, with the bytes already read, to the general path
//! (`general.rs`), which keeps it from then on.
//!
//! - [`head`]: the request head's parser and the fast-or-hyper decision;
//! - [`write`]: the response as HTTP/1.1 bytes;
//! - [`prefixed`]: the socket handed over with its bytes put back;
//! - [`date`]: the cached `Date` value.

pub mod date;
pub mod head;
pub mod prefixed;
pub mod write;

use super::hyper as general;
use crate::deadline;
use crate::drain::Watch;
use crate::forward::ctx::{Peer, Worker};
use bytes::BytesMut;
use canary_core::proxy_config::UserKey;
use head::{Parsed, Plain};
use http::HeaderName;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use prefixed::Prefixed;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Bytes read for a request head at a time (most heads fit in one read).
const HEAD_READ: usize = 1024;

/// One client connection, as the accept loop hands it over.
#[derive(Debug)]
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    /// The worker serving it.
    pub worker: Arc<Worker>,
    /// The client's address.
    pub peer: Arc<Peer>,
    /// For the general path, should the connection need it.
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    /// Shutdown's signal; held until the connection ends.
    pub watch: Watch,
}

/// What waiting for the next request came to.
// As `Parsed`: the large variant is the common one, moved once.
#[allow(clippy::large_enum_variant)]
enum Next {
    Plain(Plain),
    General,
    Close,
}

/// Serves the connection's requests until either side closes it.
// Not an async fn: one would copy `c` from its argument into a local, and
// hold both for as long as the connection lives.
#[allow(clippy::manual_async_fn)]
pub fn serve(mut c: Client) -> impl Future<Output = ()> + Send {
    async move {
        let mut buf = BytesMut::new();
        // Kept for the connection's life and reset for each wait (see `deadline`):
        // one for the next request head, one for each response head. Two, so that
        // each is only ever moved later, which is the cheap reset.
        let (mut head_timer, mut response_timer) = (pin!(deadline::timer()), pin!(deadline::timer()));
        loop {
            // Nothing is awaited inside this match: a match's scrutinee lives
            // to its end, and the `Next` (250 bytes) held across an await there
            // would take room in every state of this future, the idle one too.
            let plain = match next_request(&mut c, &mut buf, head_timer.as_mut()).await {
                Next::Plain(plain) => plain,
                Next::Close => return,
                Next::General => break,
            };
            if buf.is_empty() {
                // Nothing pipelined behind this request: let the buffer go with
                // the request's head instead of holding it while idle.
                buf = BytesMut::new();
            }
            // The allocation first, then the future written into it: built on
            // the stack and then boxed, the whole (kilobytes, for its largest
            // state) would be copied for each request.
            let fut = Box::write(Box::new_uninit(), exchange(&mut c, plain, response_timer.as_mut()));
            if !Box::into_pin(fut).await {
                return;
            }
        }
        let io = Prefixed::new(buf.freeze(), c.stream);
        // Boxed: hyper's connection future is large, and inline it would be
        // part of every connection's idle footprint.
        Box::pin(general::serve(io, c.builder, c.worker, c.peer, c.watch)).await
    }
}

/// Waits for the next request head, within the header read timeout (which
/// also bounds how long an idle keep-alive connection is kept, as hyper's
/// server does) and until shutdown, which closes an idle connection.
async fn next_request(c: &mut Client, buf: &mut BytesMut, timer: Pin<&mut Sleep>) -> Next {
    let cfg = &c.worker.cfg.proxy;
    let idle = buf.is_empty();
    let user_key = match &c.worker.cfg.user_key {
        UserKey::Header(name) => Some(name),
        UserKey::Cookie(_) => None,
    };
    let head = read_head(&mut c.stream, buf, cfg.max_header_bytes, user_key);
    let read = deadline::within(timer, cfg.header_read_timeout, head);
    tokio::select! {
        biased;
        got = read => match got {
            Some(Ok(Some(Parsed::Plain(plain)))) => Next::Plain(plain),
            Some(Ok(Some(Parsed::General(why)))) => {
                tracing::trace!(?why, "request handed to hyper's server");
                Next::General
            }
            Some(Ok(Some(Parsed::Partial) | None)) | Some(Err(_)) | None => Next::Close,
        },
        () = c.watch.signalled(), if idle => Next::Close,
    }
}

/// Reads until `buf` holds a complete head (or one for the general path);
/// `None` when the client closed first. Memory is taken only once bytes
/// are there to read.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max: usize,
    user_key: Option<&HeaderName>,
) -> io::Result<Option<Parsed>> {
    loop {
        if !buf.is_empty() {
            match head::parse(buf, max, user_key) {
                Parsed::Partial => {}
                done => return Ok(Some(done)),
            }
        }
        // The task's waker in the socket's reader slot: a `readable()` future
        // would hold a waiter node (150 bytes) in every idle connection.
        std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await?;
        match read_some(stream, buf) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// One read into `buf`, `WouldBlock` when there was nothing after all. With
/// nothing buffered, the read goes to a buffer of its own, kept only when
/// bytes came: a buffer allocated for a read that finds nothing would stay
/// with the idle connection. (Not a zeroed array on the stack: clearing it
/// for every request cost more than the allocation.)
///
/// The read is tokio's `poll_read`, polled once, rather than `try_read`: a
/// read that fills less than the room it was given leaves the socket drained,
/// and `poll_read` then clears the readiness, so the next wait goes to the
/// reactor instead of costing a system call that finds nothing (half a
/// `recvfrom` per request otherwise, `bench/syscalls.sh`).
fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.is_empty() && buf.capacity() == 0 {
        let mut fresh = BytesMut::with_capacity(HEAD_READ);
        let n = read_now(stream, &mut fresh)?;
        if n > 0 {
            *buf = fresh;
        }
        return Ok(n);
    }
    if buf.capacity() - buf.len() < HEAD_READ / 4 {
        buf.reserve(HEAD_READ);
    }
    read_now(stream, buf)
}

/// `stream.read_buf(buf)` polled once; `WouldBlock` if it would wait. (The
/// caller waits with `poll_read_ready`, which registers the task's own waker.)
fn read_now(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(stream.read_buf(buf)).poll(&mut cx) {
        Poll::Ready(got) => got,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// One request and its response; whether the connection carries on.
async fn exchange(c: &mut Client, plain: Plain, timer: Pin<&mut Sleep>) -> bool {
    let head_request = plain.method == http::Method::HEAD;
    let mut resp = crate::forward::fast::handle(Arc::clone(&c.worker), &c.peer, &plain, timer).await;
    let close = plain.close || c.watch.is_signalled();
    // The head's bytes are not needed while the body streams.
    drop(plain);
    match write::response(&mut c.stream, &mut resp, head_request, close).await {
        Ok(reusable) => reusable && !close,
        Err(e) => {
            tracing::debug!(error = %e, "writing to a client failed");
            false
        }
    }
}
