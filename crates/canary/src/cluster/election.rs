//! This replica's campaign for the leader key, and its terms as leader.
//!
//! A replica campaigns only when it knows of no leader: at its start, and
//! as soon as the watch on the leader key ([`super::members`]) sees the key
//! gone. After a short random pause (so that a fleet does not campaign all
//! at once: the first winner's key reaches the others' watches and they
//! stand down), it grants a lease of `lease_ttl` and creates `/leader` on
//! it in a transaction that succeeds only when the key is absent. A loser
//! gives its lease back; a follower holds no lease but its registration's
//! ([`super::registration`]), so an idle follower costs etcd no call of
//! the election's. The winner renews its lease every [`LOOK_EVERY`] and
//! reads its key after each renewal; its term ends when it loses the key or
//! the lease. The key's creation revision is the term's fence: the
//! controller's writes compare it (see `store::etcd`).
//!
//! Leadership is only claimed while the lease surely holds by this replica's
//! own clock: a renewal sent at `t` and granted `ttl` holds on etcd until at
//! least `t + ttl`, so stopping at `t + ttl - margin` means a replica cut off
//! from etcd stops acting before etcd lets another replica take the key.

use super::Cluster;
use super::members::leader;
use super::versions::Registration;
use crate::live::Live;
use crate::store::etcd::Etcd;
use canary_etcd::{Compare, CompareOp, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the leader renews its lease and reads its key, and how soon a
/// failed renewal is tried again.
pub const LOOK_EVERY: Duration = Duration::from_millis(500);

/// The longest random pause before a campaign.
const SPREAD_MS: u32 = 250;

/// How often a replica that knows of a leader checks its view again without
/// news from the watch (the watch itself starts over when it may be broken).
const RECHECK: Duration = Duration::from_secs(5);

/// Renewals failed in a row before etcd counts as gone (shown, and calls no
/// longer retried), and looks failed in a row before their error is shown:
/// 1.5 s at one look each 500 ms.
pub(super) const GONE_AFTER: u32 = 3;

/// Taken off the lease's length before this replica stops claiming it:
/// covers a renewal's time in flight and clock rate differences.
const MARGIN: Duration = Duration::from_millis(1_000);

/// Campaigns whenever nobody leads, forever; between terms, nothing is claimed.
pub async fn run(etcd: Arc<Etcd>, cluster: Arc<Cluster>, live: Arc<Live>) {
    loop {
        vacancy(&cluster).await;
        if declines(&etcd, &cluster, &live).is_none() {
            if let Err(e) = term(&etcd, &cluster, &live).await {
                cluster.etcd_failed(format!("etcd: {e}"));
                tracing::warn!(error = %e, "cluster: lease lost or etcd unreachable; not leading until a new term");
            }
            if cluster.is_leader() {
                tracing::warn!("cluster: this replica stops leading");
            }
            cluster.lost();
            cluster.term_ended();
            etcd.set_fence(0);
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Why this replica may not lead now, if it may not. One that cannot read
/// the state could drive nothing as leader, and would keep one that can
/// from leading; one beside a newer wire leaves leading to it
/// ([`super::versions`]).
fn declines(etcd: &Etcd, cluster: &Cluster, live: &Live) -> Option<String> {
    unreadable(etcd, live).or_else(|| cluster.declines_to_lead())
}

/// Why this replica cannot drive a rollout: the state cannot be read here.
pub(super) fn unreadable(etcd: &Etcd, live: &Live) -> Option<String> {
    let fault = etcd.fault().cloned().or_else(|| live.fault())?;
    Some(format!("the state cannot be read here: {}", fault.message()))
}

/// Returns once this replica knows of no leader, after a random pause of
/// up to [`SPREAD_MS`] that another replica's win may end.
async fn vacancy(cluster: &Cluster) {
    loop {
        if cluster.leader().is_none() {
            let pause = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() % SPREAD_MS);
            tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
            if cluster.leader().is_none() {
                return;
            }
        }
        tokio::select! {
            () = cluster.vacancy() => {}
            () = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// One campaign and, if won, the term it opens. Returns when this replica
/// lost the campaign or no longer leads (its lease given back), or with an
/// error when the lease is surely gone.
async fn term(etcd: &Etcd, cluster: &Cluster, live: &Live) -> Result<(), String> {
    let c = etcd.client();
    let ttl = cluster.lease_ttl;
    let lease = c.lease_grant(ttl.as_secs() as i64, None).await.map_err(|e| e.to_string())?.id();
    let mut good_until = Instant::now() + ttl.saturating_sub(MARGIN);
    cluster.renewed(good_until);
    let me = Registration::of(cluster, true);
    if let Err(e) = retried(|| campaign(etcd, cluster, &c, lease, &me)).await {
        revoke(etcd, lease);
        return Err(e.to_string());
    }
    let (mut failures, mut look_failures) = (0u32, 0u32);
    while cluster.term().is_some() {
        tokio::time::sleep(LOOK_EVERY).await;
        let renewed = renew(&c, lease).await;
        failures = if renewed.is_ok() { 0 } else { failures + 1 };
        if renewed.is_err() {
            etcd.renewal_failed();
        }
        // A member's death or a Raft election fails a renewal or two; only
        // failures that last are etcd being gone.
        let gone = failures >= GONE_AFTER;
        etcd.set_reachable(!gone);
        match renewed {
            Ok(until) => {
                good_until = until.checked_sub(MARGIN).unwrap_or(until);
                cluster.renewed(good_until);
            }
            Err(e) if Instant::now() < good_until => {
                if gone {
                    cluster.etcd_failed(format!("etcd: {e}"));
                }
                // Not worth a look that would wait on the same unanswering etcd.
                continue;
            }
            Err(e) => {
                revoke(etcd, lease);
                return Err(format!("the lease could not be renewed: {e}"));
            }
        }
        let why_not = declines(etcd, cluster, live);
        let looked = retried(|| confirm(etcd, cluster, &c, lease, why_not.as_deref())).await;
        // As with renewals: a look that meets an etcd election (a second or
        // two with no etcd leader) is not shown as etcd failing.
        look_failures = if looked.is_ok() { 0 } else { look_failures + 1 };
        if let Err(e) = looked
            && look_failures >= GONE_AFTER
        {
            cluster.etcd_failed(format!("etcd: {e}"));
        }
    }
    revoke(etcd, lease);
    Ok(())
}

/// A call, tried again twice 50 ms apart: one that met a member just gone
/// goes to another.
async fn retried<F, Fut>(mut call: F) -> Result<(), canary_etcd::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), canary_etcd::Error>>,
{
    let mut result = call().await;
    for _ in 0..2 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        result = call().await;
    }
    result
}

/// Renews the lease; returns until when it holds (from when the renewal
/// was sent). A renewal that met a member as it died is tried once more
/// (the client moves to another member), so one member down is not a
/// visible problem.
pub(super) async fn renew(c: &canary_etcd::Client, lease: i64) -> Result<Instant, String> {
    match renew_once(c, lease).await {
        Err(_) => renew_once(c, lease).await,
        ok => ok,
    }
}

/// One renewal. Each is a call of its own (the JSON gateway answers one
/// renewal per request), so a member that died is left behind by the next
/// call without a stream to reopen.
async fn renew_once(c: &canary_etcd::Client, lease: i64) -> Result<Instant, String> {
    let sent = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(1), c.lease_keep_alive_once(lease)).await;
    match result {
        Ok(Ok(ttl)) if ttl > 0 => Ok(sent + Duration::from_secs(ttl as u64)),
        Ok(Ok(_)) => Err("the lease expired".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer to the lease renewal within 1 s".into()),
    }
}

/// Creates the leader key on `lease` if it is absent; reads it otherwise.
async fn campaign(
    etcd: &Etcd,
    cluster: &Cluster,
    c: &canary_etcd::Client,
    lease: i64,
    me: &str,
) -> Result<(), canary_etcd::Error> {
    let key = etcd.key("leader");
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), me, Some(PutOptions::new().with_lease(lease)))])
        .or_else([TxnOp::get(key, None)]);
    let resp = c.txn(txn).await?;
    if resp.succeeded() {
        let term = resp.header().map_or(0, |h| h.revision());
        etcd.set_fence(term);
        cluster.won(term);
        tracing::info!(term, node = %cluster.node_id, "cluster: this replica leads");
    } else {
        let kv = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().cloned(),
            _ => None,
        });
        held_by(etcd, cluster, kv, lease);
    }
    Ok(())
}

/// The leader reads its key: still its own, or another's (its lease
/// lapsed meanwhile). One that may no longer lead (`why_not`: it cannot
/// read the state, or a newer wire is registered) hands it back, so that
/// a replica that may takes over.
async fn confirm(
    etcd: &Etcd,
    cluster: &Cluster,
    c: &canary_etcd::Client,
    lease: i64,
    why_not: Option<&str>,
) -> Result<(), canary_etcd::Error> {
    let key = etcd.key("leader");
    let kv = c.get(key.clone(), None).await?.take_kvs().into_iter().next();
    let Some(why) = why_not.filter(|_| kv.as_ref().is_some_and(|kv| kv.lease() == lease)) else {
        held_by(etcd, cluster, kv, lease);
        return Ok(());
    };
    let mine = Compare::lease(key.clone(), CompareOp::Equal, lease);
    c.txn(Txn::new().when([mine]).and_then([TxnOp::delete(key, None)])).await?;
    tracing::warn!("cluster: this replica gives up the leadership: {why}");
    cluster.lost();
    etcd.set_fence(0);
    cluster.saw_leader(None);
    Ok(())
}

/// The leader key as read (`None`: absent): this replica's (a term it
/// already leads) or another's.
fn held_by(etcd: &Etcd, cluster: &Cluster, kv: Option<KeyValue>, lease: i64) {
    let Some(kv) = kv else {
        cluster.lost();
        etcd.set_fence(0);
        return cluster.saw_leader(None);
    };
    if kv.lease() == lease {
        etcd.set_fence(kv.create_revision());
        cluster.won(kv.create_revision());
        return;
    }
    if cluster.term().is_some() {
        tracing::warn!("cluster: another replica holds the leader key; this one stops leading");
    }
    cluster.lost();
    etcd.set_fence(0);
    cluster.saw_leader(leader(&kv));
}

/// Gives the lease back (best effort): its keys go at once, so another
/// replica need not wait for it to expire.
fn revoke(etcd: &Etcd, lease: i64) {
    let c = etcd.client();
    etcd.handle().spawn(async move {
        let _ = c.lease_revoke(lease).await;
    });
}

/// Gives up leadership and registration now (a graceful stop).
pub fn resign(etcd: &Etcd, cluster: &Cluster) {
    cluster.lost();
    etcd.set_fence(0);
    let c = etcd.client();
    let key = etcd.key(&format!("replicas/{}", cluster.node_id));
    let leader = etcd.key("leader");
    let me = cluster.node_id.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    etcd.handle().spawn(async move {
        // Delete the leader key only if it is this replica's.
        if let Ok(g) = c.get(leader.clone(), None).await {
            let mine =
                g.kvs().first().and_then(|kv| serde_json::from_slice::<serde_json::Value>(kv.value()).ok());
            if let Some(kv) = g.kvs().first().filter(|_| mine.is_some_and(|v| v["id"] == me.as_str())) {
                let _ = c.lease_revoke(kv.lease()).await;
            }
        }
        let _ = c.delete(key, None).await;
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(2));
}
