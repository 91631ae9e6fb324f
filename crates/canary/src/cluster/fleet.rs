//! The fleet's traffic for the judge: the leader fetches the other replicas'
//! totals (`GET /internal/v1/totals`) every [`FETCH_EVERY`], and its
//! controller adds what each replica served since its previous look to its own
//! (`controller::observe::FleetObserver`). Followers fetch nothing: N
//! replicas cost N-1 fetches a look, not N·(N-1). Whether a replica is alive
//! is told by its registration in etcd, kept by its lease.
//!
//! While no rollout is being judged the leader fetches only every
//! [`IDLE_FETCH_EVERY`]: nothing needs the fleet's traffic look by look then,
//! and an idle fleet of N costs (N-1)/5 fetches a second, not 4·(N-1).
//!
//! Totals, not windows, cross the wire: a fetch that is late or lost only
//! moves traffic into the next look, never drops or doubles it. Each look is
//! numbered and named in its fetches, so that a new leader can count on from
//! the look the old one's count stopped at (see [`super::looks`]); a leader
//! fetches nothing until its controller has said which look that is.

use super::wire::WireSnapshot;
use super::{Cluster, TOTALS_PATH, looks};
use canary_core::rollout::Look;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How often the peers' totals are fetched: as often as the controller looks.
pub const FETCH_EVERY: Duration = Duration::from_millis(250);

/// How often the peers' totals are fetched while no rollout is judged.
pub const IDLE_FETCH_EVERY: Duration = Duration::from_secs(5);

/// How many peers are fetched from at once: a fleet of 100 costs the leader
/// 16 connections at a time, not 99.
pub const AT_ONCE: usize = 16;

/// The longest a fetch may take before it counts as missed.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(1);

/// The peers' latest totals, by node id, and since when each peer whose
/// last fetch failed has been failing.
#[derive(Debug, Default)]
pub struct Peers(Mutex<Readings>);

#[derive(Debug, Default)]
struct Readings {
    /// Each peer's latest totals and the look that fetched them.
    latest: BTreeMap<String, (Look, WireSnapshot)>,
    failing: BTreeMap<String, Instant>,
    /// Set by the controller when it takes the lead: the look its saved
    /// count is up to (`None`: nothing to count on from). Until then the
    /// leader fetches nothing.
    from: Option<Option<Look>>,
}

/// A registered peer whose totals have not come lately: the judge counts
/// none of its traffic since (it will, once they come).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unanswered {
    /// Its node id.
    pub id: String,
    /// Milliseconds since its fetches began to fail.
    pub since_ms: u64,
}

impl Peers {
    fn lock(&self) -> MutexGuard<'_, Readings> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a fresh reading, fetched at `look`.
    pub fn put(&self, look: Look, s: WireSnapshot) {
        let mut g = self.lock();
        g.failing.remove(&s.node);
        g.latest.insert(s.node.clone(), (look, s));
    }

    /// The controller took the lead, its saved count up to look `from`:
    /// the peers' first fetches ask for the totals they served then.
    pub fn count_from(&self, from: Option<Look>) {
        self.lock().from = Some(from);
    }

    /// What [`Peers::count_from`] said, once it has.
    fn from(&self) -> Option<Option<Look>> {
        self.lock().from
    }

    /// Whether a reading of `id` is kept.
    pub fn has(&self, id: &str) -> bool {
        self.lock().latest.contains_key(id)
    }

    /// A fetch from `id` failed.
    pub fn missed(&self, id: &str) {
        self.lock().failing.entry(id.to_string()).or_insert_with(Instant::now);
    }

    /// Forgets every reading: a follower keeps none, so a replica that comes
    /// to lead starts from fresh readings, not ones from its previous term.
    pub fn clear(&self) {
        *self.lock() = Readings::default();
    }

    /// Forgets the replicas no longer registered.
    pub fn retain(&self, alive: &[String]) {
        let mut g = self.lock();
        g.latest.retain(|id, _| alive.contains(id));
        g.failing.retain(|id, _| alive.contains(id));
    }

    /// The peers whose fetches have failed for longer than `late`.
    pub fn unanswered(&self, late: Duration) -> Vec<Unanswered> {
        let g = self.lock();
        g.failing
            .iter()
            .filter(|(_, since)| since.elapsed() > late)
            .map(|(id, since)| Unanswered { id: id.clone(), since_ms: since.elapsed().as_millis() as u64 })
            .collect()
    }

    /// The latest readings, with the looks that fetched them.
    pub fn all(&self) -> Vec<(Look, WireSnapshot)> {
        self.lock().latest.values().cloned().collect()
    }
}

/// A pooled client for the peers' admin APIs (HTTP/1.1, plain or TLS).
pub type Peer = super::peer::PeerClient<http_body_util::Empty<bytes::Bytes>>;

/// Fetches every peer's totals while this replica leads, forever.
pub async fn collect(cluster: Arc<Cluster>, token: Option<String>) {
    let client: Peer = cluster.link.client();
    let mut every = tokio::time::interval(FETCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Instant> = None;
    let mut n = 0u64;
    loop {
        every.tick().await;
        let (Some(term), Some(from)) = (cluster.term(), cluster.fleet.from()) else {
            if !cluster.is_leader() {
                cluster.fleet.clear();
                last = None;
            }
            continue;
        };
        n += 1;
        let look = Look { term, n, at: crate::store::now() };
        let mut peers = cluster.peers();
        cluster.fleet.retain(&peers.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
        if cluster.judging() || last.is_none_or(|t| t.elapsed() >= IDLE_FETCH_EVERY) {
            last = Some(Instant::now());
        } else {
            // Between idle looks, only a peer not yet read is: its first
            // reading is the baseline its later traffic is counted from.
            peers.retain(|(id, _)| !cluster.fleet.has(id));
        }
        let fetches = peers.into_iter().map(|(id, admin)| {
            let (client, token, cluster) = (client.clone(), token.clone(), Arc::clone(&cluster));
            // A peer read for the first time this term is asked where the
            // previous leader's count stopped.
            let from = from.filter(|_| !cluster.fleet.has(&id));
            async move {
                let path = format!("{TOTALS_PATH}?{}", looks::query(&look, from.as_ref()));
                match fetch(&client, cluster.link.url(&admin, &path), token.as_deref()).await {
                    Some(s) => cluster.fleet.put(look, s),
                    None => cluster.fleet.missed(&id),
                }
            }
        });
        futures_util::stream::iter(fetches).for_each_concurrent(AT_ONCE, |f| f).await;
    }
}

async fn fetch(client: &Peer, url: String, token: Option<&str>) -> Option<WireSnapshot> {
    get_json(client, &url, token).await
}

/// A peer's JSON answer to a GET of `url`, or `None` when it does not answer
/// within [`FETCH_TIMEOUT`] with a 2xx and readable JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    client: &Peer,
    url: &str,
    token: Option<&str>,
) -> Option<T> {
    let mut req = http::Request::get(url);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(http_body_util::Empty::new()).ok()?;
    let get = async {
        let resp = client.request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    };
    tokio::time::timeout(FETCH_TIMEOUT, get).await.ok().flatten()
}
