//! A response written to a fast-path client: the head in HTTP/1.1's form,
//! then the body, framed by its length or in chunks by the rules hyper's
//! server follows (so a client sees the same bytes on either path), with the
//! head and a body that is ready at once sent in one system call.

use super::date;
use crate::body::ProxyBody;
use crate::upstream::h1::raw::{self, RawHead};
use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::body::{Body, Frame};
use std::future::poll_fn;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Body bytes gathered with the head (or a chunk header) into one write;
/// larger pieces are written on their own rather than copied.
const COALESCE: usize = 16 * 1024;

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304, or an empty one).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Writes `resp` to `io`; `head_request`: the request was HEAD; `close`: the
/// connection closes after it. Returns whether the connection may carry
/// another request (the body was written whole and as framed). The body is
/// done with (recorded, see `ProxyBody`'s drop) by the time this returns.
// The response is borrowed, not moved: moved, its few hundred bytes would be
// copied into this future and on into the body's.
pub async fn response<W: AsyncWrite + Unpin>(
    io: &mut W,
    resp: &mut Response<ProxyBody>,
    head_request: bool,
    close: bool,
) -> io::Result<bool> {
    let (framing, out) = match resp.body_mut().take_raw_head() {
        Some(raw) => finish_raw(raw, resp.headers(), head_request, close),
        None => {
            let (status, hint) = (resp.status(), length_hint(resp.body()));
            let framing = plan(status, head_request, resp.headers_mut(), hint);
            let mut out = Vec::with_capacity(256 + 64 * resp.headers().len());
            encode_head(&mut out, status, resp.headers(), close);
            (framing, out)
        }
    };
    let body = resp.body_mut();
    match framing {
        Framing::None | Framing::Length(0) => {
            body.finish();
            io.write_all(&out).await?;
            Ok(true)
        }
        Framing::Length(n) => body_with_length(io, out, body, n).await,
        Framing::Chunked => body_chunked(io, out, body).await,
    }
}

/// What the body knows of its length: `Some(0)` when it has ended.
pub fn length_hint(body: &ProxyBody) -> Option<u64> {
    if body.is_end_stream() { Some(0) } else { body.size_hint().exact() }
}

/// Decides the framing and sets the headers that say it, as hyper's server
/// does: `Transfer-Encoding` wins (ending in `chunked`), then a
/// `Content-Length` sent along, then what the body knows of its length.
/// `hint`: what the body knows of its length ([`length_hint`]).
pub fn plan(status: StatusCode, head_request: bool, h: &mut HeaderMap, hint: Option<u64>) -> Framing {
    let bodiless_status = status.is_informational() || matches!(status.as_u16(), 204 | 304);
    let can_body = !head_request && !bodiless_status;
    if let Some(te) = h.get(TRANSFER_ENCODING) {
        if can_body {
            if !ends_chunked(te.as_bytes()) {
                let mut v = te.as_bytes().to_vec();
                v.extend_from_slice(b", chunked");
                if let Ok(v) = HeaderValue::from_bytes(&v) {
                    h.insert(TRANSFER_ENCODING, v);
                }
            }
            h.remove(CONTENT_LENGTH);
            return Framing::Chunked;
        }
        h.remove(TRANSFER_ENCODING);
    }
    if h.contains_key(CONTENT_LENGTH) {
        if head_request {
            return Framing::None;
        }
        match (hint, parse_length(h)) {
            (Some(0), _) => {}
            (Some(n), _) | (None, Some(n)) => {
                return if can_body { Framing::Length(n) } else { Framing::None };
            }
            (None, None) => {}
        }
        h.remove(CONTENT_LENGTH);
    }
    match hint {
        None if can_body => {
            h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            Framing::Chunked
        }
        None => Framing::None,
        Some(n) => {
            if !(bodiless_status || head_request && n == 0) {
                h.insert(CONTENT_LENGTH, HeaderValue::from(n));
            }
            if can_body { Framing::Length(n) } else { Framing::None }
        }
    }
}

fn ends_chunked(te: &[u8]) -> bool {
    te.rsplit(|&b| b == b',').next().is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn parse_length(h: &HeaderMap) -> Option<u64> {
    let v = h.get(CONTENT_LENGTH)?.as_bytes();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The status line, the headers, `Date` if the upstream sent none, and
/// `Connection: close` when the connection ends after this response.
pub fn encode_head(out: &mut Vec<u8>, status: StatusCode, h: &HeaderMap, close: bool) {
    raw::status_line(out, status);
    extend_headers(out, h);
    end_head(out, h.contains_key(DATE), close && !h.contains_key(CONNECTION));
}

/// A head the upstream's bytes gave (see `h1::raw`), with any header of the
/// proxy's own from `h`, and the same additions as [`encode_head`]. Its
/// framing is its length (the raw form is only taken for a plain body of a
/// known, non-zero length), or none for HEAD, whose length stays as sent.
fn finish_raw(raw: RawHead, h: &HeaderMap, head_request: bool, close: bool) -> (Framing, Vec<u8>) {
    let mut out = raw.out;
    extend_headers(&mut out, h);
    // The upstream's Connection never reaches here (see `h1::raw`).
    end_head(&mut out, raw.date || h.contains_key(DATE), close && !h.contains_key(CONNECTION));
    let framing = if head_request { Framing::None } else { Framing::Length(raw.length) };
    (framing, out)
}

fn extend_headers(out: &mut Vec<u8>, h: &HeaderMap) {
    for (name, value) in h {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `Date` unless the head has one, `Connection: close` if asked, and the
/// blank line.
fn end_head(out: &mut Vec<u8>, has_date: bool, add_close: bool) {
    if !has_date {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    if add_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The next frame; when none is ready yet, what is gathered in `out` is
/// written first, so the client is not kept waiting for it.
async fn next<W: AsyncWrite + Unpin>(
    io: &mut W,
    out: &mut Vec<u8>,
    body: &mut ProxyBody,
) -> io::Result<Option<Result<Frame<Bytes>, ()>>> {
    let ready = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
        Poll::Ready(f) => Poll::Ready(Some(f)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let frame = match ready {
        Some(f) => f,
        None => {
            flush(io, out).await?;
            poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        }
    };
    // The error itself was recorded by the body (see `ProxyBody`); the
    // connection is all that is left to deal with.
    Ok(frame.map(|f| f.map_err(|e| tracing::debug!(error = %e, "upstream body failed"))))
}

async fn flush<W: AsyncWrite + Unpin>(io: &mut W, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// Appends `data` to `out`, or writes both (in one vectored write when the
/// socket takes it) when `data` is large.
async fn put<W: AsyncWrite + Unpin>(io: &mut W, out: &mut Vec<u8>, mut data: Bytes) -> io::Result<()> {
    if out.len() + data.len() <= COALESCE {
        out.extend_from_slice(&data);
        return Ok(());
    }
    let mut first = io::Cursor::new(std::mem::take(out));
    io.write_all_buf(&mut Buf::chain(&mut first, &mut data)).await?;
    *out = first.into_inner();
    out.clear();
    Ok(())
}

async fn body_with_length<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut out: Vec<u8>,
    body: &mut ProxyBody,
    len: u64,
) -> io::Result<bool> {
    let mut left = len;
    loop {
        match next(io, &mut out, body).await? {
            Some(Ok(f)) => {
                let Ok(mut data) = f.into_data() else { continue };
                // More than announced would be read as the next response.
                let fits = data.len() as u64 <= left;
                data.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                left -= data.len() as u64;
                put(io, &mut out, data).await?;
                if !fits {
                    flush(io, &mut out).await?;
                    return Ok(false);
                }
            }
            Some(Err(())) => {
                flush(io, &mut out).await?;
                return Ok(false);
            }
            None => {
                // Recorded before the last bytes leave: a client that has
                // its answer finds it counted (see `ProxyBody`'s drop).
                body.finish();
                flush(io, &mut out).await?;
                return Ok(left == 0);
            }
        }
    }
}

async fn body_chunked<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut out: Vec<u8>,
    body: &mut ProxyBody,
) -> io::Result<bool> {
    loop {
        match next(io, &mut out, body).await? {
            Some(Ok(f)) => {
                // Trailers are dropped, as hyper's server drops them when the
                // response declares none (`Trailer` is hop-by-hop, so removed).
                let Ok(data) = f.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                let _ = write!(out, "{:x}\r\n", data.len());
                put(io, &mut out, data).await?;
                out.extend_from_slice(b"\r\n");
            }
            // No last chunk: the client sees the body cut short.
            Some(Err(())) => {
                flush(io, &mut out).await?;
                return Ok(false);
            }
            None => {
                body.finish();
                out.extend_from_slice(b"0\r\n\r\n");
                flush(io, &mut out).await?;
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(status: u16, head: bool, headers: &[(&str, &str)], body: ProxyBody) -> (Framing, HeaderMap) {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let f = plan(StatusCode::from_u16(status).unwrap(), head, &mut h, length_hint(&body));
        (f, h)
    }

    #[test]
    fn a_body_of_known_length_gets_its_content_length() {
        let (f, h) = framing(200, false, &[], ProxyBody::full("hello"));
        assert_eq!((f, h["content-length"].to_str().unwrap()), (Framing::Length(5), "5"));
        let (f, h) = framing(200, false, &[("content-length", "9")], ProxyBody::full(""));
        assert_eq!((f, h["content-length"].to_str().unwrap()), (Framing::Length(0), "0"));
    }

    #[test]
    fn head_and_bodiless_statuses_keep_the_headers_but_send_nothing() {
        let (f, h) = framing(200, true, &[("content-length", "1000")], ProxyBody::Full(None));
        assert_eq!((f, h["content-length"].to_str().unwrap()), (Framing::None, "1000"));
        let (f, h) = framing(204, false, &[], ProxyBody::Full(None));
        assert_eq!(f, Framing::None);
        assert!(!h.contains_key("content-length"));
        let (f, h) = framing(304, false, &[("transfer-encoding", "chunked")], ProxyBody::Full(None));
        assert_eq!(f, Framing::None);
        assert!(!h.contains_key("transfer-encoding"));
    }

    #[test]
    fn transfer_encoding_wins_and_ends_in_chunked() {
        let (f, h) = framing(
            200,
            false,
            &[("transfer-encoding", "gzip"), ("content-length", "3")],
            ProxyBody::full("x"),
        );
        assert_eq!((f, h["transfer-encoding"].to_str().unwrap()), (Framing::Chunked, "gzip, chunked"));
        assert!(!h.contains_key("content-length"));
    }

    #[tokio::test]
    async fn head_and_a_ready_body_go_in_one_write() {
        let mut wire = Vec::new();
        let mut resp = Response::new(ProxyBody::full("hello"));
        resp.headers_mut().insert(DATE, HeaderValue::from_static("x"));
        assert!(response(&mut wire, &mut resp, false, false).await.unwrap());
        assert_eq!(wire, b"HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 5\r\n\r\nhello");
    }

    #[tokio::test]
    async fn closing_says_so() {
        let mut wire = Vec::new();
        let mut resp = Response::new(ProxyBody::Full(None));
        response(&mut wire, &mut resp, false, true).await.unwrap();
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n") && text.contains("\r\ndate: "), "{text}");
        assert!(text.contains("\r\ncontent-length: 0\r\n"), "{text}");
    }
}
