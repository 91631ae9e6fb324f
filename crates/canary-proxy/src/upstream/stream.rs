//! An upstream connection's byte stream: plain TCP, or TLS over TCP for an
//! `https://` upstream.
//!
//! An enum rather than a boxed `AsyncRead + AsyncWrite`: the plain variant,
//! by far the common one, pays a branch per read or write and no allocation
//! or indirect call. The TLS variant is boxed because rustls' connection state
//! is a few kilobytes, which would otherwise make every plain connection (and
//! every future holding one) that large.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A connected upstream socket.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP (`http://`).
    Plain(TcpStream),
    /// TLS over TCP (`https://`), after a completed handshake.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the TLS handshake settled on HTTP/2 by ALPN.
    pub fn alpn_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }

    /// Whether an idle connection is still usable: nothing (an EOF, a reset,
    /// stray bytes) arrived while it sat in the pool.
    pub fn looks_alive(&mut self) -> bool {
        match self {
            // `try_read` answers WouldBlock from the cached readiness without a
            // system call, and, unlike `poll_read_ready`, never reports "not
            // ready" just because the task has used up its cooperative budget.
            Stream::Plain(s) => {
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // The raw socket cannot be probed under TLS: a server may send
            // records while the connection idles (TLS 1.3 session tickets),
            // which rustls must consume. One read through rustls with a no-op
            // waker processes those and tells data or EOF (dead) from nothing
            // to read yet (alive). Pending for lack of budget reads as alive,
            // and a stale pick is then retried on a new connection.
            Stream::Tls(s) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                matches!(Pin::new(s.as_mut()).poll_read(&mut cx, &mut buf), Poll::Pending)
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
