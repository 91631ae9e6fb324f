//! Transactions: both branches, each kind of compare.

use crate::support::Etcd;
use canary_etcd::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};

/// Whether a transaction that only compares `cmp` succeeds.
async fn holds(c: &Client, cmp: Compare) -> bool {
    c.txn(Txn::new().when([cmp])).await.unwrap().succeeded()
}

#[tokio::test]
async fn a_create_if_absent_runs_one_branch_then_the_other() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let claim = || {
        Txn::new()
            .when([Compare::create_revision("/leader", CompareOp::Equal, 0)])
            .and_then([TxnOp::put("/leader", "me", None), TxnOp::put("/events/1", "won", None)])
            .or_else([TxnOp::get("/leader", None)])
    };
    let won = c.txn(claim()).await.unwrap();
    assert!(won.succeeded());
    let term = won.header().unwrap().revision();
    assert!(matches!(won.op_responses()[..], [TxnOpResponse::Put(_), TxnOpResponse::Put(_)]));
    let kv = c.get("/leader", None).await.unwrap().take_kvs().remove(0);
    assert_eq!((kv.value(), kv.create_revision()), (&b"me"[..], term));

    let lost = c.txn(claim()).await.unwrap();
    assert!(!lost.succeeded());
    assert_eq!(lost.header().unwrap().revision(), term, "the failure branch only read");
    match &lost.op_responses()[..] {
        [TxnOpResponse::Get(g)] => assert_eq!(g.kvs()[0].create_revision(), term),
        other => panic!("expected the leader key read, got {other:?}"),
    }
}

#[tokio::test]
async fn every_compare_kind_and_operator_is_understood() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let rev = c.put("/k", "b", None).await.unwrap().header().unwrap().revision();
    c.put("/k", "b", None).await.unwrap();
    let modded = rev + 1;

    assert!(holds(&c, Compare::create_revision("/k", CompareOp::Equal, rev)).await);
    assert!(!holds(&c, Compare::create_revision("/k", CompareOp::Equal, 0)).await);
    assert!(holds(&c, Compare::create_revision("/absent", CompareOp::Equal, 0)).await);
    assert!(holds(&c, Compare::mod_revision("/k", CompareOp::Equal, modded)).await);
    assert!(holds(&c, Compare::mod_revision("/k", CompareOp::Greater, rev)).await);
    assert!(!holds(&c, Compare::mod_revision("/k", CompareOp::Less, modded)).await);
    assert!(holds(&c, Compare::mod_revision("/k", CompareOp::NotEqual, rev)).await);
    assert!(holds(&c, Compare::version("/k", CompareOp::Equal, 2)).await);
    assert!(holds(&c, Compare::version("/k", CompareOp::Greater, 1)).await);
    // canary's "only look" compare: no key has a version below 0.
    assert!(!holds(&c, Compare::version("/k", CompareOp::Less, 0)).await);
    assert!(!holds(&c, Compare::version("/absent", CompareOp::Less, 0)).await);
    assert!(holds(&c, Compare::value("/k", CompareOp::Equal, "b")).await);
    assert!(holds(&c, Compare::value("/k", CompareOp::Greater, "a")).await);
    assert!(holds(&c, Compare::value("/k", CompareOp::Less, "c")).await);
    assert!(!holds(&c, Compare::value("/k", CompareOp::NotEqual, "b")).await);
    assert!(holds(&c, Compare::lease("/k", CompareOp::Equal, 0)).await);

    let lease = c.lease_grant(30, None).await.unwrap().id();
    c.put("/held", "x", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    assert!(holds(&c, Compare::lease("/held", CompareOp::Equal, lease)).await);
    assert!(!holds(&c, Compare::lease("/held", CompareOp::Equal, lease + 1)).await);

    // Several compares: all must hold.
    let both = Txn::new()
        .when([Compare::value("/k", CompareOp::Equal, "b"), Compare::version("/k", CompareOp::Equal, 9)])
        .and_then([TxnOp::delete("/k", None)]);
    assert!(!c.txn(both).await.unwrap().succeeded());
    let mine = Txn::new()
        .when([Compare::lease("/held", CompareOp::Equal, lease)])
        .and_then([TxnOp::delete("/held", None)]);
    let r = c.txn(mine).await.unwrap();
    assert!(matches!(&r.op_responses()[..], [TxnOpResponse::Delete(d)] if d.deleted() == 1));
    assert!(c.get("/held", None).await.unwrap().kvs().is_empty());
}
