//! An in-task HTTP/1.1 exchange with an upstream for requests without a body,
//! run inside the client connection's own task.
//!
//! hyper's client drives each upstream connection from a task of its own and
//! passes every request, response and body chunk between tasks through
//! channels; a profile of the proxy showed that hand-off among its largest
//! costs. Requests without a body (most API traffic: GET, HEAD, DELETE...)
//! need none of hyper's full-duplex machinery, so they take this path: the
//! request head is written and the response read on the same socket by the
//! task that serves the client, and the body is streamed straight from that
//! socket (see [`body`]). Requests with a body keep hyper's client, which
//! streams uploads while it reads an early response.
//!
//! Only idempotent methods (RFC 9110 section 9.2.2) come here, so a request on
//! a pooled connection that the upstream closed just as it was picked can be
//! sent again on a new one without asking whether it was acted on.

pub mod body;
pub mod framing;
pub mod raw;

use super::stream::Stream;
use bytes::{Buf, BytesMut};
use framing::{Chunked, Framing};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, request};
use raw::RawHead;
use std::io;
use std::mem::MaybeUninit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes read from the upstream at a time.
pub const READ_CHUNK: usize = 16 * 1024;
/// Response headers accepted, as hyper's default.
const MAX_HEADERS: usize = 100;

/// One upstream connection and what was read from it but not yet used.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    buf: BytesMut,
    // The request head is encoded here; kept to reuse its allocation.
    wbuf: Vec<u8>,
    // Whether an exchange already completed on it (it came from the pool).
    reused: bool,
}

/// The parts of a response head the proxy needs.
#[derive(Debug)]
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// The headers, as sent.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another exchange after this body.
    pub keep_alive: bool,
    /// The head as the client will get it, when asked for and the response is
    /// plain (see [`raw`]); `headers` is then empty.
    pub raw: Option<RawHead>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// A pooled connection was closed by the upstream before any response
    /// byte arrived: it went idle-stale just as it was picked. Sending again
    /// on a new connection is safe for the idempotent requests sent here.
    #[error("the upstream closed a kept-alive connection: {0}")]
    Stale(io::Error),
    /// The socket failed.
    #[error("upstream connection failed: {0}")]
    Io(io::Error),
    /// The upstream's response is not valid HTTP/1.1.
    #[error("invalid response from the upstream: {0}")]
    Protocol(String),
}

/// Whether a request may take this path.
pub fn eligible(method: &Method, body_is_empty: bool) -> bool {
    body_is_empty
        && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE | Method::PUT)
}

impl Conn {
    /// Wraps a newly connected socket.
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(512),
            reused: false,
        }
    }

    /// Whether an idle connection is still usable: nothing (an EOF, a reset
    /// or stray bytes) arrived while it sat in the pool. Usually answered from
    /// the reactor's readiness without a system call.
    pub fn looks_alive(&mut self) -> bool {
        self.stream.looks_alive()
    }

    /// Sends the request head `encode` writes and reads the response head;
    /// `head_request`: the request is HEAD; `raw`: the head may be kept in the
    /// client's form (see [`raw`]).
    pub async fn exchange_with(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>),
        head_request: bool,
        max_head: usize,
        raw: bool,
    ) -> Result<Head, ExchangeError> {
        self.wbuf.clear();
        encode(&mut self.wbuf);
        self.send_head().await?;
        self.read_head(Want { head_request, upgrade: false, raw }, max_head).await
    }

    /// As [`Conn::exchange_with`] for a request that asks to switch protocols: a
    /// `101 Switching Protocols` is its final answer (with an empty body), after
    /// which the connection belongs to the new protocol ([`Conn::into_io`]).
    pub async fn exchange_upgrade(
        &mut self,
        req: &request::Parts,
        max_head: usize,
    ) -> Result<Head, ExchangeError> {
        self.wbuf.clear();
        encode_head(&mut self.wbuf, req);
        self.send_head().await?;
        self.read_head(Want { head_request: false, upgrade: true, raw: false }, max_head).await
    }

    /// The socket and whatever the upstream sent after the response head (the
    /// first bytes of the new protocol, after a 101).
    pub fn into_io(self) -> (Stream, BytesMut) {
        (self.stream, self.buf)
    }

    /// Sends the request head encoded in `wbuf`.
    async fn send_head(&mut self) -> Result<(), ExchangeError> {
        // The flush is free on plain TCP; under TLS it pushes out records
        // rustls may still hold when the socket was briefly full.
        let written = match self.stream.write_all(&self.wbuf).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => Ok(()),
            Err(e) if self.reused => Err(ExchangeError::Stale(e)),
            Err(e) => Err(ExchangeError::Io(e)),
        }
    }

    async fn read_head(&mut self, want: Want, max_head: usize) -> Result<Head, ExchangeError> {
        let mut received = !self.buf.is_empty();
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf, want)? {
                    Parsed::Partial => {}
                    // 100 Continue and other interim answers precede the real one.
                    Parsed::Interim(n) => {
                        self.buf.advance(n);
                        continue;
                    }
                    Parsed::Final(n, head) => {
                        self.buf.advance(n);
                        return Ok(head);
                    }
                }
            }
            if self.buf.len() >= max_head {
                return Err(ExchangeError::Protocol(format!("response head exceeds {max_head} bytes")));
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) if self.reused && !received => {
                    return Err(ExchangeError::Stale(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(0) => {
                    return Err(ExchangeError::Protocol(
                        "the connection closed before a complete response head".into(),
                    ));
                }
                Ok(_) => received = true,
                Err(e) if self.reused && !received => return Err(ExchangeError::Stale(e)),
                Err(e) => return Err(ExchangeError::Io(e)),
            }
        }
    }
}

/// `METHOD /path?query HTTP/1.1`, the headers, and the blank line.
pub fn encode_head(out: &mut Vec<u8>, req: &request::Parts) {
    let target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() { b"/" } else { target.as_bytes() });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &req.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What the request asks of the response head.
#[derive(Clone, Copy)]
struct Want {
    /// The request was HEAD: no body follows.
    head_request: bool,
    /// The request asked to switch protocols: a 101 may answer it.
    upgrade: bool,
    /// The head may be kept in the client's form.
    raw: bool,
}

enum Parsed {
    Partial,
    Interim(usize),
    Final(usize, Head),
}

/// Parses a response head.
fn parse_head(buf: &[u8], want: Want) -> Result<Parsed, ExchangeError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(ExchangeError::Protocol(format!("bad response head: {e}"))),
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| ExchangeError::Protocol(format!("status code {code} is out of range")))?;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && !want.upgrade {
        return Err(ExchangeError::Protocol("101 Switching Protocols to a request without Upgrade".into()));
    }
    if status.is_informational() && !switching {
        return Ok(Parsed::Interim(n));
    }
    let http11 = resp.version == Some(1);
    if want.raw
        && let Some((raw, seen)) = raw::head(status, buf, resp.headers, n)?
    {
        let (framing, keep_alive) = seen.outcome(status, want.head_request, http11, false);
        let head = Head { status, headers: HeaderMap::new(), framing, keep_alive, raw: Some(raw) };
        return Ok(Parsed::Final(n, head));
    }
    let (headers, seen) = header_map(resp.headers)?;
    let (framing, keep_alive) = seen.outcome(status, want.head_request, http11, switching);
    Ok(Parsed::Final(n, Head { status, headers, framing, keep_alive, raw: None }))
}

/// The headers worth keeping, in a map, and what they say.
fn header_map(parsed: &[httparse::Header<'_>]) -> Result<(HeaderMap, Framed), ExchangeError> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    let mut seen = Framed::default();
    for h in parsed {
        if !seen.note(h.name, h.value)? {
            continue;
        }
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| ExchangeError::Protocol(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| ExchangeError::Protocol(format!("invalid value for header {}", h.name)))?;
        headers.append(name, value);
    }
    if seen.chunked_last.is_some() {
        // RFC 9112 section 6.3: with Transfer-Encoding, Content-Length is
        // ignored and must not be forwarded (nor can a response carry both).
        headers.remove(http::header::CONTENT_LENGTH);
    }
    Ok((headers, seen))
}

/// What a response's headers say about its framing and its connection,
/// gathered in the one pass that copies them, instead of by lookups after.
#[derive(Default)]
pub(crate) struct Framed {
    /// Whether the last Transfer-Encoding coding is `chunked`, if there is one.
    chunked_last: Option<bool>,
    length: Option<u64>,
    close: bool,
}

impl Framed {
    /// Notes one header; false when it is only about this connection
    /// (`Keep-Alive`, or a `Connection` naming nothing but close/keep-alive)
    /// and need not be copied, since it is never forwarded.
    pub(crate) fn note(&mut self, name: &str, value: &[u8]) -> Result<bool, ExchangeError> {
        if name.eq_ignore_ascii_case("content-length") {
            self.content_length(value)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"").trim_ascii();
            self.chunked_last = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            // A Connection header that names other headers is kept, so the
            // hop-by-hop stripping downstream can remove those too.
            return Ok(self.connection(value));
        } else if name.eq_ignore_ascii_case("keep-alive") {
            return Ok(false);
        }
        Ok(true)
    }

    /// Notes a `Content-Length` value: every one the response sends must agree.
    pub(crate) fn content_length(&mut self, value: &[u8]) -> Result<(), ExchangeError> {
        for part in value.split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii())
                .ok_or_else(|| ExchangeError::Protocol("invalid Content-Length".into()))?;
            if self.length.is_some_and(|l| l != n) {
                return Err(ExchangeError::Protocol("conflicting Content-Length values".into()));
            }
            self.length = Some(n);
        }
        Ok(())
    }

    /// Notes a `Connection` value; whether it names anything but `close` and
    /// `keep-alive`.
    pub(crate) fn connection(&mut self, value: &[u8]) -> bool {
        let mut only_own = true;
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            self.close |= token.eq_ignore_ascii_case(b"close");
            only_own &= token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive");
        }
        !only_own
    }

    /// How the body is delimited and whether the connection may be reused
    /// after it; `http11`: the response was HTTP/1.1; `switching`: a 101.
    fn outcome(
        &self,
        status: StatusCode,
        head_request: bool,
        http11: bool,
        switching: bool,
    ) -> (Framing, bool) {
        // After a 101 the bytes are the new protocol's: no HTTP body, no reuse.
        let framing = if switching { Framing::Length(0) } else { self.framing(status, head_request) };
        // A body delimited by the connection's end leaves nothing to reuse; one
        // sent with both Transfer-Encoding and Content-Length is suspect (RFC 9112
        // section 6.3): it is read by the former and the connection closed after.
        let suspect = self.chunked_last.is_some() && self.length.is_some();
        let keep_alive =
            http11 && !self.close && !suspect && !switching && !matches!(framing, Framing::UntilClose);
        (framing, keep_alive)
    }

    /// RFC 9112 section 6.3, for a response.
    fn framing(&self, status: StatusCode, head_request: bool) -> Framing {
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Framing::Length(0);
        }
        match (self.chunked_last, self.length) {
            (Some(true), _) => Framing::Chunked(Chunked::default()),
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    }
}

/// A Content-Length value: ASCII digits only, no sign, no spaces, fits a u64.
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Want = Want { head_request: false, upgrade: false, raw: false };
    const UPGRADE: Want = Want { head_request: false, upgrade: true, raw: false };

    fn head(wire: &str, head_request: bool) -> Result<Head, ExchangeError> {
        match parse_head(wire.as_bytes(), Want { head_request, upgrade: false, raw: false })? {
            Parsed::Final(n, h) => {
                assert_eq!(n, wire.find("\r\n\r\n").unwrap() + 4);
                Ok(h)
            }
            Parsed::Interim(_) => panic!("interim"),
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true).unwrap();
        assert_eq!(h.framing, Framing::Length(0), "HEAD has no body");
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunked::Size));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunked::Size), "Transfer-Encoding wins");
        assert!(!h.keep_alive, "and the connection is not reused");
        let h = head("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(3));
    }

    #[test]
    fn bad_lengths_are_refused() {
        for cl in ["3, 4", "-1", "", "0x10", "99999999999999999999999"] {
            let wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            assert!(head(&wire, false).is_err(), "{cl:?}");
        }
    }

    #[test]
    fn connection_only_headers_are_not_copied() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.headers.len(), 1, "{:?}", h.headers);
        let h = head("HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\n", false).unwrap();
        assert!(h.headers.contains_key("connection"), "kept so that x-secret is stripped too");
    }

    #[test]
    fn content_length_beside_transfer_encoding_is_dropped() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false)
            .unwrap();
        assert!(!h.headers.contains_key("content-length"));
        assert!(h.headers.contains_key("transfer-encoding"));
    }

    #[test]
    fn connection_close_and_http_1_0_end_reuse() {
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false)
                .unwrap()
                .keep_alive
        );
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap().keep_alive);
    }

    #[test]
    fn interim_and_partial_heads() {
        assert!(matches!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", PLAIN), Ok(Parsed::Interim(25))));
        assert!(matches!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", PLAIN), Ok(Parsed::Partial)));
        assert!(parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", PLAIN).is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", PLAIN).is_err());
    }

    #[test]
    fn a_101_answers_only_an_upgrade() {
        let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
        let Ok(Parsed::Final(n, h)) = parse_head(wire, UPGRADE) else { panic!("not final") };
        assert_eq!(&wire[n..], b"\x81\x02hi", "the new protocol's bytes are left for the tunnel");
        assert_eq!(h.status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(h.framing, Framing::Length(0));
        assert!(!h.keep_alive);
        assert_eq!(h.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(parse_head(wire, PLAIN).is_err());
        // An upgrade may still be answered with 100 Continue first, or refused normally.
        assert!(matches!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", UPGRADE), Ok(Parsed::Interim(25))));
        let Ok(Parsed::Final(_, h)) =
            parse_head(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n", UPGRADE)
        else {
            panic!("not final")
        };
        assert_eq!(h.status.as_u16(), 426);
    }

    #[test]
    fn request_head_is_origin_form_with_every_header() {
        let req = http::Request::get("/a/b?c=1")
            .header("host", "up:80")
            .header("x-many", "1")
            .header("x-many", "2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let mut out = Vec::new();
        encode_head(&mut out, &parts);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a/b?c=1 HTTP/1.1\r\nhost: up:80\r\nx-many: 1\r\nx-many: 2\r\n\r\n"
        );
    }

    #[test]
    fn only_bodyless_idempotent_requests_are_eligible() {
        assert!(eligible(&Method::GET, true));
        assert!(eligible(&Method::DELETE, true));
        assert!(!eligible(&Method::GET, false));
        assert!(!eligible(&Method::POST, true));
        assert!(!eligible(&Method::PATCH, true));
    }
}
