//! What an idle keep-alive connection costs a server: opens N connections to
//! ADDR, sends one request on each and reads its answer, keeps them all open
//! and idle, and prints how much the resident memory (VmRSS) of process PID
//! grew. The same method measures canary and nginx (give nginx's worker pid).
//!
//! `cargo run --release -p canary --example idle_conns -- ADDR PID [N] [PATH]`
//! (N defaults to 10000, PATH to `/`). Needs `ulimit -n` above N.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Connections opened at once.
const PARALLEL: usize = 64;

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// One connection after one request answered in full; `None` if it failed.
async fn open(addr: SocketAddr, path: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: idle\r\n\r\n").as_bytes()).await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer is small: the head and a short body, complete once the
    // Content-Length it announces has arrived.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if complete(&got) {
            return Some(s);
        }
    }
}

fn complete(resp: &[u8]) -> bool {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    resp.len() >= end + 4 + len
}

/// How many of the connections are still open (nothing to read, no EOF).
async fn still_open(conns: &[TcpStream]) -> usize {
    let mut open = 0;
    for s in conns {
        let mut b = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(1), s.peek(&mut b)).await.is_err() {
            open += 1;
        }
    }
    open
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: idle_conns ADDR PID [N] [PATH]";
    let addr: SocketAddr = args.first().ok_or(usage)?.parse()?;
    let pid: u32 = args.get(1).ok_or(usage)?.parse()?;
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let path = args.get(3).cloned().unwrap_or_else(|| "/".into());
    // Warm up: the server's first connections allocate what it keeps anyway.
    for _ in 0..PARALLEL {
        drop(open(addr, &path).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        let batch = PARALLEL.min(n - conns.len());
        let opened = futures_util::future::join_all((0..batch).map(|_| open(addr, &path))).await;
        let ok: Vec<_> = opened.into_iter().flatten().collect();
        if ok.len() < batch {
            return Err(format!("only {} of {batch} connections answered", ok.len()).into());
        }
        conns.extend(ok);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid)?;
    let open = still_open(&conns).await;
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!("{n} connections, {open} still open and idle");
    println!("rss before {before} KiB, with them {after} KiB: {per:.0} bytes per idle connection");
    Ok(())
}
