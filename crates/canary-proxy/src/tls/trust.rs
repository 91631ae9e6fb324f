//! The CAs `https://` upstreams are verified against when `[upstreams]
//! ca_file` is set, swappable while canary runs: a rotation (the control plane's)
//! reads the file again when it changes or on SIGHUP, as for a listener's
//! pair, and a file that does not load keeps the CAs in service.
//!
//! Verification itself is rustls' own (`WebPkiServerVerifier`, the verifier
//! `with_root_certificates` would make); [`Trust`] only picks the current one
//! for each handshake. Connections already open, pooled ones included, were
//! verified when they were made and stay; each new connection is verified
//! against the CAs in service when it is made.

use super::Reloadable;
use super::{TlsError, pair};
use arc_swap::ArcSwapOption;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the setting is called in errors.
const WHAT: &str = "CA file (upstreams.ca_file)";

/// The upstreams' trusted CAs, from one PEM file.
#[derive(Debug)]
pub struct Trust {
    file: PathBuf,
    /// Empty only until the first load, which happens before any connection.
    current: ArcSwapOption<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    /// Trust in the CAs of `file`, once a rotation has loaded it.
    pub fn new(file: &Path, provider: Arc<CryptoProvider>) -> Arc<Trust> {
        Arc::new(Trust { file: file.to_path_buf(), current: ArcSwapOption::empty(), provider })
    }

    /// A verifier trusting exactly the certificates in `text`.
    fn verifier(&self, text: &[u8]) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        let path = &self.file;
        let mut roots = RootCertStore::empty();
        for cert in pair::certificates(path, text)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::content(path, format!("not a usable CA certificate: {e}")))?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&self.provider))
            .build()
            .map_err(|e| TlsError::content(path, format!("these CA certificates cannot verify: {e}")))
    }
}

impl Reloadable for Trust {
    fn files(&self) -> Vec<(&Path, &'static str)> {
        vec![(&self.file, WHAT)]
    }

    fn install(&self, content: &[Vec<u8>]) -> Result<(), TlsError> {
        let [text] = content else { return Err(TlsError::Files(format!("{WHAT}: one file is needed"))) };
        self.current.store(Some(self.verifier(text)?));
        Ok(())
    }

    fn name(&self) -> String {
        format!("upstream {WHAT} {}", self.file.display())
    }

    fn event(&self) -> (&'static str, &'static str, serde_json::Value) {
        let detail = serde_json::json!({"ca_file": self.file.display().to_string()});
        ("upstream_ca_reloaded", "upstream_ca_reload_failed", detail)
    }
}

impl ServerCertVerifier for Trust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let current = self.current.load();
        let Some(verifier) = current.as_ref() else {
            // Cannot happen: the file is loaded before the proxy starts.
            return Err(rustls::Error::General(format!("{WHAT} not loaded")));
        };
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // What WebPkiServerVerifier does, with the same provider.
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
