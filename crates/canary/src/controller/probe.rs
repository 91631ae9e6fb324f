//! The HTTP client the controller polls the versions' own endpoints with
//! (health, resources): plain or https, verified as the proxy verifies
//! upstreams, so an `https://` canary is judged like an `http://` one.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use std::sync::Arc;

/// A pooled client for body-less requests to the upstreams.
pub type Probe = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client speaking http and https (HTTP/1.1) with the upstreams' TLS config.
pub fn client(tls: &Arc<ClientConfig>) -> Probe {
    let mut cfg = ClientConfig::clone(tls);
    // The connector sets ALPN itself (from `enable_http1`), and insists on
    // being given none.
    cfg.alpn_protocols.clear();
    let https = HttpsConnectorBuilder::new().with_tls_config(cfg).https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new()).build(https)
}
