//! A client's HTTP/1.1 request head, parsed with httparse, and the decision
//! whether the lean path may serve it.
//!
//! The lean path takes only the plain case: HTTP/1.1, a target in origin
//! form, no body (no `Transfer-Encoding`, no `Content-Length` but `0`), no
//! `Upgrade`, no `Expect`, at most [`MAX_HEADERS`] well-formed headers.
//! Everything else, malformed or merely unusual, goes to the general path
//! (hyper's server), which then owns the connection and answers exactly as it
//! always did: the hostile-input rules (smuggling, obs-fold, oversized heads)
//! stay in one place.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, request};
use std::mem::MaybeUninit;

/// The most headers a request may have, as hyper's server.
pub const MAX_HEADERS: usize = 100;

/// Headers the proxy adds to a request on its way up (`x-forwarded-for`,
/// `-proto`, `-host`).
const ADDED: usize = 3;

/// What the bytes received so far hold.
// Returned once per request and moved straight into the request's own
// allocation: boxing the common variant would only add another.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// Not yet a complete head.
    Partial,
    /// A complete head the lean path serves; its bytes were taken off the buffer.
    Lean(Lean),
    /// A head for the general path (the buffer is left as it was).
    General(Why),
}

/// A request the lean path serves.
#[derive(Debug)]
pub struct Lean {
    /// Method, target, version (always HTTP/1.1) and headers.
    pub parts: request::Parts,
    /// Whether the client asked to close the connection after the response.
    pub close: bool,
}

/// Why a request goes to the general path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Not valid HTTP/1.x (HTTP/2.s preface included), or more headers than allowed.
    Malformed,
    /// Longer than the configured limit.
    TooLarge,
    /// HTTP/1.0, with its own keep-alive rules.
    Version,
    /// A target not in origin form (`CONNECT`, `OPTIONS *`, absolute form).
    Target,
    /// The request may have a body.
    Body,
    /// The request asks to switch protocols.
    Upgrade,
    /// The request sends `Expect` (`100-continue`).
    Expect,
}

/// Parses the head at the start of `buf`, at most `max_len` bytes long.
pub fn parse(buf: &mut BytesMut, max_len: usize) -> Parsed {
    // Filled in place: the spans are over a kilobyte, and moving them out of
    // `scan` and on cost more than the rest of the parse.
    let mut spans = Spans {
        method: Span::default(),
        path: Span::default(),
        headers: [(Span::default(), Span::default()); MAX_HEADERS],
        count: 0,
        close: false,
    };
    let len = match scan(buf, &mut spans) {
        Scan::Partial if buf.len() > max_len => return Parsed::General(Why::TooLarge),
        Scan::Partial => return Parsed::Partial,
        Scan::General(why) => return Parsed::General(why),
        Scan::Complete(len) if len > max_len => return Parsed::General(Why::TooLarge),
        Scan::Complete(len) => len,
    };
    // The head's bytes are shared by the header values that point into them.
    let head = buf.split_to(len).freeze();
    match build(&head, &spans) {
        Ok(req) => Parsed::Lean(req),
        Err(why) => {
            // Hand the head back untouched, for the general path to read.
            let rest = buf.split();
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&rest);
            Parsed::General(why)
        }
    }
}

/// What a first pass over the head found.
enum Scan {
    Partial,
    General(Why),
    /// A head of this many bytes, its parts noted in the spans.
    Complete(usize),
}

/// Where a head's parts lie in its bytes: the small fixed structure one
/// pass of httparse leaves, from which the request is built without parsing
/// again once the head is split off the buffer.
struct Spans {
    method: Span,
    path: Span,
    headers: [(Span, Span); MAX_HEADERS],
    count: usize,
    close: bool,
}

/// A range of a head's bytes.
#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Where `part`, a slice of `whole`, lies in it.
    fn of(whole: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
        Span { start: start as u32, len: part.len() as u32 }
    }

    fn slice(self, head: &Bytes) -> Bytes {
        let start = self.start as usize;
        head.slice(start..start + self.len as usize)
    }
}

/// Checks the head and notes in `spans` where its parts are, copying nothing.
fn scan(buf: &[u8], spans: &mut Spans) -> Scan {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Scan::Partial,
        Err(_) => return Scan::General(Why::Malformed),
    };
    if req.version != Some(1) {
        return Scan::General(Why::Version);
    }
    let (Some(method), Some(path)) = (req.method, req.path) else { return Scan::General(Why::Malformed) };
    if !path.starts_with('/') || method == "CONNECT" {
        return Scan::General(Why::Target);
    }
    spans.method = Span::of(buf, method.as_bytes());
    spans.path = Span::of(buf, path.as_bytes());
    spans.count = req.headers.len();
    let mut lengths = 0;
    for (slot, h) in spans.headers.iter_mut().zip(req.headers.iter()) {
        match note(h.name, h.value) {
            Ok(Note::Close) => spans.close = true,
            Ok(Note::Length) => lengths += 1,
            Ok(Note::Other) => {}
            Err(why) => return Scan::General(why),
        }
        *slot = (Span::of(buf, h.name.as_bytes()), Span::of(buf, h.value));
    }
    // Two Content-Length headers, even equal ones, are for the general path
    // to judge.
    if lengths > 1 {
        return Scan::General(Why::Body);
    }
    Scan::Complete(len)
}

/// What one header says about the request.
enum Note {
    /// `Connection: close`.
    Close,
    /// `Content-Length: 0`.
    Length,
    /// Nothing the lean path cares about.
    Other,
}

/// Notes one header: those that make a request unusual send it away.
fn note(name: &str, value: &[u8]) -> Result<Note, Why> {
    // A length check first: most names are none of these.
    match name.len() {
        10 if name.eq_ignore_ascii_case("connection") => {
            let mut close = false;
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"upgrade") {
                    return Err(Why::Upgrade);
                }
                close |= token.eq_ignore_ascii_case(b"close");
            }
            if close {
                return Ok(Note::Close);
            }
        }
        14 if name.eq_ignore_ascii_case("content-length") => {
            if value != b"0" {
                return Err(Why::Body);
            }
            return Ok(Note::Length);
        }
        17 if name.eq_ignore_ascii_case("transfer-encoding") => return Err(Why::Body),
        7 if name.eq_ignore_ascii_case("upgrade") => return Err(Why::Upgrade),
        6 if name.eq_ignore_ascii_case("expect") => return Err(Why::Expect),
        _ => {}
    }
    Ok(Note::Other)
}

/// The request's parts from a head checked by [`scan`], its values sharing
/// the head's bytes.
fn build(head: &Bytes, spans: &Spans) -> Result<Lean, Why> {
    let method = Method::from_bytes(&spans.method.slice(head)).map_err(|_| Why::Malformed)?;
    let uri = Uri::from_maybe_shared(spans.path.slice(head)).map_err(|_| Why::Target)?;
    // Room for what the proxy adds (`x-forwarded-*`), so adding them does
    // not grow and rehash the map.
    let mut headers = HeaderMap::with_capacity(spans.count + ADDED);
    for (name, value) in &spans.headers[..spans.count] {
        let name = HeaderName::from_bytes(&name.slice(head)).map_err(|_| Why::Malformed)?;
        let value = HeaderValue::from_maybe_shared(value.slice(head)).map_err(|_| Why::Malformed)?;
        headers.append(name, value);
    }
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    parts.headers = headers;
    Ok(Lean { parts, close: spans.close })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wire: &[u8]) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(wire);
        let p = parse(&mut buf, 64 * 1024);
        (p, buf)
    }

    #[test]
    fn a_plain_get_is_lean_and_leaves_the_next_request() {
        let (p, rest) = run(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET /next");
        let Parsed::Lean(l) = p else { panic!("{p:?}") };
        assert_eq!((l.parts.method, l.parts.uri.to_string()), (Method::GET, "/a?b=1".into()));
        assert_eq!(l.parts.headers["host"], "x");
        assert_eq!(l.parts.headers.get_all("x-two").iter().count(), 2);
        assert!(!l.close);
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn partial_heads_wait_in_any_split() {
        let wire = b"DELETE /x HTTP/1.1\r\nconnection: keep-alive, close\r\n\r\n";
        for cut in 0..wire.len() {
            assert!(matches!(run(&wire[..cut]).0, Parsed::Partial), "cut at {cut}");
        }
        let Parsed::Lean(l) = run(wire).0 else { panic!() };
        assert!(l.close);
    }

    #[test]
    fn unusual_requests_go_to_the_general_path_untouched() {
        let cases: [(&[u8], Why); 11] = [
            (b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello", Why::Body),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", Why::Body),
            (b"GET / HTTP/1.1\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n", Why::Body),
            (b"GET / HTTP/1.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n", Why::Upgrade),
            (b"GET / HTTP/1.1\r\nconnection: upgrade\r\n\r\n", Why::Upgrade),
            (b"PUT / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n", Why::Expect),
            (b"GET / HTTP/1.0\r\n\r\n", Why::Version),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Why::Malformed),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", Why::Target),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", Why::Target),
            (b"CONNECT /x HTTP/1.1\r\n\r\n", Why::Target),
        ];
        for (wire, want) in cases {
            let (p, rest) = run(wire);
            assert!(
                matches!(p, Parsed::General(w) if w == want),
                "{:?}: {p:?}",
                String::from_utf8_lossy(wire)
            );
            assert_eq!(&rest[..], wire, "the bytes are left for the general path");
        }
    }

    #[test]
    fn malformed_heads_go_to_the_general_path() {
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let cases: [&[u8]; 6] = [
            b"GET / HTTP/1.1\r\nx-folded: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad name: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nx: a\x00b\r\n\r\n",
            b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
            many.as_bytes(),
        ];
        for wire in cases {
            let (p, rest) = run(wire);
            assert!(matches!(p, Parsed::General(_)), "{:?}: {p:?}", String::from_utf8_lossy(wire));
            assert_eq!(&rest[..], wire);
        }
    }

    #[test]
    fn heads_over_the_limit_go_to_the_general_path() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nx: 0123456789\r\n\r\n"[..]);
        assert!(matches!(parse(&mut buf, 20), Parsed::General(Why::TooLarge)));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nx: 0123456789"[..]);
        assert!(matches!(parse(&mut buf, 20), Parsed::General(Why::TooLarge)), "even unfinished");
    }

    #[test]
    fn opaque_header_bytes_and_an_empty_length_body_are_lean() {
        let (p, _) = run(b"GET /%ff HTTP/1.1\r\nx-user-id: \xff\xfe\r\ncontent-length: 0\r\n\r\n");
        let Parsed::Lean(l) = p else { panic!("{p:?}") };
        assert_eq!(l.parts.headers["x-user-id"].as_bytes(), b"\xff\xfe");
        assert_eq!(l.parts.uri.path(), "/%ff");
    }
}
