//! canary's own rolling upgrade: a fleet that mixes the previous release
//! (a real binary, built from this repository's history by
//! `scripts/previous-release.sh`, which `./test.sh` runs) with this one
//! keeps one leader, carries commands to it, and judges every replica's
//! traffic whichever release leads. And the rule for what comes after this
//! release: the newest wire leads.

use crate::cluster::{
    Etcd, FAST, deploy_args, get_json, leader, replica, replica_of, run, totals_served, wait_for_leader,
};
use crate::fleet::{canary_served, judged, traffic};
use crate::support::*;
use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The previous release's binary: `CANARY_PREVIOUS`, or where
/// `scripts/previous-release.sh` puts it.
fn previous() -> String {
    let at = std::env::var("CANARY_PREVIOUS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/previous/canary").to_string());
    assert!(
        Path::new(&at).is_file(),
        "the previous release's binary is not at {at}: build it with scripts/previous-release.sh (./test.sh does)"
    );
    at
}

/// Replica `id` of the previous release.
fn old_replica(etcd: &Etcd, stable: &str, dir: &Path, id: &str) -> Process {
    replica_of(&previous(), &etcd.urls(), stable, dir, id, FAST)
}

/// Waits until the leader at `lead` has read the totals of every one of `ps`.
async fn all_read(ps: &[&Process]) {
    for p in ps {
        let read = eventually(10, || async { totals_served(p.admin).await > 0 }).await;
        assert!(read, "the leader never read {}", p.admin);
    }
}

/// The canary requests the replicas' own `/metrics` say they sent.
async fn served(ps: &[&Process]) -> u64 {
    join_all(ps.iter().map(|p| canary_served(p.admin))).await.iter().sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_mid_upgrade_judges_every_replicas_traffic_whichever_release_leads() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    // The previous release first, so that it leads.
    let mut old = old_replica(&etcd, &stable.url(), dir.path(), "old");
    let led = eventually(10, || async { leader(old.admin).await.as_deref() == Some("old") }).await;
    assert!(led, "the previous release's replica did not come to lead alone");
    let news = [
        replica(&etcd, &stable.url(), dir.path(), "n1", FAST),
        replica(&etcd, &stable.url(), dir.path(), "n2", FAST),
    ];
    assert_eq!(wait_for_leader(&[&old, &news[0], &news[1]]).await, "old");

    // The new replicas list each one's release; an older leader is followed.
    let listed = eventually(10, || async {
        get_json(news[0].admin, "/api/rollout").await["cluster"]["replicas"].as_array().map_or(0, Vec::len)
            == 3
    })
    .await;
    let st = get_json(news[0].admin, "/api/rollout").await;
    assert!(listed, "{st}");
    let c = &st["cluster"];
    let wire = |id: &str| c["replicas"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!((wire("old")["wire"].as_u64(), wire("old")["release"].is_null()), (Some(1), true), "{c}");
    assert_eq!(wire("n2")["wire"], c["wire"], "{c}");
    assert_eq!(wire("n2")["release"], c["release"], "{c}");
    assert!(c["declines_to_lead"].is_null(), "an older leader is no reason to decline: {c}");
    let (code, out, _) = run(&["status".into(), "--admin".into(), format!("http://{}", news[0].admin)]);
    assert_eq!(code, 0);
    assert!(out.contains("an older canary (wire 1)"), "status names the mixed releases:\n{out}");

    // A command through a new replica reaches the old leader; the old
    // leader judges the new replicas' traffic along with its own.
    all_read(&[&news[0], &news[1]]).await;
    let (code, out, err) = run(&deploy_args(news[0].admin, &canary.url(), &["50", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    let all = [&old, &news[0], &news[1]];
    traffic(&all, 300, 0).await;
    let sum = served(&all).await;
    assert!(sum > 50, "too few canary requests to tell: {sum}");
    let counted = eventually(10, || async { judged(old.admin).await == sum }).await;
    assert!(counted, "the old leader judged {} of the {sum} canary requests", judged(old.admin).await);

    // The old leader stops (as an upgrade replaces it); a new replica takes
    // over, and the previous release comes back beside it as a follower.
    let old_served = canary_served(old.admin).await;
    old.kill9();
    let taken = eventually(15, || async { leader(news[0].admin).await.is_some_and(|l| l != "old") }).await;
    assert!(taken, "no new replica took over from the killed old leader");
    let lead_id = wait_for_leader(&[&news[0], &news[1]]).await;
    let lead = news[["n1", "n2"].iter().position(|i| *i == lead_id).unwrap()].admin;
    old = old_replica(&etcd, &stable.url(), dir.path(), "old");
    assert_eq!(wait_for_leader(&[&old, &news[0], &news[1]]).await, lead_id);
    all_read(&[&old]).await;
    let all = [&old, &news[0], &news[1]];
    traffic(&all, 300, 300).await;
    let want = served(&all).await + old_served;
    let counted = eventually(10, || async { judged(lead).await == want }).await;
    assert!(counted, "the new leader judged {} of the {want} canary requests", judged(lead).await);
    assert!(canary_served(old.admin).await > 0, "the restarted old replica served no canary request");
}

/// `etcdctl` with `args` on `etcd`; its output.
fn etcdctl(etcd: &Etcd, args: &[&str]) -> String {
    let out = Command::new("etcdctl").arg("--endpoints").arg(etcd.urls()).args(args).output().unwrap();
    assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A command as a replica of wire `wire` forwards it.
async fn forwarded(admin: std::net::SocketAddr, wire: u64) -> (u16, serde_json::Value) {
    let req = http::Request::post(format!("http://{admin}/api/rollout/pause"))
        .header("x-canary-forwarded-by", "future")
        .header("x-canary-wire", wire.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

/// A release after this one cannot be built today; its registration can be
/// written, as it would write it, and that is all this rule looks at.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_beside_a_newer_wire_hands_over_the_lead_and_refuses_its_commands() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ps = [
        replica(&etcd, &stable.url(), dir.path(), "r1", FAST),
        replica(&etcd, &stable.url(), dir.path(), "r2", FAST),
    ];
    let led = wait_for_leader(&[&ps[0], &ps[1]]).await;
    let lead = ps[["r1", "r2"].iter().position(|i| *i == led).unwrap()].admin;
    let wire = get_json(lead, "/api/rollout").await["cluster"]["wire"].as_u64().unwrap();

    // A command forwarded by a newer replica is refused, not half understood.
    let (status, body) = forwarded(lead, wire + 1).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("newer_follower")), "{body}");
    let (status, body) = forwarded(lead, wire).await;
    assert_ne!(status, 503, "a command from the same wire is carried out: {body}");

    // A newer replica registers: the leader hands over, and neither
    // campaigns while it is there.
    let keys = etcdctl(&etcd, &["get", "--prefix", "--keys-only", "/canary/"]);
    let mine = keys.lines().find(|k| k.ends_with("/replicas/r1")).expect("r1's registration");
    let key = mine.replace("/replicas/r1", "/replicas/future");
    let lease = etcdctl(&etcd, &["lease", "grant", "60"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    let value = serde_json::json!({"id": "future", "admin": "127.0.0.1:9", "wire": wire + 1, "release": "9.9.9 (future)"});
    etcdctl(&etcd, &["put", "--lease", &lease, &key, &value.to_string()]);
    for p in &ps {
        let declined = eventually(10, || async {
            let c = get_json(p.admin, "/api/rollout").await["cluster"].clone();
            c["leader"].is_null()
                && c["declines_to_lead"].as_str().is_some_and(|w| w.contains("replica future"))
        })
        .await;
        assert!(declined, "{}", get_json(p.admin, "/api/rollout").await["cluster"]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for p in &ps {
        assert!(leader(p.admin).await.is_none(), "a replica led beside a newer wire");
    }
    let (code, out, _) = run(&["status".into(), "--admin".into(), format!("http://{}", ps[0].admin)]);
    assert_eq!(code, 0);
    assert!(out.contains("declines to lead: replica future runs a newer canary (9.9.9 (future)"), "{out}");

    // Once it is gone, the fleet leads itself again.
    etcdctl(&etcd, &["lease", "revoke", &lease]);
    wait_for_leader(&[&ps[0], &ps[1]]).await;
}
