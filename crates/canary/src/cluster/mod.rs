//! Several replicas of `canary serve`, one rollout: what this replica knows of
//! its cluster, and the tasks that keep it current.
//!
//! # Layout
//! - this file: [`Cluster`], the shared view: who leads, which replicas are
//!   alive, whether etcd answers, and the peers' latest traffic totals.
//! - [`registration`]: this replica's registration, on a lease of its own.
//! - [`versions`]: replicas of different releases in one fleet (the newest
//!   wire leads).
//! - [`election`]: the campaign for the leader key, and the leader's lease.
//! - [`watch`]: the keys any replica changes, watched: the routing state and
//!   API-set flags, swapped into this replica's router, and the leader key
//!   and the registrations, into this view ([`members`]).
//! - [`wire`]: a replica's traffic totals as JSON, exact (histograms bucket by bucket).
//! - [`fleet`]: the leader's view of every replica's traffic, for the judge.
//! - [`rounds`]: the leader's readings, a round's kept together, and the
//!   gate its controller holds.
//! - [`looks`]: what each replica served at the leader's recent looks, for
//!   a new leader to count on from where the old one's count stopped.
//! - [`window_wire`]: a replica's reading over a window as JSON, exact.
//! - [`fleet_window`]: `/api/v2/metrics` for the fleet, every peer's reading
//!   added to this replica's.
//! - [`peer`]: how the peers' admin APIs are reached (http, or https with
//!   `[admin_tls]`).
//! - [`exposition`]: the cluster's lines in `/metrics`.
//!
//! The request path never waits on any of this: it reads the routing table
//! as a single process does, and the watch swaps it.

pub mod election;
pub mod exposition;
pub mod fleet;
pub mod fleet_window;
pub mod looks;
pub mod members;
pub mod peer;
pub mod registration;
pub mod rounds;
pub mod versions;
pub mod watch;
pub mod window_wire;
pub mod wire;

use crate::config::ClusterConfig;
use crate::live::Live;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The internal endpoint a replica serves its traffic totals on.
pub const TOTALS_PATH: &str = "/internal/v1/totals";

/// The internal endpoint a replica serves its reading over a window on.
pub const WINDOW_PATH: &str = "/internal/v1/window";

/// Where a replica answers its request log, for `canary logs` across the fleet.
pub const LOGS_PATH: &str = "/internal/v1/logs";

/// A replica as registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replica {
    /// Its node id.
    pub id: String,
    /// Its admin API address.
    pub admin: String,
    /// Milliseconds since its registration (kept by a lease it renews) was
    /// last confirmed in etcd: by the watch, about every second. A replica
    /// registered but not answering is told apart by `unanswered`.
    pub last_seen_ms: Option<u64>,
    /// The wire it speaks (see [`versions`]).
    pub wire: u32,
    /// Its release, as `canary --version` names it (`None`: a release from
    /// before wires, which does not say).
    pub release: Option<String>,
}

/// The leader as its key says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leader {
    /// Its node id.
    pub id: String,
    /// Its admin API address, where commands are forwarded.
    pub admin: String,
}

/// A registered replica as this one knows it.
#[derive(Debug, Clone)]
struct Member {
    admin: String,
    /// When its registration was last confirmed.
    seen: Option<Instant>,
    wire: u32,
    release: Option<String>,
    may_lead: bool,
}

#[derive(Debug, Default)]
struct View {
    leader: Option<Leader>,
    /// Registered replicas and when each was last heard from.
    replicas: BTreeMap<String, Member>,
    /// This replica's term while it leads: the leader key's creation revision.
    term: Option<i64>,
    /// Until when this replica's lease surely holds, from its own clock.
    lease_until: Option<Instant>,
    /// Why etcd cannot be used right now.
    etcd_error: Option<String>,
}

/// This replica's view of its cluster.
#[derive(Debug)]
pub struct Cluster {
    /// This replica's node id.
    pub node_id: String,
    /// Its admin address, as other replicas reach it.
    pub admin: String,
    /// How long a lease outlives silence.
    pub lease_ttl: Duration,
    view: Mutex<View>,
    /// The peers' latest totals (see [`fleet`]).
    pub fleet: rounds::Peers,
    /// This replica's totals at the leader's recent looks (see [`looks`]).
    pub looks: looks::Served,
    /// How the peers' admin APIs are reached (see [`peer`]).
    pub link: peer::PeerLink,
    /// The internal requests this replica answered: its totals, its windows.
    served: [AtomicU64; 2],
    /// Woken when the watch sees the leader key gone: time to campaign.
    vacant: tokio::sync::Notify,
    /// Whether this replica's controller judges a rollout now (see [`fleet`]).
    judging: std::sync::atomic::AtomicBool,
}

/// An internal endpoint, as counted.
#[derive(Debug, Clone, Copy)]
pub enum Internal {
    /// `GET /internal/v1/totals`.
    Totals,
    /// `GET /internal/v1/window`.
    Window,
}

impl Cluster {
    /// A replica not yet registered, leading nothing.
    pub fn new(node_id: &str, admin: &str, lease_ttl: Duration) -> Cluster {
        Cluster {
            node_id: node_id.to_string(),
            admin: admin.to_string(),
            lease_ttl,
            view: Mutex::default(),
            fleet: rounds::Peers::default(),
            looks: looks::Served::default(),
            link: peer::PeerLink::plain(),
            served: Default::default(),
            vacant: tokio::sync::Notify::new(),
            judging: Default::default(),
        }
    }

    /// The controller judges a rollout now (or no longer): the fleet's
    /// totals are gathered at every look while it does.
    pub fn set_judging(&self, judging: bool) {
        self.judging.store(judging, Ordering::Relaxed);
    }

    /// Whether the controller judges a rollout now.
    pub fn judging(&self) -> bool {
        self.judging.load(Ordering::Relaxed)
    }

    /// Counts an internal request answered.
    pub fn served(&self, what: Internal) {
        self.served[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this replica leads now: it won the key and its lease surely
    /// still holds (a replica cut off from etcd stops before the lease ends).
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The term this replica holds the leader key in, even while a late
    /// renewal keeps it from acting ([`Cluster::term`]): gathering the
    /// fleet's readings goes on through such a moment, since it changes
    /// nothing, and the count then goes on without a gap.
    pub fn held_term(&self) -> Option<i64> {
        self.lock().term
    }

    /// This replica's term, while it leads.
    pub fn term(&self) -> Option<i64> {
        let v = self.lock();
        let alive = v.lease_until.is_some_and(|t| Instant::now() < t);
        v.term.filter(|_| alive)
    }

    /// The leader, as last read from etcd. This replica is named only while
    /// it surely leads: once its lease can no longer be trusted (etcd cut
    /// off or too slow), another replica may hold the key already, and
    /// naming itself would tell an operator the opposite of the truth.
    pub fn leader(&self) -> Option<Leader> {
        let v = self.lock();
        let trusted = v.lease_until.is_some_and(|t| Instant::now() < t);
        v.leader.clone().filter(|l| l.id != self.node_id || (trusted && v.term.is_some()))
    }

    /// The leader's admin address when another replica leads.
    pub fn forward_to(&self) -> Option<String> {
        let v = self.lock();
        v.leader.as_ref().filter(|l| l.id != self.node_id).map(|l| l.admin.clone())
    }

    /// Why etcd cannot be used right now, if it cannot. Besides the errors
    /// the election reports, a lease past the time it surely holds is one:
    /// renewals that hang (a cut that closes nothing, a slow link) report
    /// no error of their own until their time-outs add up, and until then
    /// this replica would look healthy while it can no longer lead.
    pub fn etcd_error(&self) -> Option<String> {
        let v = self.lock();
        if let Some(e) = &v.etcd_error {
            return Some(e.clone());
        }
        let late = Instant::now().checked_duration_since(v.lease_until?)?;
        Some(format!(
            "etcd: this replica's lease has not been renewed for {} ms past the time it surely held \
             (etcd unreachable or too slow); not leading",
            late.as_millis()
        ))
    }

    /// The live replicas, this one included.
    pub fn replicas(&self) -> Vec<Replica> {
        let now = Instant::now();
        let v = self.lock();
        v.replicas
            .iter()
            .map(|(id, m)| Replica {
                id: id.clone(),
                admin: m.admin.clone(),
                last_seen_ms: if *id == self.node_id {
                    Some(0)
                } else {
                    m.seen.map(|t| now.saturating_duration_since(t).as_millis() as u64)
                },
                wire: m.wire,
                release: m.release.clone(),
            })
            .collect()
    }

    /// The other replicas' admin addresses, by node id.
    pub fn peers(&self) -> Vec<(String, String)> {
        let v = self.lock();
        v.replicas
            .iter()
            .filter(|(id, _)| **id != self.node_id)
            .map(|(id, m)| (id.clone(), m.admin.clone()))
            .collect()
    }

    /// `cluster` in `status --json`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "node": self.node_id,
            "leader": self.leader().map(|l| l.id),
            "is_leader": self.is_leader(),
            "replicas": self.replicas(),
            "etcd_error": self.etcd_error(),
            "unanswered": self.unanswered(),
            "wire": versions::WIRE,
            "release": versions::RELEASE,
            "declines_to_lead": self.declines_to_lead(),
        })
    }

    /// On the leader, the registered peers whose totals fetches have failed
    /// for over a second: their traffic is not in the judge's sum until one
    /// succeeds (a replica that is up and registered, but stuck). Empty on
    /// a follower.
    pub fn unanswered(&self) -> Vec<rounds::Unanswered> {
        match self.is_leader() {
            true => self.fleet.unanswered(fleet::FETCH_TIMEOUT),
            false => Vec::new(),
        }
    }

    /// The election saw the leader key (`None`: nobody leads).
    pub fn saw_leader(&self, leader: Option<Leader>) {
        self.lock().leader = leader;
    }

    /// This replica holds the leader key in term `term`.
    pub fn won(&self, term: i64) {
        let mut v = self.lock();
        v.term = Some(term);
        v.leader = Some(Leader { id: self.node_id.clone(), admin: self.admin.clone() });
    }

    /// This replica no longer leads (or never did). If the leader key was
    /// last seen as its own, who leads now is unknown until the next look.
    pub fn lost(&self) {
        let mut v = self.lock();
        v.term = None;
        if v.leader.as_ref().is_some_and(|l| l.id == self.node_id) {
            v.leader = None;
        }
    }

    /// The lease was renewed: it holds until `until` at the earliest.
    pub fn renewed(&self, until: Instant) {
        let mut v = self.lock();
        v.lease_until = Some(until);
        v.etcd_error = None;
    }

    /// This replica's term ended: no lease of the election's is held, so
    /// none can be late.
    pub fn term_ended(&self) {
        self.lock().lease_until = None;
    }

    /// etcd answered a renewal of the registration: whatever failed before
    /// is no longer shown.
    pub fn etcd_answered(&self) {
        self.lock().etcd_error = None;
    }

    /// etcd failed; `why` is shown by status and health until it answers again.
    pub fn etcd_failed(&self, why: String) {
        self.lock().etcd_error = Some(why);
    }
}

/// A replica that joined its cluster: the shared store and its view.
#[derive(Debug)]
pub struct Joined {
    /// The view the admin API, the controller and the tasks share.
    pub cluster: Arc<Cluster>,
    etcd: Arc<crate::store::etcd::Etcd>,
}

/// Connects to etcd; returns the shared store and the membership. Fails when
/// etcd cannot be reached: a replica must not serve without the shared state.
pub fn join(
    cc: &ClusterConfig,
    advertise: &str,
    local: &Path,
    link: peer::PeerLink,
) -> Result<(Store, Joined), StoreError> {
    let etcd = crate::store::etcd::Etcd::connect(&cc.etcd, &cc.prefix, &cc.node_id)?;
    if local.exists() {
        tracing::warn!(
            file = %local.display(),
            "the cluster's state in etcd is used; this local state file is neither read nor written while --etcd is set"
        );
    }
    let store = Store::with_backend(Box::new(Arc::clone(&etcd)), local);
    let mut cluster = Cluster::new(&cc.node_id, advertise, cc.lease_ttl);
    cluster.link = link;
    let cluster = Arc::new(cluster);
    Ok((store, Joined { cluster, etcd }))
}

impl Joined {
    /// Starts the election and the watch, on the store's runtime.
    pub fn start(&self, live: &Arc<Live>) {
        let h = self.etcd.handle();
        h.spawn(registration::run(Arc::clone(&self.etcd), Arc::clone(&self.cluster), Arc::clone(live)));
        h.spawn(election::run(Arc::clone(&self.etcd), Arc::clone(&self.cluster), Arc::clone(live)));
        let (e, c) = (&self.etcd, &self.cluster);
        let prefix = e.key("replicas/");
        let watches: Vec<watch::Watch> = vec![
            (e.key("routing"), false, Box::new(watch::Routing(Arc::clone(live)))),
            (e.key("kv/flags"), false, Box::new(watch::Flags(Arc::clone(live)))),
            (e.key("leader"), false, Box::new(members::LeaderKey::new(Arc::clone(c)))),
            (prefix.clone(), true, Box::new(members::Registrations::new(Arc::clone(c), prefix))),
        ];
        h.spawn(watch::run(Arc::clone(e), watches));
    }

    /// Hands the leadership and the registration back (a graceful stop), so
    /// another replica takes over without waiting for the lease to expire.
    pub fn resign(&self) {
        election::resign(&self.etcd, &self.cluster);
    }
}
