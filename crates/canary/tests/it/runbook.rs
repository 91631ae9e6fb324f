//! The seed's own runbook, as written, against a real `canary serve` process
//! under load: `deploy 10`, then `adjust 25`, `50`, `75`, `100` walk the plan
//! and end in a promotion with its release tag and a full report; a manual
//! advance past a failing step is refused; a rolled-back canary gets no
//! traffic, overrides included.

use crate::load::*;
use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Latency bars loopback never reaches even on a busy machine, for the tests
/// that are not about speed.
const LOOSE_LATENCY: &str =
    "[policy]\nmax_p95_ms = 10000.0\nrollback_p95_ms = 60000.0\nmax_p95_ratio = 100.0\ntargets = false\n";

/// `canary serve` with `toml` as its config file.
fn serve_with(stable: &Upstream, dir: &std::path::Path, toml: &str) -> Process {
    let cfg = dir.join("canary.toml");
    std::fs::write(&cfg, toml).unwrap();
    serve_proc(stable, &arg(dir, "s.db"), &["--config", cfg.to_str().unwrap()])
}

/// Runs a client command against `admin` without blocking the test's runtime.
async fn run(admin: &str, args: &[&str]) -> (i32, String, String) {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--admin".to_string(), admin.to_string()]);
    tokio::task::spawn_blocking(move || cli(&v.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

async fn rollout(p: &Process) -> serde_json::Value {
    admin_json(&client(), p.admin, "/api/rollout").await
}

fn git(repo: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(repo).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository with one commit, for release tags.
fn repo_in(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
    git(&repo, &["config", "user.name", "canary"]);
    git(&repo, &["config", "user.email", "canary@localhost"]);
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_runbook_of_adjusts_promotes_tags_the_release_and_reports_every_step() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let repo = repo_in(dir.path());
    let toml = format!("{LOOSE_LATENCY}[release]\nrepo = {:?}\n", repo.display().to_string());
    let p = serve_with(&stable, dir.path(), &toml);
    let admin = format!("http://{}", p.admin);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(p.proxy, 300, Arc::clone(&stop));
    let (code, _, err) =
        run(&admin, &["deploy", "10", &canary.url(), "--bake", "10m", "--final-watch", "2s"]).await;
    assert_eq!(code, 0, "{err}");
    for (k, share) in ["25", "50", "75", "100"].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(1500)).await; // watch the graphs a while
        let (code, out, err) = run(&admin, &["adjust", share]).await;
        assert_eq!(code, 0, "adjust {share}: {err}");
        let step = format!("step {}/5", k + 2);
        assert!(out.contains("state: progressing") && out.contains(&step), "adjust {share}: {out}");
    }
    let promoted = eventually(20, || async { rollout(&p).await["state"] == "promoted" }).await;
    assert!(promoted, "not promoted after the final watch: {}", rollout(&p).await);
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load through the runbook");
    let tagged = eventually(10, || async { !git(&repo, &["tag", "--list"]).is_empty() }).await;
    assert!(tagged, "no release tag");
    let (code, out, err) = run(&admin, &["report", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = report["steps"].as_array().unwrap();
    let shares: Vec<f64> = steps.iter().map(|s| s["share"].as_f64().unwrap()).collect();
    assert_eq!(shares, [10.0, 25.0, 50.0, 75.0, 100.0], "{report}");
    for (i, s) in steps.iter().enumerate() {
        let canary_reqs = s["verdict"]["versions"][1]["requests"].as_u64().unwrap_or(0);
        assert!(canary_reqs > 0, "step {i} has no figures: {s}");
        let (ended_by, by) = (s["ended_by"].as_str(), s["by_hand"].as_str());
        let want =
            if i < 4 { (Some("step_advanced"), Some("canary adjust")) } else { (Some("promoted"), None) };
        assert_eq!((ended_by, by), want, "step {i}: {s}");
    }
    // S22 across rollouts: nothing lost, no rollback, figures before and after.
    let (code, out, err) = run(&admin, &["report", "--summary", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let sum: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((sum["promoted"].as_u64(), sum["zero_downtime"].as_bool()), (Some(1), Some(true)), "{sum}");
    let r = &sum["rollouts"][0];
    assert!(r["canary_requests"].as_u64().unwrap() > 100 && r["requests_lost"] == 0, "{r}");
    assert!(r["before"]["p95_ms"].is_number() && r["after"]["p95_ms"].is_number(), "{r}");
    let (_, text, _) = run(&admin, &["report", "--summary"]).await;
    assert!(text.contains("1 promoted, 0 rolled back") && text.contains("Zero downtime: yes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_advance_past_a_failing_step_exits_3_unless_forced() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let slow = ["demo-service", "--version", "v2", "--listen", "127.0.0.1:0", "--extra-latency-ms", "300"];
    let canary = Process::start_cmd(&slow);
    // A step that surely fails ends at once; paused (not rolled back), it
    // waits for the person who wants to move on anyway.
    let policy = "[policy]\nrollback_p95_ms = 60000.0\non_failure = \"pause\"\n";
    let p = serve_with(&stable, dir.path(), policy);
    let admin = format!("http://{}", p.admin);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(p.proxy, 200, Arc::clone(&stop));
    let (code, _, err) = run(&admin, &["deploy", "50", &format!("http://{}", canary.proxy)]).await;
    assert_eq!(code, 0, "{err}");
    let failing =
        eventually(20, || async { rollout(&p).await["rollout"]["verdict"]["outcome"] == "fail" }).await;
    assert!(failing, "the slow canary's step never failed: {}", rollout(&p).await);
    let (code, _, err) = run(&admin, &["adjust", "75"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("fails its verdict") && err.contains("p95") && err.contains("--force"), "{err}");
    let r = rollout(&p).await;
    assert_eq!(
        (r["share"].as_f64(), r["rollout"]["step"].as_u64()),
        (Some(50.0), Some(1)),
        "nothing changed"
    );
    let (code, out, err) = run(&admin, &["adjust", "75", "--force"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("step 2/"), "{out}");
    let r = rollout(&p).await;
    assert_eq!((r["share"].as_f64(), r["rollout"]["step"].as_u64()), (Some(75.0), Some(2)), "{r}");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load on a slow canary");
    let events = admin_json(&client(), p.admin, "/api/events").await;
    let forced = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "step_advanced" && e["detail"]["forced"] == true);
    assert!(forced, "the forced advance is recorded: {events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_canary_gets_no_traffic_even_forced_and_the_incident_names_its_share() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let p = serve_with(&stable, dir.path(), LOOSE_LATENCY);
    let admin = format!("http://{}", p.admin);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(p.proxy, 300, Arc::clone(&stop));
    let (code, _, err) =
        run(&admin, &["deploy", "25", &canary.url(), "--steps", "25,50,100", "--bake", "10m"]).await;
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (code, _, err) = run(&admin, &["adjust", "50"]).await;
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    canary.fail_with.store(500, Ordering::Relaxed);
    let rolled = eventually(10, || async { rollout(&p).await["state"] == "rolled_back" }).await;
    assert!(rolled, "{}", rollout(&p).await);
    canary.fail_with.store(0, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_no_hang("load on a failing canary");

    let c = client();
    for forced in [("x-canary", "always"), ("cookie", "x-canary=always")] {
        assert_eq!(
            get(&c, p.proxy, "/", &[forced]).await.1,
            "stable",
            "{forced:?} reached a rolled-back canary"
        );
    }
    let routing = admin_json(&c, p.admin, "/api/routing").await;
    assert_eq!(routing["canary_blocked"], true, "{routing}");
    let (code, _, err) = run(&admin, &["adjust", "10"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("rolled back") && err.contains("--force"), "{err}");
    let (status, _) = admin_put(&c, p.admin, "/api/routing/share", serde_json::json!({"share": 10})).await;
    assert_eq!(status, 409, "the routing API refuses too");
    assert_eq!(get(&c, p.proxy, "/", &[("x-canary", "always")]).await.1, "stable", "nothing changed");
    let body = serde_json::json!({"share": 10, "force": true});
    let (status, r) = admin_post(&c, p.admin, "/api/rollout/adjust", body).await;
    assert_eq!((status, r["share"].as_f64()), (200, Some(10.0)), "{r}");
    assert_eq!(
        get(&c, p.proxy, "/", &[("x-canary", "always")]).await.1,
        "canary",
        "forced: the block is lifted"
    );

    let incidents = dir.path().join("incidents");
    let found =
        eventually(10, || async { std::fs::read_dir(&incidents).is_ok_and(|mut d| d.next().is_some()) })
            .await;
    assert!(found, "no incident record in {}", incidents.display());
    let file = std::fs::read_dir(&incidents).unwrap().next().unwrap().unwrap().path();
    let md = std::fs::read_to_string(file).unwrap();
    assert!(md.contains("**Share at the time:** 50% (step 2 of 3)"), "{md}");
    assert!(md.contains("by `canary adjust` to 50%"), "the manual advance is listed: {md}");
    let (code, out, err) = run(&admin, &["report", "--summary", "--json", "--last", "5"]).await;
    assert_eq!(code, 0, "{err}");
    let sum: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (sum["rolled_back"].as_u64(), sum["zero_rollbacks"].as_bool()),
        (Some(1), Some(false)),
        "{sum}"
    );
    assert!(sum["requests_lost"].as_u64().unwrap() > 0, "the canary's 500s reached users: {sum}");
}
