//! Which thresholds `canary monitor` judges by, and where they came from: a
//! config file's `[policy]` (`--config`), else the running server's thresholds
//! in force when monitor reads that server's own figures, else the seed's.

use super::AdminArgs;
use super::client::Admin;
use crate::config;
use crate::controller::api::Thresholds;
use crate::exit::{Exit, fail};
use canary_core::judge::Policy;
use http::Method;
use std::path::Path;

/// A policy and where it came from, as monitor says it.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The thresholds.
    pub policy: Policy,
    /// Where they came from, in words: "FILE [policy]", "the running server at URL", "the seed's defaults".
    pub from: String,
}

/// `--config FILE` if given; else the server's when `from_server`; else the seed's.
pub fn choose(config: Option<&Path>, from_server: bool, admin: &AdminArgs) -> Result<Chosen, Exit> {
    match config {
        Some(file) => from_file(file),
        None if from_server => from_running_server(admin),
        None => Ok(Chosen { policy: Policy::default(), from: "the seed's defaults".into() }),
    }
}

fn from_file(file: &Path) -> Result<Chosen, Exit> {
    let policy =
        config::load_policy(file).map_err(|e| fail(Exit::BadInput, "monitor", format!("--config {e}")))?;
    Ok(Chosen { policy, from: format!("{} [policy]", file.display()) })
}

/// The thresholds in force on the server (`GET /api/rollout`): after a reload
/// they are the reloaded file's, which no copy of the file on this machine
/// can be trusted to match.
fn from_running_server(admin: &AdminArgs) -> Result<Chosen, Exit> {
    let url = admin.admin.trim_end_matches('/');
    let cannot = |why: String| {
        let why = format!(
            "cannot read the thresholds in force: {why}; pass --config FILE to judge by a file's [policy]"
        );
        fail(Exit::CannotTell, "monitor", why)
    };
    let v = match Admin::from(admin).call(Method::GET, "/api/rollout", None) {
        Ok((200, v)) => v,
        Ok((status, v)) => return Err(cannot(format!("{url}/api/rollout answered {status}: {v}"))),
        Err(e) => return Err(cannot(e.to_string())),
    };
    match serde_json::from_value::<Thresholds>(v["thresholds"].clone()) {
        Ok(t) => Ok(Chosen { policy: t.policy(), from: format!("the running server at {url}") }),
        Err(e) => Err(cannot(format!("{url}/api/rollout has no usable `thresholds` ({e})"))),
    }
}

/// The thresholds monitor applies, in one line.
pub fn describe(p: &Policy) -> String {
    format!(
        "error rate < {}% (rollback above {}%), p95 < {} ms (rollback above {} ms), memory < {}%, CPU < {}%, DB pool < {}%",
        p.max_error_rate,
        p.rollback_error_rate,
        p.max_p95_ms,
        p.rollback_p95_ms,
        p.max_memory,
        p.max_cpu,
        p.max_db_connections
    )
}
