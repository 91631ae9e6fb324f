//! One access log line: a JSON object with the request log's fields and
//! what an access log adds (the upstream's status and time, bytes each
//! way), named as Envoy's JSON access logs and nginx's variables name them
//! where they have a name, so log pipelines read it without glue.
//! Durations are milliseconds, as Envoy writes them.
//!
//! Written straight into the writer's buffer, field by field: the line is
//! made for every request, so it is made without a serializer's generic
//! machinery, a heap string per field, or a calendar sum per line (the
//! time's text is reused within its second, see [`Clock`]).

use crate::requests::entry::{Entry, Protocol, RequestId};
use crate::requests::record::Reason;
use crate::requests::record::level;
use crate::requests::user::hex16;
use canary_core::Version;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;

/// The text of the current second, `2026-12-08T00:04:46.`, kept between
/// lines.
#[derive(Debug, Default)]
pub struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    fn write(&mut self, out: &mut Vec<u8>, ms: u64) {
        let second = ms / 1000;
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text.clear();
            if let Some(t) = canary_core::time::UnixMs::from_millis(second * 1000).to_timestamp() {
                let _ = write!(self.text, "{t:.0}");
                // `...:46Z` -> `...:46.`: the milliseconds go after.
                self.text.pop();
                self.text.push('.');
            }
        }
        out.extend_from_slice(self.text.as_bytes());
        let m = (ms % 1000) as u16;
        out.extend_from_slice(&[
            b'0' + (m / 100) as u8,
            b'0' + (m / 10 % 10) as u8,
            b'0' + (m % 10) as u8,
            b'Z',
        ]);
    }
}

/// Appends a literal: its length is known when compiled, so the copy is a
/// few moves rather than a call.
macro_rules! lit {
    ($out:expr, $s:literal) => {
        $out.extend_from_slice($s)
    };
}

/// Appends `e`'s line, newline included, to `out`.
pub fn write(out: &mut Vec<u8>, e: &Entry, clock: &mut Clock) {
    // A typical line's room, once; the pieces then rarely grow the buffer.
    out.reserve(512);
    lit!(out, b"{\"time\":\"");
    clock.write(out, e.time.as_millis());
    // Every word from a closed set is written as a literal: a copy of known
    // length is a few moves, where one of a length known only at run time
    // is a call.
    match level(e.status, e.cause) {
        "ERROR" => lit!(out, b"\",\"level\":\"ERROR"),
        "WARN" => lit!(out, b"\",\"level\":\"WARN"),
        _ => lit!(out, b"\",\"level\":\"INFO"),
    }
    match e.version {
        Version::Stable => lit!(out, b"\",\"version\":\"stable\",\"method\":\""),
        Version::Canary => lit!(out, b"\",\"version\":\"canary\",\"method\":\""),
    }
    escape(out, e.method.as_str().as_bytes());
    lit!(out, b"\",\"path\":\"");
    escape(out, e.path().as_bytes());
    lit!(out, b"\",\"route\":\"");
    escape(out, e.route.as_bytes());
    lit!(out, b"\",\"status\":");
    status(out, e.status);
    lit!(out, b",\"upstream_status\":");
    status(out, e.upstream_status);
    lit!(out, b",\"duration_ms\":");
    millis(out, Some(e.duration_us));
    lit!(out, b",\"upstream_ms\":");
    millis(out, e.upstream_us);
    lit!(out, b",\"user\":\"");
    match &e.user_key {
        Some(k) => escape(out, k.as_bytes()),
        None => out.extend_from_slice(&hex16(e.user)),
    }
    match &e.request_id {
        Some(RequestId::Made(id)) => {
            // Hex digits: nothing to escape.
            lit!(out, b"\",\"request_id\":\"");
            out.extend_from_slice(id);
            lit!(out, b"\",\"reason\":\"");
        }
        Some(RequestId::Sent(id)) => {
            lit!(out, b"\",\"request_id\":\"");
            escape(out, id.as_bytes());
            lit!(out, b"\",\"reason\":\"");
        }
        None => lit!(out, b"\",\"request_id\":null,\"reason\":\""),
    }
    match e.reason {
        Reason::Bucket => lit!(out, b"bucket\""),
        Reason::Forced => lit!(out, b"forced\""),
        Reason::Fallback => lit!(out, b"fallback\""),
        Reason::Excluded => lit!(out, b"excluded\""),
        Reason::Blocked => lit!(out, b"blocked\""),
        Reason::NoCanary => lit!(out, b"no_canary\""),
        Reason::Other => lit!(out, b"other\""),
    }
    if let Some(b) = e.bucket {
        lit!(out, b",\"bucket\":");
        number(out, Some(u64::from(b)));
    }
    if e.fallback {
        lit!(out, b",\"fallback\":true");
    } else {
        lit!(out, b",\"fallback\":false");
    }
    match e.cause {
        None => lit!(out, b",\"flags\":\"-"),
        Some(c) => {
            lit!(out, b",\"cause\":\"");
            out.extend_from_slice(c.as_str().as_bytes());
            lit!(out, b"\",\"flags\":\"");
            out.extend_from_slice(c.flag().as_bytes());
        }
    }
    if let Some(d) = &e.detail {
        lit!(out, b"\",\"detail\":\"");
        escape(out, d.as_bytes());
    }
    match e.protocol {
        Protocol::Http11 => lit!(out, b"\",\"protocol\":\"HTTP/1.1\",\"client\":\""),
        Protocol::Http2 => lit!(out, b"\",\"protocol\":\"HTTP/2\",\"client\":\""),
        Protocol::Grpc => lit!(out, b"\",\"protocol\":\"gRPC\",\"client\":\""),
        Protocol::Http10 => lit!(out, b"\",\"protocol\":\"HTTP/1.0\",\"client\":\""),
        Protocol::WebSocket => lit!(out, b"\",\"protocol\":\"WebSocket\",\"client\":\""),
        Protocol::Upgrade => lit!(out, b"\",\"protocol\":\"HTTP/1.1 upgrade\",\"client\":\""),
    }
    address(out, e.client);
    lit!(out, b"\",\"bytes_in\":");
    number(out, Some(e.bytes_in));
    lit!(out, b",\"bytes_out\":");
    number(out, Some(e.bytes_out));
    lit!(out, b"}\n");
}

/// A status: three digits (a fixed-length copy), or `null`.
fn status(out: &mut Vec<u8>, s: Option<u16>) {
    match s {
        Some(s @ 100..=999) => out.extend_from_slice(&[
            b'0' + (s / 100) as u8,
            b'0' + (s / 10 % 10) as u8,
            b'0' + (s % 10) as u8,
        ]),
        other => number(out, other.map(u64::from)),
    }
}

fn number(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => lit!(out, b"null"),
    }
}

/// Microseconds as milliseconds with three decimals, exactly: the digits
/// of the microseconds with a point put before the last three.
fn millis(out: &mut Vec<u8>, us: Option<u64>) {
    let Some(us) = us else { return lit!(out, b"null") };
    let mut b = itoa::Buffer::new();
    let d = b.format(us).as_bytes();
    match d.len() {
        1 => out.extend_from_slice(&[b'0', b'.', b'0', b'0', d[0]]),
        2 => out.extend_from_slice(&[b'0', b'.', b'0', d[0], d[1]]),
        3 => out.extend_from_slice(&[b'0', b'.', d[0], d[1], d[2]]),
        n => {
            out.extend_from_slice(&d[..n - 3]);
            out.extend_from_slice(&[b'.', d[n - 3], d[n - 2], d[n - 1]]);
        }
    }
}

/// An IPv4 address by hand (the common case, made for every line); IPv6
/// by its `Display`.
fn address(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Made whole, then copied once.
            let (mut text, mut n) = ([0u8; 15], 0);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                for d in [octet / 100, octet / 10 % 10, octet % 10].into_iter().skip(3 - digits(octet)) {
                    text[n] = b'0' + d;
                    n += 1;
                }
            }
            out.extend_from_slice(&text[..n]);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The bytes a JSON string holds as they are: printable ASCII but `"` and `\`.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x80 {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// How many digits an octet has.
fn digits(o: u8) -> usize {
    match o {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    }
}

/// `s` as JSON string content: quotes, backslashes and control bytes
/// escaped, bytes that are not UTF-8 replaced (header values may hold any).
fn escape(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().all(|&b| PLAIN[usize::from(b)]) {
        out.extend_from_slice(s);
        return;
    }
    for ch in String::from_utf8_lossy(s).chars() {
        match ch {
            '"' => lit!(out, b"\\\""),
            '\\' => lit!(out, b"\\\\"),
            '\n' => lit!(out, b"\\n"),
            '\r' => lit!(out, b"\\r"),
            '\t' => lit!(out, b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::entry::Protocol;
    use crate::requests::record::{Cause, Reason};
    use canary_core::Version;
    use canary_core::time::UnixMs;

    fn entry() -> Entry {
        Entry {
            time: UnixMs::from_millis(1_796_687_686_410),
            version: Version::Canary,
            method: http::Method::GET,
            path: "/api/v2/rooms".into(),
            route: "/api/v2/rooms".into(),
            status: Some(500),
            upstream_status: Some(500),
            duration_us: 1_532,
            upstream_us: Some(1_477),
            user: 0xda5a_bfb3_2329_720c,
            user_key: None,
            request_id: Some(RequestId::Sent(http::HeaderValue::from_static("req-1"))),
            reason: Reason::Bucket,
            bucket: Some(8),
            fallback: false,
            cause: Some(Cause::Upstream5xx),
            detail: Some("said \"no\"\n".into()),
            protocol: Protocol::Http11,
            client: "10.0.0.7".parse().unwrap(),
            bytes_in: 0,
            bytes_out: 294,
            sampled: false,
            trace: None,
            upstream: None,
        }
    }

    fn line(e: &Entry) -> serde_json::Value {
        let mut out = Vec::new();
        write(&mut out, e, &mut Clock::default());
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_line_is_json_with_every_field() {
        let l = line(&entry());
        assert_eq!(l["time"], "2026-12-07T23:54:46.410Z");
        assert_eq!(l["level"], "ERROR");
        assert_eq!(l["path"], "/api/v2/rooms", "the query is left out");
        assert_eq!((l["status"].as_u64(), l["upstream_status"].as_u64()), (Some(500), Some(500)));
        assert_eq!((l["duration_ms"].as_f64(), l["upstream_ms"].as_f64()), (Some(1.532), Some(1.477)));
        assert_eq!(l["user"], "da5abfb32329720c");
        assert_eq!(l["request_id"], "req-1");
        assert_eq!((l["reason"].as_str(), l["bucket"].as_u64()), (Some("bucket"), Some(8)));
        assert_eq!((l["cause"].as_str(), l["flags"].as_str()), (Some("upstream_5xx"), Some("-")));
        assert_eq!(l["detail"], "said \"no\"\n");
        assert_eq!((l["client"].as_str(), l["bytes_out"].as_u64()), (Some("10.0.0.7"), Some(294)));
    }

    #[test]
    fn odd_bytes_are_escaped_and_absent_values_are_null() {
        let mut e = entry();
        e.request_id = Some(RequestId::Sent(http::HeaderValue::from_bytes(b"a\"b\\c\xff").unwrap()));
        (e.status, e.upstream_status, e.upstream_us, e.cause, e.detail) = (None, None, None, None, None);
        e.user_key = Some("user \u{1}42".into());
        let l = line(&e);
        assert_eq!(l["request_id"], "a\"b\\c\u{fffd}");
        assert!(l["status"].is_null() && l["upstream_ms"].is_null());
        assert_eq!(l["user"], "user \u{1}42");
        assert!(l.get("cause").is_none());
    }

    #[test]
    fn milliseconds_are_exact_at_every_length() {
        for (us, text) in
            [(7, "0.007"), (42, "0.042"), (999, "0.999"), (1_000, "1.000"), (123_456, "123.456")]
        {
            let mut out = Vec::new();
            millis(&mut out, Some(us));
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn every_word_of_a_closed_set_is_written_as_the_record_names_it() {
        use crate::requests::entry::Protocol::*;
        for p in [Http10, Http11, Http2, Grpc, WebSocket, Upgrade] {
            let mut e = entry();
            e.protocol = p;
            assert_eq!(line(&e)["protocol"], p.as_str());
        }
        for r in [
            Reason::NoCanary,
            Reason::Blocked,
            Reason::Excluded,
            Reason::Forced,
            Reason::Bucket,
            Reason::Fallback,
            Reason::Other,
        ] {
            let mut e = entry();
            e.reason = r;
            assert_eq!(line(&e)["reason"], r.as_str());
        }
        for (status, cause, word) in
            [(Some(500), None, "ERROR"), (Some(404), None, "WARN"), (Some(200), None, "INFO")]
        {
            let mut e = entry();
            (e.status, e.cause) = (status, cause);
            assert_eq!(line(&e)["level"], word);
        }
        let mut e = entry();
        e.version = Version::Stable;
        assert_eq!(line(&e)["version"], "stable");
    }

    #[test]
    fn the_seconds_text_is_kept_and_renewed() {
        let mut c = Clock::default();
        let mut out = Vec::new();
        for ms in [1_000_999, 1_001_000, 1_001_001] {
            c.write(&mut out, ms);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:16:40.999Z 1970-01-01T00:16:41.000Z 1970-01-01T00:16:41.001Z "
        );
    }
}
