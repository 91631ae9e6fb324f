//! The two versions canary routes between.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which upstream a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// The version in production that takes whatever the canary does not.
    Stable,
    /// The new version under trial.
    Canary,
}

impl Version {
    /// Both versions, stable first; the order used wherever both are listed.
    pub const ALL: [Version; 2] = [Version::Stable, Version::Canary];

    /// The lowercase name used in headers, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Stable => "stable",
            Version::Canary => "canary",
        }
    }

    /// A dense index (stable 0, canary 1) for per-version arrays.
    pub fn index(self) -> usize {
        match self {
            Version::Stable => 0,
            Version::Canary => 1,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
