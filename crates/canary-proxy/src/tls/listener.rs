//! The server side: the listeners' TLS config (TLS 1.2 and 1.3; ALPN
//! `h2` when the proxy serves HTTP/2, and `http/1.1`).
//!
//! The certificate is not fixed in the config: a resolver hands out whatever
//! pair the [`CertSlot`] holds at the moment of each handshake. Swapping the
//! slot is one atomic pointer store; connections already open keep the keys
//! they agreed on, and nothing is dropped. [`ListenerPair`] is what a
//! rotation reloads into the slot.

use super::Reloadable;
use super::{TlsError, pair, validity};
use arc_swap::ArcSwapOption;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The certificate served to new handshakes; empty only until the first
/// pair loads, which happens before the listener starts.
#[derive(Debug, Default)]
pub struct CertSlot(ArcSwapOption<CertifiedKey>);

impl CertSlot {
    /// Serves `pair` from the next handshake on.
    pub fn set(&self, pair: Arc<CertifiedKey>) {
        self.0.store(Some(pair));
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }
}

/// The listener's config, with the certificate taken from `slot`.
pub fn config(slot: Arc<CertSlot>, http2: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = super::provider();
    let server = |source| TlsError::Config { what: "TLS server", source };
    let ticketer = rustls::crypto::ring::Ticketer::new().map_err(server)?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(server)?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    // Tickets resume a session on any worker without a shared cache.
    cfg.ticketer = ticketer;
    cfg.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(cfg))
}

/// A listener's certificate and key files, loaded into its slot.
#[derive(Debug)]
pub struct ListenerPair {
    /// Which listener serves the pair ("proxy" or "admin"), for logs and events.
    listener: &'static str,
    cert: PathBuf,
    key: PathBuf,
    slot: Arc<CertSlot>,
    provider: Arc<CryptoProvider>,
    /// The served certificate's `notAfter`, and whether its passing was told.
    expires: Mutex<Option<(jiff::Timestamp, bool)>>,
}

impl ListenerPair {
    /// The pair in files `cert` and `key` for `listener`, with an empty slot
    /// (a rotation fills it).
    pub fn new(cert: &Path, key: &Path, listener: &'static str) -> Arc<ListenerPair> {
        let slot = Arc::new(CertSlot::default());
        let provider = super::provider();
        let (cert, key) = (cert.to_path_buf(), key.to_path_buf());
        Arc::new(ListenerPair { listener, cert, key, slot, provider, expires: Mutex::default() })
    }

    /// The slot the listener's handshakes take their certificate from.
    pub fn slot(&self) -> Arc<CertSlot> {
        Arc::clone(&self.slot)
    }
}

impl Reloadable for ListenerPair {
    fn files(&self) -> Vec<(&Path, &'static str)> {
        vec![(&self.cert, "certificate"), (&self.key, "private key")]
    }

    fn install(&self, content: &[Vec<u8>]) -> Result<(), TlsError> {
        let [cert, key] = content else {
            return Err(TlsError::Files("a certificate and a key are needed".into()));
        };
        let pair = pair::from_pem(&self.cert, cert, &self.key, key, &self.provider)?;
        // Every client that checks dates would refuse it: never put in service.
        let leaf = pair.cert.first().ok_or_else(|| TlsError::content(&self.cert, "no certificate"))?;
        let dates = validity::check(&self.cert, leaf, jiff::Timestamp::now())?;
        self.slot.set(pair);
        *self.expires.lock().unwrap_or_else(PoisonError::into_inner) = Some((dates.not_after, false));
        Ok(())
    }

    fn name(&self) -> String {
        format!("TLS certificate {} ({} listener)", self.cert.display(), self.listener)
    }

    fn event(&self) -> (&'static str, &'static str, serde_json::Value) {
        let (cert, key) = (self.cert.display().to_string(), self.key.display().to_string());
        (
            "tls_reloaded",
            "tls_reload_failed",
            serde_json::json!({"listener": self.listener, "cert": cert, "key": key}),
        )
    }

    fn lapsed(&self, now: jiff::Timestamp) -> Option<(&'static str, String)> {
        let mut expires = self.expires.lock().unwrap_or_else(PoisonError::into_inner);
        let (not_after, told) = expires.as_mut()?;
        if *told || now <= *not_after {
            return None;
        }
        *told = true;
        let (cert, key) = (self.cert.display(), self.key.display());
        let why = format!(
            "the certificate in service expired on {not_after}: clients that check dates refuse it; \
             write a current pair to {cert} and {key} (read within a second, or on kill -HUP)"
        );
        Some(("tls_certificate_expired", why))
    }
}
