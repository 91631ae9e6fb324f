//! The health gate: while a canary is configured, its own health endpoints
//! (`/api/v2/health`, and `/db` and `/memory` when present) are polled every
//! [`EVERY`]; consecutive failures are counted for the judge, which fails the
//! step after `[policy] health_failures` of them (3 by default). The verdict
//! line shows the last answer.
//!
//! A failure is no answer within [`TIMEOUT`], a status other than 2xx, or a
//! JSON body whose `status` says unhealthy. A 404 means the endpoint does not
//! exist: not counted either way, and with no `/api/v2/health` at all the
//! judge says "not reported" rather than passing it. A gRPC server answers
//! a path it does not serve with a `grpc-status` (UNIMPLEMENTED) rather than
//! a 404; that too means there is no such endpoint.

use super::probe::Probe;
use crate::cluster::Cluster;
use crate::live::Live;
use canary_core::judge::Health;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often the canary is asked.
pub const EVERY: Duration = Duration::from_secs(2);

/// How long one answer may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The endpoints, the first one required.
const CHECKS: [&str; 3] = ["/api/v2/health", "/api/v2/health/db", "/api/v2/health/memory"];

/// The latest health of the canary, and which canary it is about.
pub type Shared = Arc<Mutex<Option<(String, Health)>>>;

/// The canary's health if `url` is the canary it was measured on.
pub fn read(s: &Shared, url: Option<&str>) -> Option<Health> {
    let g = s.lock().unwrap_or_else(PoisonError::into_inner);
    g.as_ref().filter(|(u, _)| Some(u.as_str()) == url).map(|(_, h)| h.clone())
}

/// Polls the canary until the task is dropped; in a cluster, only while
/// this replica leads (only the leader judges).
pub async fn poll(live: Arc<Live>, out: Shared, client: Probe, cluster: Option<Arc<Cluster>>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if cluster.as_ref().is_some_and(|c| !c.is_leader()) {
            continue;
        }
        let Some(url) = live.upstreams().canary.as_ref().map(|c| c.url().to_string()) else {
            *out.lock().unwrap_or_else(PoisonError::into_inner) = None;
            continue;
        };
        let answer = check(&client, &url).await;
        let mut g = out.lock().unwrap_or_else(PoisonError::into_inner);
        // A new canary starts with a clean count.
        let mut h = g.take().filter(|(u, _)| *u == url).map(|(_, h)| h).unwrap_or_default();
        match answer {
            Answer::Absent => *g = None,
            Answer::Healthy(last) => {
                (h.failures, h.last) = (0, last);
                *g = Some((url, h));
            }
            Answer::Failed(last) => {
                (h.failures, h.last) = (h.failures + 1, last);
                *g = Some((url, h));
            }
        }
    }
}

enum Answer {
    /// No health endpoint at all.
    Absent,
    Healthy(String),
    Failed(String),
}

async fn check(client: &Probe, base: &str) -> Answer {
    let mut seen = Vec::new();
    for (i, path) in CHECKS.iter().enumerate() {
        match ask(client, &format!("{base}{path}")).await {
            Err(why) => return Answer::Failed(format!("{path}: {why}")),
            Ok((404, _)) if i == 0 => return Answer::Absent,
            Ok((404, _)) => {}
            Ok((status, body)) if !(200..300).contains(&status) || unhealthy(&body) => {
                return Answer::Failed(format!("{path} {status} {}", short(&body)));
            }
            Ok((status, _)) => seen.push(format!("{path} {status}")),
        }
    }
    Answer::Healthy(seen.join(", "))
}

async fn ask(client: &Probe, url: &str) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let resp = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("unreachable: {e}"))?;
    // gRPC's "no such method" is this endpoint's 404.
    let status = if resp.headers().contains_key("grpc-status") { 404 } else { resp.status().as_u16() };
    let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
        .await
        .map_err(|_| format!("body not read within {TIMEOUT:?}"))?
        .map_err(|e| format!("body cut: {e}"))?;
    Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
}

/// A 2xx whose JSON `status` still says something is wrong.
fn unhealthy(body: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    matches!(v["status"].as_str(), Some("unhealthy" | "down" | "fail" | "error"))
}

fn short(body: &str) -> String {
    let t = body.trim();
    let cut = (0..=t.len().min(120)).rev().find(|&i| t.is_char_boundary(i)).unwrap_or(0);
    t[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_can_still_say_unhealthy() {
        assert!(unhealthy(r#"{"status":"unhealthy"}"#));
        assert!(!unhealthy(r#"{"status":"healthy"}"#));
        assert!(!unhealthy("not json"));
        assert_eq!(short(&"x".repeat(500)).len(), 120);
    }
}
