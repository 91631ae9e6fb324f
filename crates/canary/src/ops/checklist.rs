//! The pre-deploy checklist (S17): configured checks, each a command with a
//! timeout (a test suite, `gh pr view --json reviews ...`) or a manual item a
//! person confirms by name. `deploy` runs it first and refuses on a failure
//! unless forced with a reason; the results go into the rollout's history.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One item as configured (`[[checklist]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// What it checks, e.g. "all tests pass".
    pub name: String,
    /// A shell command that must exit 0.
    pub command: Option<String>,
    /// A person must confirm it (`--confirm NAME`).
    #[serde(default)]
    pub manual: bool,
    /// For a command, e.g. `10m` (default 5m).
    pub timeout: Option<String>,
}

/// One item's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemResult {
    /// Its name.
    pub name: String,
    /// Passed.
    pub passed: bool,
    /// Exit status, confirmation, or why it failed.
    pub detail: String,
    /// How long it took.
    pub seconds: f64,
}

impl Item {
    /// Checks the item makes sense; the error names it.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.command, self.manual) {
            (Some(_), false) | (None, true) => {}
            _ => {
                return Err(format!(
                    "`checklist` item `{}`: give either `command` or `manual = true`",
                    self.name
                ));
            }
        }
        if let Some(t) = &self.timeout {
            canary_core::plan::parse_duration_ms(t)
                .map_err(|e| format!("`checklist` item `{}`: timeout: {e}", self.name))?;
        }
        Ok(())
    }
}

/// Runs every item in order; `confirmed` names the manual items a person confirmed.
pub async fn run(items: &[Item], confirmed: &[String]) -> Vec<ItemResult> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let start = Instant::now();
        let (passed, detail) = match &item.command {
            Some(cmd) => command(cmd, timeout(item)).await,
            None if confirmed.iter().any(|c| c == &item.name) => (true, "confirmed".to_string()),
            None => (false, format!("not confirmed: pass --confirm \"{}\"", item.name)),
        };
        out.push(ItemResult {
            name: item.name.clone(),
            passed,
            detail,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    out
}

fn timeout(item: &Item) -> Duration {
    let ms =
        item.timeout.as_deref().and_then(|t| canary_core::plan::parse_duration_ms(t).ok()).unwrap_or(300_000);
    Duration::from_millis(ms.max(1))
}

async fn command(cmd: &str, limit: Duration) -> (bool, String) {
    let child = tokio::process::Command::new("sh").args(["-c", cmd]).kill_on_drop(true).output();
    match tokio::time::timeout(limit, child).await {
        Err(_) => (false, format!("timed out after {limit:?}")),
        Ok(Err(e)) => (false, format!("cannot run: {e}")),
        Ok(Ok(out)) if out.status.success() => (true, "exit 0".to_string()),
        Ok(Ok(out)) => {
            let tail: String = String::from_utf8_lossy(&out.stderr)
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            (false, format!("{}: {}", out.status, tail.trim()))
        }
    }
}

/// Whether every item passed.
pub fn all_passed(results: &[ItemResult]) -> bool {
    results.iter().all(|r| r.passed)
}
