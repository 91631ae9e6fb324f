//! TLS with rustls (the `ring` provider): to `https://` upstreams, and on the
//! proxy and admin listeners when a certificate is configured. Keeping the
//! files in service (re-reading them when they change) is the control
//! plane's: it calls [`Reloadable`].
//!
//! # Layout
//! - [`client`]: the upstreams' client config: system roots, a private CA
//!   (`ca_file`) or no verification at all (`insecure_skip_verify`).
//! - [`trust`]: the private CA's certificates, swapped when the file changes.
//! - [`pair`]: a certificate chain and its private key read from PEM files,
//!   with errors that name the file and what is wrong.
//! - [`listener`]: the server config; its certificate sits behind an
//!   `ArcSwap`, so a new pair serves new handshakes while open connections
//!   keep theirs.
//! - [`reloadable`]: what a rotation puts in service: a listener's pair,
//!   or the upstreams' CA file.
//! - [`validity`]: a certificate's dates; a listener's certificate outside
//!   them is refused, at start and on rotation.

pub mod client;
pub mod error;
pub mod listener;
pub mod pair;
pub mod reloadable;
pub mod trust;
pub mod validity;

pub use error::TlsError;
pub use reloadable::Reloadable;

use std::sync::Arc;

/// The one crypto provider of the process: `ring` builds with a C compiler
/// alone, and every config is made with it explicitly, so nothing depends on
/// a process-wide default being installed.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
