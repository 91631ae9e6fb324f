//! The access log (`[access_log]`) of a real `canary serve`: its lines are
//! JSON and match the requests sent one for one; SIGUSR1 after logrotate's
//! rename moves it to the new file and loses no line; and a log that cannot
//! keep up (a full disk, a reader that stalls) never fails or holds up a
//! request, and what it lost is counted.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// `canary serve` in front of `stable` and `canary` (50%), with `toml`.
fn serve(dir: &Path, stable: &Upstream, canary: &Upstream, toml: &str) -> Process {
    let cfg = dir.join("canary.toml");
    std::fs::write(&cfg, toml).unwrap();
    let (cfg, state, canary) = (cfg.display().to_string(), arg(dir, "state.db"), canary.url());
    serve_proc(stable, &state, &["--config", &cfg, "--canary", &canary, "--share", "50"])
}

/// The lines of `path` once there are at least `n` (within 10 s).
async fn lines(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    eventually(10, || async { read().lines().count() >= n }).await;
    read().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// A counter of `/metrics`.
async fn metric(p: &Process, name: &str) -> u64 {
    let (_, _, body) = get(&client(), p.admin, "/metrics", &[]).await;
    let line = body.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}:\n{body}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_is_one_json_line_matching_what_the_client_got() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let path = dir.path().join("access.log");
    let p = serve(dir.path(), &stable, &canary, &format!("[access_log]\npath = {:?}\n", path.display()));
    let c = client();
    let mut sent = BTreeMap::new();
    for i in 0..200 {
        let (user, id) = (format!("user-{i}"), format!("req-{i}"));
        let target = if i % 10 == 0 { "/status/503" } else { "/bytes/100" };
        let (status, version, _) =
            get(&c, p.proxy, target, &[("x-user-id", &user), ("x-request-id", &id)]).await;
        sent.insert(id, (status, version));
    }
    // One request without an id: it is given one, and the upstream gets it.
    let (_, _, headers) = get(&c, p.proxy, "/headers", &[]).await;
    let made: serde_json::Value = serde_json::from_str(&headers).unwrap();
    let made = made["x-request-id"].as_str().expect("the upstream is sent the id made").to_string();
    assert_eq!(made.len(), 32, "{made}");

    let logged = lines(&path, 201).await;
    assert_eq!(logged.len(), 201, "one line a request");
    let by_id: BTreeMap<String, &serde_json::Value> =
        logged.iter().map(|l| (l["request_id"].as_str().unwrap().to_string(), l)).collect();
    assert!(by_id.contains_key(&made), "the made id is the one logged");
    for (id, (status, version)) in &sent {
        let l = by_id.get(id).unwrap_or_else(|| panic!("no line for {id}"));
        assert_eq!(l["status"].as_u64(), Some(u64::from(*status)), "{l}");
        assert_eq!(l["version"].as_str(), Some(version.as_str()), "{l}");
        assert_eq!(l["method"], "GET");
        assert_eq!(l["protocol"], "HTTP/1.1");
        assert_eq!(l["client"], "127.0.0.1");
        let user = l["user"].as_str().unwrap();
        assert!(user.len() == 16 && !user.contains("user-"), "a keyed hash, not the id: {user}");
        if *status == 200 {
            assert_eq!(l["bytes_out"], 100, "{l}");
            assert_eq!(l["level"], "INFO");
        } else {
            assert_eq!(
                (l["level"].as_str(), l["cause"].as_str()),
                (Some("ERROR"), Some("upstream_5xx")),
                "{l}"
            );
        }
        assert!(l["duration_ms"].as_f64().unwrap() >= l["upstream_ms"].as_f64().unwrap(), "{l}");
    }
    assert_eq!(metric(&p, "canary_access_log_lines_total").await, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigusr1_after_a_rename_writes_to_the_new_file_and_loses_no_line() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let p = serve(dir.path(), &stable, &canary, &format!("[access_log]\npath = {:?}\n", path.display()));
    let c = client();
    let send = |from: usize, to: usize| {
        let c = c.clone();
        async move {
            for i in from..to {
                let (status, _, _) = get(&c, p.proxy, "/", &[("x-request-id", &format!("r-{i}"))]).await;
                assert_eq!(status, 200);
            }
        }
    };
    send(0, 100).await;
    // logrotate's way: rename, then signal; requests go on meanwhile.
    std::fs::rename(&path, &rotated).unwrap();
    send(100, 150).await;
    p.signal("USR1");
    let reopened =
        eventually(10, || async { metric(&p, "canary_access_log_reopened_total").await == 1 }).await;
    assert!(reopened, "the log was not opened again");
    send(150, 300).await;
    let all = eventually(10, || async { metric(&p, "canary_access_log_lines_total").await == 300 }).await;
    assert!(all, "300 lines were not all written");
    let ids = |f: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"].to_string())
            .collect()
    };
    let (old, new) = (ids(&rotated), ids(&path));
    assert_eq!(old.len() + new.len(), 300, "every line, in one file or the other");
    assert!(old.len() >= 100, "what came before the rename stays in the renamed file");
    assert!(new.len() >= 150, "what came after the signal is in the new file");
    assert!(new.contains(&"\"r-299\"".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_no_request_and_counts_the_lines_lost() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let p = serve(dir.path(), &stable, &canary, "[access_log]\npath = \"/dev/full\"\n");
    let c = client();
    for _ in 0..100 {
        assert_eq!(get(&c, p.proxy, "/", &[]).await.0, 200);
    }
    let counted = eventually(10, || async {
        metric(&p, "canary_access_log_dropped_total{reason=\"write_failed\"}").await == 100
    });
    assert!(counted.await, "every line lost is counted");
    assert_eq!(metric(&p, "canary_access_log_lines_total").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_log_drops_lines_rather_than_hold_up_requests() {
    use std::os::unix::fs::OpenOptionsExt;
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    // A pipe whose reader never reads: once its buffer is full, the writer
    // blocks, as on a disk far slower than the traffic.
    let fifo = dir.path().join("stalled");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    const O_NONBLOCK: i32 = 0o4000;
    let _reader = std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(&fifo).unwrap();
    let toml = format!("[access_log]\npath = {:?}\nqueue = 16\n", fifo.display());
    let p = serve(dir.path(), &stable, &canary, &toml);
    let c = client();
    for i in 0..1000 {
        // A proxy blocked on its log would hold the request: bounded here,
        // so the test fails rather than hangs.
        let answer = tokio::time::timeout(Duration::from_secs(30), get(&c, p.proxy, "/", &[])).await;
        assert_eq!(answer.expect("a request was held up").0, 200, "request {i}");
    }
    let dropped = metric(&p, "canary_access_log_dropped_total{reason=\"queue_full\"}").await;
    // The pipe holds 64 KiB (a few hundred lines) and the queue 16.
    assert!(dropped >= 300, "dropped {dropped} of 1000");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_logrotate_rule_rotates_the_log_without_losing_a_line() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let path = dir.path().join("access.log");
    let p = serve(dir.path(), &stable, &canary, &format!("[access_log]\npath = {:?}\n", path.display()));
    // dist/logrotate/canary as shipped, pointed at this test's file and process.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/logrotate/canary")).unwrap();
    let rule = shipped.replace("/var/log/canary/access.log", &path.display().to_string()).replace(
        "systemctl kill --signal=SIGUSR1 --kill-whom=main canary.service",
        &format!("kill -USR1 {}", p.child.id()),
    );
    assert_ne!(rule, shipped);
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(&conf, rule).unwrap();
    let c = client();
    for i in 0..100 {
        assert_eq!(get(&c, p.proxy, "/", &[("x-request-id", &format!("a-{i}"))]).await.0, 200);
    }
    assert!(eventually(10, || async { metric(&p, "canary_access_log_lines_total").await == 100 }).await);
    let logrotate =
        if Path::new("/usr/sbin/logrotate").exists() { "/usr/sbin/logrotate" } else { "logrotate" };
    let out = std::process::Command::new(logrotate)
        .args(["--force", "--state"])
        .arg(dir.path().join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("logrotate is needed: apt-get install logrotate (./test.sh does)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(eventually(10, || async { metric(&p, "canary_access_log_reopened_total").await == 1 }).await);
    for i in 0..100 {
        assert_eq!(get(&c, p.proxy, "/", &[("x-request-id", &format!("b-{i}"))]).await.0, 200);
    }
    assert!(eventually(10, || async { metric(&p, "canary_access_log_lines_total").await == 200 }).await);
    let count = |f: &Path| std::fs::read_to_string(f).map_or(0, |t| t.lines().count());
    let (rotated, current) = (count(&dir.path().join("access.log.1")), count(&path));
    assert_eq!(
        (rotated, current),
        (100, 100),
        "the rotated file keeps the first hundred, the new one the rest"
    );
}
