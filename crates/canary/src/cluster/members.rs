//! Who leads and who is registered, as the watches on the leader key and on
//! the registrations tell it (see [`super::watch`]). No replica polls for
//! either: a follower learns that the leader's key is gone (its lease
//! ended) from the watch, and campaigns at once; the leader knows the
//! replicas to gather from without listing them every look.

use super::versions::Registration;
use super::watch::{Seen, Sink};
use super::{Cluster, Leader, Member};
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
    pub fn saw_replicas(&self, list: Vec<Registration>) {
        let now = Instant::now();
        let mut v = self.lock();
        v.replicas = list.into_iter().map(|r| member(r, now)).collect();
    }

    /// A replica registered (or registered again).
    pub fn registered(&self, r: Registration) {
        let (id, m) = member(r, Instant::now());
        self.lock().replicas.insert(id, m);
    }

    /// A replica's registration is gone: it resigned, or its lease ended.
    /// With nobody leading, the replicas it outranked may campaign now.
    pub fn unregistered(&self, id: &str) {
        let mut v = self.lock();
        v.replicas.remove(id);
        if v.leader.is_none() {
            drop(v);
            self.vacant.notify_one();
        }
    }

    /// The watch on the registrations still works: every replica it lists
    /// is still registered, so still alive.
    pub fn registrations_hold(&self) {
        let now = Instant::now();
        for m in self.lock().replicas.values_mut() {
            m.seen = Some(now);
        }
    }
}

fn member(r: Registration, seen: Instant) -> (String, Member) {
    let m =
        Member { admin: r.admin, seen: Some(seen), wire: r.wire, release: r.release, may_lead: r.may_lead };
    (r.id, m)
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
    Registration::parse(kv.value()).map(|r| Leader { id: r.id, admin: r.admin })
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
            Seen::All(kvs) => self
                .cluster
                .saw_replicas(kvs.iter().filter_map(|kv| Registration::parse(kv.value())).collect()),
            Seen::Put(kv) => {
                if let Some(r) = Registration::parse(kv.value()) {
                    self.cluster.registered(r);
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
