//! The client side: how canary verifies `https://` upstreams.
//!
//! By default against the system's roots (`/etc/ssl/certs` and the like, read
//! once at start); with `[upstreams] ca_file` against that file's CAs only, as
//! `curl --cacert` does, so a private CA does not also trust every public one
//! (read again when it changes or on SIGHUP, see `trust`); with `insecure_skip_verify = true` not at all (a choice logged at start).
//! The ALPN list is set by the proxy's pool per use: HTTP/1.1 for its
//! HTTP/1.1 connections, h2 and HTTP/1.1 to learn which one an upstream speaks.

use super::trust::Trust;
use super::{TlsError, pair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// The client config for every upstream connection, verifying against the
/// CAs in `ca_file` (the system's roots without one) unless `insecure`; with
/// a `ca_file`, the [`Trust`] a rotation keeps reading it into (still empty:
/// the rotation's first read fills it). The error names what is wrong.
pub fn config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<(Arc<ClientConfig>, Option<Arc<Trust>>), TlsError> {
    let provider = super::provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Config { what: "TLS client", source })?;
    let (mut cfg, trust) = match (ca_file, insecure) {
        (_, true) => {
            let none = Arc::new(NoVerify(provider));
            (builder.dangerous().with_custom_certificate_verifier(none).with_no_client_auth(), None)
        }
        (Some(file), false) => {
            let trust = Trust::new(file, provider);
            // A verifier of our own only to swap the CAs: rustls' verifies.
            let verifier = Arc::clone(&trust);
            let cfg = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
            (cfg, Some(trust))
        }
        (None, false) => (builder.with_root_certificates(roots(None, "")?).with_no_client_auth(), None),
    };
    // The pool replaces this for the connections that may speak h2.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), trust))
}

/// A verifying config without ALPN (hyper-rustls sets its own), for the
/// admin API's clients: the CLI and replicas reaching each other. `ca_file`
/// replaces the system roots; `what` names the setting it came from.
pub fn verifying(ca_file: Option<&Path>, what: &str) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Config { what: "TLS client", source })?;
    Ok(builder.with_root_certificates(roots(ca_file, what)?).with_no_client_auth())
}

/// A config that trusts no certificate, for clients whose URLs are all
/// plain http (a TLS connector needs some config).
pub fn verifying_none() -> ClientConfig {
    ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(RootCertStore::empty()).with_no_client_auth())
        .unwrap_or_else(|_| {
            // Unreachable: ring supports the default versions. The crate's
            // only provider feature is ring, so this builder finds it too.
            ClientConfig::builder().with_root_certificates(RootCertStore::empty()).with_no_client_auth()
        })
}

fn roots(ca_file: Option<&Path>, what: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        let text = pair::read(path, what)?;
        for cert in pair::certificates(path, &text)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::content(path, format!("not a usable CA certificate: {e}")))?;
        }
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "could not read some of the system's root certificates");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "no system root certificates found: https connections will fail verification; install ca-certificates or give a CA file"
        );
    }
    Ok(roots)
}

/// Accepts any certificate, still checking that the handshake's signatures are
/// sound (so the connection is encrypted, merely unauthenticated).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
