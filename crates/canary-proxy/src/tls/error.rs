//! Why TLS files or configs were refused: the file concerned (when there is
//! one) and what is wrong with it, in words an operator can act on.

use std::path::{Path, PathBuf};

/// A refused TLS file or config.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read the TLS {what}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What it was meant to hold ("certificate", "private key"...).
        what: String,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A file's content was refused: not PEM, no certificate, a key that
    /// does not match, a certificate outside its dates...
    #[error("{}: {problem}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// rustls refused to build a config.
    #[error("{what}: {source}")]
    Config {
        /// Which config ("TLS client", "TLS server").
        what: &'static str,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// Files given together do not make what was asked (a pair needs two).
    #[error("{0}")]
    Files(String),
}

impl TlsError {
    /// `problem` with the content of `path`.
    pub fn content(path: &Path, problem: impl Into<String>) -> TlsError {
        TlsError::Content { path: path.to_path_buf(), problem: problem.into() }
    }
}
