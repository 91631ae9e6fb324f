//! Files put in service without a restart: a listener's certificate and key,
//! or the CA file upstreams are verified against, read again when they change
//! (checked every [`EVERY`]) or on SIGHUP.
//!
//! The files' content is compared, not their mtime: a copy that keeps the
//! old mtime, or two writes within one timestamp tick, still count. A change
//! is applied once the content has stayed the same for one check, so a
//! certificate and key written one after the other are read as the pair they
//! end up as, not as the new certificate beside the old key. Content that
//! does not load (unreadable, not PEM, a key not matching, a certificate out
//! of its validity dates) keeps what is in service; either outcome is logged
//! and recorded as an event (for a listener's pair `tls_reloaded` and
//! `tls_reload_failed`, for the upstreams' CA file `upstream_ca_reloaded`
//! and `upstream_ca_reload_failed`), once per distinct content.

use crate::live::Live;
use canary_proxy::tls::Reloadable;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often the files are read to see whether they changed.
pub const EVERY: Duration = Duration::from_secs(1);

/// Files kept in service, and what was last read of them.
#[derive(Debug)]
pub struct Rotation {
    what: Arc<dyn Reloadable>,
    seen: Mutex<Seen>,
}

/// Fingerprints of the files' content: the last one acted on, and the one
/// read at the previous check.
#[derive(Debug, Clone, Copy)]
struct Seen {
    handled: u64,
    previous: u64,
    /// The content handled was refused as not valid yet: it is tried again
    /// every look, quietly, and taken once its dates begin (a certificate
    /// issued a moment ahead of this machine's clock, a CA that does not
    /// backdate), without waiting for the files to change.
    waiting: bool,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The new content serves new connections.
    Reloaded,
    /// What was in service stays; why the new content was refused.
    Kept(String),
}

/// Every file as read (or why not), for fingerprinting and loading alike.
type Read = Vec<Result<Vec<u8>, String>>;

impl Rotation {
    /// Loads the files for the first time; the error names the file at fault.
    pub fn start(what: Arc<dyn Reloadable>) -> Result<Arc<Rotation>, String> {
        let read = read(&*what);
        let print = fingerprint(&read);
        install(&*what, read)?;
        let seen = Seen { handled: print, previous: print, waiting: false };
        Ok(Arc::new(Rotation { what, seen: Mutex::new(seen) }))
    }

    /// Reads the files again now (SIGHUP), whether or not they changed.
    pub fn reload(&self, source: &str, live: &Live) -> Outcome {
        let read = read(&*self.what);
        let print = fingerprint(&read);
        self.apply(read, print, source, live)
    }

    /// Checks the files every [`EVERY`] until the task is dropped.
    pub async fn watch(self: Arc<Self>, live: Arc<Live>) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let read = read(&*self.what);
            let print = fingerprint(&read);
            let (due, waiting) = {
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let due = print != seen.handled && print == seen.previous;
                seen.previous = print;
                (due, seen.waiting && print == seen.handled)
            };
            if due {
                self.apply(read, print, "file-watch", &live);
            } else if waiting && install(&*self.what, read).is_ok() {
                self.seen.lock().unwrap_or_else(PoisonError::into_inner).waiting = false;
                report(&*self.what, &Outcome::Reloaded, "file-watch", &live);
            }
            if let Some((kind, why)) = self.what.lapsed(jiff::Timestamp::now()) {
                report_lapse(&*self.what, kind, &why, &live);
            }
        }
    }

    fn apply(&self, read: Read, print: u64, source: &str, live: &Live) -> Outcome {
        let outcome = match install(&*self.what, read) {
            Ok(()) => Outcome::Reloaded,
            Err(why) => Outcome::Kept(why),
        };
        let waiting = matches!(&outcome, Outcome::Kept(why) if why.contains(canary_proxy::tls::validity::NOT_YET_VALID));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        (seen.handled, seen.waiting) = (print, waiting);
        drop(seen);
        report(&*self.what, &outcome, source, live);
        outcome
    }
}

fn read(what: &dyn Reloadable) -> Read {
    // Kept as text: what was read, errors included, is fingerprinted.
    let read = |(path, holds)| canary_proxy::tls::pair::read(path, holds).map_err(|e| e.to_string());
    what.files().into_iter().map(read).collect()
}

fn install(what: &dyn Reloadable, read: Read) -> Result<(), String> {
    let content = read.into_iter().collect::<Result<Vec<_>, _>>()?;
    what.install(&content).map_err(|e| e.to_string())
}

/// A hash of what was read, errors included, so "still unreadable" is no change.
fn fingerprint(read: &Read) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    read.hash(&mut h);
    h.finish()
}

fn report_lapse(what: &dyn Reloadable, kind: &str, why: &str, live: &Live) {
    let name = what.name();
    tracing::error!(what = %name, reason = %why, "what is in service has lapsed");
    crate::say!("canary: {name}: {why}");
    let mut detail = what.event().2;
    detail["reason"] = serde_json::json!(why);
    if let Err(e) = live.store().record(kind, "file-watch", &detail) {
        tracing::warn!(error = %e, "cannot record the lapse in the state file");
    }
}

fn report(what: &dyn Reloadable, outcome: &Outcome, source: &str, live: &Live) {
    let (done, refused, mut detail) = what.event();
    let name = what.name();
    let kind = match outcome {
        Outcome::Reloaded => {
            tracing::info!(what = %name, source, "reloaded");
            crate::say!("canary: {name} reloaded");
            done
        }
        Outcome::Kept(why) => {
            tracing::error!(what = %name, reason = %why, source, "reload failed; the one in service stays");
            crate::say!("canary: reloading {name} failed, the one in service stays: {why}");
            detail["reason"] = serde_json::json!(why);
            refused
        }
    };
    if let Err(e) = live.store().record(kind, source, &detail) {
        tracing::warn!(error = %e, "cannot record the reload in the state file");
    }
}
