//! `kill -HUP`: the TOML config file read again without a restart.
//!
//! What a running process takes over at once is the controller's part: the
//! judge's thresholds (`[policy]`), `[controls]`, the default `[plan]` and the
//! deployment `[windows]`. A rollout in progress keeps the plan it started
//! with and is judged by the new thresholds from its next evaluation.
//!
//! Everything else is wired into listeners, threads and the state file at
//! start (addresses, upstreams, routing, proxy limits, tokens, hooks...). A
//! file that changes any of it is refused as a whole, naming what needs a
//! restart, so a reload never half-applies. A file that does not parse or
//! validate is refused the same way. A refusal keeps the running
//! configuration, and is logged and recorded as an event, as is a reload.
//! The dynamic config file (`--flags`) is reloaded on the same signal by its
//! own watcher (see `dynamic.rs`), and the listeners' TLS certificates and keys
//! are read again (see `tls::rotate`).

use crate::config::{self, ConfigSource, ServeConfig, differs};
use crate::controller::{self, Controller};
use crate::live::Live;
use crate::tls::rotate::Rotation;
use canary_core::event::EventKind;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

/// What one reload did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Taken over; the sections that changed (possibly none).
    Applied(Vec<&'static str>),
    /// Refused; the running configuration stays.
    Refused(String),
}

/// Reloads on every SIGHUP `hup` delivers until the runtime stops. The
/// signal stream is made by the caller before canary reports itself ready, so
/// a SIGHUP never meets the default action (ending the process).
pub async fn watch(
    mut hup: tokio::signal::unix::Signal,
    running: ServeConfig,
    controller: Arc<Mutex<Controller>>,
    live: Arc<Live>,
    tls: Vec<Arc<Rotation>>,
) {
    let mut running = running;
    while hup.recv().await.is_some() {
        for pair in &tls {
            pair.reload("sighup", &live);
        }
        let Some(src) = running.source.clone() else {
            tracing::info!("SIGHUP: no --config file to reload");
            continue;
        };
        let outcome = reload(&src, &mut running, &controller);
        report(&src, &outcome, &live);
    }
}

/// Reads `src` again and applies it to `running` and the controller if allowed.
pub fn reload(src: &ConfigSource, running: &mut ServeConfig, controller: &Mutex<Controller>) -> Outcome {
    let new = match config::load(Some(&src.file), &src.cli) {
        Ok(c) => c,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let fixed = restart_only_changes(running, &new);
    if !fixed.is_empty() {
        return Outcome::Refused(format!(
            "{} changed, which takes a restart of canary serve; nothing was applied",
            fixed.join(", ")
        ));
    }
    let changed = controller::lock(controller).reconfigure(&new);
    *running = new;
    Outcome::Applied(changed)
}

fn report(src: &ConfigSource, outcome: &Outcome, live: &Live) {
    let file = src.file.display().to_string();
    let (kind, detail) = match outcome {
        Outcome::Applied(changed) => {
            tracing::info!(file = %file, changed = ?changed, "SIGHUP: config reloaded");
            crate::say!("canary: config {file} reloaded; changed: {}", list(changed));
            (EventKind::ConfigReloaded, serde_json::json!({"file": file, "changed": changed}))
        }
        Outcome::Refused(why) => {
            tracing::error!(file = %file, reason = %why, "SIGHUP: config reload refused; the running config stays");
            crate::say!("canary: config reload refused, the running config stays: {why}");
            (EventKind::ConfigReloadRefused, serde_json::json!({"file": file, "reason": why}))
        }
    };
    if let Err(e) = live.store().record(kind, "sighup", &detail) {
        tracing::warn!(error = %e, "cannot record the reload in the state file");
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() { "nothing".into() } else { names.join(", ") }
}

/// The sections, by their names in the file, that differ and cannot change
/// while running.
fn restart_only_changes(old: &ServeConfig, new: &ServeConfig) -> Vec<&'static str> {
    let fields: [(&'static str, bool); 22] = [
        ("listen", differs(&old.listen, &new.listen)),
        ("admin", differs(&old.admin, &new.admin)),
        ("state", differs(&old.state, &new.state)),
        ("flags", differs(&old.flags, &new.flags)),
        ("rollout", differs(&old.rollout, &new.rollout)),
        (
            "[upstreams]",
            differs(&old.stable, &new.stable)
                || differs(&old.canary, &new.canary)
                || differs(&old.upstream_tls, &new.upstream_tls),
        ),
        ("[tls]", differs(&old.tls, &new.tls)),
        ("[admin_tls]", differs(&old.admin_tls, &new.admin_tls)),
        ("routing.share", differs(&old.share, &new.share)),
        ("routing.exclude", differs(&old.excludes, &new.excludes)),
        ("routing.user_header / user_cookie", differs(&old.user_key, &new.user_key)),
        ("routing.version_header", differs(&old.version_header, &new.version_header)),
        ("routing.upgraded_on_rollback", differs(&old.upgraded_on_rollback, &new.upgraded_on_rollback)),
        ("[proxy]", differs(&old.proxy, &new.proxy)),
        ("[metrics]", differs(&old.routes, &new.routes) || differs(&old.max_routes, &new.max_routes)),
        ("admin_token", differs(&old.admin_token, &new.admin_token)),
        ("viewer_token", differs(&old.viewer_token, &new.viewer_token)),
        ("hooks, incidents, contacts, release, reports or checklist", differs(&old.ops, &new.ops)),
        ("[analysis]", differs(&old.analysis, &new.analysis)),
        ("[logs]", differs(&old.logs, &new.logs)),
        ("[access_log]", differs(&old.access_log, &new.access_log)),
        ("[tracing]", differs(&old.tracing, &new.tracing)),
    ];
    fields.into_iter().filter(|(_, d)| *d).map(|(name, _)| name).collect()
}
