//! After the fact: hooks (commands and webhooks, a hanging one included), the
//! incident record, the release tag in a real git repository, the report.

use crate::load::*;
use crate::support::*;
use bytes::Bytes;
use canary::controller::api::DeployRequest;
use canary::controller::{Command, lock};
use canary::ops::config::{Contact, Hook, HookAction, Release};
use http_body_util::{BodyExt, Full};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver on loopback that keeps every JSON body it is sent.
pub(crate) async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let g = Arc::clone(&g);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let g = Arc::clone(&g);
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        g.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hook"), got)
}

fn hook(events: &[&str], action: HookAction, timeout_ms: u64) -> Hook {
    Hook {
        events: events.iter().map(|s| s.to_string()).collect(),
        action,
        timeout: Duration::from_millis(timeout_ms),
        retries: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_runs_hooks_writes_the_incident_and_a_hanging_hook_delays_nothing() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let (url, received) = receiver().await;
    let log = dir.path().join("events.log");
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.ops.hooks = vec![
        hook(&["*"], HookAction::Command(format!("echo \"$CANARY_EVENT\" >> {}", log.display())), 5_000),
        hook(&["rolled_back"], HookAction::Webhook(url), 5_000),
        hook(&["rolled_back"], HookAction::Command("sleep 30".into()), 1_000),
    ];
    cfg.ops.contacts = vec![Contact {
        role: "backend on-call".into(),
        person: "Kim".into(),
        priority: 1,
        reach: Some("010-0000".into()),
    }];
    let srv = start(cfg);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 400, Arc::clone(&stop));
    let req = DeployRequest {
        share: 50.0,
        canary: canary.url(),
        bake: Some("10m".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    canary.fail_with.store(500, Ordering::Relaxed);
    let failing_since = Instant::now();
    let rolled = eventually(10, || async { lock(&srv.controller).status().state == "rolled_back" }).await;
    assert!(rolled);
    assert!(failing_since.elapsed() < Duration::from_secs(6), "the 30 s hook did not delay the rollback");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_no_hang("load on a failing canary");
    // The hooks run side by side: the webhook and the command log are
    // looked for too, not taken to be done because the slow hook is.
    let recorded = eventually(10, || async {
        let ev = srv.live.store().events(100).unwrap();
        ev.iter().any(|e| e.kind == "hook_failed")
            && ev.iter().any(|e| e.kind == "incident_recorded")
            && ev.iter().any(|e| e.kind == "report_written")
            && !received.lock().unwrap().is_empty()
            && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("rolled_back"))
    })
    .await;
    assert!(
        recorded,
        "{:?}",
        srv.live.store().events(100).unwrap().iter().map(|e| e.kind.clone()).collect::<Vec<_>>()
    );
    let events = srv.live.store().events(100).unwrap();
    let failed = events.iter().find(|e| e.kind == "hook_failed").unwrap();
    assert!(failed.detail["result"].as_str().unwrap().contains("timed out after 1s"), "{}", failed.detail);
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(lines.contains("rollout_started") && lines.contains("rolled_back"), "{lines}");
    let posted = received.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["event"], "rolled_back");
    assert!(posted[0]["text"].as_str().unwrap().contains("rolled back"), "{}", posted[0]);
    let path = events.iter().find(|e| e.kind == "incident_recorded").unwrap().detail["path"]
        .as_str()
        .unwrap()
        .to_string();
    let md = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "# [Rollback] v2-api-canary rollout 1",
        "**Cause:** immediate rollback at 50%",
        "| error_rate |",
        "| fail |",
        "## Timeline",
        "rollout_started",
        "| 1 | backend on-call | Kim | 010-0000 |",
    ] {
        assert!(md.contains(needle), "incident record lacks {needle:?}:\n{md}");
    }
    srv.shutdown();
}

fn git(repo: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(repo).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_tags_the_release_uniquely_and_writes_the_report() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
    git(&repo, &["config", "user.name", "canary"]);
    git(&repo, &["config", "user.email", "canary@localhost"]);
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.ops.release = Some(Release {
        repo: repo.clone(),
        pattern: "v2-api-release-%Y%m%d".into(),
        push: false,
        remote: "origin".into(),
        timezone: None,
    });
    let srv = start(cfg);
    let today = || jiff::Timestamp::now().in_tz("Asia/Seoul").unwrap().strftime("%Y%m%d").to_string();
    let day_before = today();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 400, Arc::clone(&stop));
    for _ in 0..2 {
        let req = DeployRequest {
            share: 50.0,
            canary: canary.url(),
            steps: Some("50,100".into()),
            bake: Some("1s".into()),
            final_watch: Some("1s".into()),
            ..DeployRequest::default()
        };
        lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
        let done = eventually(20, || async { lock(&srv.controller).status().state == "promoted" }).await;
        assert!(done, "{:?}", lock(&srv.controller).status());
        // Undo the promotion so the next rollout has the same stable to start from.
        lock(&srv.controller)
            .command(Command::Rollback("next round".into()), canary::controller::clock::now_ms())
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load");
    let tagged = eventually(10, || async {
        srv.live.store().events(200).unwrap().iter().filter(|e| e.kind == "release_tagged").count() == 2
    })
    .await;
    assert!(tagged);
    let tags = git(&repo, &["tag", "--list"]);
    let tags: Vec<&str> = tags.lines().collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.iter().all(|t| git(&repo, &["cat-file", "-t", t]) == "tag"), "annotated tags: {tags:?}");
    // Named by the day in Seoul: when midnight there fell during the test,
    // the two promotions may have different days and need no suffix.
    let day = today();
    if day == day_before {
        let base = format!("v2-api-release-{day}");
        assert_eq!(tags, [base.clone(), format!("{base}-2")]);
    }
    let report = dir.path().join("reports").join("rollout-1.md");
    let md = std::fs::read_to_string(&report).unwrap();
    // Rollout 1 was promoted and then rolled back by hand: its report says both.
    for needle in [
        "# Deployment report: rollout 1",
        "**Outcome:** rolled_back",
        "**Why:** by hand: next round",
        "| 50% |",
        "| 100% |",
        "| promoted |",
        "### Verdict at 50% (pass)",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    // The same report on demand, markdown and JSON, from the admin API `canary report` uses.
    let c = client();
    let (status, _, text) = get(&c, srv.admin_addr, "/api/rollouts/1/report", &[]).await;
    assert_eq!((status, text.starts_with("# Deployment report: rollout 1")), (200, true), "{text}");
    let j = admin_json(&c, srv.admin_addr, "/api/rollouts/latest/report?format=json").await;
    assert_eq!(j["rollout"]["id"], 2);
    assert_eq!(get(&c, srv.admin_addr, "/api/rollouts/99/report", &[]).await.0, 404);
    srv.shutdown();
}
