//! Header rewriting between client and upstream: hop-by-hop headers removed
//! both ways (RFC 9110 section 7.6.1) except what a protocol upgrade needs,
//! `x-forwarded-*` set on the way up, and the upstream's `Host` on the request.

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// `x-forwarded-for`
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-forwarded-host`
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `x-canary`, the override on requests.
pub const X_CANARY: HeaderName = HeaderName::from_static("x-canary");
/// `x-request-id`, a request's id as the client (or a proxy before) named it.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent`, W3C trace context: passed on unchanged, read when tracing.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `x-canary-version`, on responses.
pub const X_CANARY_VERSION: HeaderName = HeaderName::from_static("x-canary-version");

/// Removes hop-by-hop headers, including any the `Connection` header names.
/// `Transfer-Encoding` is left alone: hyper reframes every message itself and
/// needs it to read the body correctly.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if has_hop_by_hop(h) {
        strip_present(h);
    }
}

/// Whether any hop-by-hop header is present. One pass over the (few) names
/// present is cheaper than hashing each of the eight hop-by-hop names; the
/// usual message has none of them. The proxy asks once per request and
/// reuses the answer: no `Connection` header, no upgrade either.
pub fn has_hop_by_hop(h: &HeaderMap) -> bool {
    h.keys().any(|k| HOP_BY_HOP.contains(k))
}

/// [`strip_hop_by_hop`] for a message known to have some (see [`has_hop_by_hop`]).
pub fn strip_present(h: &mut HeaderMap) {
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in &HOP_BY_HOP {
        if h.contains_key(n) {
            h.remove(n);
        }
    }
}

/// Trailer fields never passed on: framing, routing and connection fields
/// (RFC 9110 section 6.5.1), which HTTP/2 forbids or which describe one hop.
const NOT_TRAILERS: [HeaderName; 9] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::HOST,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
];

/// Removes from trailers the fields that must not travel in them.
pub fn strip_trailer_fields(t: &mut HeaderMap) {
    // Trailers are rare and few: one pass over them decides.
    if t.keys().any(|k| NOT_TRAILERS.contains(k)) {
        for n in &NOT_TRAILERS {
            t.remove(n);
        }
    }
}

/// Whether a request asks to switch protocols (RFC 9110 section 7.8): an
/// `Upgrade` header, and `upgrade` among the `Connection` options.
pub fn asks_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
}

/// Strips hop-by-hop headers from an upgrade's request or 101 response but
/// keeps what the switch needs on the next hop: `Upgrade` (the request's
/// protocol when the message has none) and `Connection: upgrade`.
pub fn keep_upgrade(h: &mut HeaderMap, protocol: Option<HeaderValue>) {
    let protocol = h.get(header::UPGRADE).cloned().or(protocol);
    strip_hop_by_hop(h);
    if let Some(p) = protocol {
        h.insert(header::UPGRADE, p);
    }
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Sets the `x-forwarded-*` headers for a request from `peer`, whose address
/// is `peer_ip` already formatted as a header value (once per connection);
/// `client_host` is the host the client asked for.
pub fn set_forwarded(h: &mut HeaderMap, peer_ip: &HeaderValue, client_host: Option<HeaderValue>) {
    // One lookup for both reading and writing the header.
    match h.entry(X_FORWARDED_FOR) {
        Entry::Occupied(mut e) => {
            let ip = peer_ip.to_str().unwrap_or_default();
            let joined = e
                .get()
                .to_str()
                .ok()
                .filter(|prev| !prev.is_empty())
                .and_then(|prev| HeaderValue::from_str(&format!("{prev}, {ip}")).ok());
            e.insert(joined.unwrap_or_else(|| peer_ip.clone()));
        }
        Entry::Vacant(e) => {
            e.insert(peer_ip.clone());
        }
    }
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = client_host {
        h.insert(X_FORWARDED_HOST, host);
    }
}

/// The address as a header value.
pub fn ip_value(ip: IpAddr) -> HeaderValue {
    // An IP address's text is always a valid header value; the fallback is
    // never taken.
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_listed_and_standard_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn an_upgrade_keeps_upgrade_and_connection_only() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, x-secret"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("sec-websocket-key", HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(asks_upgrade(&h));
        keep_upgrade(&mut h, None);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert!(h.contains_key("sec-websocket-key"));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!asks_upgrade(&h), "Upgrade without Connection: upgrade is not a request to switch");
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!asks_upgrade(&h));
        h.append(header::CONNECTION, HeaderValue::from_static("UPGRADE"));
        assert!(asks_upgrade(&h));
        h.remove(header::UPGRADE);
        assert!(!asks_upgrade(&h));
    }

    #[test]
    fn appends_to_forwarded_for() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(header::HOST, HeaderValue::from_static("api.example"));
        let host = h.get(header::HOST).cloned();
        set_forwarded(&mut h, &ip_value("127.0.0.1".parse().unwrap()), host);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[&X_FORWARDED_HOST], "api.example");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
    }
}
