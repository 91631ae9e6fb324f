//! Why no connection to an upstream could be had.

use std::io;
use std::time::Duration;

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The upstream refused, reset, or could not be resolved.
    #[error("cannot connect to {upstream}: {source}")]
    Io {
        /// The upstream's URL.
        upstream: String,
        /// The socket error.
        source: io::Error,
    },
    /// No answer within the connect timeout.
    #[error("connecting to {upstream} timed out after {after:?}")]
    Timeout {
        /// The upstream's URL.
        upstream: String,
        /// The timeout.
        after: Duration,
    },
    /// The TLS handshake failed: the certificate did not verify, or the
    /// upstream does not speak TLS.
    #[error("TLS handshake with {upstream} failed: {source}")]
    Tls {
        /// The upstream's URL.
        upstream: String,
        /// What rustls said.
        source: io::Error,
    },
    /// The HTTP handshake failed.
    #[error("HTTP handshake with {upstream} failed: {source}")]
    Handshake {
        /// The upstream's URL.
        upstream: String,
        /// What hyper said.
        source: hyper::Error,
    },
}
