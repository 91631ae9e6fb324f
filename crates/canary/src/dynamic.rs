//! The dynamic config file (S16): read at start, then re-read when its content
//! changes (checked every second) or on SIGHUP, without restarting anything.
//!
//! A file that fails to read or parse changes nothing: the last good config
//! stays, the reason is logged and shown at `GET /api/flags-file` and in
//! `/api/v2/health`. A file is applied once per distinct content (its hash is
//! persisted with the routing state), so after a restart an unchanged file does
//! not undo changes made through the API since it was applied; a file edited
//! while canary was down is applied at start, before the first request.

use crate::live::{Change, Live, Source};
use crate::store::now;
use canary_core::time::UnixMs;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The file's last load, for the admin API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagsStatus {
    /// The file watched, if any.
    pub path: Option<PathBuf>,
    /// When its content was last read successfully (ms since the epoch).
    pub loaded_at_ms: Option<UnixMs>,
    /// The hash of the content last applied.
    pub applied_hash: Option<String>,
    /// Why the last read failed, when it did; cleared by a good read.
    pub last_error: Option<String>,
    /// When that failure happened.
    pub error_at_ms: Option<UnixMs>,
}

/// Reads `path` and applies it if its content is new. The error names the
/// file and what is wrong with it.
pub fn load(path: &Path, live: &Live) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let rollout = live.routing().rollout.clone();
    let features =
        canary_core::flags::from_file(&text, &rollout).map_err(|e| format!("{}: {e}", path.display()))?;
    let hash = content_hash(&text);
    if live.flags_hash().as_deref() == Some(hash.as_str()) {
        live.flags.set_file(features);
        return Ok(false);
    }
    let flags =
        canary_core::dynamic::parse(&text, &rollout).map_err(|e| format!("{}: {e}", path.display()))?;
    let change = Change {
        share: Some(flags.effective_share()),
        excludes: Some(flags.excludes),
        flags_hash: Some(hash),
        // A rolled-back canary stays blocked: a file cannot say "force".
        ..Change::default()
    };
    live.apply(change, Source::FlagsFile).map_err(|e| format!("{}: not applied: {e}", path.display()))?;
    live.flags.set_file(features);
    Ok(true)
}

/// Loads and records the outcome in `status`.
pub fn reload(path: &Path, live: &Live, status: &Mutex<FlagsStatus>) {
    let result = load(path, live);
    let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(changed) => {
            if changed {
                tracing::info!(file = %path.display(), share = %live.routing().share, "dynamic config applied");
            }
            st.loaded_at_ms = Some(now());
            st.applied_hash = live.flags_hash();
            st.last_error = None;
            st.error_at_ms = None;
        }
        Err(e) => {
            if st.last_error.as_deref() != Some(e.as_str()) {
                tracing::warn!(error = %e, "dynamic config refused; the last good config stays");
            }
            st.last_error = Some(e);
            st.error_at_ms = Some(now());
        }
    }
}

/// Watches `path` until the task is dropped: reloads when its modification
/// time or size changes, and on SIGHUP.
pub async fn watch(path: PathBuf, live: Arc<Live>, status: Arc<Mutex<FlagsStatus>>) {
    // No stamp yet, so the first tick (at once) re-reads the file: it may have
    // changed between the load at start and this task's first run, and a
    // content already applied costs a read and a hash, nothing more.
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut hup = hangup();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = stamp(&path);
                if now == last { continue; }
                last = now;
            }
            _ = next_hangup(&mut hup) => tracing::info!("SIGHUP: reloading the dynamic config"),
        }
        let (p, l, s) = (path.clone(), Arc::clone(&live), Arc::clone(&status));
        // Applying fsyncs the state file; keep it off the async thread.
        let _ = tokio::task::spawn_blocking(move || reload(&p, &l, &s)).await;
    }
}

fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup() -> Hangup {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    None
}

async fn next_hangup(h: &mut Hangup) {
    match h {
        #[cfg(unix)]
        Some(s) => {
            s.recv().await;
        }
        _ => std::future::pending::<()>().await,
    }
}

/// A stable content hash (murmur3 x64 128), hex.
pub fn content_hash(text: &str) -> String {
    let (a, b) = mur3::murmurhash3_x64_128(text.as_bytes(), 0);
    format!("{a:016x}{b:016x}")
}
