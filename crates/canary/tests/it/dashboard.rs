//! The dashboard in a real browser (headless Chromium driven by
//! playwright-core, see e2e/): charts draw live data during a rollout and the
//! share shown matches the API's. Needs node, e2e/node_modules and chromium,
//! which `./test.sh` installs; without them the tests fail and say what to install.

use crate::load::*;
use crate::support::*;
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Fails, saying what to install, when the browser or its driver is missing.
fn needs_a_browser() {
    assert!(
        e2e_dir().join("node_modules/playwright-core").exists(),
        "e2e/node_modules is missing: npm ci --prefix e2e (./test.sh does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium (./test.sh does)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_live_data_and_shows_the_apis_share() {
    needs_a_browser();
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 200, Arc::clone(&stop));
    let req = DeployRequest {
        share: 25.0,
        canary: canary.url(),
        bake: Some("10m".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    // Two 5-second slots of traffic before the page opens: it must draw them.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let shot = dir.path().join("dashboard.png");
    let out = tokio::process::Command::new("node")
        .arg(e2e_dir().join("dashboard.mjs"))
        .arg(format!("http://{}", srv.admin_addr))
        .arg(&shot)
        .output()
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load beside the dashboard");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["share_shown"], "25%", "{seen}");
    assert_eq!(seen["share_api"], 25.0);
    assert_eq!(seen["state"], "progressing");
    assert_eq!(seen["charts"], 4, "four charts drew: {seen}");
    let past = seen["first_points"].as_u64().unwrap_or(0);
    assert!(past >= 3, "a page opened mid-rollout draws what came before it (2 slots and now): {seen}");
    assert!(
        seen["past_canary"].as_u64().unwrap_or(0) >= 1,
        "the past points carry the canary's traffic: {seen}"
    );
    assert!(seen["verdict_rows"].as_u64().unwrap() >= 5, "the verdict table is shown: {seen}");
    assert_eq!(seen["connection"], "live");
    assert!(seen["log_rows"].as_u64().unwrap_or(0) >= 1, "the request log's panel lists requests: {seen}");
    assert_eq!(
        seen["log_command"], "canary logs --version canary --errors --since 10m",
        "a click on a criterion shows the canary's failures, as a command too: {seen}"
    );
    assert_eq!(seen["phone_overflow"], false, "usable at phone width");
    assert_eq!(
        seen["split_words"],
        serde_json::json!([]),
        "words split over two lines at laptop width: {seen}"
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot was taken");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_can_roll_back_from_the_page_and_a_viewer_cannot() {
    needs_a_browser();
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.admin_token = Some("op-secret".into());
    cfg.viewer_token = Some("view-secret".into());
    let srv = start(cfg);
    let req = DeployRequest {
        share: 25.0,
        canary: canary.url(),
        bake: Some("10m".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(e2e_dir().join("actions.mjs"))
        .args([format!("http://{}", srv.admin_addr), "view-secret".into(), "op-secret".into()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (v, o) = (&seen["viewer"], &seen["operator"]);
    assert_eq!(v["login_shown"], true, "the page asks for a login: {seen}");
    assert_eq!((v["role"].as_str(), o["role"].as_str()), (Some("viewer"), Some("operator")));
    assert!(v["result"].as_str().unwrap().contains("refused (403)"), "{seen}");
    assert!(o["result"].as_str().unwrap().contains("now rolled_back at 0%"), "{seen}");
    assert_eq!((o["http_only"].as_bool(), o["same_site"].as_str()), (Some(true), Some("Strict")));
    assert_eq!(lock(&srv.controller).status().state, "rolled_back");
    // With a viewer token configured, reads need a token too; health stays open.
    let c = client();
    assert_eq!(get(&c, srv.admin_addr, "/api/rollout", &[]).await.0, 401);
    assert_eq!(
        get(&c, srv.admin_addr, "/api/rollout", &[("authorization", "Bearer view-secret")]).await.0,
        200
    );
    assert_eq!(get(&c, srv.admin_addr, "/api/v2/health", &[]).await.0, 200);
    srv.shutdown();
}
