//! A certificate chain and its private key, read from PEM files.
//!
//! Every refusal names the file and says what is wrong with it: unreadable,
//! not PEM, no certificate or key in it, a key type rustls cannot sign with,
//! or a key that does not belong to the certificate.

use super::TlsError;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Reads a file, naming it and what it was meant to hold when it cannot be read.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        what: what.into(),
        source,
    })
}

/// Builds the pair from PEM text already read from `cert` and `key`.
pub fn from_pem(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert, cert_pem)?;
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::content(
            key,
            "no PRIVATE KEY block in it; expected a PEM private key (PKCS#8, RSA or EC)",
        ),
        e => TlsError::content(key, format!("not a PEM private key: {e}")),
    })?;
    let signer = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::content(key, format!("unusable private key: {e}")))?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) => Ok(Arc::new(pair)),
        // A key type whose public half rustls cannot derive: nothing to compare.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(pair)),
        Err(e) => Err(TlsError::content(
            key,
            format!(
                "this private key does not match the certificate in {} ({e}); give the key the certificate was issued for",
                cert.display()
            ),
        )),
    }
}

/// Every certificate in a PEM file, in order; at least one.
pub fn certificates(path: &Path, text: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::content(path, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::content(
            path,
            "no CERTIFICATE block in it; expected PEM certificates (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(chain)
}
