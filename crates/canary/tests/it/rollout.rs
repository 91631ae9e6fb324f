//! Rollouts end to end: the controller with real traffic through the real
//! proxy, and the CLI against a real `canary serve` process.

use crate::load::*;
use crate::support::*;
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn quick(canary: &Upstream, share: f64, steps: &str) -> DeployRequest {
    DeployRequest {
        share,
        canary: canary.url(),
        steps: Some(steps.into()),
        bake: Some("1s".into()),
        final_watch: Some("1s".into()),
        ..DeployRequest::default()
    }
}

/// `canary serve` in front of `stable`, 400 requests/s of load, and a rollout
/// of `canary_url` started at 50% with a 10-minute bake (so only a rollback
/// can end it during a test).
fn rolling(
    stable: &Upstream,
    canary_url: String,
    dir: &std::path::Path,
) -> (canary::server::Running, Arc<AtomicBool>, Load) {
    let srv = start(config(stable, None, "0", dir));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 400, Arc::clone(&stop));
    let req = DeployRequest {
        share: 50.0,
        canary: canary_url,
        steps: Some("50,100".into()),
        bake: Some("10m".into()),
        final_watch: None,
        manual: false,
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    (srv, stop, load)
}

type Load = tokio::task::JoinHandle<Tally>;

fn state(srv: &canary::server::Running) -> (String, f64, Option<String>) {
    let s = lock(&srv.controller).status();
    (s.state, s.share, s.rollout.and_then(|r| r.reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_promoted_and_becomes_stable() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 400, Arc::clone(&stop));
    lock(&srv.controller)
        .deploy(&quick(&canary, 50.0, "50,100"), canary::controller::clock::now_ms(), None)
        .unwrap();
    let done = eventually(30, || async { state(&srv).0 == "promoted" }).await;
    assert!(done, "not promoted: {:?}", state(&srv));
    let ups = srv.live.upstreams();
    assert_eq!((ups.stable.url(), ups.canary.is_none()), (canary.url().as_str(), true));
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load through the promotion");
    let c = client();
    assert_eq!(get(&c, srv.proxy_addr, "/", &[]).await.2, "canary", "the canary now serves everyone");
    // A rollback after the promotion brings the previous stable back.
    let now = canary::controller::clock::now_ms();
    lock(&srv.controller).command(canary::controller::Command::Rollback("regression".into()), now).unwrap();
    assert_eq!(srv.live.upstreams().stable.url(), stable.url());
    assert_eq!(get(&c, srv.proxy_addr, "/", &[]).await.2, "stable");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_by_itself_with_the_reason() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let (srv, stop, load) = rolling(&stable, canary.url(), dir.path());
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(state(&srv).0, "progressing");
    canary.fail_with.store(500, Ordering::Relaxed);
    let rolled = eventually(10, || async { state(&srv).0 == "rolled_back" }).await;
    let (st, share, reason) = state(&srv);
    assert!(rolled, "still {st}");
    assert_eq!(share, 0.0);
    let reason = reason.unwrap();
    assert!(reason.contains("immediate rollback") && reason.contains("error_rate"), "{reason}");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_no_hang("load on a failing canary");
    let events = srv.live.store().events(50).unwrap();
    let rb = events.iter().find(|e| e.kind == "rolled_back").expect("a rolled_back event");
    assert!(rb.detail["verdict"]["criteria"].is_array(), "the verdict table is recorded: {}", rb.detail);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_reporting_memory_over_90_percent_is_rolled_back() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-hot"), tempdir());
    let (srv, stop, load) = rolling(&stable, canary.url(), dir.path());
    let rolled = eventually(15, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load");
    let (st, _, reason) = state(&srv);
    assert!(rolled, "still {st}");
    assert!(reason.clone().unwrap().contains("memory_percent 95"), "{reason:?}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_canary_mid_rollout_costs_clients_nothing_and_rolls_back() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let canary = Process::start_cmd(&["demo-service", "--version", "v2", "--listen", "127.0.0.1:0"]);
    let canary_url = format!("http://{}", canary.proxy);
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 400, Arc::clone(&stop));
    let req = DeployRequest {
        share: 50.0,
        canary: canary_url,
        steps: Some("50,100".into()),
        bake: Some("10m".into()),
        final_watch: None,
        manual: false,
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    canary.kill9();
    let rolled = eventually(15, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    assert!(rolled, "still {:?}", state(&srv));
    tally.assert_none_lost("clients of a killed canary");
    // The canary's unanswered requests end the rollout through any of the
    // three tests of them, whichever crosses its bar first: the error rate
    // against 5%, the 5xx rate against stable's, or the step's uptime against
    // 99.9% (under load the order of the looks varies).
    let reason = state(&srv).2.unwrap_or_default();
    let named = ["error_rate", "5xx_surge_vs_stable", "uptime"].iter().any(|c| reason.contains(c));
    assert!(named, "{reason}");
    srv.shutdown();
}

#[test]
fn the_cli_deploys_reports_and_refuses_misuse_cleanly() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = arg(dir.path(), "s.db");
    let p = serve_proc(&stable, &state, &[]);
    let admin = format!("http://{}", p.admin);
    let a = ["--admin", admin.as_str()];
    let run = |args: &[&str]| cli(&[args, &a[..]].concat());
    // Nothing to promote, pause or resume yet.
    let (code, _, err) = run(&["promote"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing to promote"), "{err}");
    let (code, out, err) = run(&["deploy", "10", &canary.url(), "--bake", "10m"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["status", "--json"]);
    assert_eq!(code, 0);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((s["state"].as_str(), s["share"].as_f64()), (Some("progressing"), Some(10.0)));
    assert_eq!(s["rollout"]["step"], 1);
    let (_, human, _) = run(&["status"]);
    assert!(human.contains("state: progressing") && human.contains("step 1/5"), "{human}");
    // Misuse: each refused with a reason, nothing changed.
    let misuse: [(&[&str], i32, &str); 5] = [
        (&["adjust", "150"], 2, "outside 0..100"),
        (&["deploy", "10", &canary.url()], 3, "rollout 1"),
        (&["deploy", "10", "not-a-url"], 2, "canary URL"),
        (&["deploy", "0", &canary.url()], 2, "above 0"),
        (&["resume"], 3, "not paused"),
    ];
    for (args, want, needle) in misuse {
        let (code, _, err) = run(args);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (_, out, _) = run(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["state"].as_str(), s["share"].as_f64()),
        (Some("progressing"), Some(10.0)),
        "misuse changed nothing"
    );
    // adjust 0 blocks canary traffic and pauses; rollback ends it.
    let (code, out, _) = run(&["adjust", "0"]);
    assert_eq!(code, 0);
    assert!(out.contains("state: paused") && out.contains("share: 0%"), "{out}");
    let (code, out, _) = run(&["rollback", "--reason", "testing"]);
    assert_eq!(code, 0);
    assert!(out.contains("rolled_back") && out.contains("testing"), "{out}");
    let (code, out, _) = run(&["history", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("rolled_back"));
    let (code, _, err) = cli(&["status", "--admin", "http://127.0.0.1:1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach the admin API"), "{err}");
}

#[test]
fn mutating_calls_need_the_token_when_one_is_set() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = arg(dir.path(), "s.db");
    let p = serve_proc(&stable, &state, &["--admin-token", "s3cret"]);
    let admin = format!("http://{}", p.admin);
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin, "--token", "wrong"]);
    assert_eq!(code, 4, "{err}");
    let (code, out, _) = cli(&["status", "--admin", &admin]);
    assert_eq!(code, 0, "reads need no token");
    assert!(out.contains("state: idle"), "{out}");
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin, "--token", "s3cret"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn after_kill_9_a_rollout_resumes_at_the_same_step_with_its_remaining_bake() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = arg(dir.path(), "s.db");
    let args =
        ["--stable", &stable.url(), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--state", &state];
    let p = Process::start(&args);
    let admin = format!("http://{}", p.admin);
    let (code, _, err) = cli(&["deploy", "25", &canary.url(), "--bake", "10m", "--admin", &admin]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    p.kill9();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let p = Process::start(&args);
    let admin = format!("http://{}", p.admin);
    let (_, out, _) = cli(&["status", "--json", "--admin", &admin]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["state"].as_str(), s["share"].as_f64(), s["rollout"]["step"].as_u64()),
        (Some("progressing"), Some(25.0), Some(1))
    );
    let left = s["rollout"]["time_left_seconds"].as_f64().unwrap();
    // About 2-4 s were baked before the kill; the 2 s it was down do not count.
    assert!((594.0..=599.0).contains(&left), "time left {left}");
}

#[test]
fn the_admin_token_never_appears_in_the_logs() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = arg(dir.path(), "s.db");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "serve",
            "--stable",
            &stable.url(),
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--state",
            &state,
        ])
        .args(["--admin-token", "tok-7f3a9c"])
        .env("CANARY_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
        .unwrap();
    let admin = format!("http://{}", line.trim().rsplit(' ').next().unwrap());
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin, "--token", "tok-7f3a9c"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = cli(&["rollback", "--admin", &admin, "--token", "wrong-token"]);
    assert_eq!(code, 4);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("rollout_started"), "the logs were captured: {}", &logs[..logs.len().min(500)]);
    assert!(!logs.contains("tok-7f3a9c") && !logs.contains("wrong-token"), "a token was logged");
}
