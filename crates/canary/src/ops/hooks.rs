//! Running hooks: a shell command (the event in its environment) or a webhook
//! (a JSON POST with a Slack-compatible `text`), each attempt bounded by the
//! hook's timeout, retried on failure.

use super::OpsEvent;
use super::config::{Hook, HookAction};
use bytes::Bytes;
use canary_core::event::EventKind;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Runs `hook` for `e`; the error says what the last attempt did.
pub async fn run(hook: &Hook, e: &OpsEvent) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..=hook.retries {
        match tokio::time::timeout(hook.timeout, once(hook, e)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => last = err,
            Err(_) => last = format!("timed out after {:?}", hook.timeout),
        }
        if attempt < hook.retries {
            tokio::time::sleep(Duration::from_millis(200 * (u64::from(attempt) + 1))).await;
        }
    }
    Err(format!("{} failed after {} attempts: {last}", hook.describe(), hook.retries + 1))
}

async fn once(hook: &Hook, e: &OpsEvent) -> Result<(), String> {
    match &hook.action {
        HookAction::Command(c) => command(&["sh", "-c", c.as_str()], e).await,
        HookAction::Program(p) => command(&p.iter().map(String::as_str).collect::<Vec<_>>(), e).await,
        HookAction::Webhook(u) => webhook(u, e).await,
    }
}

async fn command(argv: &[&str], e: &OpsEvent) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let out = tokio::process::Command::new(prog)
        .args(args)
        .env("CANARY_EVENT", e.kind.as_str())
        .env("CANARY_EVENT_JSON", payload(e).to_string())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|err| format!("cannot run: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let tail: String = String::from_utf8_lossy(&out.stderr).chars().take(300).collect();
        Err(format!("exited with {}: {}", out.status, tail.trim()))
    }
}

async fn webhook(url: &str, e: &OpsEvent) -> Result<(), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(payload(e).to_string())))
        .map_err(|err| err.to_string())?;
    let resp = client.request(req).await.map_err(|err| err.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
}

/// The event as sent: `event`, `detail`, `rollout`, and `text` for chat tools.
pub fn payload(e: &OpsEvent) -> serde_json::Value {
    let text = format!(
        "canary: rollout {} {} (share {}%){}",
        e.rollout.id,
        e.kind.as_str().replace('_', " "),
        e.detail["share"],
        e.detail["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default()
    );
    json!({"event": e.kind, "text": text, "detail": e.detail, "rollout": e.rollout})
}

/// The seed's `gh issue create` for a rollback, with the record as the body.
pub fn gh_issue(record: &Path) -> Hook {
    let argv = ["gh", "issue", "create", "--title", "[Rollback] v2 API deployment rollback", "--body-file"];
    let mut program: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    program.push(record.display().to_string());
    Hook {
        events: vec![EventKind::RolledBack.as_str().into()],
        action: HookAction::Program(program),
        timeout: Duration::from_secs(30),
        retries: 1,
    }
}
