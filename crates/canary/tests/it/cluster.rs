//! Several `canary serve` replicas sharing one rollout through a real etcd
//! (Debian's `etcd-server`, started here on loopback): the table reaching every
//! router, the same user on the same version everywhere, the leader killed
//! mid-rollout, the fleet judged as one, and etcd failing under them.

use crate::load::*;
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// A loopback port for etcd, kept for it (see [`reserved`]) also while it is
/// down between a kill and a restart.
fn free_port() -> (u16, tokio::net::TcpSocket) {
    let (addr, held) = reserved();
    (addr.port(), held)
}

/// One etcd member.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    dir: PathBuf,
    child: Option<Child>,
    _ports: [tokio::net::TcpSocket; 2],
}

/// A real etcd: one member, or three forming a cluster.
pub struct Etcd {
    members: Vec<Member>,
}

impl Etcd {
    pub fn start(dir: &Path, n: usize) -> Etcd {
        let members: Vec<Member> = (0..n)
            .map(|i| {
                let ((client, c), (peer, p)) = (free_port(), free_port());
                let dir = dir.join(format!("etcd-m{i}"));
                Member { name: format!("m{i}"), client, peer, dir, child: None, _ports: [c, p] }
            })
            .collect();
        let mut e = Etcd { members };
        for i in 0..n {
            e.start_member(i, "new");
        }
        e.wait_healthy();
        e
    }

    fn initial_cluster(&self) -> String {
        let peers: Vec<String> =
            self.members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect();
        peers.join(",")
    }

    fn start_member(&mut self, i: usize, state: &str) {
        let cluster = self.initial_cluster();
        let m = &mut self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster, "--initial-cluster-state", state])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is needed for the cluster tests: apt-get install etcd-server (./test.sh does)");
        m.child = Some(child);
    }

    /// Member `i`'s client address.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.members[i].client))
    }

    /// The client URLs, comma-separated, as `--etcd` takes them.
    pub fn urls(&self) -> String {
        let urls: Vec<String> =
            self.members.iter().map(|m| format!("http://127.0.0.1:{}", m.client)).collect();
        urls.join(",")
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new("etcdctl")
                .args(["--endpoints", &self.urls(), "endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("etcd did not become healthy within 30 s");
    }

    /// kill -9 member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts member `i` again on its data.
    pub fn restart(&mut self, i: usize) {
        self.start_member(i, "existing");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// `canary serve` replica `id` in front of `stable`, sharing state through `etcd`.
pub(crate) fn replica(etcd: &Etcd, stable: &str, dir: &Path, id: &str, toml: &str) -> Process {
    replica_via(&etcd.urls(), stable, dir, id, toml)
}

/// As [`replica`], reaching etcd at `urls` (a relay, for instance).
pub(crate) fn replica_via(urls: &str, stable: &str, dir: &Path, id: &str, toml: &str) -> Process {
    replica_of(env!("CARGO_BIN_EXE_canary"), urls, stable, dir, id, toml)
}

/// As [`replica_via`], running the canary binary at `bin`.
pub(crate) fn replica_of(bin: &str, urls: &str, stable: &str, dir: &Path, id: &str, toml: &str) -> Process {
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(&cfg, toml).unwrap();
    let state = arg(dir, &format!("{id}.db"));
    let args = [
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--stable",
        stable,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
        "--etcd",
        urls,
        "--node-id",
        id,
    ];
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
    Process::start_bin(bin, &args, &[], log)
}

pub(crate) const FAST: &str = "[cluster]\nlease_ttl = \"3s\"\n";

pub(crate) async fn get_json(admin: SocketAddr, path: &str) -> Value {
    admin_json(&client(), admin, path).await
}

/// The leader's node id as `admin` sees it, once one is elected.
pub(crate) async fn leader(admin: SocketAddr) -> Option<String> {
    get_json(admin, "/api/rollout").await["cluster"]["leader"].as_str().map(str::to_string)
}

/// The leader, once every replica in `ps` names the same one.
pub(crate) async fn wait_for_leader(ps: &[&Process]) -> String {
    for _ in 0..100 {
        let seen: Vec<Option<String>> =
            futures_util::future::join_all(ps.iter().map(|p| leader(p.admin))).await;
        if let Some(Some(l)) = seen.first().filter(|l| l.is_some() && seen.iter().all(|s| s == *l)) {
            return l.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader agreed on within 10 s");
}

/// The version `user` is served by through `proxy`.
async fn version_of(proxy: SocketAddr, user: &str) -> String {
    let (status, version, _) = get(&client(), proxy, "/api/v2/rooms", &[("x-user-id", user)]).await;
    assert_eq!(status, 200);
    version
}

pub(crate) fn deploy_args(admin: SocketAddr, canary: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["deploy".to_string(), extra[0].to_string(), canary.to_string()];
    a.extend(extra[1..].iter().map(|s| s.to_string()));
    a.extend(["--admin".to_string(), format!("http://{admin}")]);
    a
}

pub(crate) fn run(args: &[String]) -> (i32, String, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&refs)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_change_on_any_replica_reaches_every_router_and_users_stay_put() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let ps: Vec<Process> =
        ["a", "b", "c"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    let lead = wait_for_leader(&refs).await;
    // Through a replica that does not lead: the command is forwarded.
    let follower = ps.iter().zip(["a", "b", "c"]).find(|(_, id)| *id != lead).unwrap().0;
    let args = deploy_args(follower.admin, &canary.url(), &["30", "--manual"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
    for p in &ps {
        let ok = eventually(5, || async { get_json(p.admin, "/api/routing").await["share"] == 30.0 }).await;
        assert!(ok, "replica at {} did not get share 30", p.admin);
    }
    // A share change through one replica reaches the others within a second.
    let (code, _, err) = cli(&["adjust", "45", "--admin", &format!("http://{}", ps[2].admin)]);
    assert_eq!(code, 0, "{err}");
    let t = Instant::now();
    for p in &ps {
        let ok = eventually(2, || async { get_json(p.admin, "/api/routing").await["share"] == 45.0 }).await;
        assert!(ok, "replica at {} did not get share 45", p.admin);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "propagation took {:?}", t.elapsed());
    // A feature flag set through one replica is served by every one.
    let (status, reply) =
        admin_put(&client(), follower.admin, "/api/flags/new-lobby", serde_json::json!({"value": "on"}))
            .await;
    assert_eq!(status, 200, "{reply}");
    for p in &ps {
        let on = eventually(2, || async {
            get_json(p.admin, "/api/flags").await["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == "new-lobby" && f["enabled"] == true))
        })
        .await;
        assert!(on, "replica at {} does not serve the flag", p.admin);
    }
    // Every user lands on the same version through every replica.
    let mut on_canary = 0;
    for u in 0..60 {
        let user = format!("user-{u}");
        let v: Vec<String> =
            futures_util::future::join_all(ps.iter().map(|p| version_of(p.proxy, &user))).await;
        assert!(v.iter().all(|x| *x == v[0]), "{user} got {v:?}");
        on_canary += usize::from(v[0] == "canary");
    }
    assert!((10..=45).contains(&on_canary), "{on_canary} of 60 users on the canary at 45%");
    // status --json names the leader and every replica.
    let (code, out, _) = cli(&["status", "--json", "--admin", &format!("http://{}", ps[0].admin)]);
    assert_eq!(code, 0);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["cluster"]["leader"], lead.as_str());
    let ids: Vec<&str> =
        s["cluster"]["replicas"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    // /metrics: exactly one replica says it leads, and the text stays valid.
    let mut leading = 0;
    for p in &ps {
        let (status, _, body) = get(&client(), p.admin, "/metrics", &[]).await;
        assert_eq!(status, 200);
        leading +=
            body.lines().filter(|l| l.starts_with("canary_cluster_leader{") && l.ends_with(" 1")).count();
        assert!(body.contains("canary_cluster_replicas 3"), "{body}");
        promtool_accepts(&body);
    }
    assert_eq!(leading, 1);
}

fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (./test.sh installs prometheus)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool: {said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_killed_mid_rollout_another_takes_over_and_finishes_it() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let stable = Process::start_cmd(&["demo-service", "--version", "v1", "--listen", "127.0.0.1:0"]);
    let canary = Process::start_cmd(&["demo-service", "--version", "v2", "--listen", "127.0.0.1:0"]);
    let (stable_url, canary_url) = (format!("http://{}", stable.proxy), format!("http://{}", canary.proxy));
    // Loose latency bars: this is about who drives the rollout, not speed.
    let toml = format!(
        "{FAST}[policy]\nmax_p95_ms = 2000\nrollback_p95_ms = 5000\ntarget_p50_ms = 2000\ntarget_p99_ms = 5000\nmax_p95_ratio = 100.0\np95_slack_ms = 5000\n"
    );
    let mut ps: Vec<Option<Process>> =
        ["a", "b", "c"].iter().map(|id| Some(replica(&etcd, &stable_url, dir.path(), id, &toml))).collect();
    let refs: Vec<&Process> = ps.iter().flatten().collect();
    let lead = wait_for_leader(&refs).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut loads: Vec<_> =
        ps.iter().flatten().map(|p| Some(spawn_load(p.proxy, 60, Arc::clone(&stop)))).collect();
    let admin = ps[0].as_ref().unwrap().admin;
    let args =
        deploy_args(admin, &canary_url, &["50", "--steps", "50,100", "--bake", "6s", "--final-watch", "2s"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
    // Let the leader bake a little, then kill it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idx = ["a", "b", "c"].iter().position(|id| *id == lead).unwrap();
    ps[idx].take().unwrap().kill9();
    let killed = Instant::now();
    // Its users' requests fail from now on (their load balancer's job to move them).
    loads[idx].take().unwrap().abort();
    let alive: Vec<&Process> = ps.iter().flatten().collect();
    let mut new_leader = None;
    for _ in 0..100 {
        if let Some(l) = leader(alive[0].admin).await.filter(|l| *l != lead) {
            new_leader = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_leader = new_leader.expect("no new leader within 10 s of the kill");
    // The dead leader's 3 s lease running out, etcd's sweep of expired leases
    // and the next look (500 ms apart each): about 3.5 s, the rest slack for
    // a busy machine.
    assert!(killed.elapsed() < Duration::from_secs(3 + 5), "takeover took {:?}", killed.elapsed());
    let done =
        eventually(60, || async { get_json(alive[0].admin, "/api/rollout").await["state"] == "promoted" })
            .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut stayed = Vec::new();
    for l in loads.into_iter().flatten() {
        stayed.push(l.await.unwrap());
    }
    let events = get_json(alive[0].admin, "/api/events?limit=200").await;
    let kinds: Vec<(String, Value)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["detail"].clone()))
        .collect();
    assert!(done, "not promoted after the takeover; events: {kinds:?}");
    let changed: Vec<&Value> = kinds.iter().filter(|(k, _)| k == "leader_changed").map(|(_, d)| d).collect();
    assert!(changed.iter().any(|d| d["node"] == new_leader.as_str() && d["rollout"] == 1), "{kinds:?}");
    // Each step advanced exactly once, whoever led.
    let advances: Vec<&Value> = kinds.iter().filter(|(k, _)| k == "step_advanced").map(|(_, d)| d).collect();
    let mut steps: Vec<String> = advances.iter().map(|d| d["from_step"].to_string()).collect();
    let n = steps.len();
    steps.dedup();
    assert_eq!(steps.len(), n, "a step advanced twice: {advances:?}");
    // The replicas that stayed served throughout the change of leader.
    Tally::sum(stayed).assert_none_lost("the replicas that stayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_is_judged_as_one_a_canary_failing_on_every_replica_is_rolled_back() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let stable = Process::start_cmd(&["demo-service", "--version", "v1", "--listen", "127.0.0.1:0"]);
    let canary = Process::start_cmd(&[
        "demo-service",
        "--version",
        "v2",
        "--listen",
        "127.0.0.1:0",
        "--error-rate",
        "12",
    ]);
    let (stable_url, canary_url) = (format!("http://{}", stable.proxy), format!("http://{}", canary.proxy));
    let ps: Vec<Process> =
        ["a", "b", "c"].iter().map(|id| replica(&etcd, &stable_url, dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    wait_for_leader(&refs).await;
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = ps.iter().map(|p| spawn_load(p.proxy, 34, Arc::clone(&stop))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, out, err) = run(&deploy_args(ps[1].admin, &canary_url, &["50"]));
    assert_eq!(code, 0, "{out}{err}");
    let rolled =
        eventually(20, || async { get_json(ps[2].admin, "/api/rollout").await["state"] == "rolled_back" })
            .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loads {
        // The canary fails on purpose here: its users' requests may fail, none may hang.
        l.await.unwrap().assert_no_hang("load on a replica");
    }
    let r = get_json(ps[2].admin, "/api/rollout").await;
    assert!(rolled, "not rolled back: {r}");
    // Every replica routes no one to the canary any more.
    for p in &ps {
        assert_eq!(get_json(p.admin, "/api/routing").await["share"], 0.0);
    }
    // The leader counted more canary requests than it served itself: the fleet's.
    let history = get_json(ps[0].admin, "/api/rollouts").await;
    let tally = history["rollouts"][0]["tally"]["canary_requests"].as_u64().unwrap_or(0);
    let leader_id = r["cluster"]["leader"].as_str().unwrap().to_string();
    let own = ps.iter().zip(["a", "b", "c"]).find(|(_, id)| *id == leader_id).unwrap().0;
    let own_n = get_json(own.admin, "/internal/v1/totals").await["versions"][1]["counts"]["requests"]
        .as_u64()
        .unwrap();
    assert!(tally > own_n, "fleet tally {tally} vs the leader's own {own_n}: {history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_etcd_down_every_replica_keeps_routing_and_the_rollout_holds_until_it_returns() {
    let dir = tempdir();
    let mut etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let ps: Vec<Process> =
        ["a", "b"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    wait_for_leader(&refs).await;
    let (code, _, err) = run(&deploy_args(ps[0].admin, &canary.url(), &["50", "--bake", "3s"]));
    assert_eq!(code, 0, "{err}");
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = ps.iter().map(|p| spawn_load(p.proxy, 50, Arc::clone(&stop))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    etcd.kill(0);
    // Past the lease and the 3 s bake: nobody leads, the rollout cannot advance.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for p in &ps {
        // Seen gone after failed renewals (500 ms apart, each may wait 1 s):
        // slower on a busy machine, so looked for rather than read once.
        let degraded =
            eventually(10, || async { get_json(p.admin, "/api/v2/health").await["status"] == "degraded" })
                .await;
        let h = get_json(p.admin, "/api/v2/health").await;
        assert!(degraded, "{h}");
        assert!(h["cluster"]["etcd_error"].is_string(), "{h}");
        assert_eq!(get_json(p.admin, "/api/routing").await["share"], 50.0);
    }
    let (code, _, err) = cli(&["adjust", "60", "--admin", &format!("http://{}", ps[1].admin)]);
    assert_ne!(code, 0, "a command without etcd must fail: {err}");
    // Users are served all along: fail static.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loads {
        let t = l.await.unwrap();
        t.assert_none_lost("while etcd was down");
        assert!(t.ok > 100, "{t:?}");
    }
    // etcd back: the rollout goes on to its end.
    etcd.restart(0);
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = ps.iter().map(|p| spawn_load(p.proxy, 60, Arc::clone(&stop))).collect();
    let healthy =
        eventually(20, || async { get_json(ps[1].admin, "/api/v2/health").await["status"] == "healthy" })
            .await;
    assert!(healthy, "{}", get_json(ps[1].admin, "/api/v2/health").await);
    let r = get_json(ps[1].admin, "/api/rollout").await;
    assert_ne!(r["state"], "rolled_back", "{r}");
    // A new term judges from fresh figures: the step needs its 560 clean
    // canary requests again, at 60 a second here.
    let moved =
        eventually(60, || async { get_json(ps[1].admin, "/api/routing").await["share"] != 50.0 }).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loads {
        l.await.unwrap().assert_none_lost("after etcd came back");
    }
    assert!(moved, "the rollout did not go on: {}", get_json(ps[1].admin, "/api/rollout").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_etcd_member_of_three_down_changes_nothing_visible() {
    let dir = tempdir();
    let mut etcd = Etcd::start(dir.path(), 3);
    let stable = Upstream::start("stable");
    let canary = Upstream::start("canary");
    // A lease that outlasts an etcd election. Member 0 may be etcd's leader:
    // with a 3 s lease (claimed for 2 s past its last renewal) the 1-2 s
    // election after its kill could end this replica's term, and the deploy
    // met "not the leader" (about one such kill in ten).
    let toml = "[cluster]\nlease_ttl = \"10s\"\n";
    let ps: Vec<Process> =
        ["a", "b"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, toml)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    wait_for_leader(&refs).await;
    etcd.kill(0);
    let (code, _, err) = run(&deploy_args(ps[1].admin, &canary.url(), &["20", "--manual"]));
    assert_eq!(code, 0, "{err}");
    for p in &ps {
        let ok = eventually(5, || async { get_json(p.admin, "/api/routing").await["share"] == 20.0 }).await;
        assert!(ok, "replica at {} did not get share 20", p.admin);
        // A look that met the election may have left its error until the
        // next renewal (every 500 ms); what must hold is healthy, not degraded.
        let healthy =
            eventually(5, || async { get_json(p.admin, "/api/v2/health").await["status"] == "healthy" })
                .await;
        assert!(healthy, "{}", get_json(p.admin, "/api/v2/health").await);
    }
}

#[test]
fn a_replica_refuses_to_start_without_a_reachable_etcd_or_with_a_bad_url() {
    let dir = tempdir();
    let state = arg(dir.path(), "s.db");
    let (port, _held) = free_port();
    let dead = format!("http://127.0.0.1:{port}");
    let (code, err) = run_canary(&[
        "serve",
        "--stable",
        "http://127.0.0.1:1",
        "--state",
        &state,
        "--admin",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--etcd",
        &dead,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("etcd") && err.contains(&dead), "{err}");
    let (code, err) =
        run_canary(&["serve", "--stable", "http://127.0.0.1:1", "--etcd", "https://127.0.0.1:2379"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--etcd") && err.contains("http://"), "{err}");
    let (code, err) = run_canary(&["serve", "--stable", "http://127.0.0.1:1", "--node-id", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--etcd"), "{err}");
}

/// Stable's and canary's request counts in a `/api/v2/metrics` answer.
fn counts(m: &Value) -> [u64; 2] {
    ["stable", "canary"].map(|v| m["versions"][v]["requests"]["total"].as_u64().unwrap())
}

/// The fleet's answer from `admin` once `answered` replicas are in it (a peer
/// slow on a loaded machine is retried, not taken for a missing one); the last
/// answer seen if that never happens.
async fn fleet_answer(admin: SocketAddr, answered: u64) -> Value {
    let mut m = Value::Null;
    for _ in 0..50 {
        m = get_json(admin, "/api/v2/metrics?window=10m").await;
        if m["replicas"]["answered"] == answered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_answer_for_the_fleet_and_name_a_replica_that_does_not_answer() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    // A long lease: the killed replica stays registered while the test looks.
    let toml = "[cluster]\nlease_ttl = \"10s\"\n";
    let ids = ["a", "b", "c"];
    let mut ps: Vec<Option<Process>> =
        ids.iter().map(|id| Some(replica(&etcd, &stable.url(), dir.path(), id, toml))).collect();
    let refs: Vec<&Process> = ps.iter().flatten().collect();
    wait_for_leader(&refs).await;
    let (code, out, err) = run(&deploy_args(refs[0].admin, &canary.url(), &["50", "--manual"]));
    assert_eq!(code, 0, "{out}{err}");
    for p in &refs {
        let ok = eventually(5, || async { get_json(p.admin, "/api/routing").await["share"] == 50.0 }).await;
        assert!(ok, "replica at {} did not get share 50", p.admin);
    }
    // A different amount of traffic through each replica, two errors each.
    let c = client();
    for (k, p) in refs.iter().enumerate() {
        for i in 0..20 * (k + 1) {
            get(&c, p.proxy, "/api/v2/rooms", &[("x-user-id", &format!("{}-{i}", ids[k]))]).await;
        }
        for i in 0..2 {
            get(&c, p.proxy, "/status/503", &[("x-user-id", &format!("{}-e{i}", ids[k]))]).await;
        }
    }
    const NODE: &str = "/api/v2/metrics?window=10m&scope=node";
    let mut nodes = Vec::new();
    for (k, p) in refs.iter().enumerate() {
        let sent = 20 * (k as u64 + 1) + 2;
        // A request is counted as its response ends: wait for the last ones.
        let ok =
            eventually(5, || async { counts(&get_json(p.admin, NODE).await).iter().sum::<u64>() == sent })
                .await;
        let m = get_json(p.admin, NODE).await;
        assert!(ok, "{}: {} of {sent} counted", ids[k], m["requests"]["total"]);
        assert_eq!(m["scope"], "node");
        assert!(m.get("replicas").is_none(), "{m}");
        nodes.push(counts(&m));
    }
    let sum = |ns: &[[u64; 2]]| ns.iter().fold([0, 0], |a, n| [a[0] + n[0], a[1] + n[1]]);
    // Asked of any replica, the default answer is the fleet's: every replica's counts added.
    for p in &refs {
        let m = fleet_answer(p.admin, 3).await;
        assert_eq!(m["scope"], "fleet");
        assert_eq!(m["replicas"], serde_json::json!({"answered": 3, "of": 3, "missing": []}));
        assert_eq!(counts(&m), sum(&nodes), "{m}");
        assert_eq!(m["requests"]["total"], 20 + 40 + 60 + 6);
        assert_eq!(m["recent_errors"].as_array().unwrap().len(), 6, "every replica's errors: {m}");
    }
    let bad = get(&c, refs[0].admin, "/api/v2/metrics?scope=everyone", &[]).await;
    assert_eq!(bad.0, 400);
    assert!(bad.2.contains("scope") && bad.2.contains("node"), "{}", bad.2);
    // A replica killed: still registered, it is named missing, and the
    // answer is the sum of those that answered.
    ps[2].take().unwrap().kill9();
    let a = ps[0].as_ref().unwrap().admin;
    let m = fleet_answer(a, 2).await;
    assert_eq!(m["replicas"], serde_json::json!({"answered": 2, "of": 3, "missing": ["c"]}), "{m}");
    assert_eq!(counts(&m), sum(&nodes[..2]), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_decided_while_etcd_is_down_is_written_when_it_returns() {
    let dir = tempdir();
    let mut etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    // A long lease: the leader keeps acting a while after etcd goes.
    let toml = "[cluster]\nlease_ttl = \"10s\"\n";
    let ps: Vec<Process> =
        ["a", "b"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, toml)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    let lead = wait_for_leader(&refs).await;
    let leader = ps.iter().zip(["a", "b"]).find(|(_, id)| *id == lead).unwrap().0;
    let (code, _, err) = run(&deploy_args(leader.admin, &canary.url(), &["50", "--bake", "1h"]));
    assert_eq!(code, 0, "{err}");
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = ps.iter().map(|p| spawn_load(p.proxy, 60, Arc::clone(&stop))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    etcd.kill(0);
    canary.fail_with.store(500, std::sync::atomic::Ordering::SeqCst);
    // The leader pulls the canary out of its own router without etcd: its
    // write to the dead etcd is retried for up to 5 s first, then the router
    // is pulled locally (about 5.5 s in all, more on a busy machine).
    let out = eventually(20, || async { get_json(leader.admin, "/api/routing").await["share"] == 0.0 }).await;
    assert!(
        out,
        "the leader kept routing to a failing canary: {}",
        get_json(leader.admin, "/api/rollout").await
    );
    canary.fail_with.store(0, std::sync::atomic::Ordering::SeqCst);
    etcd.restart(0);
    // Once etcd takes writes again, the rollback is the cluster's: every
    // replica routes nobody to the canary and the rollout is rolled back.
    let everywhere = eventually(40, || async {
        let mut all = true;
        for p in &ps {
            all &= get_json(p.admin, "/api/routing").await["share"] == 0.0;
        }
        all && get_json(ps[0].admin, "/api/rollouts").await["rollouts"][0]["state"] == "rolled_back"
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in loads {
        // The canary answered 500 on purpose for a while: failures are its, hangs would be canary's.
        l.await.unwrap().assert_no_hang("load on a replica");
    }
    let r = get_json(ps[0].admin, "/api/rollouts").await;
    let shares = [get_json(ps[0].admin, "/api/routing").await, get_json(ps[1].admin, "/api/routing").await];
    assert!(
        everywhere,
        "state {} reason {}; routing {shares:?}",
        r["rollouts"][0]["state"], r["rollouts"][0]["reason"]
    );
}

/// `path` of the admin API at `admin` over https, trusting `ca` only.
async fn https_json(admin: SocketAddr, path: &str, ca: &str) -> Value {
    let url = format!("https://127.0.0.1:{}{path}", admin.port());
    let f = canary::cli::client::fetch(&url, Duration::from_secs(5), Some(Path::new(ca))).await;
    f.ok().and_then(|f| f.json.ok()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_admin_tls_the_replicas_reach_each_other_over_https() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let ca = TestCa::new("fleet CA");
    let ca_pem = arg(dir.path(), "ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let (cert, key) = ca.leaf("replica").write(dir.path(), "admin");
    let toml = format!("{FAST}[admin_tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nca_file = \"{ca_pem}\"\n");
    let ps: Vec<Process> =
        ["a", "b"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, &toml)).collect();
    let mut lead = None;
    for _ in 0..100 {
        let l = https_json(ps[0].admin, "/api/rollout", &ca_pem).await["cluster"]["leader"].clone();
        if l.is_string() && https_json(ps[1].admin, "/api/rollout", &ca_pem).await["cluster"]["leader"] == l {
            lead = l.as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lead = lead.expect("a leader both replicas agree on");
    // A command to the replica that does not lead is forwarded over https.
    let other = if lead == "a" { &ps[1] } else { &ps[0] };
    let admin = format!("https://127.0.0.1:{}", other.admin.port());
    let (code, out, err) =
        cli(&["deploy", "30", &canary.url(), "--manual", "--admin", &admin, "--ca-file", &ca_pem]);
    assert_eq!(code, 0, "{out}{err}");
    // Each replica's figures reach the other over https: the fleet answers for both.
    for p in &ps {
        let mut m = Value::Null;
        for _ in 0..50 {
            m = https_json(p.admin, "/api/v2/metrics?window=10m", &ca_pem).await;
            if m["replicas"]["answered"] == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(m["replicas"]["answered"], 2, "{m}");
    }
}

/// `etcdctl put KEY VALUE` on `etcd`.
fn etcdctl_put(etcd: &Etcd, key: &str, value: &str) {
    let ok = Command::new("etcdctl").args(["--endpoints", &etcd.urls(), "put", key, value]).status().unwrap();
    assert!(ok.success(), "etcdctl put {key}");
}

/// The value at `key`, empty when absent.
fn etcdctl_get(etcd: &Etcd, key: &str) -> String {
    let out = Command::new("etcdctl")
        .args(["--endpoints", &etcd.urls(), "get", "--print-value-only", key])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A replica whose command line would send 30% of users to `canary`, over
/// cluster state it cannot read: stable only, degraded, never the leader,
/// nothing written.
async fn assert_replica_fails_closed(etcd: &Etcd, dir: &Path, canary: &Upstream, record: &str) {
    let stable = Upstream::start("stable");
    let toml = format!("{FAST}[upstreams]\ncanary = \"{}\"\n[routing]\nshare = 30\n", canary.url());
    let p = replica(etcd, &stable.url(), dir, "a", &toml);
    let c = client();
    for i in 0..300 {
        assert_eq!(version_of(p.proxy, &format!("user-{i}")).await, "stable", "user-{i}");
    }
    assert_eq!(get(&c, p.proxy, "/", &[("x-canary", "always")]).await.1, "stable");
    let h = get_json(p.admin, "/api/v2/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    let why = h["state_error"].as_str().unwrap_or_default();
    assert!(why.contains(record) && why.contains("--reset-state"), "{h}");
    // Registered, looking, but not campaigning: after several looks no one leads.
    let seen = eventually(10, || async {
        get_json(p.admin, "/api/v2/health").await["cluster"]["replicas"] != Value::Null
    })
    .await;
    assert!(seen);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = get_json(p.admin, "/api/rollout").await;
    assert_eq!(r["cluster"]["is_leader"], false, "{r}");
    assert!(r["error"].as_str().unwrap_or_default().contains("--reset-state"), "{r}");
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &format!("http://{}", p.admin)]);
    assert_ne!(code, 0, "a deploy over unreadable state must be refused: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_state_of_a_newer_schema_serves_stable_only_and_is_not_written() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    etcdctl_put(&etcd, "/canary/v2-api-canary/schema", "99");
    let canary = Upstream::start("canary");
    assert_replica_fails_closed(&etcd, dir.path(), &canary, "schema").await;
    assert_eq!(etcdctl_get(&etcd, "/canary/v2-api-canary/schema"), "99");
    assert_eq!(
        etcdctl_get(&etcd, "/canary/v2-api-canary/routing"),
        "",
        "a newer cluster's routing was written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_routing_record_in_etcd_serves_stable_only_and_is_kept() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let damaged = r#"{"share_bp": "thirty"}"#;
    etcdctl_put(&etcd, "/canary/v2-api-canary/routing", damaged);
    let canary = Upstream::start("canary");
    assert_replica_fails_closed(&etcd, dir.path(), &canary, "routing").await;
    assert_eq!(etcdctl_get(&etcd, "/canary/v2-api-canary/routing"), damaged);
    // The first replica of a new cluster wrote the schema version it knows.
    assert_eq!(etcdctl_get(&etcd, "/canary/v2-api-canary/schema"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_routing_record_turned_unreadable_under_a_running_fleet_blocks_the_canary_and_ends_the_lead() {
    let dir = tempdir();
    let etcd = Etcd::start(dir.path(), 1);
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let toml = format!("{FAST}[upstreams]\ncanary = \"{}\"\n[routing]\nshare = 50\n", canary.url());
    let ps: Vec<Process> =
        ["a", "b"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, &toml)).collect();
    wait_for_leader(&ps.iter().collect::<Vec<_>>()).await;
    let good = etcdctl_get(&etcd, "/canary/v2-api-canary/routing");
    // A record this build cannot read, as a newer canary could write it.
    etcdctl_put(&etcd, "/canary/v2-api-canary/routing", r#"{"share_bp": "half"}"#);
    let closed = eventually(20, || async {
        let mut all = true;
        for p in &ps {
            let h = get_json(p.admin, "/api/v2/health").await;
            all &= h["state_error"].is_string() && h["cluster"]["is_leader"] == false;
        }
        all && etcdctl_get(&etcd, "/canary/v2-api-canary/leader").is_empty()
    })
    .await;
    assert!(
        closed,
        "a replica kept leading over unreadable state: {}",
        get_json(ps[0].admin, "/api/v2/health").await
    );
    for p in &ps {
        for i in 0..50 {
            assert_eq!(version_of(p.proxy, &format!("user-{i}")).await, "stable", "user-{i}");
        }
        // A rollback cannot say done: no replica that can read the state leads.
        let (code, _, err) = cli(&["rollback", "--admin", &format!("http://{}", p.admin)]);
        assert_ne!(code, 0, "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    // A readable record again: the fault ends, a replica leads, the canary is served.
    etcdctl_put(&etcd, "/canary/v2-api-canary/routing", &good);
    let back = eventually(20, || async {
        get_json(ps[0].admin, "/api/v2/health").await["state_error"].is_null()
            && get_json(ps[0].admin, "/api/rollout").await["cluster"]["leader"].is_string()
    })
    .await;
    assert!(back, "{}", get_json(ps[0].admin, "/api/rollout").await);
    let mut to_canary = 0;
    for i in 0..100 {
        to_canary += usize::from(version_of(ps[1].proxy, &format!("user-{i}")).await == "canary");
    }
    assert!(to_canary > 0, "the fleet's 50% did not come back");
}

/// How many times `admin` answered another replica's request for its totals.
pub(crate) async fn totals_served(admin: SocketAddr) -> u64 {
    let (status, _, body) = get(&client(), admin, "/metrics", &[]).await;
    assert_eq!(status, 200);
    let line = "canary_cluster_internal_requests_total{path=\"/internal/v1/totals\"} ";
    body.lines()
        .find_map(|l| l.strip_prefix(line)?.parse().ok())
        .unwrap_or_else(|| panic!("no {line}: {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_gathers_the_fleets_totals_followers_ask_nobody() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ps: Vec<Process> =
        ["a", "b", "c"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    let admin_of = |id: &str| ps[["a", "b", "c"].iter().position(|i| *i == id).unwrap()].admin;
    // A rollout being judged: the leader gathers at every look.
    wait_for_leader(&refs).await;
    let (code, out, err) = run(&deploy_args(ps[0].admin, &canary.url(), &["10", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    // A window during which the leader stayed the same (a change of hands
    // would mix two leaders' fetches: then the window is taken again).
    for _ in 0..5 {
        let leader = wait_for_leader(&refs).await;
        let before: Vec<u64> =
            futures_util::future::join_all(ps.iter().map(|p| totals_served(p.admin))).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after: Vec<u64> = futures_util::future::join_all(ps.iter().map(|p| totals_served(p.admin))).await;
        if wait_for_leader(&refs).await != leader {
            continue;
        }
        let lead = admin_of(&leader);
        for (p, (b, a)) in ps.iter().zip(before.iter().zip(&after)) {
            if p.admin == lead {
                assert_eq!(a, b, "nobody asks the leader for its totals");
            } else {
                // The leader asks 4 times a second: at most 8 in 2 s, and a
                // follower asking too would double it.
                assert!((1..=11).contains(&(a - b)), "a follower was asked {} times in 2 s", a - b);
            }
        }
        return;
    }
    panic!("the leader kept changing on an idle fleet");
}

/// `status` through `admin` right after a command answered elsewhere: asked
/// again only when the answer says it is as of the controller's last look
/// (the controller was busy), which a current answer never is.
async fn status_now(admin: SocketAddr) -> Value {
    for _ in 0..3 {
        let st = get_json(admin, "/api/rollout").await;
        if !st["error"].as_str().is_some_and(|e| e.contains("as of its last look")) {
            return st;
        }
    }
    panic!("the controller of {admin} stayed busy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_through_one_replica_is_seen_at_once_through_another() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let ps: Vec<Process> =
        ["a", "b", "c"].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, FAST)).collect();
    let refs: Vec<&Process> = ps.iter().collect();
    let leader = wait_for_leader(&refs).await;
    // Commands through one follower, status through the other.
    let followers: Vec<&Process> =
        ["a", "b", "c"].iter().zip(&ps).filter(|(id, _)| **id != leader).map(|(_, p)| p).collect();
    let (through, seen) = (followers[0].admin, followers[1].admin);
    let (code, out, err) = run(&deploy_args(through, &canary.url(), &["10", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    let st = status_now(seen).await;
    assert_eq!((st["state"].as_str(), st["share"].as_f64()), (Some("progressing"), Some(10.0)), "{st}");
    let c = client();
    let (status, r) = admin_post(&c, through, "/api/rollout/adjust", serde_json::json!({"share": 25})).await;
    assert_eq!(status, 200, "{r}");
    let st = status_now(seen).await;
    assert_eq!(st["share"].as_f64(), Some(25.0), "{st}");
    let (status, r) = admin_post(&c, through, "/api/rollout/pause", serde_json::json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(status_now(seen).await["state"], "paused");
    let (status, r) =
        admin_post(&c, through, "/api/rollout/rollback", serde_json::json!({"reason": "ryw"})).await;
    assert_eq!(status, 200, "{r}");
    let st = status_now(seen).await;
    assert_eq!((st["state"].as_str(), st["share"].as_f64()), (Some("rolled_back"), Some(0.0)), "{st}");
    // Flags too: set through one replica, listed and answered through another.
    for (value, enabled, percentage) in [("on", true, 100.0), ("off", false, 0.0), ("25%", true, 25.0)] {
        let (status, r) =
            admin_put(&c, through, "/api/flags/beta", serde_json::json!({"value": value})).await;
        assert_eq!(status, 200, "{r}");
        let flags = get_json(seen, "/api/flags").await;
        let beta = flags["flags"].as_array().and_then(|a| a.iter().find(|f| f["name"] == "beta")).cloned();
        let seen_as = beta.map(|b| (b["enabled"].as_bool(), b["percentage"].as_f64().filter(|_| enabled)));
        let want = (Some(enabled), enabled.then_some(percentage));
        assert_eq!(seen_as, Some(want), "{value}: {flags}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_stops_is_dropped_from_the_fleets_sum_with_an_event() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let etcd = Etcd::start(dir.path(), 1);
    let mut ps: Vec<(&str, Process)> =
        ["a", "b", "c"].iter().map(|id| (*id, replica(&etcd, &stable.url(), dir.path(), id, FAST))).collect();
    let leader = wait_for_leader(&ps.iter().map(|(_, p)| p).collect::<Vec<_>>()).await;
    let lead = ps.iter().find(|(id, _)| *id == leader).unwrap().1.admin;
    let at = ps.iter().position(|(id, _)| *id != leader).unwrap();
    // The leader has fetched the follower's totals before it stops.
    let victim = ps[at].1.admin;
    let fetched = eventually(10, || async { totals_served(victim).await > 0 }).await;
    assert!(fetched, "the leader never fetched the follower's totals");
    let (gone, p) = ps.remove(at);
    p.kill9();
    // Its registration's lease (3 × 3 s) lapses, the registration goes, the
    // leader drops it.
    let dropped = eventually(20, || async {
        let ev = get_json(lead, "/api/events").await;
        ev["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "replica_dropped" && e["detail"]["node"] == gone))
    })
    .await;
    assert!(dropped, "no replica_dropped event for {gone}: {}", get_json(lead, "/api/events").await);
}
