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
//! moves traffic into the next round, never drops or doubles it. Each round
//! (a *look*) is numbered and named in its fetches, and reads this replica's
//! own totals too, so that a new leader can count on from the round the old
//! one's count stopped at (see [`super::looks`]); a round's results are kept
//! together ([`super::rounds`]), and none is begun until the controller has
//! opened the gate, saying where that is.

use super::rounds::RoundResult;
use super::wire::WireSnapshot;
use super::{Cluster, TOTALS_PATH, looks};
use canary_core::rollout::{CountedTo, Look};
use canary_proxy::metrics::Metrics;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::sync::Arc;
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

/// A pooled client for the peers' admin APIs (HTTP/1.1, plain or TLS).
pub type Peer = super::peer::PeerClient<http_body_util::Empty<bytes::Bytes>>;

/// Reads every replica's totals, round after round, while this replica's
/// controller leads, forever.
pub async fn collect(cluster: Arc<Cluster>, metrics: Arc<Metrics>, token: Option<String>) {
    let client: Peer = cluster.link.client();
    let mut every = tokio::time::interval(FETCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Instant> = None;
    let mut n = 0u64;
    loop {
        every.tick().await;
        let (Some(term), Some((epoch, from))) = (cluster.held_term(), cluster.fleet.gate()) else {
            last = None;
            continue;
        };
        let mut peers = cluster.peers();
        let mut alive: Vec<String> = peers.iter().map(|(id, _)| id.clone()).collect();
        alive.push(cluster.node_id.clone());
        cluster.fleet.retain(&alive);
        if cluster.judging() || last.is_none_or(|t| t.elapsed() >= IDLE_FETCH_EVERY) {
            last = Some(Instant::now());
        } else {
            // Between idle rounds, only a peer not yet read is: its first
            // reading is the baseline its later traffic is counted from.
            peers.retain(|(id, _)| !cluster.fleet.has(id));
            if peers.is_empty() {
                continue;
            }
        }
        n += 1;
        let look = Look { term, n, at: crate::store::now() };
        let mut results = round(&cluster, &client, token.as_deref(), look, from.as_ref(), peers).await;
        results.push(own(&cluster, &metrics, look, from.as_ref()));
        cluster.fleet.put_round(epoch, look, results);
    }
}

/// One round's fetches, [`AT_ONCE`] at a time. A peer read for the first
/// time this term is asked where the previous leader's count stopped.
async fn round(
    cluster: &Arc<Cluster>,
    client: &Peer,
    token: Option<&str>,
    look: Look,
    from: Option<&CountedTo>,
    peers: Vec<(String, String)>,
) -> Vec<RoundResult> {
    let fetches = peers.into_iter().map(|(id, admin)| {
        let since = from.filter(|_| !cluster.fleet.has(&id)).map(|f| f.of(&id));
        let path = format!("{TOTALS_PATH}?{}", looks::query(&look, since.as_ref()));
        let url = cluster.link.url(&admin, &path);
        async move { (id, fetch(client, url, token).await) }
    });
    futures_util::stream::iter(fetches).buffer_unordered(AT_ONCE).collect().await
}

/// This replica's own reading in round `look`, kept as a peer keeps its
/// answer (see [`super::looks`]): once it no longer leads, the next leader
/// counts its traffic on from there.
fn own(cluster: &Cluster, metrics: &Metrics, look: Look, from: Option<&CountedTo>) -> RoundResult {
    let me = &cluster.node_id;
    let mut s = WireSnapshot::now(me, metrics);
    if let Some(f) = from.filter(|_| !cluster.fleet.has(me)) {
        let at = f.of(me);
        s.base = cluster.looks.at(at.term, at.n);
    }
    cluster.looks.record(look.term, look.n, s.versions.clone());
    (me.clone(), Some(s))
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
