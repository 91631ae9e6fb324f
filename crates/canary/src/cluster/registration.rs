//! This replica's registration, `replicas/{node}` (its id, admin
//! address, wire, release and whether it may lead: [`super::versions`]), on a lease of its own: [`TTL_TIMES`] × `lease_ttl`, renewed
//! every `lease_ttl`. Whether a replica is alive is told by its
//! registration: when it stops, its lease ends and the leader's watch drops
//! it from the fleet's sum.
//!
//! Apart from the leader's lease (see [`super::election`]) because the
//! two are asked different things. The leader's must end soon after the
//! leader dies, so that another takes over within `lease_ttl`, and so it is
//! renewed twice a second; a follower's registration may take a few
//! seconds more to go, and renewing it every `lease_ttl` makes an idle
//! fleet of N cost etcd N/5 calls a second by default, not 2·N.

use super::Cluster;
use super::election::{GONE_AFTER, LOOK_EVERY, renew, unreadable};
use super::versions::Registration;
use crate::live::Live;
use crate::store::etcd::Etcd;
use canary_etcd::PutOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The registration's lease, in `lease_ttl`s: it outlives two missed renewals.
pub const TTL_TIMES: u32 = 3;

/// Registers this replica, and again whenever its lease was lost, forever.
pub async fn run(etcd: Arc<Etcd>, cluster: Arc<Cluster>, live: Arc<Live>) {
    loop {
        if let Err(e) = registered(&etcd, &cluster, &live).await {
            cluster.etcd_failed(format!("etcd: {e}"));
            tracing::warn!(error = %e, "cluster: this replica's registration lapsed or etcd is unreachable; registering again");
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// One registration's life: returns when its lease is surely gone.
async fn registered(etcd: &Etcd, cluster: &Cluster, live: &Live) -> Result<(), String> {
    let c = etcd.client();
    let every = cluster.lease_ttl;
    let ttl = every * TTL_TIMES;
    let lease = c.lease_grant(ttl.as_secs() as i64, None).await.map_err(|e| e.to_string())?.id();
    let mut until = Instant::now() + ttl;
    let key = etcd.key(&format!("replicas/{}", cluster.node_id));
    let mut said = None;
    let mut failures = 0u32;
    loop {
        // Whether it may lead is in the registration, written again when it
        // changes: a newer replica that cannot lead holds nobody back.
        let may_lead = unreadable(etcd, live).is_none();
        if said != Some(may_lead) {
            let me = Registration::of(cluster, may_lead);
            let put = c.put(key.clone(), me, Some(PutOptions::new().with_lease(lease))).await;
            put.map_err(|e| e.to_string())?;
            cluster.etcd_answered();
            said = Some(may_lead);
        }
        tokio::time::sleep(if failures > 0 { LOOK_EVERY } else { every }).await;
        match renew(&c, lease).await {
            Ok(held) => {
                (failures, until) = (0, held);
                etcd.set_reachable(true);
                cluster.etcd_answered();
            }
            Err(e) => {
                failures += 1;
                etcd.renewal_failed();
                // A member's death or a Raft election fails a renewal or
                // two; only failures that last are etcd being gone.
                let gone = failures >= GONE_AFTER;
                etcd.set_reachable(!gone);
                if gone {
                    cluster.etcd_failed(format!("etcd: {e}"));
                }
                if Instant::now() >= until.checked_sub(Duration::from_millis(100)).unwrap_or(until) {
                    return Err(format!("the registration's lease could not be renewed: {e}"));
                }
            }
        }
    }
}
