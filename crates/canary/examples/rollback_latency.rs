//! Measures how fast canary pulls back a failing canary, end to end, and how
//! often it pulls back a healthy one.
//!
//! Two upstreams on loopback, `canary serve` in this process, 200 requests/s
//! from distinct users at a 50% share (100 requests/s to the canary). Each
//! failing run: deploy, 3 s of healthy traffic, then the canary starts failing
//! 10% of its requests; the time from that moment until the router's share is
//! 0 is the rollback latency. Each healthy run: deploy and serve for a while
//! with a healthy canary; any rollback is a false alarm.
//!
//! `cargo run --release --example rollback_latency -- [FAILING_RUNS] [HEALTHY_RUNS] [HEALTHY_SECS]`
//! (defaults 20, 100, 10).

use bytes::Bytes;
use canary::config::{self, Overrides};
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use canary::server::{self, Running};
use canary::store::now;
use canary_core::rollout::State;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/upstream.rs"]
mod support_upstream;
use support_upstream::upstream;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Open-loop load from distinct users until `stop`.
fn load(addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let c = client.clone();
            tokio::spawn(async move {
                let req = Request::get(format!("http://{addr}/api/v2/rooms"))
                    .header("x-user-id", format!("user-{i}"));
                if let Ok(req) = req.body(Full::new(Bytes::new()))
                    && let Ok(resp) = c.request(req).await
                {
                    let _ = resp.into_body().collect().await;
                }
            });
        }
    });
}

fn deploy(srv: &Running, canary: SocketAddr) -> Result<()> {
    let req = DeployRequest {
        share: 50.0,
        canary: format!("http://{canary}"),
        steps: Some("50,100".into()),
        bake: Some("1h".into()),
        final_watch: Some("1h".into()),
        manual: false,
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, now(), None)?;
    Ok(())
}

fn state(srv: &Running) -> Option<State> {
    State::parse(&lock(&srv.controller).status().state)
}

fn rollback_by_hand(srv: &Running) {
    let _ = lock(&srv.controller).command(canary::controller::Command::Rollback("run over".into()), now());
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (failing, healthy, healthy_secs) = (
        args.first().copied().unwrap_or(20),
        args.get(1).copied().unwrap_or(100),
        args.get(2).copied().unwrap_or(10),
    );
    let (stable_fail, canary_fail) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stable = upstream(Arc::clone(&stable_fail)).await?;
    let canary = upstream(Arc::clone(&canary_fail)).await?;
    let dir = std::env::temp_dir().join(format!("canary-rollback-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cli = Overrides {
        stable: Some(format!("http://{stable}")),
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("state.db")),
        ..Overrides::default()
    };
    let srv = server::start(config::load(None, &cli)?)?;
    let stop = Arc::new(AtomicBool::new(false));
    load(srv.proxy_addr, 200, Arc::clone(&stop));

    let mut latencies = Vec::new();
    for run in 1..=failing {
        deploy(&srv, canary)?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        if state(&srv) != Some(State::Progressing) {
            println!("failing run {run}: rolled back before the failure began (false alarm)");
        }
        canary_fail.store(10, Ordering::Relaxed);
        let t0 = Instant::now();
        while srv.live.routing().share.basis_points() != 0 && t0.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        canary_fail.store(0, Ordering::Relaxed);
        println!("failing run {run}: share 0 after {ms:.0} ms");
        latencies.push(ms);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut false_alarms = 0;
    for run in 1..=healthy {
        deploy(&srv, canary)?;
        tokio::time::sleep(Duration::from_secs(healthy_secs)).await;
        if state(&srv) == Some(State::RolledBack) {
            false_alarms += 1;
            println!(
                "healthy run {run}: rolled back: {:?}",
                lock(&srv.controller).status().rollout.and_then(|r| r.reason)
            );
        } else {
            rollback_by_hand(&srv);
        }
    }
    stop.store(true, Ordering::Relaxed);

    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN)
    };
    println!(
        "\nrollback latency over {} runs (ms): min {:.0}  median {:.0}  p90 {:.0}  max {:.0}",
        latencies.len(),
        pick(0.0),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    );
    println!(
        "false rollbacks: {false_alarms} of {healthy} healthy runs of {healthy_secs} s at 100 requests/s to the canary"
    );
    srv.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
