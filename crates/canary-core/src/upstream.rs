//! An upstream's address, parsed once from a URL such as `http://10.0.0.5:3000`,
//! `https://api.internal`, `h2c://10.0.0.5:50051` or `http://localhost:3001/v2`
//! (a path is prefixed to every request's path).
//!
//! The scheme says how the upstream is spoken to: `http` is HTTP/1.1,
//! `h2c` HTTP/2 over plain TCP with prior knowledge (as gRPC servers listen),
//! and `https` TLS with the protocol chosen by ALPN (h2 or HTTP/1.1).

use http::HeaderValue;
use http::uri::{Authority, Uri};
use rustls_pki_types::ServerName;
use std::fmt;
use std::sync::Arc;

/// How an upstream is spoken to, from its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http://`: HTTP/1.1 over TCP.
    Http1,
    /// `h2c://`: HTTP/2 over TCP with prior knowledge.
    H2c,
    /// `https://`: TLS, then HTTP/2 or HTTP/1.1 as the upstream picks by ALPN.
    Https,
}

/// A parsed upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    protocol: Protocol,
    // Shared so the pool can key connections by it without copying per request.
    url: Arc<str>,
    authority: Authority,
    // Built once: every request to this upstream carries it as `Host`.
    host_header: HeaderValue,
    host: String,
    port: u16,
    base_path: String,
    // For https: the name sent as SNI and checked against the certificate,
    // made once so an unusable host is refused with the URL, not per request.
    tls: Option<ServerName<'static>>,
}

impl Upstream {
    /// Parses `http[s]://host[:port][/path]` or `h2c://host[:port][/path]`;
    /// the reason names what is wrong.
    pub fn parse(s: &str) -> Result<Upstream, String> {
        let uri: Uri = s.parse().map_err(|e| format!("`{s}` is not a URL ({e}); write http://host:port"))?;
        let (scheme, default_port, protocol) = match uri.scheme_str() {
            Some("http") => ("http", 80, Protocol::Http1),
            Some("https") => ("https", 443, Protocol::Https),
            Some("h2c") => ("h2c", 80, Protocol::H2c),
            Some(other) => {
                return Err(format!(
                    "`{s}`: scheme `{other}` is not supported; use http:// (HTTP/1.1), h2c:// (HTTP/2 without TLS) or https://"
                ));
            }
            None => return Err(format!("`{s}` has no scheme; write http://{s}")),
        };
        let authority =
            uri.authority().cloned().ok_or_else(|| format!("`{s}` has no host; write http://host:port"))?;
        if uri.query().is_some() {
            return Err(format!(
                "`{s}` has a query string; an upstream is http[s]://host:port[/path] or h2c://host:port[/path]"
            ));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(default_port);
        let base_path = uri.path().trim_end_matches('/').to_string();
        let url = format!("{scheme}://{authority}{base_path}").into();
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("`{s}`: host is not a valid header value ({e})"))?;
        let tls = match scheme {
            "https" => Some(
                ServerName::try_from(host.clone())
                    .map_err(|e| format!("`{s}`: `{host}` cannot be checked against a certificate ({e})"))?,
            ),
            _ => None,
        };
        Ok(Upstream { protocol, url, authority, host_header, host, port, base_path, tls })
    }

    /// How the upstream is spoken to.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The scheme of request URIs sent over HTTP/2 (`:scheme`).
    pub fn h2_scheme(&self) -> http::uri::Scheme {
        match self.protocol {
            Protocol::Https => http::uri::Scheme::HTTPS,
            _ => http::uri::Scheme::HTTP,
        }
    }

    /// The normalised URL, as shown in the API.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The normalised URL, shared.
    pub fn url_arc(&self) -> Arc<str> {
        Arc::clone(&self.url)
    }

    /// `host:port` as written, for the `Host` header.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The `Host` header value for requests to this upstream.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// The host to connect to (without IPv6 brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// For an https upstream, the name its certificate must carry (also sent
    /// as SNI); `None` for plain http.
    pub fn tls_name(&self) -> Option<&ServerName<'static>> {
        self.tls.as_ref()
    }

    /// A path prefix for every request, without a trailing slash (often empty).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_prefix() {
        let u = Upstream::parse("http://127.0.0.1:3000/v2/").unwrap();
        assert_eq!((u.host(), u.port(), u.base_path()), ("127.0.0.1", 3000, "/v2"));
        assert_eq!(u.url(), "http://127.0.0.1:3000/v2");
        let u = Upstream::parse("http://[::1]").unwrap();
        assert_eq!((u.host(), u.port()), ("::1", 80));
        assert!(u.tls_name().is_none());
    }

    #[test]
    fn https_is_tls_on_port_443_named_by_its_host() {
        let u = Upstream::parse("https://api.internal/v2").unwrap();
        assert_eq!((u.host(), u.port(), u.url()), ("api.internal", 443, "https://api.internal/v2"));
        assert_eq!(u.tls_name().map(|n| n.to_str().into_owned()).as_deref(), Some("api.internal"));
        let u = Upstream::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!((u.port(), u.url()), (8443, "https://127.0.0.1:8443"));
        assert!(u.tls_name().is_some(), "an IP address is checked against the certificate's IP names");
    }

    #[test]
    fn h2c_is_http2_without_tls() {
        let u = Upstream::parse("h2c://127.0.0.1:50051").unwrap();
        assert_eq!((u.protocol(), u.port(), u.url()), (Protocol::H2c, 50051, "h2c://127.0.0.1:50051"));
        assert!(u.tls_name().is_none());
        assert_eq!(Upstream::parse("h2c://grpc.internal").unwrap().port(), 80);
        assert_eq!(Upstream::parse("http://x").unwrap().protocol(), Protocol::Http1);
        assert_eq!(Upstream::parse("https://x").unwrap().protocol(), Protocol::Https);
        let e = Upstream::parse("grpc://x:1").unwrap_err();
        assert!(e.contains("`grpc`") && e.contains("h2c://"), "{e}");
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for bad in ["localhost:3000", "ftp://x", "http://x/?a=1", "not a url", "/path"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
