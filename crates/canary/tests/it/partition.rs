//! The leader of a rollout cut off from etcd while it keeps running: three
//! replicas on one real etcd under client load, the leader reaching etcd
//! only through a relay the test controls (see `relay`). A cut that closes
//! nothing, a reset, and a slow link: the cut-off leader stops driving
//! before its lease ends and says so, another replica takes over, no client
//! of any replica sees an error, the cut-off replica rejoins as a follower,
//! and the event history in etcd shows every step done once.

use crate::cluster::{Etcd, deploy_args, get_json, replica, replica_via, run};
use crate::load::{Tally, spawn_load};
use crate::relay::{Mode, Relay};
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The replicas; the first one leads and reaches etcd through the relay.
const IDS: [&str; 3] = ["a", "b", "c"];

/// The lease every replica holds in the cut-off tests.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// The shared state's key prefix in etcd.
const PREFIX: &str = "/partition";

/// A judge that passes a clean canary's step on a few dozen requests: these
/// tests are about who drives the rollout, not about the judge.
const POLICY: &str = "[policy]\nmax_error_rate = 20.0\nmax_error_rate_increase = 20.0\nmin_requests = 20\n\
    min_fail_requests = 20\ntargets = false\nmax_p95_ms = 5000\nrollback_p95_ms = 10000\n\
    max_p95_ratio = 100.0\np95_slack_ms = 5000\n";

/// Every replica's config: a lease of `lease`, the state under [`PREFIX`].
fn toml(lease: Duration) -> String {
    format!("[cluster]\nlease_ttl = \"{}s\"\nprefix = \"{PREFIX}\"\n{POLICY}", lease.as_secs())
}

/// Ten steps of 2 s: long enough to cut the leader in the middle of it.
const STEPS: &str = "10,20,30,40,50,60,70,80,90,100";

/// Requests a second through each replica.
const RPS: u64 = 40;

/// Three replicas on one etcd, `a` through the relay and leading.
struct Fleet {
    ps: Vec<Process>,
    relay: Relay,
    etcd: Etcd,
    canary: Upstream,
    _stable: Upstream,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// The replicas holding leases of `lease`.
    async fn start(lease: Duration) -> Fleet {
        let toml = toml(lease);
        let dir = tempdir();
        let etcd = Etcd::start(dir.path(), 1);
        let relay = Relay::start(etcd.client_addr(0));
        let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
        // `a` alone first, so that it is the one that leads.
        let a = replica_via(&relay.url(), &stable.url(), dir.path(), "a", &toml);
        let leads =
            eventually(20, || async { ask(a.admin, "/api/v2/health").await["cluster"]["is_leader"] == true })
                .await;
        assert!(leads, "a did not lead: {}", ask(a.admin, "/api/v2/health").await);
        let mut ps = vec![a];
        ps.extend(IDS[1..].iter().map(|id| replica(&etcd, &stable.url(), dir.path(), id, &toml)));
        for p in &ps {
            let sees = eventually(20, || async {
                let h = ask(p.admin, "/api/v2/health").await;
                h["cluster"]["leader"] == "a"
                    && h["cluster"]["replicas"].as_array().is_some_and(|r| r.len() == 3)
            })
            .await;
            assert!(sees, "{}", ask(p.admin, "/api/v2/health").await);
        }
        Fleet { ps, relay, etcd, canary, _stable: stable, _dir: dir }
    }

    /// Starts the rollout (through `b`: forwarded to the leader) and waits
    /// until it has advanced a step, driven by `a`.
    async fn deploy(&self) {
        let args = deploy_args(
            self.ps[1].admin,
            &self.canary.url(),
            &["10", "--steps", STEPS, "--bake", "2s", "--final-watch", "2s"],
        );
        // A deploy refused as "not changed" (etcd slow to answer on a loaded
        // machine) is asked again, as an operator would; one that landed
        // after all is not.
        for attempt in 1.. {
            let (code, out, err) = run(&args);
            if code == 0 || ask(self.ps[1].admin, "/api/rollout").await["state"] == "progressing" {
                break;
            }
            assert!(attempt < 5 && err.contains("not changed"), "{out}{err}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let moving =
            eventually(30, || async { step(&ask(self.ps[1].admin, "/api/rollout").await) >= 2 }).await;
        assert!(moving, "the rollout did not advance: {}", ask(self.ps[1].admin, "/api/rollout").await);
    }

    /// Every event in etcd, oldest first: (writer's node id, written at ms, event).
    fn history(&self) -> Vec<(String, u64, Value)> {
        let out = Command::new("etcdctl")
            .args(["--endpoints", &self.etcd.urls(), "get", "--prefix", &format!("{PREFIX}/events/")])
            .args(["--sort-by=CREATE", "--order=ASCEND"])
            .output()
            .unwrap();
        assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .chunks(2)
            .map(|kv| {
                // `{PREFIX}/events/{ms:013}-{node}-{seq:08}`
                let name = kv[0].rsplit('/').next().unwrap();
                let (ms, rest) = name.split_once('-').unwrap();
                let node = &rest[..rest.rfind('-').unwrap()];
                (node.to_string(), ms.parse().unwrap(), serde_json::from_str(kv[1]).unwrap())
            })
            .collect()
    }
}

/// `path` of the admin API at `admin` as JSON; `Null` if it does not answer
/// within 2 s (a replica whose etcd calls hang must not hang the test).
async fn ask(admin: SocketAddr, path: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(2), get_json(admin, path)).await.unwrap_or(Value::Null)
}

/// The rollout's step (1-based) in a `/api/rollout` answer; 0 without one.
fn step(status: &Value) -> u64 {
    status["rollout"]["step"].as_u64().unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// How close together one sample's answers must come. A cut-off leader
/// stops claiming the lead a second (`MARGIN`) before etcd can let its lease
/// go, and another can take it only after that: half a second apart at least.
const SAMPLE_WINDOW: Duration = Duration::from_millis(400);

/// Who said it led, every 100 ms, until stopped.
struct Leaders {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Vec<String>>>,
}

impl Leaders {
    /// Asks every replica's `/api/v2/health` at once, every 100 ms: each
    /// sample is the ids of those whose `cluster.is_leader` was true. A
    /// sample counts only when every answer came within [`SAMPLE_WINDOW`]:
    /// answers read further apart could show the old leader before its
    /// stop and the new one after its start, which never overlap.
    fn watch(ps: &[Process]) -> Leaders {
        let admins: Vec<SocketAddr> = ps.iter().map(|p| p.admin).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let quick =
                    |a: SocketAddr| tokio::time::timeout(SAMPLE_WINDOW, get_json(a, "/api/v2/health"));
                let answers = futures_util::future::join_all(admins.iter().map(|a| quick(*a))).await;
                let Ok(hs) = answers.into_iter().collect::<Result<Vec<Value>, _>>() else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let leading = IDS
                    .iter()
                    .zip(&hs)
                    .filter(|(_, h)| h["cluster"]["is_leader"] == true)
                    .map(|(id, _)| id.to_string());
                samples.push(leading.collect());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        });
        Leaders { stop, task }
    }

    /// Stops sampling; asserts no sample had two leaders.
    async fn assert_never_two(self) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap();
        assert!(samples.len() > 20, "only {} whole samples", samples.len());
        let two: Vec<&Vec<String>> = samples.iter().filter(|s| s.len() > 1).collect();
        assert!(two.is_empty(), "two replicas acted as leader at once: {two:?}");
    }
}

/// Client load through every replica.
struct Load {
    stop: Arc<AtomicBool>,
    loads: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    fn start(ps: &[Process]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let loads = ps.iter().map(|p| spawn_load(p.proxy, RPS, Arc::clone(&stop))).collect();
        Load { stop, loads }
    }

    /// Stops it; asserts that no request of any replica failed or hung.
    async fn assert_none_lost(self) {
        self.stop.store(true, Ordering::Relaxed);
        for (l, id) in self.loads.into_iter().zip(IDS) {
            let t = l.await.unwrap();
            t.assert_none_lost(&format!("clients of replica {id}"));
            assert!(t.ok > RPS * 10, "replica {id}: {t:?}");
        }
    }
}

/// Asserts the rollout's history in etcd: started once, every step left
/// once and in order (none done twice, none skipped), promoted from the last
/// step, no rollback, a change of leader.
fn assert_steps(events: &[(String, u64, Value)]) {
    let of_rollout: Vec<&(String, u64, Value)> =
        events.iter().filter(|(_, _, e)| e["detail"]["rollout"] == 1).collect();
    let kinds = |k: &str| of_rollout.iter().filter(|(_, _, e)| e["kind"] == k).count();
    let summary: Vec<String> = of_rollout
        .iter()
        .map(|(n, ms, e)| format!("{ms} {n} {} from {}", e["kind"], e["detail"]["from_step"]))
        .collect();
    assert_eq!(kinds("rollout_started"), 1, "{summary:#?}");
    assert_eq!(kinds("rolled_back"), 0, "{summary:#?}");
    let left: Vec<u64> = of_rollout
        .iter()
        .filter(|(_, _, e)| e["kind"] == "step_advanced" || e["kind"] == "promoted")
        .map(|(_, _, e)| e["detail"]["from_step"].as_u64().unwrap())
        .collect();
    let steps = STEPS.split(',').count() as u64;
    assert_eq!(left, (1..=steps).collect::<Vec<u64>>(), "steps done twice or skipped: {summary:#?}");
    assert!(kinds("leader_changed") >= 1, "{summary:#?}");
}

/// As [`assert_steps`], and nothing written by `a` between `cut` and `healed`
/// (nothing decided while cut off lands, then or later).
fn assert_history(events: &[(String, u64, Value)], cut: u64, healed: u64) {
    assert_steps(events);
    let by_a: Vec<String> = events
        .iter()
        .filter(|(n, ms, _)| n == "a" && *ms > cut && *ms < healed)
        .map(|(_, ms, e)| format!("{ms} {}", e["kind"]))
        .collect();
    assert!(by_a.is_empty(), "the cut-off replica wrote while cut off: {by_a:#?}");
}

/// The leader cut off from etcd by `mode` (a blackhole or a reset) mid-rollout.
async fn leader_cut_off(mode: Mode) {
    let f = Fleet::start(LEASE_TTL).await;
    let load = Load::start(&f.ps);
    let leaders = Leaders::watch(&f.ps);
    f.deploy().await;
    let (a, b) = (f.ps[0].admin, f.ps[1].admin);

    let (cut, cut_ms) = (Instant::now(), now_ms());
    f.relay.set(mode);
    // The cut-off leader says it no longer leads, and why, before its
    // lease can have run out on etcd (another replica may then lead). Timed
    // on health, which never waits on the controller (stuck in a write to
    // the cut-off etcd), each look by when it was asked: a slow answer on a
    // busy machine does not count against the replica.
    let (mut said, mut last) = (None, Vec::new());
    while said.is_none() && cut.elapsed() < LEASE_TTL * 3 {
        let asked = cut.elapsed();
        let h = ask(a, "/api/v2/health").await;
        let c = &h["cluster"];
        if c["is_leader"] == false && c["leader"] != "a" && c["etcd_error"].is_string() {
            said = Some((asked, h));
        } else {
            last.push((asked, c.clone(), h["status"].clone()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (took, h) =
        said.unwrap_or_else(|| panic!("the cut-off leader's health kept saying it leads: {last:#?}"));
    assert!(took < LEASE_TTL, "the cut-off leader said it stopped leading only after {took:?}: {h}");
    assert_eq!(h["status"], "degraded", "{h}");
    // Its status says so too.
    let st = ask(a, "/api/rollout").await;
    let c = &st["cluster"];
    let etcd_named = st["error"].as_str().is_some_and(|e| e.contains("etcd"));
    assert!(c["is_leader"] == false && c["leader"] != "a" && etcd_named, "{st}");
    let (code, text, err) = cli(&["status", "--admin", &format!("http://{a}")]);
    assert_eq!(code, 0, "{err}");
    let problem = text.lines().find(|l| l.starts_with("PROBLEM:"));
    assert!(problem.is_some_and(|l| l.contains("etcd")), "{text}");
    assert!(text.contains("leader unknown (this replica cannot reach etcd"), "{text}");
    // The table it routes with from now on: the last one it had.
    let table = ask(a, "/api/routing").await;
    assert!(table["share"].is_number(), "{table}");

    // Another replica takes over and drives the rollout on.
    let mut next = None;
    for _ in 0..200 {
        let l = ask(b, "/api/v2/health").await["cluster"]["leader"].as_str().map(str::to_string);
        next = l.filter(|l| l != "a");
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = next.unwrap_or_else(|| panic!("no other replica took over: {}", h));
    let admin_of = |id: &str| f.ps[IDS.iter().position(|i| *i == id).unwrap()].admin;
    let new_admin = admin_of(&next);
    let on = eventually(30, || async {
        let share = ask(new_admin, "/api/routing").await["share"].clone();
        share.is_number() && share != table["share"]
    })
    .await;
    assert!(on, "the new leader did not drive the rollout on: {}", ask(new_admin, "/api/rollout").await);
    // Fail static: the cut-off replica still routes with its last table.
    assert_eq!(ask(a, "/api/routing").await["share"], table["share"]);

    // Healed: it rejoins as a follower of whoever leads the fleet now (on a
    // loaded machine the lead may have moved on again) and takes its table.
    f.relay.set(Mode::Pass);
    let healed_ms = now_ms();
    let rejoined = eventually(30, || async {
        let now = ask(b, "/api/v2/health").await["cluster"]["leader"].clone();
        let Some(leader) = now.as_str().filter(|l| *l != "a") else { return false };
        let h = ask(a, "/api/v2/health").await;
        let (mine, fleet) = (ask(a, "/api/routing").await, ask(admin_of(leader), "/api/routing").await);
        h["status"] == "healthy"
            && h["cluster"]["is_leader"] == false
            && h["cluster"]["leader"] == leader
            && mine["share"] == fleet["share"]
            && mine["canary"] == fleet["canary"]
    })
    .await;
    assert!(rejoined, "{} {}", ask(a, "/api/v2/health").await, ask(a, "/api/routing").await);
    let done = eventually(60, || async { ask(b, "/api/rollout").await["state"] == "promoted" }).await;
    assert!(done, "not promoted: {}", ask(b, "/api/rollout").await);

    load.assert_none_lost().await;
    leaders.assert_never_two().await;
    assert_history(&f.history(), cut_ms, healed_ms);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_without_a_close_steps_down_in_time_and_rejoins_as_a_follower() {
    leader_cut_off(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_connections_to_etcd_are_reset_steps_down_in_time_and_rejoins_as_a_follower() {
    leader_cut_off(Mode::Reset).await;
}

/// The slow link's test: a lease that outlasts several 2 s delays, so that
/// the slow leader keeps leading while its writes land late (after its own
/// call gave up on them).
const SLOW_LEASE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_on_a_slow_link_to_etcd_never_leads_beside_another_and_no_client_errs() {
    let f = Fleet::start(SLOW_LEASE).await;
    let load = Load::start(&f.ps);
    let leaders = Leaders::watch(&f.ps);
    f.deploy().await;
    let (a, b) = (f.ps[0].admin, f.ps[1].admin);
    f.relay.set(Mode::Delay(Duration::from_secs(2)));
    // For a while the rollout either goes on (its steps seen by a follower)
    // or holds with the reason in the slow leader's `status`: an operator
    // never sees a rollout that stands still without saying why.
    let slow = Instant::now();
    let mut seen = Vec::new();
    while slow.elapsed() < Duration::from_secs(12) {
        let (mine, fleet) = (ask(a, "/api/rollout").await, ask(b, "/api/rollout").await);
        let reason = mine["error"].as_str().or(mine["rollout"]["reason"].as_str()).map(str::to_string);
        seen.push((step(&fleet), fleet["state"].as_str().map(str::to_string), reason));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let steps: Vec<u64> = seen.iter().map(|s| s.0).collect();
    let moved =
        steps.first() != steps.last() || seen.last().is_some_and(|s| s.1.as_deref() == Some("promoted"));
    let explained = seen.iter().rev().take(4).all(|s| s.2.is_some());
    assert!(moved || explained, "the rollout stood still without a reason: {seen:?}");
    f.relay.set(Mode::Pass);
    // Not paused: a share the slow leader set with a step that landed late
    // is the step's, not an operator's hand.
    let done = eventually(60, || async { ask(b, "/api/rollout").await["state"] == "promoted" }).await;
    assert!(done, "not promoted: {}", ask(b, "/api/rollout").await);
    load.assert_none_lost().await;
    leaders.assert_never_two().await;
    // Writes the slow leader sent while it still led may land late; what
    // must hold is that every step was done once.
    assert_steps(&f.history());
}
