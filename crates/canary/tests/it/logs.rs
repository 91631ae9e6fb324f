//! `canary logs` against a real `canary serve` in front of real services:
//! it lists exactly the canary's failures, `| grep ERROR` finds them as the
//! runbook writes it, its filters pick users and requests, `--follow` shows
//! a request as it happens, and a refused canary reads as Envoy's UF with
//! stable's answer marked as the fallback.

use crate::support::*;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::time::{Duration, Instant};

/// A demo service of `version` on an ephemeral port, failing `error_rate`%
/// of its requests (drawn from the test's seed).
fn service(version: &str, error_rate: &str) -> Process {
    Process::start_cmd(&[
        "demo-service",
        "--version",
        version,
        "--listen",
        "127.0.0.1:0",
        "--error-rate",
        error_rate,
    ])
}

fn url(p: &Process) -> String {
    format!("http://{}", p.proxy)
}

/// `canary serve` splitting 50/50 between `stable` and `canary`, with `toml`.
fn serve(dir: &std::path::Path, stable: &str, canary: &str, toml: &str) -> Process {
    let cfg = dir.join("canary.toml");
    std::fs::write(&cfg, toml).unwrap();
    let (cfg, state) = (cfg.display().to_string(), arg(dir, "state.db"));
    Process::start(&[
        "--config",
        &cfg,
        "--stable",
        stable,
        "--canary",
        canary,
        "--share",
        "50",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
    ])
}

fn admin_url(p: &Process) -> String {
    format!("http://{}", p.admin)
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_list_exactly_the_canarys_failures_and_grep_error_finds_them() {
    let dir = tempdir();
    let (stable, canary) = (service("v1", "0"), service("v2", "12"));
    let p = serve(dir.path(), &url(&stable), &url(&canary), "");
    let c = client();
    // One route, 400 users, each request named: which ones the canary failed
    // is known from the answers alone.
    let mut failed = BTreeSet::new();
    let mut served = [0, 0];
    for i in 0..400 {
        let (user, id) = (format!("user-{i}"), format!("req-{i}"));
        let (status, version, _) =
            get(&c, p.proxy, "/api/v2/rooms", &[("x-user-id", &user), ("x-request-id", &id)]).await;
        served[usize::from(version == "canary")] += 1;
        match (status, version.as_str()) {
            (500, "canary") => {
                failed.insert(id);
            }
            (200, _) => {}
            other => panic!("{id}: unexpected {other:?}"),
        }
    }
    assert!(served[0] > 100 && served[1] > 100, "both versions serve: {served:?}");
    assert!(failed.len() > 5, "the canary fails about 12% of its {}: {}", served[1], failed.len());
    let admin = admin_url(&p);

    let (code, out, err) = cli(&["logs", "--admin", &admin, "--since", "30m", "--status", "5xx"]);
    assert_eq!(code, 0, "{err}");
    let listed: BTreeSet<String> = out
        .lines()
        .map(|l| field(l, "request_id").expect("every line names its request").to_string())
        .collect();
    assert_eq!(listed, failed, "exactly the canary's failures:\n{out}");
    for line in out.lines() {
        assert!(line.contains(" ERROR canary GET /api/v2/rooms 500 "), "{line}");
        assert_eq!(field(line, "cause"), Some("upstream_5xx"), "{line}");
        assert_eq!(field(line, "route"), Some("/api/v2/rooms"), "{line}");
    }

    // The runbook's pipeline, as written.
    let bin = env!("CARGO_BIN_EXE_canary");
    let grep = std::process::Command::new("sh")
        .args(["-c", &format!("{bin} logs --admin {admin} --since 30m | grep ERROR")])
        .output()
        .unwrap();
    let grepped = String::from_utf8_lossy(&grep.stdout);
    assert_eq!(grepped.lines().count(), failed.len(), "{grepped}");

    // JSON lines, each a failure of the canary.
    let (code, out, err) =
        cli(&["logs", "--admin", &admin, "--status", "5xx", "--version", "canary", "--json"]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), failed.len());
    for r in &records {
        assert_eq!((r["version"].as_str(), r["status"].as_u64()), (Some("canary"), Some(500)), "{r}");
        assert_eq!(r["reason"], "bucket", "{r}");
        assert_eq!(r["fallback"], false, "{r}");
    }
    let (_, stable_failures, _) = cli(&["logs", "--admin", &admin, "--status", "5xx", "--version", "stable"]);
    assert_eq!(stable_failures, "", "stable failed nothing");

    // One user's requests, found by the id the service knows them by; the
    // logs themselves hold only its keyed hash.
    let first = failed.iter().next().unwrap();
    let user = format!("user-{}", first.trim_start_matches("req-"));
    let (code, out, err) = cli(&["logs", "--admin", &admin, "--user", &user]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty() && !out.contains(&user), "{out}");
    assert!(out.lines().all(|l| field(l, "request_id") == Some(first)), "only that user's request:\n{out}");
    let (_, by_id, _) = cli(&["logs", "--admin", &admin, "--request-id", first]);
    assert_eq!(by_id.lines().count(), 1, "{by_id}");

    // Bad input is named, and nothing is listed.
    let (code, out, err) = cli(&["logs", "--admin", &admin, "--status", "6xx"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("status `6xx`"), "{err}");
}

/// A follower's lines, with the moment each arrived.
fn follower(admin: &str) -> (std::process::Child, std::sync::mpsc::Receiver<(Instant, String)>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["logs", "--admin", admin, "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits up to `within` for a line naming request `id`; when it came.
fn line_for(
    rx: &std::sync::mpsc::Receiver<(Instant, String)>,
    id: &str,
    within: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let (at, line) = rx.recv_timeout(left).ok()?;
        let r: serde_json::Value = serde_json::from_str(&line).unwrap();
        if r["request_id"] == id {
            return Some(at);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_shows_each_request_as_it_happens() {
    let dir = tempdir();
    let (stable, canary) = (service("v1", "0"), service("v2", "0"));
    // Every request kept, so a success shows too.
    let p = serve(dir.path(), &url(&stable), &url(&canary), "[logs]\nsample = 1.0\n");
    let c = client();
    let (mut child, rx) = follower(&admin_url(&p));
    // Once a request shows, the follower is connected.
    let mut connected = false;
    for i in 0..50 {
        let id = format!("warm-{i}");
        get(&c, p.proxy, "/api/v2/rooms", &[("x-request-id", &id)]).await;
        if line_for(&rx, &id, Duration::from_millis(500)).is_some() {
            connected = true;
            break;
        }
    }
    assert!(connected, "the follower never showed a request");
    let mut delays = Vec::new();
    for i in 0..5 {
        let id = format!("live-{i}");
        get(&c, p.proxy, "/api/v2/rooms", &[("x-request-id", &id)]).await;
        let done = Instant::now();
        let at = line_for(&rx, &id, Duration::from_secs(10)).unwrap_or_else(|| panic!("{id} never shown"));
        delays.push(at.saturating_duration_since(done));
    }
    child.kill().unwrap();
    let _ = child.wait();
    // The follower looks every 250 ms; the fastest of five shows within a
    // second even on a loaded machine.
    let fastest = delays.iter().min().unwrap();
    assert!(*fastest < Duration::from_secs(1), "{delays:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_canary_is_logged_as_a_connection_failure_and_stables_answer_as_the_fallback() {
    let dir = tempdir();
    let stable = service("v1", "0");
    let (refusing, _hold) = reserved();
    let access = dir.path().join("access.log");
    let toml = format!("[logs]\nsample = 1.0\n[access_log]\npath = {:?}\n", access.display());
    let p = serve(dir.path(), &url(&stable), &format!("http://{refusing}"), &toml);
    let c = client();
    // Forced to the canary, which refuses: stable answers the user.
    let (status, version, _) =
        get(&c, p.proxy, "/api/v2/rooms", &[("x-canary", "always"), ("x-request-id", "refused-1")]).await;
    assert_eq!((status, version.as_str()), (200, "stable"));
    let admin = admin_url(&p);
    let (code, out, err) = cli(&["logs", "--admin", &admin, "--request-id", "refused-1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2, "the canary's failure and stable's answer:\n{out}");
    let by = |v: &str| {
        records.iter().find(|r| r["version"] == v).unwrap_or_else(|| panic!("no {v} record: {out}"))
    };
    let (failure, answer) = (by("canary"), by("stable"));
    assert_eq!(failure["version"], "canary");
    assert_eq!(failure["cause"], "connect_failed");
    assert_eq!(failure["fallback"], true);
    assert_eq!(failure["reason"], "forced");
    assert!(failure["detail"].as_str().unwrap().contains("refused"), "{failure}");
    assert_eq!((answer["version"].as_str(), answer["status"].as_u64()), (Some("stable"), Some(200)));
    assert_eq!(answer["reason"], "fallback");
    let (_, text, _) = cli(&["logs", "--admin", &admin, "--request-id", "refused-1", "--errors"]);
    assert!(text.contains(" ERROR canary GET /api/v2/rooms - "), "{text}");
    assert!(text.contains("cause=connect_failed flags=UF") && text.contains("fallback=yes"), "{text}");
    // The access log: one line for the request, stable's answer, marked.
    let read = || std::fs::read_to_string(&access).unwrap_or_default();
    assert!(eventually(10, || async { read().contains("refused-1") }).await, "no line for the request");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines: Vec<serde_json::Value> = read()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["request_id"] == "refused-1")
        .collect();
    assert_eq!(lines.len(), 1, "one line a request: {lines:?}");
    assert_eq!((lines[0]["version"].as_str(), lines[0]["fallback"].as_bool()), (Some("stable"), Some(true)));
    assert_eq!(lines[0]["reason"], "fallback");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_logs_merges_every_replicas_records_and_says_what_was_dropped() {
    use crate::cluster::{Etcd, FAST, replica, wait_for_leader};
    let dir = tempdir();
    let failing = Upstream::start("stable");
    failing.fail_with.store(503, std::sync::atomic::Ordering::Relaxed);
    let etcd = Etcd::start(dir.path(), 1);
    let r1 = replica(&etcd, &failing.url(), dir.path(), "r1", FAST);
    // r2 keeps at most 4 failures (one worker, so all 4 are its): the rest
    // of its 10 are dropped, and said.
    let r2_toml = format!("{FAST}[proxy]\nworkers = 1\n[logs]\nmax_records = 4\n");
    let r2 = replica(&etcd, &failing.url(), dir.path(), "r2", &r2_toml);
    wait_for_leader(&[&r1, &r2]).await;
    let c = client();
    for i in 0..10 {
        for (p, name) in [(&r1, "r1"), (&r2, "r2")] {
            let id = format!("{name}-{i}");
            let (status, _, _) = get(&c, p.proxy, "/api/v2/rooms", &[("x-request-id", &id)]).await;
            assert_eq!(status, 503);
        }
    }
    let (code, out, err) = cli(&["logs", "--admin", &admin_url(&r1), "--json"]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let from = |name: &str| records.iter().filter(|r| r["replica"] == name).count();
    assert_eq!(from("r1"), 10, "{out}");
    assert_eq!(from("r2"), 4, "r2 kept its newest 4: {out}");
    for r in &records {
        let (id, replica) = (r["request_id"].as_str().unwrap(), r["replica"].as_str().unwrap());
        assert!(id.starts_with(replica), "a record names the replica that served it: {r}");
    }
    let times: Vec<u64> = records.iter().map(|r| r["time_ms"].as_u64().unwrap()).collect();
    assert!(times.is_sorted(), "merged by time: {times:?}");
    assert!(err.contains("older failures were dropped"), "{err}");
    // One replica's own, on asking.
    let (_, node, _) = cli(&["logs", "--admin", &admin_url(&r1), "--node"]);
    assert_eq!(node.lines().count(), 10, "{node}");
    assert!(!node.contains("replica=r2"), "{node}");
}
