//! An upstream's address, parsed once from a URL such as `http://10.0.0.5:3000`
//! or `http://localhost:3001/v2` (a path is prefixed to every request's path).

use http::HeaderValue;
use http::uri::{Authority, Uri};
use std::fmt;
use std::sync::Arc;

/// A parsed upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    // Shared so the pool can key connections by it without copying per request.
    url: Arc<str>,
    authority: Authority,
    // Built once: every request to this upstream carries it as `Host`.
    host_header: HeaderValue,
    host: String,
    port: u16,
    base_path: String,
}

impl Upstream {
    /// Parses `http://host[:port][/path]`; the reason names what is wrong.
    pub fn parse(s: &str) -> Result<Upstream, String> {
        let uri: Uri = s.parse().map_err(|e| format!("`{s}` is not a URL ({e}); write http://host:port"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "`{s}`: https upstreams are not supported yet; use http:// (terminate TLS in front of the upstream)"
                ));
            }
            Some(other) => return Err(format!("`{s}`: scheme `{other}` is not supported; use http://")),
            None => return Err(format!("`{s}` has no scheme; write http://{s}")),
        }
        let authority =
            uri.authority().cloned().ok_or_else(|| format!("`{s}` has no host; write http://host:port"))?;
        if uri.query().is_some() {
            return Err(format!("`{s}` has a query string; an upstream is http://host:port[/path]"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(80);
        let base_path = uri.path().trim_end_matches('/').to_string();
        let url = format!("http://{authority}{base_path}").into();
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("`{s}`: host is not a valid header value ({e})"))?;
        Ok(Upstream { url, authority, host_header, host, port, base_path })
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
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for bad in ["localhost:3000", "https://x", "ftp://x", "http://x/?a=1", "not a url", "/path"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
