//! An etcd member's client address as this client uses it: `http://host:port`,
//! or a bare `host:port` taken as `http://`. `https://` is refused with an
//! error naming the endpoint: this client speaks plain HTTP only.

use crate::error::{Error, Result};
use http::uri::{Authority, Uri};

/// One member's client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`.
    authority: Authority,
    /// As errors name it: `http://host:port`.
    name: String,
}

impl Endpoint {
    /// Reads `given`; an error names it and says what is wrong.
    pub(crate) fn parse(given: &str) -> Result<Endpoint> {
        let invalid = |reason: &str| Error::InvalidEndpoint { endpoint: given.into(), reason: reason.into() };
        let text = given.trim().trim_end_matches('/');
        let rest = match text.split_once("://") {
            None => text,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid(
                    "https is not supported: this client speaks plain HTTP to etcd's JSON gateway; \
                     give an http:// endpoint",
                ));
            }
            Some(_) => return Err(invalid("not an http:// URL")),
        };
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(invalid("expected http://host:port, with no path or user"));
        }
        let authority: Authority = rest.parse().map_err(|e| invalid(&format!("not a host:port ({e})")))?;
        Ok(Endpoint { name: format!("http://{authority}"), authority })
    }

    /// `http://host:port`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The URL of `path` (such as `/v3/kv/range`) on this member.
    pub(crate) fn uri(&self, path: &str) -> Result<Uri> {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| Error::InvalidArgs(format!("path {path:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_bare_addresses_are_taken() {
        assert_eq!(Endpoint::parse("http://127.0.0.1:2379").unwrap().name(), "http://127.0.0.1:2379");
        assert_eq!(Endpoint::parse(" HTTP://etcd-a:2379/ ").unwrap().name(), "http://etcd-a:2379");
        assert_eq!(Endpoint::parse("127.0.0.1:2379").unwrap().name(), "http://127.0.0.1:2379");
        let uri = Endpoint::parse("localhost:2379").unwrap().uri("/v3/kv/range").unwrap();
        assert_eq!(uri.to_string(), "http://localhost:2379/v3/kv/range");
    }

    #[test]
    fn https_is_refused_by_name() {
        let e = Endpoint::parse("https://etcd-a:2379").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("https://etcd-a:2379") && text.contains("https is not supported"), "{text}");
    }

    #[test]
    fn other_forms_are_refused() {
        for bad in ["", "unix:///run/etcd.sock", "http://a:1/prefix", "http://u@a:1", "http://a:b:c"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
