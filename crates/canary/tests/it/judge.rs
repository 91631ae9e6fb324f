//! The judge with real upstreams and real traffic through the proxy: a route
//! carrying 0.5% of requests, a health endpoint answering 503, and a failed
//! step that pauses instead of rolling back.

use crate::support::*;
use bytes::Bytes;
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use canary_core::judge::OnFailure;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// About `rps` requests a second from distinct users; one in 200 goes to
/// `/api/v2/pay/{n}`, the rest to `/api/v2/rooms`. Returns the failures seen.
fn mixed_load(addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let c = client();
        let bad = Arc::new(AtomicU64::new(0));
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let path =
                if i.is_multiple_of(200) { format!("/api/v2/pay/{i}") } else { "/api/v2/rooms".to_string() };
            let (c, bad) = (c.clone(), Arc::clone(&bad));
            tokio::spawn(async move {
                let req = http::Request::get(format!("http://{addr}{path}"))
                    .header("x-user-id", format!("user-{i}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let ok = match c.request(req).await {
                    Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                bad.fetch_add(u64::from(!ok), Ordering::Relaxed);
            });
        }
        bad.load(Ordering::Relaxed)
    })
}

fn deploy(srv: &canary::server::Running, canary: String, bake: &str) {
    let req = DeployRequest {
        share: 50.0,
        canary,
        steps: Some("50,100".into()),
        bake: Some(bake.into()),
        final_watch: Some("2s".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::store::now_ms() as u64, None).unwrap();
}

fn state(srv: &canary::server::Running) -> (String, f64, String) {
    let s = lock(&srv.controller).status();
    (s.state, s.share, s.rollout.and_then(|r| r.reason).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_a_route_with_half_a_percent_of_traffic_is_rolled_back_naming_it() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-pay-broken"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = mixed_load(srv.proxy_addr, 400, Arc::clone(&stop));
    deploy(&srv, canary.url(), "10m");
    let rolled = eventually(60, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (st, _, why) = state(&srv);
    assert!(rolled, "still {st}: {why}");
    assert!(why.contains("immediate rollback") && why.contains("route /api/v2/pay"), "{why}");
    let events = srv.live.store().events(50).unwrap();
    let rb = events.iter().find(|e| e.kind == "rolled_back").unwrap();
    let named = rb.detail["verdict"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"].as_str().is_some_and(|n| n.starts_with("route /api/v2/pay")));
    assert!(named, "the verdict table names the route: {}", rb.detail);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_traffic_mix_with_a_healthy_canary_is_promoted() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = mixed_load(srv.proxy_addr, 400, Arc::clone(&stop));
    deploy(&srv, canary.url(), "4s");
    let promoted = eventually(40, || async { state(&srv).0 == "promoted" }).await;
    stop.store(true, Ordering::Relaxed);
    let bad = load.await.unwrap();
    assert!(promoted, "{:?}", state(&srv));
    assert_eq!(bad, 0);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_health_endpoint_answers_503_fails_its_step() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-sick"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    deploy(&srv, canary.url(), "8s");
    let rolled = eventually(30, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (st, _, why) = state(&srv);
    assert!(rolled, "still {st}: {why}");
    assert!(why.contains("step 1 at 50% failed") && why.contains("health"), "{why}");
    assert!(why.contains("/api/v2/health 503"), "the last answer is shown: {why}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_pause_holds_a_3_percent_error_canary_for_a_person() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let flaky = ["demo-service", "--version", "v2", "--listen", "127.0.0.1:0", "--error-rate", "3"];
    let canary = Process::start_cmd(&flaky);
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.policy.on_failure = OnFailure::Pause;
    let srv = start(cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    deploy(&srv, format!("http://{}", canary.proxy), "6s");
    let paused = eventually(30, || async { state(&srv).0 != "progressing" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (st, share, why) = state(&srv);
    assert!(paused, "never concluded");
    assert_eq!((st.as_str(), share), ("paused", 50.0), "{why}");
    assert!(why.contains("on_failure") && why.contains("error_rate"), "{why}");
    srv.shutdown();
}
