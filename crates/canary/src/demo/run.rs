//! `canary demo [--bad-canary]`: the seed's strategy on one machine, in about
//! a minute. Starts a stable (v1) and a canary (v2) demo service as child
//! processes, `canary serve` in front of them, and a load of many distinct
//! users; deploys the canary with the seed's plan compressed to seconds and
//! shows the rollout live until it is promoted, or, with `--bad-canary` (v2
//! fails 12% of requests), rolled back by itself with the reason and the record.
//! Every process it starts is stopped before it returns.

use crate::config::{self, Overrides};
use crate::controller::api::DeployRequest;
use crate::controller::lock;
use crate::exit::{Exit, fail};
use crate::server::{self, Running};
use bytes::Bytes;
use canary_core::Version;
use canary_core::event::EventKind;
use canary_core::rollout::State;
use canary_core::time::UnixMs;
use canary_proxy::metrics::WindowSpec;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Requests per second the demo's users send in all.
const RPS: u64 = 300;
/// The longest the demo may run.
const LIMIT: Duration = Duration::from_secs(180);

/// A child process stopped when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the demo; the exit code says whether it ended as it should.
pub fn run(bad_canary: bool) -> Exit {
    let expected = if bad_canary { State::RolledBack } else { State::Promoted }.as_str();
    match demo(bad_canary) {
        Ok(outcome) if outcome == expected => Exit::Done,
        Ok(outcome) => fail(Exit::Failed, "demo", format!("the rollout ended {outcome}, not {expected}")),
        Err(e) => fail(Exit::Failed, "demo", e),
    }
}

fn demo(bad: bool) -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("canary-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (stable, stable_addr) = service("v1", &[])?;
    let faults: &[&str] = if bad { &["--error-rate", "12"] } else { &[] };
    let (canary, canary_addr) = service("v2", faults)?;
    let note = if bad { " (fails 12% of requests)" } else { "" };
    let (sp, cp) = (stable.0.id(), canary.0.id());
    crate::say!(
        "stable v1 on http://{stable_addr} (pid {sp}), canary v2 on http://{canary_addr} (pid {cp}){note}"
    );
    let cli = Overrides {
        stable: Some(format!("http://{stable_addr}")),
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("canary.db")),
        ..Overrides::default()
    };
    let srv = server::start(config::load(None, &cli)?)?;
    crate::say!("canary serve: proxy http://{}, admin http://{}", srv.proxy_addr, srv.admin_addr);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stop = CancellationToken::new();
    let sent = Arc::new(AtomicU64::new(0));
    rt.spawn(load(srv.proxy_addr, stop.clone(), Arc::clone(&sent)));
    std::thread::sleep(Duration::from_secs(2));
    let req = DeployRequest {
        share: 10.0,
        canary: format!("http://{canary_addr}"),
        steps: Some("10,25,50,75,100".into()),
        bake: Some("6s".into()),
        final_watch: Some("10s".into()),
        manual: false,
        ..DeployRequest::default()
    };
    crate::say!(
        "\ncanary deploy 10 http://{canary_addr} --steps 10,25,50,75,100 --bake 6s --final-watch 10s\n"
    );
    lock(&srv.controller).deploy(&req, crate::controller::clock::now_ms(), None)?;
    let outcome = watch(&srv);
    stop.cancel();
    summarise(&srv, &outcome, sent.load(Ordering::Relaxed));
    rt.shutdown_timeout(Duration::from_secs(2));
    srv.shutdown();
    drop((stable, canary));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outcome)
}

/// Starts `canary demo-service` and reads the address it listens on.
fn service(version: &str, extra: &[&str]) -> Result<(ChildGuard, SocketAddr), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["demo-service", "--version", version, "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout from demo-service")?;
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("demo-service said {line:?}"))?;
    Ok((guard, addr))
}

/// Many distinct users browsing rooms and making reservations.
async fn load(addr: SocketAddr, stop: CancellationToken, sent: Arc<AtomicU64>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RPS));
    let mut i = 0u64;
    while !stop.is_cancelled() {
        tick.tick().await;
        i += 1;
        let (c, sent) = (client.clone(), Arc::clone(&sent));
        tokio::spawn(async move {
            let user = format!("player-{}", i % 5000);
            let req = match i % 20 {
                0..=11 => Request::get(format!("http://{addr}/api/v2/rooms"))
                    .header("x-user-id", &user)
                    .body(Full::new(Bytes::new())),
                12..=16 => Request::get(format!("http://{addr}/api/v2/rooms/{}", 1 + i % 5))
                    .header("x-user-id", &user)
                    .body(Full::new(Bytes::new())),
                _ => {
                    let body = format!(r#"{{"room_id": {}, "user": "{user}", "slot": "19:00"}}"#, 1 + i % 5);
                    Request::post(format!("http://{addr}/api/v2/reservations"))
                        .header("x-user-id", &user)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                }
            };
            if let Ok(req) = req
                && let Ok(resp) = c.request(req).await
            {
                let _ = resp.into_body().collect().await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Prints a line a second until the rollout ends; returns its end state.
fn watch(srv: &Running) -> String {
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let st = lock(&srv.controller).status();
        let snap = srv.metrics.window(WindowSpec::Last(Duration::from_secs(10)), std::time::Instant::now());
        let c = snap.arm(Version::Canary);
        let s = snap.arm(Version::Stable);
        let step = st.rollout.as_ref().map_or(String::new(), |r| {
            format!("step {}/{}, {:>4.1}s left", r.step, r.steps, r.time_left_seconds)
        });
        crate::say!(
            "[{:>3}s] {:<12} share {:>5.1}%  {step:<22} canary: {:>4} req {:>5.1}% err p95 {:>6}   stable: {:>5} req {:>5.1}% err",
            start.elapsed().as_secs(),
            st.state,
            st.share,
            c.counts.requests,
            c.error_rate(),
            c.quantile_ms(0.95).map_or("-".into(), |p| format!("{p:.1}ms")),
            s.counts.requests,
            s.error_rate(),
        );
        if !State::parse(&st.state).is_some_and(State::is_active) || start.elapsed() > LIMIT {
            return st.state;
        }
    }
}

fn summarise(srv: &Running, outcome: &str, sent: u64) {
    let st = lock(&srv.controller).status();
    crate::say!("\nrollout ended: {outcome} ({sent} requests answered during the demo)");
    match State::parse(outcome) {
        Some(State::Promoted) => crate::say!("the canary is the new stable: {}", st.stable),
        Some(State::RolledBack) => {
            crate::say!("why: {}", st.rollout.as_ref().and_then(|r| r.reason.clone()).unwrap_or_default());
            crate::say!("\nincident record (from the event log):");
            if let Ok(events) = srv.live.store().events(50) {
                let timeline: Vec<_> =
                    events.iter().rev().filter(|e| e.detail.get("rollout").is_some()).collect();
                let t0 = timeline.first().map_or(UnixMs::EPOCH, |e| e.at_ms);
                for e in timeline {
                    crate::say!(
                        "  +{:>5.1}s  {:<16} share {}%",
                        (e.at_ms - t0) as f64 / 1000.0,
                        e.kind,
                        e.detail["share"]
                    );
                }
                if let Some(rb) = events.iter().find(|e| e.kind == EventKind::RolledBack) {
                    for c in rb.detail["verdict"]["criteria"].as_array().into_iter().flatten() {
                        let num =
                            |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
                        let (name, outcome) =
                            (c["name"].as_str().unwrap_or(""), c["outcome"].as_str().unwrap_or(""));
                        crate::say!(
                            "    {name:<22} value {:>8}  threshold {:>8}  {outcome}",
                            num(&c["value"]),
                            num(&c["threshold"])
                        );
                    }
                }
            }
        }
        _ => crate::say!("the demo stopped while the rollout was {outcome}"),
    }
}
