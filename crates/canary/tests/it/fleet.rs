//! What a fleet costs etcd while idle: counted by etcd itself (its own
//! `/metrics`), so that a replica that polls, lists or campaigns where it
//! should watch shows up as calls that grow with the number of replicas.

use crate::cluster::{Etcd, FAST, deploy_args, get_json, replica, run, totals_served, wait_for_leader};
use crate::support::*;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::Duration;

/// etcd's served calls so far, by method (`Range`, `Txn`, `LeaseKeepAlive`...).
async fn calls(etcd: &Etcd) -> BTreeMap<String, u64> {
    let (status, _, body) = get(&client(), etcd.client_addr(0), "/metrics", &[]).await;
    assert_eq!(status, 200, "etcd's /metrics: {body}");
    let mut by = BTreeMap::new();
    for line in body.lines().filter(|l| l.starts_with("grpc_server_handled_total{")) {
        let method = line.split("grpc_method=\"").nth(1).and_then(|r| r.split('"').next());
        let n = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(m), Some(n)) = (method, n) {
            *by.entry(m.to_string()).or_insert(0) += n as u64;
        }
    }
    by
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, method: &str) -> u64 {
    after.get(method).copied().unwrap_or(0) - before.get(method).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_fleet_costs_etcd_renewals_and_the_leaders_reads_only() {
    const N: usize = 5;
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ids: Vec<String> = (0..N).map(|i| format!("r{i}")).collect();
    let ps: Vec<Process> = ids.iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    for _ in 0..5 {
        let leader = wait_for_leader(&refs).await;
        // The new leader's controller records taking the lead (a write) at
        // its next look: waited for, so it falls before the window.
        let took = eventually(10, || async {
            let ev = admin_json(&client(), ps[0].admin, "/api/events").await;
            ev["events"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "leader_changed"))
        })
        .await;
        assert!(took, "the leader's controller did not take the lead");
        // Every replica comes to know every other (itself included) from
        // the watch: a registration is written once the replica serves.
        let known = |admin| async move {
            let st = get_json(admin, "/api/rollout").await;
            st["cluster"]["replicas"].as_array().map_or(0, Vec::len)
        };
        for p in &ps {
            let all = eventually(10, || async { known(p.admin).await == N }).await;
            assert!(all, "{} knows {} of {N} replicas", p.admin, known(p.admin).await);
        }
        let before = calls(&etcd).await;
        let asked: Vec<u64> = join_all(ps.iter().map(|p| totals_served(p.admin))).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = calls(&etcd).await;
        let asked_after: Vec<u64> = join_all(ps.iter().map(|p| totals_served(p.admin))).await;
        if wait_for_leader(&refs).await != leader {
            continue;
        }
        // No campaign while someone leads: a campaign is a write through etcd's log.
        assert_eq!(delta(&before, &after, "Txn"), 0, "{before:?} -> {after:?}");
        assert_eq!(delta(&before, &after, "Put"), 0, "{before:?} -> {after:?}");
        // The leader reads its key twice a second (12 in 6 s); each replica's
        // four watches check their keys once per 30 s of quiet (at most once
        // each in 6 s). A follower listing or reading each look would add 12
        // a follower: 48 more here.
        let reads = delta(&before, &after, "Range");
        assert!(reads <= 13 + 4 * N as u64, "{reads} reads in 6 s: {before:?} -> {after:?}");
        // Every replica renews its lease: the counts are etcd's own.
        assert!(delta(&before, &after, "LeaseKeepAlive") >= N as u64, "{before:?} -> {after:?}");
        // With no rollout to judge, the leader asks each replica for its
        // totals once per 5 s (at every look, 4 a second, while judging).
        for (b, a) in asked.iter().zip(&asked_after) {
            assert!(a - b <= 2, "a replica was asked for its totals {} times in 6 s while idle", a - b);
        }
        return;
    }
    panic!("the leader kept changing on an idle fleet");
}

/// The leader's `unanswered` list for `id`, as its status says.
async fn unanswered(leader: std::net::SocketAddr, id: &str) -> Option<u64> {
    let st = get_json(leader, "/api/rollout").await;
    let list = st["cluster"]["unanswered"].as_array().cloned().unwrap_or_default();
    list.iter().find(|u| u["id"] == id).and_then(|u| u["since_ms"].as_u64())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_up_but_stuck_is_named_as_unjudged_until_it_answers_again() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ids = ["a", "b", "c"];
    let ps: Vec<Process> = ids.iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let leader = wait_for_leader(&ps.iter().collect::<Vec<_>>()).await;
    let lead = ps[ids.iter().position(|i| *i == leader).unwrap()].admin;
    // Judging: the leader gathers every 250 ms.
    let (code, out, err) = run(&deploy_args(lead, &canary.url(), &["10", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    let at = ids.iter().position(|i| *i != leader).unwrap();
    let stuck = ids[at];
    // The leader knows it (its registration came through the watch) before it stops.
    let known = eventually(10, || async {
        let st = get_json(lead, "/api/rollout").await;
        st["cluster"]["replicas"].as_array().is_some_and(|r| r.iter().any(|r| r["id"] == stuck))
    })
    .await;
    assert!(known, "the leader never saw {stuck} registered");
    // Stopped, it keeps its registration (9 s) but answers nothing.
    ps[at].signal("STOP");
    let named = eventually(10, || async { unanswered(lead, stuck).await.is_some_and(|ms| ms >= 1000) }).await;
    let said = run(&["status".to_string(), "--admin".to_string(), format!("http://{lead}")]);
    let (_, _, metrics) = get(&client(), lead, "/metrics", &[]).await;
    ps[at].signal("CONT");
    let line = format!("canary_cluster_replica_unanswered_seconds{{replica=\"{stuck}\"}} ");
    assert!(metrics.contains(&line), "no {line}in the leader's /metrics: {metrics}");
    assert!(named, "the leader never named {stuck}: {}", get_json(lead, "/api/rollout").await);
    assert!(said.1.contains("its traffic is not judged"), "{}{}", said.1, said.2);
    let back = eventually(10, || async { unanswered(lead, stuck).await.is_none() }).await;
    assert!(back, "{stuck} still named after it answers: {}", get_json(lead, "/api/rollout").await);
}

/// The requests `admin`'s replica sent to the canary, by its `/metrics`.
pub(crate) async fn canary_served(admin: std::net::SocketAddr) -> u64 {
    let (_, _, body) = get(&client(), admin, "/metrics", &[]).await;
    body.lines()
        .filter(|l| l.starts_with("canary_requests_total{version=\"canary\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The canary requests the judge counted for the newest rollout, as saved.
pub(crate) async fn judged(admin: std::net::SocketAddr) -> u64 {
    let s = get_json(admin, "/api/rollouts/summary").await;
    s["rollouts"][0]["canary_requests"].as_u64().unwrap_or(0)
}

/// `n` requests from new users, spread over the replicas' proxies.
pub(crate) async fn traffic(ps: &[&Process], n: usize, from: usize) {
    for i in from..from + n {
        let user = format!("user-{i}");
        let (status, _, _) =
            get(&client(), ps[i % ps.len()].proxy, "/api/v2/rooms", &[("x-user-id", &user)]).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_judge_counts_every_replicas_canary_requests_once_across_a_restart_and_a_leader_change() {
    const N: usize = 5;
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ids: Vec<String> = (0..N).map(|i| format!("r{i}")).collect();
    let mut ps: Vec<Process> =
        ids.iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let leader = wait_for_leader(&ps.iter().collect::<Vec<_>>()).await;
    let lead = ps[ids.iter().position(|i| *i == leader).unwrap()].admin;
    let all_known = eventually(10, || async {
        let st = get_json(lead, "/api/rollout").await;
        st["cluster"]["replicas"].as_array().map_or(0, Vec::len) == N
    })
    .await;
    assert!(all_known, "the leader did not see all {N} replicas");
    // The leader has a first reading (the baseline) of every follower.
    for p in ps.iter().filter(|p| p.admin != lead) {
        let read = eventually(10, || async { totals_served(p.admin).await > 0 }).await;
        assert!(read, "the leader never read {}", p.admin);
    }
    let (code, out, err) = run(&deploy_args(lead, &canary.url(), &["50", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    traffic(&ps.iter().collect::<Vec<_>>(), 300, 0).await;
    let sum = join_all(ps.iter().map(|p| canary_served(p.admin))).await.iter().sum::<u64>();
    assert!(sum > 50, "too few canary requests to tell: {sum}");
    // The leader saves its count at least once a second.
    let counted = eventually(10, || async { judged(lead).await == sum }).await;
    assert!(counted, "judged {} of the {sum} canary requests the replicas served", judged(lead).await);
    // A follower killed (all its traffic counted) and started again: its
    // totals start over at zero, and all it serves is counted.
    let at = ids.iter().position(|i| *i != leader).unwrap();
    let before = canary_served(ps[at].admin).await;
    ps.remove(at).kill9();
    ps.insert(at, replica(&etcd, &stable.url(), dir.path(), &ids[at], FAST));
    traffic(&ps.iter().collect::<Vec<_>>(), 300, 300).await;
    let now = join_all(ps.iter().map(|p| canary_served(p.admin))).await.iter().sum::<u64>();
    let want = now + before;
    let counted = eventually(10, || async { judged(lead).await == want }).await;
    assert!(counted, "judged {} of the {want} canary requests the replicas served", judged(lead).await);
    // The leader killed, all it served counted: what the others serve while
    // nobody leads, and after another took over, is counted, none of it twice.
    let at = ids.iter().position(|i| *i == leader).unwrap();
    let gone = canary_served(ps[at].admin).await + before;
    let dead = ps.remove(at);
    let rest: Vec<&Process> = ps.iter().collect();
    // Traffic through the others goes on as the leader dies: before its
    // last save, between that and its death, and while nobody leads.
    let kill = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        dead.kill9();
    };
    tokio::join!(traffic(&rest, 400, 600), kill);
    let took =
        eventually(15, || async { super::cluster::leader(rest[0].admin).await.is_some_and(|l| l != leader) })
            .await;
    assert!(took, "nobody took over from the killed leader");
    let next = wait_for_leader(&rest).await;
    let lead = rest[ids.iter().filter(|i| **i != leader).position(|i| *i == next).unwrap()].admin;
    traffic(&rest, 300, 1000).await;
    let want = join_all(rest.iter().map(|p| canary_served(p.admin))).await.iter().sum::<u64>() + gone;
    let counted = eventually(10, || async { judged(lead).await == want }).await;
    assert!(counted, "the new leader judged {} of the {want} canary requests", judged(lead).await);
}
