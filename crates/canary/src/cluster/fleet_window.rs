//! `/api/v2/metrics` for the whole fleet: the replica asked fetches every
//! peer's reading of the same window (`GET /internal/v1/window`) and adds
//! each answer to its own. [`ask`], the fetching, serves `canary logs` too. The fetches go [`AT_ONCE`] at a time, so a fleet
//! of 100 costs one answer 16 connections, not 99, and all of them end by
//! [`GATHER_WITHIN`]. A peer that has not answered by then, or within
//! [`super::fleet::FETCH_TIMEOUT`], is listed as missing, so a partial sum
//! is never taken for the fleet's.

use super::fleet::{AT_ONCE, Peer, get_json};
use super::window_wire::WireWindow;
use super::{Cluster, WINDOW_PATH};
use canary_proxy::metrics::Reading;
use futures_util::StreamExt;
use serde::Serialize;
use std::time::Duration;

/// The longest a fleet-wide answer waits for its peers, all fetches counted.
pub const GATHER_WITHIN: Duration = Duration::from_secs(2);

/// Which replicas the sum covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Replicas whose reading is in the sum, this one included.
    pub answered: usize,
    /// Replicas registered, this one included.
    pub of: usize,
    /// The node ids of the registered replicas that did not answer.
    pub missing: Vec<String>,
}

/// Adds every peer's reading of the window `query` names (`window=..` or
/// `since_ms=..`) to `local`; `token` is sent as the peers' admin or viewer token.
pub async fn gather(
    cluster: &Cluster,
    query: &str,
    token: Option<&str>,
    mut local: Reading,
    recent: usize,
) -> (Reading, Coverage) {
    let answers = ask::<WireWindow>(cluster, &format!("{WINDOW_PATH}?{query}"), token).await;
    let mut cov = Coverage { answered: 1, of: answers.len() + 1, missing: Vec::new() };
    for (id, answer) in answers {
        match answer {
            Some(w) => {
                local.add(w.reading(), recent);
                cov.answered += 1;
            }
            None => cov.missing.push(id),
        }
    }
    (local, cov)
}

/// Asks every peer for `path` (with its query), [`AT_ONCE`] at a time, all
/// within [`GATHER_WITHIN`]: each peer's id with its answer, `None` for one
/// that did not answer in time or with JSON of the type asked.
pub async fn ask<T: serde::de::DeserializeOwned>(
    cluster: &Cluster,
    path: &str,
    token: Option<&str>,
) -> Vec<(String, Option<T>)> {
    let peers = cluster.peers();
    // A client per answer: the peers are few, and a pooled connection would
    // outlive the runtime of whichever caller made it.
    let client: Peer = cluster.link.client();
    let deadline = tokio::time::Instant::now() + GATHER_WITHIN;
    let urls: Vec<String> = peers.iter().map(|(_, admin)| cluster.link.url(admin, path)).collect();
    let client = &client;
    let fetches = urls.into_iter().map(|url| async move {
        tokio::time::timeout_at(deadline, fetch(client, url, token)).await.ok().flatten()
    });
    // In order (`buffered`), so each answer pairs with its peer.
    let answers: Vec<Option<T>> = futures_util::stream::iter(fetches).buffered(AT_ONCE).collect().await;
    peers.into_iter().map(|(id, _)| id).zip(answers).collect()
}

async fn fetch<T: serde::de::DeserializeOwned>(client: &Peer, url: String, token: Option<&str>) -> Option<T> {
    get_json(client, &url, token).await
}
