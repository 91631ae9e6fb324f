//! The `[logs]` section: how much of the request log `canary logs` reads is
//! kept in memory (see `canary_proxy::requests`).
//!
//! ```toml
//! [logs]
//! keep = "30m"            # failures older than this go
//! max_records = 100000    # failures kept per replica
//! max_bytes = 67108864    # about 64 MB per replica
//! sample = 0.01           # the share of other requests kept
//! ```

use super::{ConfigError, Origin};
use canary_core::plan::parse_duration_ms;
use canary_proxy::requests::{Keep, Limits};
use serde::Deserialize;

/// The `[logs]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLogs {
    keep: Option<String>,
    max_records: Option<usize>,
    max_bytes: Option<usize>,
    sample: Option<f64>,
}

/// What the request log keeps.
pub(super) fn keep(f: &FileLogs, o: &Origin<'_>) -> Result<Keep, ConfigError> {
    let d = Keep::default();
    let age_ms = match &f.keep {
        None => d.failures.age_ms,
        Some(s) => parse_duration_ms(s).map_err(|e| o.err(false, "logs.keep", "", e.to_string()))?,
    };
    let sample = f.sample.unwrap_or(d.sample);
    if !(0.0..=1.0).contains(&sample) {
        let why = format!("{sample} is not a share: use 0 (keep no successful request) to 1 (keep all)");
        return Err(o.err(false, "logs.sample", "", why));
    }
    let failures = Limits {
        age_ms,
        records: f.max_records.unwrap_or(d.failures.records),
        bytes: f.max_bytes.unwrap_or(d.failures.bytes),
    };
    Ok(Keep { failures, sample })
}
