//! Client request heads straight from the wire (the lean HTTP/1.1 path's
//! parser, `proxy::front::head`): any bytes give a decision, never a panic.
//! A head for the general path leaves the buffer exactly as it came, for
//! hyper to read; a lean one takes the head off the front and nothing else,
//! and is really a body-less HTTP/1.1 request in origin form.
#![no_main]

use bytes::BytesMut;
use canary::proxy::front::head::{Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let user_key = http::HeaderName::from_static("x-user-id");
    match parse(&mut buf, 2048, Some(&user_key)) {
        Parsed::Partial | Parsed::General(_) => assert_eq!(&buf[..], data),
        Parsed::Lean(lean) => {
            let head_len = data.len() - buf.len();
            assert!(head_len <= 2048 && data.ends_with(&buf));
            assert!(data[..head_len].ends_with(b"\n"), "a head ends with its blank line");
            assert!(lean.uri.scheme().is_none() && lean.uri.path().starts_with('/'));
            assert!(lean.method != http::Method::CONNECT);
            assert!(lean.value(lean.seen.host).is_some(), "Host is required");
            // The lines passed on are well-formed and carry nothing the
            // proxy must drop or rewrite.
            assert!(lean.lines.is_empty() || lean.lines.ends_with(b"\r\n"));
            let mut lines = 0;
            for line in lean.lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                lines += 1;
                let line = line.strip_suffix(b"\r").expect("each line ends in CRLF");
                let colon = line.iter().position(|&b| b == b':').expect("name: value");
                let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                assert!(!name.is_empty() && !line[..colon].contains(&b'\r'));
                for dropped in ["host", "connection", "transfer-encoding", "upgrade", "expect", "te", "x-forwarded-for"] {
                    assert_ne!(name, dropped);
                }
                if name == "content-length" {
                    assert_eq!(&line[colon..], b": 0");
                }
            }
            assert!(lines <= canary::proxy::front::head::MAX_HEADERS);
            let parts = lean.to_parts();
            assert_eq!(parts.version, http::Version::HTTP_11);
            assert!(parts.headers.get_all("content-length").iter().count() <= 1);
        }
    }
});
