//! An upstream response head written out for a fast-path client as it is
//! read, instead of parsed into a header map and encoded again.
//!
//! Only the plain case is taken: a final status that carries a body, a
//! `Content-Length` above zero, no `Transfer-Encoding`, and none of the
//! headers the proxy must rewrite (hop-by-hop ones other than the
//! connection's own `Connection`/`Keep-Alive`, or an `x-canary-version` of
//! the upstream's). For those the client gets the upstream's header lines as
//! they came (names in the upstream's case, as nginx passes them), copied in
//! runs between the lines left out, less the connection's own. Anything else
//! takes the header map, as before.

use super::{ExchangeError, Framed};
use http::StatusCode;

/// A response head ready for the client but for the lines the proxy adds.
#[derive(Debug)]
pub struct RawHead {
    /// The status line and the upstream's forwarded header lines, each
    /// ending in CRLF; the blank line is not there yet.
    pub out: Vec<u8>,
    /// Whether the upstream sent a `Date`.
    pub date: bool,
    /// The body's length, above zero.
    pub length: u64,
}

impl RawHead {
    /// Adds a header line.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        line(&mut self.out, name, value);
    }
}

/// What one response header is to the raw path.
enum Kind {
    /// Copied as it is.
    Copy,
    /// `Date`: copied, and none is added.
    Date,
    /// `Content-Length`: noted for the framing, and copied.
    Length,
    /// `Connection`: about the upstream connection, unless it names other
    /// headers.
    Connection,
    /// `Keep-Alive`: about the upstream connection only.
    KeepAlive,
    /// A header the proxy must rewrite: the head takes the header map.
    Refuse,
}

fn kind(name: &str) -> Kind {
    let is = |other: &str| name.eq_ignore_ascii_case(other);
    // The length first: most names are none of these.
    match name.len() {
        4 if is("date") => Kind::Date,
        14 if is("content-length") => Kind::Length,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::KeepAlive,
        2 if is("te") => Kind::Refuse,
        7 if is("trailer") || is("upgrade") => Kind::Refuse,
        16 if is("proxy-connection") || is("x-canary-version") => Kind::Refuse,
        17 if is("transfer-encoding") => Kind::Refuse,
        18 if is("proxy-authenticate") => Kind::Refuse,
        19 if is("proxy-authorization") => Kind::Refuse,
        _ => Kind::Copy,
    }
}

/// The head of a plain response, with what its headers say of framing and
/// the connection; `None` when it is not plain (see the module's doc).
/// `buf`: the response, its head `head_len` bytes long, which `headers`
/// point into.
pub(super) fn head(
    status: StatusCode,
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    head_len: usize,
) -> Result<Option<(RawHead, Framed)>, ExchangeError> {
    if status.is_informational() || matches!(status.as_u16(), 204 | 304) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(head_len + 96);
    status_line(&mut out, status);
    let (mut seen, mut date) = (Framed::default(), false);
    // The run of lines to copy, as offsets into `buf`: from `run` to the
    // start of the line at hand.
    let mut run: Option<usize> = None;
    for (i, h) in headers.iter().enumerate() {
        let copy = match kind(h.name) {
            Kind::Refuse => return Ok(None),
            // The Connection header names other headers too: the header map
            // strips them.
            Kind::Connection if seen.connection(h.value) => return Ok(None),
            Kind::Connection | Kind::KeepAlive => false,
            Kind::Length => {
                seen.content_length(h.value)?;
                true
            }
            Kind::Date => {
                date = true;
                true
            }
            Kind::Copy => true,
        };
        let start = offset(buf, h.name.as_bytes());
        let end = headers.get(i + 1).map_or(head_len - 2, |next| offset(buf, next.name.as_bytes()));
        // A line ended by a bare LF is written anew, in CRLF.
        let crlf = buf.get(end.saturating_sub(2)..end) == Some(b"\r\n");
        if copy && crlf {
            run.get_or_insert(start);
            continue;
        }
        if let Some(from) = run.take() {
            out.extend_from_slice(&buf[from..start]);
        }
        if copy {
            line(&mut out, h.name.as_bytes(), h.value);
        }
    }
    if let Some(from) = run {
        out.extend_from_slice(&buf[from..head_len - 2]);
    }
    match seen.length {
        Some(length) if length > 0 => Ok(Some((RawHead { out, date, length }, seen))),
        // An empty body gets a `Content-Length: 0` of the proxy's own.
        _ => Ok(None),
    }
}

/// `HTTP/1.1 <code> <reason>`, as hyper's server writes it.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Where `part`, a slice of `buf`, starts in it.
fn offset(buf: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize)
}

/// One header line.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    fn run(wire: &str) -> Option<RawHead> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 16];
        let mut resp = httparse::Response::new(&mut []);
        let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            wire.as_bytes(),
            &mut slots,
        ) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{other:?}"),
        };
        let status = StatusCode::from_u16(resp.code.unwrap()).unwrap();
        head(status, wire.as_bytes(), resp.headers, n).unwrap().map(|(raw, _)| raw)
    }

    #[test]
    fn a_plain_head_is_copied_as_sent_less_the_connections_own_lines() {
        let raw = run("HTTP/1.1 200 OK\r\nServer: x\r\nDate: d\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A:1 \r\n\r\n").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&raw.out),
            "HTTP/1.1 200 OK\r\nServer: x\r\nDate: d\r\nContent-Length: 2\r\nX-A:1 \r\n"
        );
        assert!(raw.date);
        assert_eq!(raw.length, 2);
        let raw = run("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!(String::from_utf8_lossy(&raw.out), "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n");
    }

    #[test]
    fn lines_ended_by_a_bare_lf_are_written_in_crlf() {
        let raw = run("HTTP/1.1 200 OK\nA: 1\nContent-Length: 2\r\nB: 2\n\n").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&raw.out),
            "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 2\r\nB: 2\r\n"
        );
        let raw = run("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nB: 2\r\n\n").unwrap();
        assert_eq!(String::from_utf8_lossy(&raw.out), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nB: 2\r\n");
    }

    #[test]
    fn unusual_heads_take_the_header_map() {
        for wire in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-secret\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Canary-Version: stable\r\n\r\n",
        ] {
            assert!(run(wire).is_none(), "{wire:?}");
        }
    }
}
