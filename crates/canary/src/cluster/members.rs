//! Who leads and who is registered, as the watches on the leader key and on
//! the registrations tell it (see [`super::watch`]). No replica polls for
//! either: a follower learns that the leader's key is gone (its lease
//! ended) from the watch, and campaigns at once; the leader knows the
//! replicas to gather from without listing them every look.

use super::watch::{Seen, Sink};
use super::{Cluster, Leader};
use canary_etcd::KeyValue;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;

/// What the watches tell the cluster's view.
impl Cluster {
    /// The leader key as the watch sees it. While this replica leads, its
    /// election alone says who leads: it reads the key itself every look.
    /// A key seen gone wakes [`Cluster::vacancy`].
    pub fn watched_leader(&self, leader: Option<Leader>) {
        let mut v = self.lock();
        if v.term.is_some() {
            return;
        }
        let gone = leader.is_none();
        v.leader = leader;
        drop(v);
        if gone {
            self.vacant.notify_one();
        }
    }

    /// Returns once the watch saw the leader key gone (at once if it did
    /// since the last call).
    pub async fn vacancy(&self) {
        self.vacant.notified().await;
    }

    /// The registered replicas as listed in etcd: each is alive, since its
    /// registration lives only as long as the lease it renews.
    pub fn saw_replicas(&self, list: Vec<(String, String)>) {
        let now = Instant::now();
        let mut v = self.lock();
        v.replicas = list.into_iter().map(|(id, admin)| (id, (admin, Some(now)))).collect();
    }

    /// A replica registered (or registered again).
    pub fn registered(&self, id: String, admin: String) {
        self.lock().replicas.insert(id, (admin, Some(Instant::now())));
    }

    /// A replica's registration is gone: it resigned, or its lease ended.
    pub fn unregistered(&self, id: &str) {
        self.lock().replicas.remove(id);
    }

    /// The watch on the registrations still works: every replica it lists
    /// is still registered, so still alive.
    pub fn registrations_hold(&self) {
        let now = Instant::now();
        for r in self.lock().replicas.values_mut() {
            r.1 = Some(now);
        }
    }
}

/// The leader key's news, into the cluster's view.
pub struct LeaderKey(Arc<Cluster>);

impl LeaderKey {
    /// News for `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> LeaderKey {
        LeaderKey(cluster)
    }

    fn take(&self, news: Seen) {
        let holder = match news {
            Seen::All(kvs) => kvs.first().and_then(leader),
            Seen::Put(kv) => leader(&kv),
            Seen::Delete(_) => None,
            Seen::Quiet => return,
        };
        self.0.watched_leader(holder);
    }
}

impl Sink for LeaderKey {
    fn seen(&self, news: Seen) -> BoxFuture<'_, ()> {
        self.take(news);
        Box::pin(std::future::ready(()))
    }
}

/// The leader a leader key's value names.
pub fn leader(kv: &KeyValue) -> Option<Leader> {
    replica(kv).map(|(id, admin)| Leader { id, admin })
}

/// The registrations' news (`{prefix}/replicas/{node}`), into the cluster's view.
pub struct Registrations {
    cluster: Arc<Cluster>,
    /// The keys' common start, which a node id follows.
    prefix: String,
}

impl Registrations {
    /// News for `cluster` about the keys under `prefix`.
    pub fn new(cluster: Arc<Cluster>, prefix: String) -> Registrations {
        Registrations { cluster, prefix }
    }

    fn take(&self, news: Seen) {
        match news {
            Seen::All(kvs) => self.cluster.saw_replicas(kvs.iter().filter_map(replica).collect()),
            Seen::Put(kv) => {
                if let Some((id, admin)) = replica(&kv) {
                    self.cluster.registered(id, admin);
                }
            }
            Seen::Delete(kv) => {
                if let Some(id) = kv.key_str().ok().and_then(|k| k.strip_prefix(&self.prefix)) {
                    self.cluster.unregistered(id);
                }
            }
            Seen::Quiet => self.cluster.registrations_hold(),
        }
    }
}

impl Sink for Registrations {
    fn seen(&self, news: Seen) -> BoxFuture<'_, ()> {
        self.take(news);
        Box::pin(std::future::ready(()))
    }
}

/// The node id and admin address a registration's (or the leader key's) value names.
fn replica(kv: &KeyValue) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(kv.value()).ok()?;
    Some((v["id"].as_str()?.to_string(), v["admin"].as_str()?.to_string()))
}
