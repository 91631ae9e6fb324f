//! A client's HTTP/1.1 request head, parsed with httparse, and the decision
//! whether the fast path may serve it.
//!
//! The fast path takes only the plain case: HTTP/1.1, a target in origin
//! form, no body (no `Transfer-Encoding`, no `Content-Length` but `0`), no
//! `Upgrade`, no `Expect`, a `Host`, a `Connection` naming nothing but
//! `close` or `keep-alive`, at most [`MAX_HEADERS`] well-formed headers.
//! Everything else, malformed or merely unusual, goes to the general path
//! (hyper's server), which then owns the connection and answers exactly as it
//! always did: the hostile-input rules (smuggling, obs-fold, oversized heads)
//! stay in one place.
//!
//! The one pass over the head also sorts its headers: those passed on are
//! copied, in their wire form, into the block the upstream's request head is
//! written from; the few the proxy reads (`Host`, `x-canary`, `Cookie`, the
//! user key, `x-forwarded-for`) are noted where they lie. No header map is
//! built for a fast-path request.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, request};
use std::mem::MaybeUninit;

/// The most headers a request may have, as hyper's server.
pub const MAX_HEADERS: usize = 100;

/// The most `Cookie` headers the fast path notes; a request with more goes to
/// the general path (HTTP/1.1 clients send one, RFC 6265 section 5.4).
const MAX_COOKIES: usize = 2;

/// What the bytes received so far hold.
// Returned once per request and moved straight into the request's own
// allocation: boxing the common variant would only add another.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// Not yet a complete head.
    Partial,
    /// A complete head the fast path serves; its bytes were taken off the buffer.
    Plain(Plain),
    /// A head for the general path (the buffer is left as it was).
    General(Why),
}

/// A request the fast path serves, kept as the client sent it: the header
/// lines to pass on, already in their upstream form, and where the few
/// values the proxy reads lie in the head. No header map is built: the
/// upstream's request head is written from these bytes (see `forward::fast`).
#[derive(Debug)]
pub struct Plain {
    /// The method.
    pub method: Method,
    /// The target, in origin form.
    pub uri: Uri,
    /// The head's bytes, which the spans point into.
    pub head: Bytes,
    /// The header lines passed on upstream, each `name: value` and CRLF:
    /// every one but `Host`, the hop-by-hop ones and `x-forwarded-*`, which
    /// the proxy writes itself.
    pub lines: Vec<u8>,
    /// The values the proxy reads.
    pub seen: Seen,
    /// Whether the client asked to close the connection after the response.
    pub close: bool,
}

/// Where the values the proxy reads lie in a head (the first of each).
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    /// `Host`.
    pub host: Option<Span>,
    /// `x-forwarded-for`, which the proxy extends.
    pub forwarded_for: Option<Span>,
    /// `x-canary`, the routing override.
    pub canary: Option<Span>,
    /// The header that carries the user key, when the key is a header.
    pub user: Option<Span>,
    /// `x-request-id`, for the request's record.
    pub request_id: Option<Span>,
    /// `traceparent`, read while tracing is on (passed on unchanged).
    pub traceparent: Option<Span>,
    /// The `Cookie` headers.
    pub cookies: [Option<Span>; MAX_COOKIES],
}

impl Plain {
    /// A value noted in [`Seen`].
    pub fn value(&self, span: Option<Span>) -> Option<&[u8]> {
        span.map(|s| &self.head[s.range()])
    }

    /// The `Cookie` headers' values.
    pub fn cookies(&self) -> impl Iterator<Item = &[u8]> {
        self.seen.cookies.iter().map_while(|s| self.value(*s))
    }

    /// The request as `http`'s parts, for the paths that need them (an
    /// HTTP/2 upstream, a method hyper's client sends): every header the
    /// client sent but the hop-by-hop ones, `Host` and `x-forwarded-for`
    /// included, as the general path would have them.
    pub fn to_parts(&self) -> request::Parts {
        let mut headers = HeaderMap::with_capacity(8);
        let mut put = |name: &[u8], value: &[u8]| {
            // Both were checked by httparse, whose rules are `http`'s.
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(n, v);
            }
        };
        if let Some(host) = self.value(self.seen.host) {
            put(b"host", host);
        }
        for line in self.lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                put(&line[..colon], line[colon + 1..].trim_ascii());
            }
        }
        if let Some(xff) = self.value(self.seen.forwarded_for) {
            put(b"x-forwarded-for", xff);
        }
        let mut parts = http::Request::new(()).into_parts().0;
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = http::Version::HTTP_11;
        parts.headers = headers;
        parts
    }
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
    /// Unusual headers: no `Host`, a `Connection` naming other headers, or
    /// more `Cookie` headers than noted.
    Headers,
}

/// Parses the head at the start of `buf`, at most `max_len` bytes long;
/// `user_key`: the header that carries the user key, if one does.
pub fn parse(buf: &mut BytesMut, max_len: usize, user_key: Option<&HeaderName>) -> Parsed {
    let mut lines = Vec::new();
    let (len, scanned) = match scan(buf, user_key, &mut lines) {
        Scan::Partial if buf.len() > max_len => return Parsed::General(Why::TooLarge),
        Scan::Partial => return Parsed::Partial,
        Scan::General(why) => return Parsed::General(why),
        Scan::Complete(len, _) if len > max_len => return Parsed::General(Why::TooLarge),
        // A request without Host is for the general path to answer as it always has.
        Scan::Complete(_, scanned) if scanned.seen.host.is_none() => return Parsed::General(Why::Headers),
        Scan::Complete(len, scanned) => (len, scanned),
    };
    // The head's bytes are shared by the target that points into them.
    let head = buf.split_to(len).freeze();
    let method = Method::from_bytes(&head[scanned.method.range()]);
    match (method, Uri::from_maybe_shared(head.slice(scanned.path.range()))) {
        (Ok(method), Ok(uri)) => {
            Parsed::Plain(Plain { method, uri, head, lines, seen: scanned.seen, close: scanned.close })
        }
        (method, _) => {
            // Hand the head back untouched, for the general path to read.
            let rest = buf.split();
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&rest);
            Parsed::General(if method.is_err() { Why::Malformed } else { Why::Target })
        }
    }
}

/// What a first pass over the head found.
enum Scan {
    Partial,
    General(Why),
    /// A head of this many bytes.
    Complete(usize, Scanned),
}

/// The parts of a head noted by [`scan`].
struct Scanned {
    method: Span,
    path: Span,
    seen: Seen,
    close: bool,
}

/// A range of a head's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Where `part`, a slice of `whole`, lies in it.
    fn of(whole: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
        Span { start: start as u32, len: part.len() as u32 }
    }

    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// Checks the head, notes where the values the proxy reads are, and writes
/// the lines to pass on into `lines`.
fn scan(buf: &[u8], user_key: Option<&HeaderName>, lines: &mut Vec<u8>) -> Scan {
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
    let mut s = Scanned {
        method: Span::of(buf, method.as_bytes()),
        path: Span::of(buf, path.as_bytes()),
        seen: Seen::default(),
        close: false,
    };
    lines.reserve(len);
    let (mut lengths, mut cookies) = (0, 0);
    for h in req.headers.iter() {
        let span = Some(Span::of(buf, h.value));
        if user_key.is_some_and(|k| h.name.eq_ignore_ascii_case(k.as_str())) {
            s.seen.user = s.seen.user.or(span);
        }
        let pass = match role(h.name, h.value) {
            Ok(Role::Pass) => true,
            Ok(Role::Drop) => false,
            Ok(Role::Close) => {
                s.close = true;
                false
            }
            Ok(Role::Length) => {
                lengths += 1;
                true
            }
            Ok(Role::Host) => {
                s.seen.host = s.seen.host.or(span);
                false
            }
            Ok(Role::ForwardedFor) => {
                s.seen.forwarded_for = s.seen.forwarded_for.or(span);
                false
            }
            Ok(Role::Canary) => {
                s.seen.canary = s.seen.canary.or(span);
                true
            }
            Ok(Role::RequestId) => {
                s.seen.request_id = s.seen.request_id.or(span);
                true
            }
            Ok(Role::TraceParent) => {
                s.seen.traceparent = s.seen.traceparent.or(span);
                true
            }
            Ok(Role::Cookie) => {
                let Some(slot) = s.seen.cookies.get_mut(cookies) else { return Scan::General(Why::Headers) };
                *slot = span;
                cookies += 1;
                true
            }
            Err(why) => return Scan::General(why),
        };
        if pass {
            lines.extend_from_slice(h.name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(h.value);
            lines.extend_from_slice(b"\r\n");
        }
    }
    // Two Content-Length headers, even equal ones, are for the general path
    // to judge.
    if lengths > 1 {
        return Scan::General(Why::Body);
    }
    Scan::Complete(len, s)
}

/// What one header is to the fast path.
enum Role {
    /// Passed on as it is.
    Pass,
    /// About this hop only (or rewritten by the proxy): not passed on.
    Drop,
    /// `Connection: close`: noted, not passed on.
    Close,
    /// `Content-Length: 0`: counted, passed on.
    Length,
    /// `Host`: noted; the upstream's own is sent.
    Host,
    /// `x-forwarded-for`: noted, sent extended.
    ForwardedFor,
    /// `x-canary`: noted and passed on.
    Canary,
    /// `x-request-id`: noted and passed on.
    RequestId,
    /// `traceparent`: noted and passed on.
    TraceParent,
    /// `Cookie`: noted and passed on.
    Cookie,
}

/// What one header is; those that make a request unusual send it away.
fn role(name: &str, value: &[u8]) -> Result<Role, Why> {
    let is = |other: &str| name.eq_ignore_ascii_case(other);
    // The length first: most names are none of these.
    Ok(match name.len() {
        4 if is("host") => Role::Host,
        6 if is("cookie") => Role::Cookie,
        6 if is("expect") => return Err(Why::Expect),
        8 if is("x-canary") => Role::Canary,
        10 if is("connection") => connection(value)?,
        12 if is("x-request-id") => Role::RequestId,
        11 if is("traceparent") => Role::TraceParent,
        14 if is("content-length") => {
            if value != b"0" {
                return Err(Why::Body);
            }
            Role::Length
        }
        17 if is("transfer-encoding") => return Err(Why::Body),
        7 if is("upgrade") => return Err(Why::Upgrade),
        15 if is("x-forwarded-for") => Role::ForwardedFor,
        2 if is("te") => Role::Drop,
        7 if is("trailer") => Role::Drop,
        10 if is("keep-alive") => Role::Drop,
        16 if is("x-forwarded-host") || is("proxy-connection") => Role::Drop,
        17 if is("x-forwarded-proto") => Role::Drop,
        18 if is("proxy-authenticate") => Role::Drop,
        19 if is("proxy-authorization") => Role::Drop,
        _ => Role::Pass,
    })
}

/// A `Connection` header: `close` and `keep-alive` are all the fast path
/// takes; `upgrade`, or a header named to be stripped, sends the request to
/// the general path.
fn connection(value: &[u8]) -> Result<Role, Why> {
    let mut close = false;
    for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if token.eq_ignore_ascii_case(b"upgrade") {
            return Err(Why::Upgrade);
        }
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !(token.is_empty() || token.eq_ignore_ascii_case(b"keep-alive")) {
            return Err(Why::Headers);
        }
    }
    Ok(if close { Role::Close } else { Role::Drop })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wire: &[u8]) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(wire);
        let p = parse(&mut buf, 64 * 1024, Some(&HeaderName::from_static("x-user-id")));
        (p, buf)
    }

    #[test]
    fn a_plain_get_is_served_fast_and_leaves_the_next_request() {
        let (p, rest) = run(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET /next");
        let Parsed::Plain(l) = p else { panic!("{p:?}") };
        assert_eq!((&l.method, l.uri.to_string()), (&Method::GET, "/a?b=1".into()));
        assert_eq!(l.value(l.seen.host), Some(&b"x"[..]));
        assert_eq!(
            String::from_utf8_lossy(&l.lines),
            "X-Two: 1\r\nx-two: 2\r\n",
            "Host is the upstream's own"
        );
        assert!(!l.close);
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn partial_heads_wait_in_any_split() {
        let wire = b"DELETE /x HTTP/1.1\r\nhost: h\r\nconnection: keep-alive, close\r\n\r\n";
        for cut in 0..wire.len() {
            assert!(matches!(run(&wire[..cut]).0, Parsed::Partial), "cut at {cut}");
        }
        let Parsed::Plain(l) = run(wire).0 else { panic!() };
        assert!(l.close);
    }

    #[test]
    fn unusual_requests_go_to_the_general_path_untouched() {
        let cases: [(&[u8], Why); 15] = [
            (b"GET / HTTP/1.1\r\n\r\n", Why::Headers),
            (b"GET / HTTP/1.1\r\nhost: h\r\nconnection: x-secret\r\nx-secret: 1\r\n\r\n", Why::Headers),
            (b"GET / HTTP/1.1\r\nhost: h\r\ncookie: a=1\r\ncookie: b=2\r\ncookie: c=3\r\n\r\n", Why::Headers),
            (b"GET / HTTP/1.1\r\nhost: h\r\nTransfer-Encoding: chunked\r\n\r\n", Why::Body),
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
        assert!(matches!(parse(&mut buf, 20, None), Parsed::General(Why::TooLarge)));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nx: 0123456789"[..]);
        assert!(matches!(parse(&mut buf, 20, None), Parsed::General(Why::TooLarge)), "even unfinished");
    }

    #[test]
    fn opaque_header_bytes_and_an_empty_length_body_are_served_fast() {
        let (p, _) = run(b"GET /%ff HTTP/1.1\r\nhost: h\r\nx-user-id: \xff\xfe\r\ncontent-length: 0\r\n\r\n");
        let Parsed::Plain(l) = p else { panic!("{p:?}") };
        assert_eq!(l.value(l.seen.user), Some(&b"\xff\xfe"[..]));
        assert_eq!(l.uri.path(), "/%ff");
        let parts = l.to_parts();
        assert_eq!(parts.headers["x-user-id"].as_bytes(), b"\xff\xfe");
        assert_eq!(parts.headers["content-length"], "0");
    }

    #[test]
    fn hop_by_hop_host_and_forwarded_headers_are_noted_not_passed_on() {
        let wire = b"GET /p HTTP/1.1\r\nHost: api\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
            Proxy-Authorization: x\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\
            X-Forwarded-Host: evil\r\nX-Canary: always\r\nCookie: uid=7\r\nX-User-Id: u1\r\nX-Kept: 1\r\n\r\n";
        let Parsed::Plain(l) = run(wire).0 else { panic!() };
        assert_eq!(
            String::from_utf8_lossy(&l.lines),
            "X-Canary: always\r\nCookie: uid=7\r\nX-User-Id: u1\r\nX-Kept: 1\r\n"
        );
        assert_eq!(l.value(l.seen.forwarded_for), Some(&b"10.0.0.1"[..]));
        assert_eq!(l.value(l.seen.canary), Some(&b"always"[..]));
        assert_eq!(l.value(l.seen.user), Some(&b"u1"[..]));
        assert_eq!(l.cookies().collect::<Vec<_>>(), [&b"uid=7"[..]]);
        let parts = l.to_parts();
        assert_eq!(parts.headers["host"], "api");
        assert_eq!(parts.headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(parts.headers["x-kept"], "1");
        assert!(!parts.headers.contains_key("te") && !parts.headers.contains_key("x-forwarded-host"));
    }
}
