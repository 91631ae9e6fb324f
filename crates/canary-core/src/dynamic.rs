//! The seed's dynamic config (S16), changed without a redeploy:
//!
//! ```json
//! {"v2-api-canary": {"enabled": true, "percentage": 10,
//!                    "excludePatterns": ["/api/admin/*", "/api/internal/*"]}}
//! ```
//!
//! The entry named after the rollout sets the canary's share (0 when disabled) and
//! the excluded paths. Other top-level entries are left for feature flags. Parsing
//! is all-or-nothing: a file with any error changes nothing.

use crate::exclude::Excludes;
use crate::share::Share;
use serde::Deserialize;

/// What one valid dynamic config file says about the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutFlags {
    /// Whether the canary takes traffic at all.
    pub enabled: bool,
    /// The share when enabled.
    pub percentage: Share,
    /// Paths that always go to stable.
    pub excludes: Excludes,
}

impl RolloutFlags {
    /// The share the router should use: the percentage, or 0 when disabled.
    pub fn effective_share(&self) -> Share {
        if self.enabled { self.percentage } else { Share::ZERO }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    enabled: bool,
    percentage: Share,
    #[serde(default)]
    exclude_patterns: Vec<String>,
}

/// Why a dynamic config file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DynamicError {
    /// Not JSON, or the entry has the wrong shape.
    #[error("{0}")]
    Json(String),
    /// The file has no entry for this rollout.
    #[error(
        "no entry named `{0}` at the top level; expected {{\"{0}\": {{\"enabled\": true, \"percentage\": 10, \"excludePatterns\": []}}}}"
    )]
    Missing(String),
    /// An exclude pattern is bad.
    #[error("`{rollout}.excludePatterns`: {reason}")]
    Exclude {
        /// The rollout's entry.
        rollout: String,
        /// What is wrong with the pattern.
        reason: String,
    },
}

/// Parses the file's text and extracts the entry for `rollout`.
pub fn parse(text: &str, rollout: &str) -> Result<RolloutFlags, DynamicError> {
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| DynamicError::Json(format!("not a JSON object: {e}")))?;
    let value = doc.get(rollout).ok_or_else(|| DynamicError::Missing(rollout.to_string()))?;
    let entry = Entry::deserialize(value).map_err(|e| DynamicError::Json(format!("`{rollout}`: {e}")))?;
    let excludes = Excludes::new(&entry.exclude_patterns)
        .map_err(|e| DynamicError::Exclude { rollout: rollout.to_string(), reason: e.to_string() })?;
    Ok(RolloutFlags { enabled: entry.enabled, percentage: entry.percentage, excludes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"v2-api-canary": {"enabled": true, "percentage": 10,
        "excludePatterns": ["/api/admin/*", "/api/internal/*"]}}"#;

    #[test]
    fn reads_the_seed_example() {
        let f = parse(SEED, "v2-api-canary").unwrap();
        assert_eq!(f.effective_share(), Share::from_percent(10.0).unwrap());
        assert!(f.excludes.matches("/api/internal/jobs"));
    }

    #[test]
    fn disabled_means_zero() {
        let f = parse(r#"{"r": {"enabled": false, "percentage": 40}}"#, "r").unwrap();
        assert_eq!(f.effective_share(), Share::ZERO);
    }

    #[test]
    fn refuses_what_is_wrong_and_says_where() {
        let e = |t: &str| parse(t, "r").unwrap_err().to_string();
        assert!(e("{").contains("not a JSON object"));
        assert!(e(r#"{"x": {}}"#).contains("no entry named `r`"));
        assert!(e(r#"{"r": {"enabled": true, "percentage": 150}}"#).contains("outside 0..100"));
        assert!(
            e(r#"{"r": {"enabled": true, "percentage": 5, "percent": 1}}"#)
                .contains("unknown field `percent`")
        );
        assert!(
            e(r#"{"r": {"enabled": true, "percentage": 5, "excludePatterns": ["/a/[x"]}}"#)
                .contains("excludePatterns")
        );
    }
}
