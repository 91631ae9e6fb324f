//! Keys any replica changes, brought into this replica: each is read once,
//! then watched from the next revision, so no change between the read and
//! the watch is missed. A broken watch starts over after a pause; meanwhile
//! what it feeds keeps what it had (the router its last table: fail static).
//!
//! Watched (see `Joined::start`): the routing state and the API-set flags
//! (into [`Live`]), and the leader key and the registrations (into the
//! [`super::Cluster`], see [`super::members`]). Watching costs etcd nothing while nothing changes,
//! where polling would cost every replica a read a look: N replicas
//! listing N registrations is N² reads.
//!
//! A watch is a long HTTP/1.1 answer, with no pings of its own: a
//! connection cut without a close (a partition) is found by TCP keepalive
//! (every connection to etcd sends probes after 2 s of quiet). Besides, a
//! watch that has been quiet starts over when a lease renewal failed
//! meanwhile (etcd was out of reach: the stream may be dead), and every
//! [`CHECK_EVERY`] of quiet it reads its keys again and starts over if they
//! moved past what the stream delivered. Idle, that is one read per watch
//! per [`CHECK_EVERY`]: 100 replicas' four watches, 3 reads a second.

use crate::live::Live;
use crate::store::Loaded;
use crate::store::etcd::Etcd;
use canary_etcd::{EventType, GetOptions, KeyValue, WatchOptions};
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The pause before a broken watch is opened again.
const RETRY: Duration = Duration::from_millis(500);

/// How often a quiet watch looks whether etcd was out of reach.
const QUIET: Duration = Duration::from_secs(1);

/// How often a quiet watch reads its keys to check it missed nothing.
const CHECK_EVERY: Duration = Duration::from_secs(120);

/// What a watch tells the part of this replica that keeps its keys.
#[derive(Debug)]
pub enum Seen {
    /// Every key the watch covers, as read before it started (again).
    All(Vec<KeyValue>),
    /// A key was written.
    Put(KeyValue),
    /// A key was deleted (or its lease ended): the key, without a value.
    Delete(KeyValue),
    /// A quiet [`QUIET`] in which the watch still surely worked.
    Quiet,
}

/// Where a watch's news go.
pub trait Sink: Send + Sync + 'static {
    /// Takes one piece of news; news come in the order etcd made them.
    fn seen(&self, news: Seen) -> BoxFuture<'_, ()>;
}

/// One watch: its key, whether the key is a prefix, and where its news go.
pub type Watch = (String, bool, Box<dyn Sink>);

/// Keeps every watch going, forever.
pub async fn run(etcd: Arc<Etcd>, watches: Vec<Watch>) {
    let tasks = watches
        .into_iter()
        .map(|(key, prefix, sink)| tokio::spawn(keep(Arc::clone(&etcd), key, prefix, sink)));
    futures_util::future::join_all(tasks).await;
}

/// The routing state, into the router.
pub struct Routing(pub Arc<Live>);

/// The API-set feature flags.
pub struct Flags(pub Arc<Live>);

impl Sink for Routing {
    fn seen(&self, news: Seen) -> BoxFuture<'_, ()> {
        Box::pin(apply(&self.0, routing, latest(news)))
    }
}

impl Sink for Flags {
    fn seen(&self, news: Seen) -> BoxFuture<'_, ()> {
        Box::pin(apply(&self.0, flags, latest(news)))
    }
}

/// The one key's new value, if the news bring one.
fn latest(news: Seen) -> Option<KeyValue> {
    match news {
        Seen::All(kvs) => kvs.into_iter().next(),
        Seen::Put(kv) => Some(kv),
        Seen::Delete(_) | Seen::Quiet => None,
    }
}

/// What to do with a key's new value at a revision.
type OnPut = fn(&Live, &[u8], i64);

/// Applies a value off the runtime's threads: applying takes the routing
/// lock, whose holder may be waiting for this very runtime to commit a write.
async fn apply(live: &Arc<Live>, on_put: OnPut, kv: Option<KeyValue>) {
    let Some(kv) = kv else { return };
    let live = Arc::clone(live);
    let _ = tokio::task::spawn_blocking(move || on_put(&live, kv.value(), kv.mod_revision())).await;
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

async fn keep(etcd: Arc<Etcd>, key: String, prefix: bool, sink: Box<dyn Sink>) {
    loop {
        if let Err(e) = follow(&etcd, &key, prefix, sink.as_ref()).await {
            tracing::warn!(error = %e, key = %key, "cluster: watch broken; keeping the last state, retrying");
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The keys as this replica has them: each key's latest revision.
type Mirror = BTreeMap<Vec<u8>, i64>;

async fn follow(etcd: &Etcd, key: &str, prefix: bool, sink: &dyn Sink) -> Result<(), canary_etcd::Error> {
    let c = etcd.client();
    let failures = etcd.failed_renewals();
    let (rev, kvs) = read(&c, key, prefix).await?;
    let mut mirror: Mirror = kvs.iter().map(|kv| (kv.key().to_vec(), kv.mod_revision())).collect();
    sink.seen(Seen::All(kvs)).await;
    let mut opts = WatchOptions::new().with_start_revision(rev + 1);
    if prefix {
        opts = opts.with_prefix();
    }
    let mut stream = c.watch(key, Some(opts)).await?;
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
                if moved(&read(&c, key, prefix).await?.1, &mirror) {
                    tracing::warn!(key = %key, "cluster: the watch missed a change; it starts over");
                    return Ok(());
                }
            }
            sink.seen(Seen::Quiet).await;
            continue;
        };
        quiet = Duration::ZERO;
        let Some(resp) = message? else { return Ok(()) };
        if resp.canceled() {
            return Ok(());
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let news = match ev.event_type() {
                EventType::Put => {
                    mirror.insert(kv.key().to_vec(), kv.mod_revision());
                    Seen::Put(kv.clone())
                }
                EventType::Delete => {
                    mirror.remove(kv.key());
                    Seen::Delete(kv.clone())
                }
            };
            sink.seen(news).await;
        }
    }
}

/// The keys' values now, and the revision they were read at.
async fn read(
    c: &canary_etcd::Client,
    key: &str,
    prefix: bool,
) -> Result<(i64, Vec<KeyValue>), canary_etcd::Error> {
    let opts = prefix.then(|| GetOptions::new().with_prefix());
    let mut got = c.get(key, opts).await?;
    Ok((got.header().map_or(0, |h| h.revision()), got.take_kvs()))
}

/// Whether etcd holds keys, or revisions of them, the stream did not deliver.
fn moved(now: &[KeyValue], mirror: &Mirror) -> bool {
    now.len() != mirror.len() || now.iter().any(|kv| mirror.get(kv.key()) != Some(&kv.mod_revision()))
}
