//! An upstream response body read straight from its connection as the client
//! takes it, so a slow client slows the upstream read (back-pressure) and a
//! large body never sits in memory. The connection is handed back for reuse
//! only when the body ended exactly where its framing said.

use super::framing::{Framing, Piece};
use super::raw::RawHead;
use super::{Conn, READ_CHUNK};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Sleep;

/// Larger reads once a body is known to be long: fewer system calls per byte.
const BULK_READ: usize = 64 * 1024;

/// A response body streamed from an upstream connection.
#[derive(Debug)]
pub struct Body {
    conn: Option<Conn>,
    framing: Framing,
    keep_alive: bool,
    ended: bool,
    /// How long the upstream may send nothing mid-body.
    idle: Duration,
    // Armed only while waiting for the upstream, so a body already read or
    // arriving steadily costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// The response head in the client's form, until it is written.
    raw: Option<RawHead>,
}

impl Body {
    /// The body that follows a response head on `conn`; a pause longer than
    /// `idle` in the upstream's sending ends it with an error.
    pub fn new(conn: Conn, framing: Framing, keep_alive: bool, idle: Duration) -> Body {
        Body { conn: Some(conn), framing, keep_alive, ended: false, idle, timer: None, raw: None }
    }

    /// The body, carrying its response head in the client's form.
    pub fn with_raw(mut self, raw: Option<RawHead>) -> Body {
        self.raw = raw;
        self
    }

    /// The response head in the client's form, if it was kept so.
    pub fn raw_mut(&mut self) -> Option<&mut RawHead> {
        self.raw.as_mut()
    }

    /// Takes the response head in the client's form, to write it.
    pub fn take_raw(&mut self) -> Option<RawHead> {
        self.raw.take()
    }

    /// The connection, if the body was read to its end, the upstream allows
    /// another exchange on it, and nothing unexpected follows the body.
    pub fn take_reusable(&mut self) -> Option<Conn> {
        let complete = self.ended || self.framing == Framing::Length(0);
        if !(complete && self.keep_alive) {
            return None;
        }
        let mut conn = self.conn.take().filter(|c| c.buf.is_empty())?;
        conn.reused = true;
        Some(conn)
    }

    fn read_size(&self) -> usize {
        match self.framing {
            Framing::Length(n) if n <= READ_CHUNK as u64 => READ_CHUNK,
            _ => BULK_READ,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let size = this.read_size();
        let Some(conn) = this.conn.as_mut().filter(|_| !this.ended) else { return Poll::Ready(None) };
        loop {
            match this.framing.next(&mut conn.buf) {
                Err(e) => return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, e)))),
                Ok(Piece::Data(b)) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                // The trailers end the body: hyper polls no further after them.
                Ok(Piece::Trailers(t)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                Ok(Piece::Done) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Ok(Piece::NeedMore) => {}
            }
            conn.buf.reserve(size);
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf);
            let Poll::Ready(read) = read else {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(timer.as_mut().poll(cx));
                let e = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the upstream sent no body data for {idle:?}"),
                );
                return Poll::Ready(Some(Err(e)));
            };
            this.timer = None;
            match read {
                Ok(0) if this.framing == Framing::UntilClose => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the upstream closed mid-body");
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.framing == Framing::Length(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.exact_len() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
