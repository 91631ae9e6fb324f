//! This replica's lease, registration and campaign, on etcd.
//!
//! A term: grant a lease of `lease_ttl`; register `/replicas/{node}` on it;
//! then every [`LOOK_EVERY`] renew the lease, try to create `/leader` on it
//! (a transaction that succeeds only when the key is absent), and read who
//! leads and who is registered. The leader key's creation revision is the
//! term's fence: the controller's writes compare it (see `store::etcd`).
//!
//! Leadership is only claimed while the lease surely holds by this replica's
//! own clock: a renewal sent at `t` and granted `ttl` holds on etcd until at
//! least `t + ttl`, so stopping at `t + ttl - margin` means a replica cut off
//! from etcd stops acting before etcd lets another replica take the key.

use super::{Cluster, Leader};
use crate::live::Live;
use crate::store::etcd::Etcd;
use canary_etcd::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the lease is renewed and the leader key looked at.
pub const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Renewals failed in a row before etcd counts as gone (shown, and calls no
/// longer retried), and looks failed in a row before their error is shown:
/// 1.5 s at one look each 500 ms.
const GONE_AFTER: u32 = 3;

/// Taken off the lease's length before this replica stops claiming it:
/// covers a renewal's time in flight and clock rate differences.
const MARGIN: Duration = Duration::from_millis(1_000);

/// Runs terms forever; between them, nothing is claimed.
pub async fn run(etcd: Arc<Etcd>, cluster: Arc<Cluster>, live: Arc<Live>) {
    loop {
        if let Err(e) = term(&etcd, &cluster, &live).await {
            cluster.etcd_failed(format!("etcd: {e}"));
            tracing::warn!(error = %e, "cluster: lease lost or etcd unreachable; not leading until a new term");
        }
        if cluster.is_leader() {
            tracing::warn!("cluster: this replica stops leading");
        }
        cluster.lost();
        etcd.set_fence(0);
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// One lease's life. Returns when the lease is surely gone.
async fn term(etcd: &Etcd, cluster: &Cluster, live: &Live) -> Result<(), String> {
    let c = etcd.client();
    let ttl = cluster.lease_ttl;
    let lease = c.lease_grant(ttl.as_secs() as i64, None).await.map_err(|e| e.to_string())?.id();
    let granted = Instant::now();
    cluster.renewed(granted + ttl.saturating_sub(MARGIN));
    let me = serde_json::json!({"id": cluster.node_id, "admin": cluster.admin}).to_string();
    let opts = PutOptions::new().with_lease(lease);
    c.put(etcd.key(&format!("replicas/{}", cluster.node_id)), me.clone(), Some(opts.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let mut good_until = granted + ttl.saturating_sub(MARGIN);
    let (mut failures, mut look_failures) = (0u32, 0u32);
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        // A renewal that met a member as it died is tried once more (the
        // client moves to another member), so one member down is not a
        // visible problem.
        let renewed = match renew(&c, lease).await {
            Err(_) => renew(&c, lease).await,
            ok => ok,
        };
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
        // A call that met a member just gone is tried again on another.
        // A replica that cannot read the state could drive nothing as leader,
        // and would keep one that can from leading: it only looks.
        let may_lead = etcd.fault().is_none() && live.fault().is_none();
        let mut looked = look(etcd, cluster, &c, lease, &me, may_lead).await;
        for _ in 0..2 {
            if looked.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            looked = look(etcd, cluster, &c, lease, &me, may_lead).await;
        }
        // As with renewals: a look that meets an etcd election (a second or
        // two with no etcd leader) is not shown as etcd failing.
        look_failures = if looked.is_ok() { 0 } else { look_failures + 1 };
        if let Err(e) = looked
            && look_failures >= GONE_AFTER
        {
            cluster.etcd_failed(format!("etcd: {e}"));
        }
    }
}

/// Renews the lease once; returns until when it holds (from when the
/// renewal was sent). Each renewal is a call of its own (the JSON gateway
/// answers one renewal per request), so a member that died is left behind
/// by the next call without a stream to reopen.
async fn renew(c: &canary_etcd::Client, lease: i64) -> Result<Instant, String> {
    let sent = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(1), c.lease_keep_alive_once(lease)).await;
    match result {
        Ok(Ok(ttl)) if ttl > 0 => Ok(sent + Duration::from_secs(ttl as u64)),
        Ok(Ok(_)) => Err("the lease expired".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer to the lease renewal within 1 s".into()),
    }
}

/// Campaigns for the leader key (when `may_lead`) and reads the leader and the replicas.
async fn look(
    etcd: &Etcd,
    cluster: &Cluster,
    c: &canary_etcd::Client,
    lease: i64,
    me: &str,
    may_lead: bool,
) -> Result<(), canary_etcd::Error> {
    let key = etcd.key("leader");
    // Not campaigning: a compare that never holds (no key has a version
    // below 0), so the transaction only reads who leads.
    let claim = match may_lead {
        true => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
        false => Compare::version(key.clone(), CompareOp::Less, 0),
    };
    let txn = Txn::new()
        .when([claim])
        .and_then([TxnOp::put(key.clone(), me, Some(PutOptions::new().with_lease(lease)))])
        .or_else([TxnOp::get(key.clone(), None)]);
    let resp = c.txn(txn).await?;
    if !may_lead && holds(&resp.op_responses(), lease) {
        // It led when its state became unreadable: it hands the key back so
        // that a replica that can read the state takes over.
        let mine = Compare::lease(key.clone(), CompareOp::Equal, lease);
        c.txn(Txn::new().when([mine]).and_then([TxnOp::delete(key, None)])).await?;
        tracing::warn!("cluster: the state cannot be read here; this replica gives up the leadership");
        cluster.lost();
        etcd.set_fence(0);
        cluster.saw_leader(None);
    } else if resp.succeeded() {
        let term = resp.header().map_or(0, |h| h.revision());
        etcd.set_fence(term);
        cluster.won(term);
        tracing::info!(term, node = %cluster.node_id, "cluster: this replica leads");
    } else {
        held_by(etcd, cluster, &resp.op_responses(), lease);
    }
    let mut list = c.get(etcd.key("replicas/"), Some(GetOptions::new().with_prefix())).await?;
    let replicas = list
        .take_kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice::<serde_json::Value>(kv.value()).ok())
        .filter_map(|v| Some((v["id"].as_str()?.to_string(), v["admin"].as_str()?.to_string())))
        .collect();
    cluster.saw_replicas(replicas);
    Ok(())
}

/// Whether the leader key read in `ops` is held on `lease`: this replica's.
fn holds(ops: &[TxnOpResponse], lease: i64) -> bool {
    ops.iter().any(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().is_some_and(|kv| kv.lease() == lease),
        _ => false,
    })
}

/// The leader key exists: this replica's (a term it already leads) or another's.
fn held_by(etcd: &Etcd, cluster: &Cluster, ops: &[TxnOpResponse], lease: i64) {
    let kv = ops.iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    });
    let Some(kv) = kv else { return cluster.saw_leader(None) };
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
    let v: serde_json::Value = serde_json::from_slice(kv.value()).unwrap_or_default();
    let leader = v["id"].as_str().zip(v["admin"].as_str());
    cluster.saw_leader(leader.map(|(id, admin)| Leader { id: id.to_string(), admin: admin.to_string() }));
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
