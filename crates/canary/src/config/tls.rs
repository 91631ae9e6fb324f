//! The TLS settings of a configuration: how `https://` upstreams are verified
//! (`[upstreams] ca_file`, `insecure_skip_verify`) and the certificate and key
//! the listener terminates TLS with (`[tls]`, `--tls-cert`/`--tls-key`).
//!
//! Only paths and choices are kept here; the files are read when the server
//! starts (see `crate::tls`), so a config parsed by a tool or a fuzzer, or read
//! again on SIGHUP, never depends on what the certificate files hold.

use super::{ConfigError, Origin, Overrides, pick};
use serde::Deserialize;
use std::path::PathBuf;

/// How `https://` upstreams are verified.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamTls {
    /// A PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (logged at start): an explicit choice only.
    pub insecure_skip_verify: bool,
}

/// The certificate chain and private key the proxy listener serves TLS with.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The `[tls]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// The listener's pair: both given, or neither.
pub(super) fn listener(
    cli: &Overrides,
    f: &FileTls,
    o: &Origin<'_>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = pick(&cli.tls_cert, &f.cert);
    let key = pick(&cli.tls_key, &f.key);
    match (cert.0, key.0) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (Some(_), None) => Err(o.err(
            cert.1,
            "tls.key",
            "--tls-key",
            "a TLS certificate needs its private key: set --tls-key (or [tls] key) too",
        )),
        (None, Some(_)) => Err(o.err(
            key.1,
            "tls.cert",
            "--tls-cert",
            "a TLS private key needs its certificate: set --tls-cert (or [tls] cert) too",
        )),
    }
}
