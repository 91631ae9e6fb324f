//! Measures a cluster of `canary serve` replicas sharing one etcd: how fast a
//! share change reaches every router, how long a takeover takes after the
//! leader is killed, and how fast the fleet rolls back a failing canary.
//!
//! Starts a real etcd (`etcd` on the PATH) and REPLICAS `canary serve`
//! processes (the binary next to this example: build it first), with two
//! upstreams in this process.
//!
//! ```text
//! cargo build --release -p canary --bins --examples
//! ./target/release/examples/cluster [SHARE_CHANGES] [TAKEOVERS] [ROLLBACKS] [REPLICAS]   # defaults 1000 5 5 3
//! ./target/release/examples/cluster 0 5 0 100    # takeovers in a fleet of 100
//! ./target/release/examples/cluster 0 0 5 30     # fleet rollbacks behind 30 replicas
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/upstream.rs"]
mod support_upstream;
use support_upstream::upstream;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
type Http = Client<HttpConnector, Full<Bytes>>;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One etcd member on loopback; killed on drop.
struct Etcd(Child, String);

impl Etcd {
    fn start(dir: &Path) -> Result<Etcd> {
        let (client, peer) =
            (format!("http://127.0.0.1:{}", free_port()?), format!("http://127.0.0.1:{}", free_port()?));
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_secs(2));
        Ok(Etcd(child, client))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A replica: its process and addresses.
struct Replica {
    id: String,
    child: Child,
    proxy: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(Path::parent).ok_or("no target directory")?;
    Ok(dir.join("canary"))
}

fn replica(dir: &Path, etcd: &str, stable: SocketAddr, id: &str) -> Result<Replica> {
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(&cfg, "[cluster]\nlease_ttl = \"3s\"\n")?;
    let mut child = Command::new(binary()?)
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--stable", &format!("http://{stable}"), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--etcd", etcd, "--node-id", id, "--state"])
        .arg(dir.join(format!("{id}.db")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let addrs: Vec<SocketAddr> =
        line.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect();
    let (proxy, admin) = (*addrs.first().ok_or("no address")?, *addrs.last().ok_or("no address")?);
    Ok(Replica { id: id.to_string(), child, proxy, admin })
}

async fn call(
    c: &Http,
    method: &str,
    url: String,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let b = body.map_or_else(Bytes::new, |v| Bytes::from(v.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(b))?;
    let resp = c.request(req).await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

async fn get(c: &Http, admin: SocketAddr, path: &str) -> serde_json::Value {
    call(c, "GET", format!("http://{admin}{path}"), None).await.unwrap_or_default()
}

/// Open-loop load from distinct users until `stop`.
fn load(c: &Http, addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) {
    let c = c.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let c = c.clone();
            tokio::spawn(async move {
                let req = Request::get(format!("http://{addr}/api/v2/rooms"))
                    .header("x-user-id", format!("u-{addr}-{i}"));
                if let Ok(req) = req.body(Full::new(Bytes::new()))
                    && let Ok(resp) = c.request(req).await
                {
                    let _ = resp.into_body().collect().await;
                }
            });
        }
    });
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let q = |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    println!(
        "{name} over {} (ms): min {:.1}  p50 {:.1}  p99 {:.1}  max {:.1}",
        v.len(),
        q(0.0),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

/// Share changes through replica 0; the time until every replica routes by each.
async fn propagation(c: &Http, rs: &[Replica], n: u64) -> Result<()> {
    let (mut answered, mut everywhere) = (Vec::new(), Vec::new());
    for i in 0..n {
        let share = 1.0 + (i % 90) as f64 + 0.5;
        let t0 = Instant::now();
        call(
            c,
            "PUT",
            format!("http://{}/api/routing/share", rs[0].admin),
            Some(serde_json::json!({"share": share, "force": true})),
        )
        .await?;
        answered.push(t0.elapsed().as_secs_f64() * 1000.0);
        for r in rs {
            while get(c, r.admin, "/api/routing").await["share"].as_f64() != Some(share) {
                if t0.elapsed() > Duration::from_secs(5) {
                    return Err(format!("share {share} not on {} after 5 s", r.id).into());
                }
            }
        }
        everywhere.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    summary("share change answered", answered);
    summary("share change on every replica (from the request)", everywhere);
    Ok(())
}

async fn leader(c: &Http, r: &Replica) -> Option<String> {
    get(c, r.admin, "/api/rollout").await["cluster"]["leader"].as_str().map(str::to_string)
}

/// Kills the leader; the time until another replica leads. The killed one restarts.
async fn takeovers(
    c: &Http,
    rs: &mut Vec<Replica>,
    n: u64,
    dir: &Path,
    etcd: &str,
    stable: SocketAddr,
) -> Result<()> {
    let mut times = Vec::new();
    for _ in 0..n {
        let lead = leader(c, &rs[0]).await.ok_or("no leader")?;
        let idx = rs.iter().position(|r| r.id == lead).ok_or("leader not among replicas")?;
        let killed = rs.remove(idx);
        drop(killed);
        let t0 = Instant::now();
        loop {
            let now = leader(c, &rs[0]).await;
            if now.as_deref().is_some_and(|l| l != lead) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err("no takeover within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        println!("takeover after kill -9 of {lead}: {ms:.0} ms");
        times.push(ms);
        rs.push(replica(dir, etcd, stable, &lead)?);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    summary("takeover", times);
    Ok(())
}

/// Deploys a canary failing 12% at share 50 with 100 requests/s across the
/// replicas; the time until every replica routes it nothing.
async fn rollbacks(c: &Http, rs: &[Replica], n: u64, canary: SocketAddr) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    // 100 requests/s in all, spread as evenly as whole rates allow.
    let replicas = rs.len() as u64;
    for (i, r) in rs.iter().enumerate() {
        let rps = 100 / replicas + u64::from((i as u64) < 100 % replicas);
        if rps > 0 {
            load(c, r.proxy, rps, Arc::clone(&stop));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times = Vec::new();
    for run in 1..=n {
        let body = serde_json::json!({"share": 50.0, "canary": format!("http://{canary}"), "steps": "50,100", "bake": "1h"});
        let t0 = Instant::now();
        call(c, "POST", format!("http://{}/api/rollout/deploy", rs[1].admin), Some(body)).await?;
        for r in rs {
            while get(c, r.admin, "/api/routing").await["share"].as_f64() != Some(0.0) {
                if t0.elapsed() > Duration::from_secs(60) {
                    return Err(format!("run {run}: not rolled back on {} within 60 s", r.id).into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        println!("fleet rollback run {run}: share 0 on every replica {ms:.0} ms after the deploy");
        times.push(ms);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    summary("fleet rollback (from the deploy)", times);
    Ok(())
}

/// Waits until the first replica sees every replica registered and a leader.
async fn settle(c: &Http, rs: &[Replica]) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let st = get(c, rs[0].admin, "/api/rollout").await;
        let known = st["cluster"]["replicas"].as_array().map_or(0, Vec::len);
        if known == rs.len() && st["cluster"]["leader"].is_string() {
            println!("{} replicas registered and a leader after {} ms", rs.len(), t0.elapsed().as_millis());
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(format!("{known} of {} replicas registered after 120 s", rs.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let dir = std::env::temp_dir().join(format!("canary-cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let etcd = Etcd::start(&dir)?;
    let stable = upstream(Arc::new(AtomicU64::new(0))).await?;
    let canary = upstream(Arc::new(AtomicU64::new(8))).await?;
    let mut rs = Vec::new();
    for i in 1..=arg(3, 3) {
        rs.push(replica(&dir, &etcd.1, stable, &format!("r{i}"))?);
    }
    let c: Http = Client::builder(TokioExecutor::new()).build_http();
    settle(&c, &rs).await?;
    // A canary to route to; the share changes below are an operator's.
    let body = serde_json::json!({"share": 1.0, "canary": format!("http://{stable}"), "manual": true});
    call(&c, "POST", format!("http://{}/api/rollout/deploy", rs[0].admin), Some(body)).await?;
    propagation(&c, &rs, arg(0, 1000)).await?;
    call(
        &c,
        "POST",
        format!("http://{}/api/rollout/rollback", rs[0].admin),
        Some(serde_json::json!({"reason": "bench"})),
    )
    .await?;
    takeovers(&c, &mut rs, arg(1, 5), &dir, &etcd.1, stable).await?;
    rollbacks(&c, &rs, arg(2, 5), canary).await?;
    drop(rs);
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
