//! `canary health <url>` (S8): checks `/api/v2/health`, `/api/v2/health/db` and
//! `/api/v2/health/memory`. A table on a terminal, `--json` for scripts.
//! Exit 0 healthy; 1 unhealthy or degraded; 2 unreachable, or an answer that
//! is not the expected shape (a JSON object with a `status`), saying which.

use super::client::{Fetched, fetch};
use crate::exit::{Exit, fail};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The three checks, in order.
const CHECKS: [&str; 3] = ["/api/v2/health", "/api/v2/health/db", "/api/v2/health/memory"];

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The endpoint.
    pub endpoint: String,
    /// healthy, degraded, unhealthy, unreachable or bad_answer.
    pub result: String,
    /// The HTTP status, if it answered.
    pub status: Option<u16>,
    /// What it said, or what went wrong.
    pub detail: String,
}

/// `canary health URL`: checks `--timeout` (seconds), runs the checks and prints them.
pub fn run(url: &str, json: bool, timeout: f64, retries: u32, ca_file: Option<&Path>) -> Exit {
    if !(timeout > 0.0 && timeout < 3600.0) {
        return fail(
            Exit::BadInput,
            "health",
            format!("--timeout {timeout}: give seconds above 0 and below 3600"),
        );
    }
    // A CA file that cannot be used is the caller's input at fault, said
    // once, rather than three unreachable checks.
    if let Err(e) = super::tls::client(url, ca_file) {
        return fail(Exit::BadInput, "health", e);
    }
    let timeout = Duration::from_secs_f64(timeout);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::CannotTell, "health", e),
    };
    let base = url.trim_end_matches('/');
    let checks: Vec<Check> = rt.block_on(async {
        let mut out = Vec::new();
        for path in CHECKS {
            out.push(check(&format!("{base}{path}"), path, timeout, retries, ca_file).await);
        }
        out
    });
    if json {
        crate::say!("{}", serde_json::json!({"url": base, "overall": overall(&checks).0, "checks": checks}));
    } else {
        crate::say!("{:<24} {:<12} {:<6} detail", "check", "result", "status");
        for c in &checks {
            crate::say!(
                "{:<24} {:<12} {:<6} {}",
                c.endpoint,
                c.result,
                c.status.map_or("-".into(), |s| s.to_string()),
                c.detail
            );
        }
        crate::say!("overall: {}", overall(&checks).0);
    }
    let (word, exit) = overall(&checks);
    if exit != Exit::Done {
        // The table says which check; stderr says why the exit is not 0.
        eprintln!("canary health: {base}: {word}");
    }
    exit
}

fn overall(checks: &[Check]) -> (&'static str, Exit) {
    let any = |r: &str| checks.iter().any(|c| c.result == r);
    if any("unreachable") || any("bad_answer") {
        ("could not check", Exit::CannotTell)
    } else if any("unhealthy") || any("degraded") {
        ("unhealthy", Exit::No)
    } else {
        ("healthy", Exit::Done)
    }
}

async fn check(url: &str, path: &str, timeout: Duration, retries: u32, ca_file: Option<&Path>) -> Check {
    let mut last = String::new();
    for attempt in 0..=retries {
        match fetch(url, timeout, ca_file).await {
            Ok(f) => return judge(path, &f),
            Err(e) => last = e,
        }
        if attempt < retries {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Check { endpoint: path.into(), result: "unreachable".into(), status: None, detail: last }
}

fn judge(path: &str, f: &Fetched) -> Check {
    let mk = |result: &str, detail: String| Check {
        endpoint: path.into(),
        result: result.into(),
        status: Some(f.status),
        detail,
    };
    let v = match &f.json {
        Ok(v) => v,
        Err(e) => return mk("bad_answer", e.clone()),
    };
    let Some(status) = v.get("status").and_then(Value::as_str) else {
        return mk("bad_answer", format!("no `status` field in {}", truncate(&v.to_string())));
    };
    let word = match status.to_ascii_lowercase().as_str() {
        "healthy" | "ok" | "up" | "pass" if f.status < 400 => "healthy",
        "degraded" | "warn" => "degraded",
        _ => "unhealthy",
    };
    mk(word, truncate(&v.to_string()))
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 100 {
        format!("{}...", s.chars().take(100).collect::<String>())
    } else {
        s.to_string()
    }
}
