//! The server side: the proxy listener's TLS config (TLS 1.2 and 1.3; ALPN
//! `h2` when the proxy serves HTTP/2, and `http/1.1`).
//!
//! The certificate is not fixed in the config: a resolver hands out whatever
//! pair the [`CertSlot`] holds at the moment of each handshake. Swapping the
//! slot is one atomic pointer store; connections already open keep the keys
//! they agreed on, and nothing is dropped.

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// The certificate served to new handshakes.
#[derive(Debug)]
pub struct CertSlot(ArcSwap<CertifiedKey>);

impl CertSlot {
    /// A slot serving `pair`.
    pub fn new(pair: Arc<CertifiedKey>) -> Arc<CertSlot> {
        Arc::new(CertSlot(ArcSwap::new(pair)))
    }

    /// Serves `pair` from the next handshake on.
    pub fn set(&self, pair: Arc<CertifiedKey>) {
        self.0.store(pair);
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The listener's config, with the certificate taken from `slot`.
pub fn config(slot: Arc<CertSlot>, http2: bool) -> Result<Arc<ServerConfig>, String> {
    let provider = super::provider();
    let ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS server: {e}"))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS server: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    // Tickets resume a session on any worker without a shared cache.
    cfg.ticketer = ticketer;
    cfg.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(cfg))
}
