//! Leases: grant, renew once, revoke, expire.

use crate::support::{Etcd, eventually};
use canary_etcd::PutOptions;
use std::time::Duration;

#[tokio::test]
async fn a_lease_holds_its_key_until_revoked() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let granted = c.lease_grant(10, None).await.unwrap();
    let lease = granted.id();
    assert!(lease != 0);
    assert_eq!(granted.ttl(), 10);
    c.put("/replicas/a", "me", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    assert_eq!(c.get("/replicas/a", None).await.unwrap().kvs()[0].lease(), lease);

    let ttl = c.lease_keep_alive_once(lease).await.unwrap();
    assert!((9..=10).contains(&ttl), "renewed to {ttl} s");

    c.lease_revoke(lease).await.unwrap();
    assert!(c.get("/replicas/a", None).await.unwrap().kvs().is_empty());
    assert_eq!(c.lease_keep_alive_once(lease).await.unwrap(), 0, "a revoked lease renews to 0");

    let again = c.lease_revoke(lease).await.unwrap_err();
    assert_eq!(again.code(), Some(5));
    assert!(!again.is_transient());
    assert!(
        again.to_string().contains("lease not found") && again.to_string().contains(&etcd.url(0)),
        "{again}"
    );
}

#[tokio::test]
async fn an_unrenewed_lease_expires_and_takes_its_key() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let granted = c.lease_grant(1, None).await.unwrap();
    // etcd raises a TTL below its minimum (about 1.5 election timeouts).
    assert!((1..=3).contains(&granted.ttl()), "{}", granted.ttl());
    c.put("/short", "x", Some(PutOptions::new().with_lease(granted.id()))).await.unwrap();
    assert_eq!(c.get("/short", None).await.unwrap().kvs().len(), 1);
    let gone = eventually(Duration::from_secs(15), || async {
        c.get("/short", None).await.unwrap().kvs().is_empty()
    })
    .await;
    assert!(gone, "the key outlived its lease by more than 15 s");
    assert_eq!(c.lease_keep_alive_once(granted.id()).await.unwrap(), 0);
}

#[tokio::test]
async fn renewals_keep_a_short_lease_alive() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let granted = c.lease_grant(2, None).await.unwrap();
    c.put("/kept", "x", Some(PutOptions::new().with_lease(granted.id()))).await.unwrap();
    // Renewing every 300 ms for three TTLs' time: the key stays throughout.
    let until = std::time::Instant::now() + Duration::from_secs(3 * granted.ttl() as u64);
    while std::time::Instant::now() < until {
        assert!(c.lease_keep_alive_once(granted.id()).await.unwrap() > 0);
        assert_eq!(c.get("/kept", None).await.unwrap().kvs().len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
