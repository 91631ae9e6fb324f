//! Certificate rotation without a restart: the listener's pair is read again
//! when its files change (checked every [`EVERY`]) or on SIGHUP.
//!
//! The files' content is compared, not their mtime: a copy that keeps the
//! old mtime, or two writes within one timestamp tick, still count. A change
//! is applied once the content has stayed the same for one check, so a
//! certificate and key written one after the other are read as the pair they
//! end up as, not as the new certificate beside the old key. A pair that does
//! not load (unreadable, not PEM, key not matching) keeps the one in service;
//! either outcome is logged and recorded as an event (`tls_reloaded`,
//! `tls_reload_failed`), once per distinct content.

use super::listener::CertSlot;
use super::pair;
use crate::config::TlsFiles;
use crate::live::Live;
use rustls::crypto::CryptoProvider;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often the files are read to see whether they changed.
pub const EVERY: Duration = Duration::from_secs(1);

/// The listener's certificate files and the slot they are loaded into.
#[derive(Debug)]
pub struct Rotation {
    /// Which listener serves the pair ("proxy" or "admin"), for logs and events.
    listener: &'static str,
    files: TlsFiles,
    slot: Arc<CertSlot>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Seen>,
}

/// Fingerprints of the files' content: the last one acted on, and the one
/// read at the previous check.
#[derive(Debug, Clone, Copy)]
struct Seen {
    handled: u64,
    previous: u64,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The new pair serves new handshakes.
    Reloaded,
    /// The pair in service stays; why the new one was refused.
    Kept(String),
}

/// Both files as read (or why not), for fingerprinting and loading alike.
type Read = (Result<Vec<u8>, String>, Result<Vec<u8>, String>);

impl Rotation {
    /// Loads the pair for the first time; the error names the file at fault.
    pub fn start(files: &TlsFiles, listener: &'static str) -> Result<Arc<Rotation>, String> {
        let provider = super::provider();
        let read = read(files);
        let print = fingerprint(&read);
        let pair = load(files, read, &provider)?;
        Ok(Arc::new(Rotation {
            listener,
            files: files.clone(),
            slot: CertSlot::new(pair),
            provider,
            seen: Mutex::new(Seen { handled: print, previous: print }),
        }))
    }

    /// The slot the listener's handshakes take their certificate from.
    pub fn slot(&self) -> Arc<CertSlot> {
        Arc::clone(&self.slot)
    }

    /// Reads the pair again now (SIGHUP), whether or not the files changed.
    pub fn reload(&self, source: &str, live: &Live) -> Outcome {
        let read = read(&self.files);
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
            let read = read(&self.files);
            let print = fingerprint(&read);
            let due = {
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let due = print != seen.handled && print == seen.previous;
                seen.previous = print;
                due
            };
            if due {
                self.apply(read, print, "file-watch", &live);
            }
        }
    }

    fn apply(&self, read: Read, print: u64, source: &str, live: &Live) -> Outcome {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).handled = print;
        let outcome = match load(&self.files, read, &self.provider) {
            Ok(pair) => {
                self.slot.set(pair);
                Outcome::Reloaded
            }
            Err(why) => Outcome::Kept(why),
        };
        report(self.listener, &self.files, &outcome, source, live);
        outcome
    }
}

fn read(files: &TlsFiles) -> Read {
    (pair::read(&files.cert, "certificate"), pair::read(&files.key, "private key"))
}

fn load(
    files: &TlsFiles,
    read: Read,
    provider: &CryptoProvider,
) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let (cert, key) = (read.0?, read.1?);
    pair::from_pem(&files.cert, &cert, &files.key, &key, provider)
}

/// A hash of what was read, errors included, so "still unreadable" is no change.
fn fingerprint(read: &Read) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    read.hash(&mut h);
    h.finish()
}

fn report(listener: &str, files: &TlsFiles, outcome: &Outcome, source: &str, live: &Live) {
    let (cert, key) = (files.cert.display().to_string(), files.key.display().to_string());
    let (kind, detail) = match outcome {
        Outcome::Reloaded => {
            tracing::info!(listener, cert = %cert, key = %key, source, "TLS certificate reloaded");
            crate::say!("canary: TLS certificate {cert} ({listener} listener) reloaded");
            ("tls_reloaded", serde_json::json!({"listener": listener, "cert": cert, "key": key}))
        }
        Outcome::Kept(why) => {
            tracing::error!(listener, reason = %why, source, "TLS certificate reload failed; the certificate in service stays");
            crate::say!(
                "canary: TLS certificate reload failed ({listener} listener), the certificate in service stays: {why}"
            );
            (
                "tls_reload_failed",
                serde_json::json!({"listener": listener, "cert": cert, "key": key, "reason": why}),
            )
        }
    };
    if let Err(e) = live.store().record(kind, source, &detail) {
        tracing::warn!(error = %e, "cannot record the TLS reload in the state file");
    }
}
