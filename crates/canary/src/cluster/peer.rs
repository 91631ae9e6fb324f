//! How a replica reaches the others' admin APIs: `http://`, or `https://`
//! when the admin API serves TLS (`[admin_tls]`). Replicas share their
//! config, so a replica's own choice is the scheme its peers listen with;
//! their certificates are verified against `[admin_tls] ca_file`, or the
//! system's roots without one. A peer is addressed by its advertised IP and
//! port, so its certificate must name that IP.

use bytes::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use std::sync::Arc;

/// A client for the peers' admin APIs.
pub type PeerClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// The scheme and TLS settings the peers are reached with.
#[derive(Debug, Clone)]
pub struct PeerLink {
    tls: Option<Arc<ClientConfig>>,
}

impl PeerLink {
    /// Plain HTTP: the admin API serves no TLS.
    pub fn plain() -> PeerLink {
        PeerLink { tls: None }
    }

    /// HTTPS, verified with `tls`.
    pub fn https(tls: Arc<ClientConfig>) -> PeerLink {
        PeerLink { tls: Some(tls) }
    }

    /// The URL of `path` (with its query) on the peer at `admin` (ip:port).
    pub fn url(&self, admin: &str, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{admin}{path}")
    }

    /// A new client. Each caller makes its own: a pooled connection belongs
    /// to the runtime that opened it.
    pub fn client<B>(&self) -> PeerClient<B>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Plain peers get a config that trusts nothing: it is never used,
        // since their URLs are http://, and it spares reading the system roots.
        let tls = self.tls.as_deref().cloned().unwrap_or_else(canary_proxy::tls::client::verifying_none);
        let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Client::builder(TokioExecutor::new()).build(https)
    }
}
