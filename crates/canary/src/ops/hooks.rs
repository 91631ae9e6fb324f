//! Running hooks: a shell command (the event in its environment) or a webhook
//! (a JSON POST with a Slack-compatible `text`), each attempt bounded by the
//! hook's timeout, retried on failure.

use super::OpsEvent;
use super::config::{Hook, HookAction};
use super::error::ActionError;
use bytes::Bytes;
use canary_core::event::EventKind;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Runs `hook` for `e`; the error says what the last attempt did.
pub async fn run(hook: &Hook, e: &OpsEvent) -> Result<(), ActionError> {
    let mut last = ActionError::Timeout(hook.timeout);
    for attempt in 0..=hook.retries {
        match tokio::time::timeout(hook.timeout, once(hook, e)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => last = err,
            Err(_) => last = ActionError::Timeout(hook.timeout),
        }
        if attempt < hook.retries {
            tokio::time::sleep(Duration::from_millis(200 * (u64::from(attempt) + 1))).await;
        }
    }
    Err(ActionError::Attempts { hook: hook.describe(), attempts: hook.retries + 1, last: Box::new(last) })
}

async fn once(hook: &Hook, e: &OpsEvent) -> Result<(), ActionError> {
    match &hook.action {
        HookAction::Command(c) => command(&["sh", "-c", c.as_str()], e).await,
        HookAction::Program(p) => command(&p.iter().map(String::as_str).collect::<Vec<_>>(), e).await,
        HookAction::Webhook(u) => webhook(u, e).await,
    }
}

async fn command(argv: &[&str], e: &OpsEvent) -> Result<(), ActionError> {
    let (prog, args) = argv.split_first().ok_or(ActionError::EmptyCommand)?;
    let out = tokio::process::Command::new(prog)
        .args(args)
        .env("CANARY_EVENT", e.kind.as_str())
        .env("CANARY_EVENT_JSON", payload(e).to_string())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ActionError::Spawn { git: false, source })?;
    if out.status.success() {
        Ok(())
    } else {
        let tail: String = String::from_utf8_lossy(&out.stderr).chars().take(300).collect();
        Err(ActionError::Exited { status: out.status, stderr: tail.trim().to_string() })
    }
}

async fn webhook(url: &str, e: &OpsEvent) -> Result<(), ActionError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(payload(e).to_string())))
        .map_err(ActionError::Request)?;
    let resp = client.request(req).await.map_err(ActionError::Send)?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() { Ok(()) } else { Err(ActionError::Status(status)) }
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
