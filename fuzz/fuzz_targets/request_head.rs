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
    match parse(&mut buf, 2048) {
        Parsed::Partial | Parsed::General(_) => assert_eq!(&buf[..], data),
        Parsed::Lean(lean) => {
            let head_len = data.len() - buf.len();
            assert!(head_len <= 2048 && data.ends_with(&buf));
            assert!(data[..head_len].ends_with(b"\n"), "a head ends with its blank line");
            let p = &lean.parts;
            assert_eq!(p.version, http::Version::HTTP_11);
            assert!(p.uri.scheme().is_none() && p.uri.path().starts_with('/'));
            assert!(p.method != http::Method::CONNECT);
            let h = &p.headers;
            assert!(!h.contains_key("transfer-encoding") && !h.contains_key("upgrade") && !h.contains_key("expect"));
            let lengths: Vec<_> = h.get_all("content-length").iter().collect();
            assert!(lengths.len() <= 1 && lengths.iter().all(|v| v.as_bytes() == b"0"));
            assert!(h.len() <= canary::proxy::front::head::MAX_HEADERS);
        }
    }
});
