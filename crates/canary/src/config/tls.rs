//! The TLS settings of a configuration: how `https://` upstreams are verified
//! (`[upstreams] ca_file`, `insecure_skip_verify`) and the certificate and key
//! the listener terminates TLS with (`[tls]`, `--tls-cert`/`--tls-key`), and
//! the admin API's (`[admin_tls]`, `--admin-tls-cert`/`--admin-tls-key`).
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

/// The admin listener's TLS (`[admin_tls]`, `--admin-tls-*`).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTls {
    /// The pair the admin API serves.
    pub files: TlsFiles,
    /// The CA file replicas verify each other's admin certificate with
    /// (`--etcd`); the system's roots without one.
    pub ca_file: Option<PathBuf>,
}

/// The `[admin_tls]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAdminTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

/// The proxy listener's pair: both given, or neither.
pub(super) fn listener(
    cli: &Overrides,
    f: &FileTls,
    o: &Origin<'_>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let names = Names { section: "tls", flag: "--tls" };
    both(pick(&cli.tls_cert, &f.cert), pick(&cli.tls_key, &f.key), &names, o)
}

/// The admin listener's pair and peers' CA; a CA without a pair means
/// nothing, so it is refused rather than ignored.
pub(super) fn admin(
    cli: &Overrides,
    f: &FileAdminTls,
    o: &Origin<'_>,
) -> Result<Option<AdminTls>, ConfigError> {
    let names = Names { section: "admin_tls", flag: "--admin-tls" };
    let files = both(pick(&cli.admin_tls_cert, &f.cert), pick(&cli.admin_tls_key, &f.key), &names, o)?;
    let ca = pick(&cli.admin_tls_ca, &f.ca_file);
    match (files, ca.0) {
        (Some(files), ca_file) => Ok(Some(AdminTls { files, ca_file })),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(o.err(
            ca.1,
            "admin_tls.ca_file",
            "--admin-tls-ca",
            "a CA for the admin API's peers means nothing while the admin API is plain HTTP: set \
             --admin-tls-cert and --admin-tls-key (or [admin_tls] cert and key) too, or drop it",
        )),
    }
}

/// How a pair's keys are spelt in the file and on the command line.
struct Names {
    section: &'static str,
    flag: &'static str,
}

/// A certificate and key: both given, or neither.
fn both(
    cert: (Option<PathBuf>, bool),
    key: (Option<PathBuf>, bool),
    n: &Names,
    o: &Origin<'_>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let (s, f) = (n.section, n.flag);
    match (cert.0, key.0) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (Some(_), None) => Err(o.err(
            cert.1,
            &format!("{s}.key"),
            &format!("{f}-key"),
            format!("a TLS certificate needs its private key: set {f}-key (or [{s}] key) too"),
        )),
        (None, Some(_)) => Err(o.err(
            key.1,
            &format!("{s}.cert"),
            &format!("{f}-cert"),
            format!("a TLS private key needs its certificate: set {f}-cert (or [{s}] cert) too"),
        )),
    }
}
