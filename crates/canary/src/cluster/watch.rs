//! The routing state and the API-set feature flags, as any replica changes
//! them, brought into this replica: read once, then watched from the next
//! revision, so no change between the read and the watch is missed. A broken
//! watch starts over after a pause; meanwhile the router keeps the last table
//! it had (fail static).
//!
//! A watch is a long HTTP/1.1 answer, with no pings: a connection cut without
//! a close (a partition) would leave it waiting forever. So a watch that has
//! been quiet starts over when a lease renewal failed meanwhile (etcd was out
//! of reach: the stream may be dead), and every [`CHECK_EVERY`] of quiet it
//! asks etcd whether the key moved past what the stream delivered. Idle, that
//! is one read per key per [`CHECK_EVERY`].

use crate::live::Live;
use crate::store::Loaded;
use crate::store::etcd::Etcd;
use canary_etcd::{EventType, WatchOptions};
use std::sync::Arc;
use std::time::Duration;

/// The pause before a broken watch is opened again.
const RETRY: Duration = Duration::from_millis(500);

/// How often a quiet watch looks whether etcd was out of reach.
const QUIET: Duration = Duration::from_secs(1);

/// How often a quiet watch asks etcd whether its key moved.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// What to do with a key's new value at a revision.
type OnPut = fn(&Live, &[u8], i64);

/// Applies a value off the runtime's threads: applying takes the routing
/// lock, whose holder may be waiting for this very runtime to commit a write.
async fn apply(live: &Arc<Live>, on_put: OnPut, value: Vec<u8>, rev: i64) {
    let live = Arc::clone(live);
    let _ = tokio::task::spawn_blocking(move || on_put(&live, &value, rev)).await;
}

/// Watches the routing key and the flags key forever.
pub async fn run(etcd: Arc<Etcd>, live: Arc<Live>) {
    let routing = tokio::spawn(keep(Arc::clone(&etcd), Arc::clone(&live), etcd.key("routing"), routing));
    let flags = tokio::spawn(keep(Arc::clone(&etcd), live, etcd.key("kv/flags"), flags));
    let _ = tokio::join!(routing, flags);
}

fn routing(live: &Live, value: &[u8], rev: i64) {
    match Loaded::routing(Some(value)) {
        Loaded::Found(p) => live.adopt(p, rev),
        // Fail closed: a table this build cannot read may be one that blocks the canary.
        Loaded::Unreadable { problem, .. } => live.unreadable(format!("revision {rev}: {problem}")),
        Loaded::Absent => {}
    }
}

fn flags(live: &Live, value: &[u8], _rev: i64) {
    match serde_json::from_slice::<serde_json::Value>(value) {
        Ok(v) => live.flags.adopt_api(&v),
        Err(e) => {
            tracing::error!(error = %e, "cluster: unreadable feature flags in etcd; keeping the current ones")
        }
    }
}

async fn keep(etcd: Arc<Etcd>, live: Arc<Live>, key: String, on_put: OnPut) {
    loop {
        if let Err(e) = follow(&etcd, &live, &key, on_put).await {
            tracing::warn!(error = %e, key = %key, "cluster: watch broken; the router keeps its last state, retrying");
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow(etcd: &Etcd, live: &Arc<Live>, key: &str, on_put: OnPut) -> Result<(), canary_etcd::Error> {
    let c = etcd.client();
    let failures = etcd.failed_renewals();
    let got = c.get(key, None).await?;
    let rev = got.header().map_or(0, |h| h.revision());
    if let Some(kv) = got.kvs().first() {
        apply(live, on_put, kv.value().to_vec(), kv.mod_revision()).await;
    }
    let opts = WatchOptions::new().with_start_revision(rev + 1);
    let mut stream = c.watch(key, Some(opts)).await?;
    // The revision up to which this replica has what the key held.
    let mut seen = rev;
    let mut quiet = Duration::ZERO;
    loop {
        let Ok(message) = tokio::time::timeout(QUIET, stream.message()).await else {
            quiet += QUIET;
            if etcd.failed_renewals() != failures {
                tracing::info!(key = %key, "cluster: etcd was out of reach; the watch starts over");
                return Ok(());
            }
            if quiet >= CHECK_EVERY {
                quiet = Duration::ZERO;
                if moved_past(&c, key, seen).await? {
                    tracing::warn!(key = %key, "cluster: the watch missed a change; it starts over");
                    return Ok(());
                }
            }
            continue;
        };
        quiet = Duration::ZERO;
        let Some(resp) = message? else { return Ok(()) };
        if resp.canceled() {
            return Ok(());
        }
        for ev in resp.events().iter().filter(|e| e.event_type() == EventType::Put) {
            if let Some(kv) = ev.kv() {
                seen = seen.max(kv.mod_revision());
                apply(live, on_put, kv.value().to_vec(), kv.mod_revision()).await;
            }
        }
    }
}

/// Whether `key` was written after revision `seen`.
async fn moved_past(c: &canary_etcd::Client, key: &str, seen: i64) -> Result<bool, canary_etcd::Error> {
    let now = c.get(key, None).await?;
    Ok(now.kvs().first().is_some_and(|kv| kv.mod_revision() > seen))
}
