//! A bounded soak of `canary serve` as a real process: a steady load from
//! distinct users through two versions, the share changing every few seconds,
//! and many idle keep-alive connections held open; then memory and file
//! descriptors compared with where they started, and every failed request
//! counted.
//!
//! `cargo run --release -p canary --example soak -- [MINUTES] [RPS] [IDLE_CONNECTIONS]`
//! (defaults 10, 500, 10000). Needs `ulimit -n` above IDLE_CONNECTIONS x 2.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the canary binary with `args`; returns it and the addresses on its first line.
fn spawn(args: &[&str]) -> Result<(Guard, Vec<SocketAddr>)> {
    let exe = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("canary"))
        .ok_or("no target dir")?;
    let mut child = Command::new(exe).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let guard = Guard(child);
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let addrs: Vec<SocketAddr> =
        line.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect();
    if addrs.is_empty() {
        return Err(format!(
            "`canary {}` said {line:?}; build it first: cargo build --release -p canary",
            args.join(" ")
        )
        .into());
    }
    Ok((guard, addrs))
}

fn proc_figures(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (minutes, rps, idle) = (
        args.first().copied().unwrap_or(10),
        args.get(1).copied().unwrap_or(500),
        args.get(2).copied().unwrap_or(10_000),
    );
    let dir = std::env::temp_dir().join(format!("canary-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_v1, a1) = spawn(&["demo-service", "--version", "v1", "--listen", "127.0.0.1:0"])?;
    let (_v2, a2) = spawn(&["demo-service", "--version", "v2", "--listen", "127.0.0.1:0"])?;
    let state = dir.join("s.db").display().to_string();
    let (s1, s2) = (format!("http://{}", a1[0]), format!("http://{}", a2[0]));
    let (srv, addrs) = spawn(&[
        "serve",
        "--stable",
        &s1,
        "--canary",
        &s2,
        "--share",
        "50",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
    ])?;
    let (proxy, admin, pid) = (addrs[0], addrs[1], srv.0.id());
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // Warm up, then take the starting figures.
    for i in 0..200 {
        let _ = get(&client, proxy, i).await;
    }
    let start_figures = proc_figures(pid);
    println!("start: rss {} KiB, fds {}", start_figures.0, start_figures.1);

    let idle_conns = hold_idle(proxy, idle).await;
    let held = proc_figures(pid);
    println!("{} idle keep-alive connections held: rss {} KiB, fds {}", idle_conns.len(), held.0, held.1);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load =
        tokio::spawn(load(client.clone(), proxy, rps, Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&bad)));
    // Idle connections are kept up to the header read timeout (60 s by
    // default): check them 20 s into the load, then let them go.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let still_open = count_open(&idle_conns).await;
    println!("20 s into the load: {still_open} of {} idle connections still open", idle_conns.len());
    drop(idle_conns);
    let t0 = Instant::now();
    let mut changes = 0u64;
    while t0.elapsed() < Duration::from_secs(minutes * 60) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        changes += 1;
        let share = (changes * 37) % 101;
        let req = hyper::Request::put(format!("http://{admin}/api/routing/share"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!("{{\"share\": {share}}}"))))?;
        let _ = client.request(req).await?.into_body().collect().await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = proc_figures(pid);
    println!("after {minutes} min at {rps} req/s with {changes} share changes:");
    println!("  requests ok {}, failed {}", ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    println!("  rss {} KiB (start {}), fds {} (start {})", end.0, start_figures.0, end.1, start_figures.1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn get(
    c: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    i: u64,
) -> bool {
    let Ok(req) = hyper::Request::get(format!("http://{proxy}/api/v2/rooms"))
        .header("x-user-id", format!("user-{}", i % 20_000))
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    match c.request(req).await {
        Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

async fn load(
    c: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    rps: u64,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps.max(1)));
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        i += 1;
        let (c, ok, bad) = (c.clone(), Arc::clone(&ok), Arc::clone(&bad));
        tokio::spawn(async move {
            let good = get(&c, proxy, i).await;
            (if good { ok } else { bad }).fetch_add(1, Ordering::Relaxed);
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Opens `n` connections, sends one keep-alive request on each, and keeps them.
async fn hold_idle(proxy: SocketAddr, n: u64) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let Ok(mut s) = tokio::net::TcpStream::connect(proxy).await else { break };
        let req = format!("GET /api/v2/health HTTP/1.1\r\nhost: x\r\nx-user-id: idle-{i}\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        out.push(s);
    }
    out
}

/// How many of the connections the proxy still keeps open.
async fn count_open(conns: &[tokio::net::TcpStream]) -> usize {
    let mut open = 0;
    for s in conns {
        let mut buf = [0u8; 1];
        // An idle open connection has nothing to read: the peek times out.
        match tokio::time::timeout(Duration::from_millis(1), s.peek(&mut buf)).await {
            Err(_) => open += 1,
            Ok(Ok(n)) if n > 0 => open += 1,
            _ => {}
        }
    }
    open
}
