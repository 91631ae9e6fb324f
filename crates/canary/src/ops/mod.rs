//! What happens after the fact, around a rollout (S6, S7, S18, S20): hooks and
//! notifications on every event, the incident record after a rollback, the
//! release tag after a promotion, and the deployment report when a rollout
//! ends.
//!
//! # Layout
//! - [`checklist`]: the pre-deploy checklist (S17).
//! - [`config`]: the `[[hooks]]`, `[incidents]`, `[[contacts]]`, `[release]`, `[reports]` sections.
//! - [`error`]: why a report, an incident record or the summary could not be made.
//! - [`hooks`]: commands and webhooks, with timeouts and retries.
//! - [`incident`]: the markdown incident record.
//! - [`release`]: the annotated git tag.
//! - [`report`]: the deployment report, markdown or JSON.
//!
//! The controller hands each event to [`Outbox::send`], which never blocks: a
//! worker thread does the slow work, so a hanging hook cannot delay a
//! rollback. Every outcome (hook failed, incident written, tag made) is
//! recorded in the event log.

pub mod checklist;
pub mod config;
pub mod error;
pub mod hooks;
pub mod incident;
pub mod release;
pub mod report;
pub mod summary;

use crate::live::Live;
use canary_core::event::EventKind;
use canary_core::rollout::Rollout;
use config::OpsConfig;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// One event for the worker.
#[derive(Debug, Clone)]
pub struct OpsEvent {
    /// What happened.
    pub kind: EventKind,
    /// Its details.
    pub detail: Value,
    /// The rollout as it stood.
    pub rollout: Rollout,
}

/// The sending side; cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Outbox(UnboundedSender<OpsEvent>);

impl Outbox {
    /// Queues an event; if the worker is gone (shutting down), drops it.
    pub fn send(&self, e: OpsEvent) {
        let _ = self.0.send(e);
    }
}

/// Starts the worker thread; it ends when every [`Outbox`] is dropped.
pub fn spawn(cfg: Arc<OpsConfig>, live: Arc<Live>) -> std::io::Result<(Outbox, std::thread::JoinHandle<()>)> {
    let (tx, rx) = unbounded_channel();
    let t = std::thread::Builder::new().name("canary-ops".into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(work(cfg, live, rx)),
            Err(e) => tracing::error!(error = %e, "cannot start the ops worker"),
        }
    })?;
    Ok((Outbox(tx), t))
}

async fn work(cfg: Arc<OpsConfig>, live: Arc<Live>, mut rx: UnboundedReceiver<OpsEvent>) {
    let mut running = tokio::task::JoinSet::new();
    while let Some(e) = rx.recv().await {
        for hook in cfg.hooks.iter().filter(|h| h.wants(&e.kind)) {
            let (live, e, hook) = (Arc::clone(&live), e.clone(), hook.clone());
            running.spawn(async move {
                let result = hooks::run(&hook, &e).await;
                record(
                    &live,
                    if result.is_ok() { EventKind::HookOk } else { EventKind::HookFailed },
                    &e,
                    json!({"hook": hook.describe(), "result": result.err().map(|e| e.to_string())}),
                );
            });
        }
        match e.kind {
            EventKind::RolledBack => after_rollback(&cfg, &live, &e).await,
            EventKind::Promoted => after_promotion(&cfg, &live, &e).await,
            _ => {}
        }
        if matches!(e.kind, EventKind::RolledBack | EventKind::Promoted) {
            write_report(&cfg, &live, &e);
        }
        while running.try_join_next().is_some() {}
    }
    // Let hooks in flight finish (each is bounded by its timeout).
    while running.join_next().await.is_some() {}
}

async fn after_rollback(cfg: &OpsConfig, live: &Live, e: &OpsEvent) {
    match incident::write(cfg, live, &e.rollout) {
        Ok(path) => {
            record(live, EventKind::IncidentRecorded, e, json!({"path": path.display().to_string()}));
            if cfg.incidents.github {
                let hook = hooks::gh_issue(&path);
                let result = hooks::run(&hook, e).await;
                let kind = if result.is_ok() { EventKind::IncidentIssueFiled } else { EventKind::HookFailed };
                record(
                    live,
                    kind,
                    e,
                    json!({"hook": hook.describe(), "result": result.err().map(|e| e.to_string())}),
                );
            }
        }
        Err(err) => record(live, EventKind::IncidentFailed, e, json!({"error": err})),
    }
}

async fn after_promotion(cfg: &OpsConfig, live: &Live, e: &OpsEvent) {
    let Some(rel) = &cfg.release else { return };
    match release::tag(rel, &e.rollout).await {
        Ok(tag) => record(
            live,
            EventKind::ReleaseTagged,
            e,
            json!({"tag": tag, "repo": rel.repo.display().to_string(), "pushed": rel.push}),
        ),
        Err(err) => record(live, EventKind::ReleaseTagFailed, e, json!({"error": err.to_string()})),
    }
}

fn write_report(cfg: &OpsConfig, live: &Live, e: &OpsEvent) {
    match report::write(cfg, live, &e.rollout) {
        Ok(path) => record(live, EventKind::ReportWritten, e, json!({"path": path.display().to_string()})),
        Err(err) => record(live, EventKind::ReportFailed, e, json!({"error": err})),
    }
}

/// Records an outcome under the rollout it belongs to, so it shows in the timeline.
fn record(live: &Live, kind: EventKind, e: &OpsEvent, mut detail: Value) {
    detail["rollout"] = json!(e.rollout.id);
    detail["after"] = json!(e.kind);
    if let Err(err) = live.store().record(kind.clone(), "ops", &detail) {
        tracing::error!(error = %err, kind = kind.as_str(), "cannot record");
    }
}
