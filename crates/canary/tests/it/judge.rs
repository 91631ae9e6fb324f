//! The judge with real upstreams and real traffic through the proxy: a route
//! carrying 0.5% of requests, a health endpoint answering 503, and a failed
//! step that pauses instead of rolling back.

use crate::load::*;
use crate::prometheus::Prometheus;
use crate::support::*;
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use canary_core::judge::OnFailure;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// About `rps` requests a second from distinct users; one in 200 goes to
/// `/api/v2/pay/{n}`, the rest to `/api/v2/rooms`.
fn mixed_load(addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Tally> {
    spawn_load_with(addr, rps, stop, |i| {
        if i.is_multiple_of(200) { format!("/api/v2/pay/{i}") } else { "/api/v2/rooms".to_string() }
    })
}

/// Latency bars far above anything loopback shows even on a busy machine:
/// these tests are about errors, routes, health and gates, not speed.
fn latency_not_under_test(mut cfg: canary::config::ServeConfig) -> canary::config::ServeConfig {
    cfg.policy.max_p95_ms = 10_000.0;
    cfg.policy.rollback_p95_ms = 60_000.0;
    cfg.policy.max_p95_ratio = 100.0;
    cfg.policy.targets = false;
    cfg
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
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
}

fn state(srv: &canary::server::Running) -> (String, f64, String) {
    let s = lock(&srv.controller).status();
    (s.state, s.share, s.rollout.and_then(|r| r.reason).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_a_route_with_half_a_percent_of_traffic_is_rolled_back_naming_it() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-pay-broken"), tempdir());
    let srv = start(latency_not_under_test(config(&stable, None, "0", dir.path())));
    let stop = Arc::new(AtomicBool::new(false));
    let load = mixed_load(srv.proxy_addr, 400, Arc::clone(&stop));
    deploy(&srv, canary.url(), "10m");
    let rolled = eventually(60, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    // The broken route fails on purpose: no request may hang.
    load.await.unwrap().assert_no_hang("mixed load");
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
async fn a_canary_whose_route_with_half_a_percent_of_traffic_got_slow_fails_its_step_naming_it() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-pay-slow"), tempdir());
    // The route's bar is `max_p95_ms` (200 ms, the seed's); the version as a
    // whole is not what this is about.
    let mut cfg = latency_not_under_test(config(&stable, None, "0", dir.path()));
    cfg.policy.max_p95_ms = 200.0;
    let srv = start(cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let load = mixed_load(srv.proxy_addr, 400, Arc::clone(&stop));
    deploy(&srv, canary.url(), "10m");
    let rolled = eventually(90, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("mixed load");
    let (st, _, why) = state(&srv);
    assert!(rolled, "still {st}: {why}");
    assert!(why.contains("step 1 at 50% failed") && why.contains("route /api/v2/pay"), "{why}");
    assert!(why.contains("latency") && why.contains("slower than 200 ms"), "{why}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_traffic_mix_with_a_healthy_canary_is_promoted() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(latency_not_under_test(config(&stable, None, "0", dir.path())));
    let stop = Arc::new(AtomicBool::new(false));
    let load = mixed_load(srv.proxy_addr, 400, Arc::clone(&stop));
    deploy(&srv, canary.url(), "4s");
    let promoted = eventually(40, || async { state(&srv).0 == "promoted" }).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    assert!(promoted, "{:?}", state(&srv));
    tally.assert_none_lost("mixed load");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_health_endpoint_answers_503_fails_its_step() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary-sick"), tempdir());
    let srv = start(latency_not_under_test(config(&stable, None, "0", dir.path())));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    // The third failed check (one every 2 s) comes 4 to 6 s in; a bake well
    // past that keeps a late check from letting step 1 pass first.
    deploy(&srv, canary.url(), "20s");
    let rolled = eventually(30, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load");
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
    let mut cfg = latency_not_under_test(config(&stable, None, "0", dir.path()));
    cfg.policy.on_failure = OnFailure::Pause;
    // What is under test is the step's verdict: the immediate rollback is put
    // out of reach. At its default bars (5%, and 5 points over stable) a CUSUM
    // fed random draws at 3% alarms first in about one run in 4,000, and that
    // rolls back whatever `on_failure` says.
    cfg.policy.rollback_error_rate = 50.0;
    cfg.policy.surge_margin = 50.0;
    let srv = start(cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    deploy(&srv, format!("http://{}", canary.proxy), "6s");
    // It may hold first: a few points over the 1% bar take a few thousand
    // requests to be sure of, however often the step is looked at.
    let paused =
        eventually(60, || async { !["progressing", "holding"].contains(&state(&srv).0.as_str()) }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_no_hang("load on a 3% error canary");
    let (st, share, why) = state(&srv);
    assert!(paused, "never concluded");
    assert_eq!((st.as_str(), share), ("paused", 50.0), "{why}");
    assert!(why.contains("on_failure") && why.contains("error_rate"), "{why}");
    srv.shutdown();
}

/// A config file with `extra` TOML, loaded as `canary serve` loads it.
fn config_with(stable: &Upstream, dir: &std::path::Path, extra: &str) -> canary::config::ServeConfig {
    config_of(stable.url(), None, "0", dir, Some(extra))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gate_answering_503_fails_the_step_and_an_unreachable_one_holds() {
    let (stable, canary, gate, dir) =
        (Upstream::start("stable"), Upstream::start("canary"), Upstream::start("gate"), tempdir());
    gate.fail_with.store(503, Ordering::Relaxed);
    let toml = format!(
        "[[analysis.webhook]]\nname = \"qa-gate\"\nurl = \"{}/gate\"\ninterval = \"500ms\"\n\
         [[analysis.webhook]]\nname = \"change-board\"\nurl = \"http://127.0.0.1:1/gate\"\ninterval = \"500ms\"\ntimeout = \"1s\"\n",
        gate.url()
    );
    let srv = start(latency_not_under_test(config_with(&stable, dir.path(), &toml)));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    deploy(&srv, canary.url(), "3s");
    let rolled = eventually(20, || async { state(&srv).0 == "rolled_back" }).await;
    let (st, _, why) = state(&srv);
    assert!(rolled, "still {st}: {why}");
    assert!(why.contains("qa-gate") && why.contains("answered 503"), "{why}");
    // The gate now passes, but the other one cannot be reached: the step holds.
    gate.fail_with.store(0, Ordering::Relaxed);
    // The reason is taken when the step starts to hold, at the bake's end:
    // long enough for the unreachable gate (asked every 500 ms) to have answered.
    deploy(&srv, canary.url(), "5s");
    let held = eventually(20, || async { state(&srv).0 == "holding" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load");
    let (st, _, why) = state(&srv);
    assert!(held, "an unreachable gate must hold, not pass: {st}: {why}");
    assert!(why.contains("change-board") && why.contains("unreachable"), "{why}");
    srv.shutdown();
}

/// An exporter serving `checkout_seconds{version="canary"} VALUE`.
fn exporter(value: f64) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = format!(
                    "# TYPE checkout_seconds gauge\ncheckout_seconds{{version=\"canary\"}} {value}\ncheckout_seconds{{version=\"stable\"}} 0.1\n"
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_query_past_its_max_fails_the_step() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let (target, exporter) = exporter(2.5);
    let prom = Prometheus::start(dir.path(), target);
    let toml = format!(
        "[[analysis.prometheus]]\nname = \"checkout-latency\"\nurl = \"{}\"\n\
         query = 'max(checkout_seconds{{version=\"{{{{version}}}}\"}})'\nmax = 1.0\ninterval = \"1s\"\n",
        prom.url
    );
    let srv = start(latency_not_under_test(config_with(&stable, dir.path(), &toml)));
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(srv.proxy_addr, 300, Arc::clone(&stop));
    deploy(&srv, canary.url(), "4s");
    let rolled = eventually(40, || async { state(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load");
    exporter.abort();
    let (st, _, why) = state(&srv);
    assert!(rolled, "still {st}: {why}");
    assert!(why.contains("checkout-latency 2.5 vs threshold 1"), "{why}");
    srv.shutdown();
}
