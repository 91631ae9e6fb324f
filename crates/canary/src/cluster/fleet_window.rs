//! `/api/v2/metrics` for the whole fleet: the replica asked fetches every
//! peer's reading of the same window (`GET /internal/v1/window`) at once and
//! adds each answer to its own. A peer that does not answer within
//! [`super::fleet::FETCH_TIMEOUT`] is listed as missing, so a partial sum is never taken
//! for the fleet's.

use super::fleet::{Peer, get_json};
use super::window_wire::WireWindow;
use super::{Cluster, WINDOW_PATH};
use canary_proxy::metrics::Reading;
use serde::Serialize;

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
    let peers = cluster.peers();
    // A client per answer: the peers are few, and a pooled connection would
    // outlive the runtime of whichever caller made it.
    let client: Peer = cluster.link.client();
    let fetches = peers
        .iter()
        .map(|(_, admin)| fetch(&client, cluster.link.url(admin, &format!("{WINDOW_PATH}?{query}")), token));
    let answers = futures_util::future::join_all(fetches).await;
    let mut cov = Coverage { answered: 1, of: peers.len() + 1, missing: Vec::new() };
    for ((id, _), answer) in peers.into_iter().zip(answers) {
        match answer {
            Some(w) => {
                cluster.heard_from(&id);
                local.add(w.reading(), recent);
                cov.answered += 1;
            }
            None => cov.missing.push(id),
        }
    }
    (local, cov)
}

async fn fetch(client: &Peer, url: String, token: Option<&str>) -> Option<WireWindow> {
    get_json(client, &url, token).await
}
