//! The HTTP client the controller polls the versions' own endpoints with
//! (health, resources): plain, h2c or https, verified as the proxy verifies
//! upstreams, so an `https://` or `h2c://` canary is judged like an
//! `http://` one.

use bytes::Bytes;
use http::Uri;
use http::uri::Scheme;
use http_body_util::Empty;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use std::sync::Arc;

/// Pooled clients for body-less requests to the upstreams.
#[derive(Debug, Clone)]
pub struct Probe {
    /// http, and https with h2 or HTTP/1.1 as the upstream picks by ALPN.
    any: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    /// HTTP/2 with prior knowledge, for `h2c://` upstreams.
    h2c: Client<HttpConnector, Empty<Bytes>>,
}

impl Probe {
    /// A GET of `uri`; an `h2c://` one goes over HTTP/2 without TLS.
    pub fn get(&self, uri: Uri) -> ResponseFuture {
        if uri.scheme_str() != Some("h2c") {
            return self.any.get(uri);
        }
        let mut parts = uri.into_parts();
        parts.scheme = Some(Scheme::HTTP);
        match Uri::from_parts(parts) {
            Ok(uri) => self.h2c.get(uri),
            // Unreachable (only the scheme changed), but answered by the
            // client's own error for a bad URI rather than a panic.
            Err(_) => self.h2c.get(Uri::default()),
        }
    }
}

/// A client speaking http, https (h2 or HTTP/1.1) and h2c with the
/// upstreams' TLS config.
pub fn client(tls: &Arc<ClientConfig>) -> Probe {
    let mut cfg = ClientConfig::clone(tls);
    // The connector sets ALPN itself (from `enable_all_versions`), and
    // insists on being given none.
    cfg.alpn_protocols.clear();
    let https =
        HttpsConnectorBuilder::new().with_tls_config(cfg).https_or_http().enable_all_versions().build();
    Probe {
        any: Client::builder(TokioExecutor::new()).build(https),
        h2c: Client::builder(TokioExecutor::new()).http2_only(true).build_http(),
    }
}
