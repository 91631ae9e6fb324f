//! WebSocket message round trips through canary against the same echo server
//! reached directly: what the proxy's tunnel adds to each message.
//!
//! An echo WebSocket server on loopback (its own runtime, one thread);
//! `canary serve` in this process (workers = 1) with that server as stable and
//! canary; CONNECTIONS clients (their own runtime, one thread), each sending
//! MESSAGES 64-byte text messages one after another, each waiting for its
//! echo. Rounds alternate direct and through canary; each prints messages per
//! second and the round trip's p50 and p99.
//!
//! `cargo run --release --example ws_rtt -- [ROUNDS] [CONNECTIONS] [MESSAGES]`
//! (defaults 3, 8, 2000).

use canary::config::{self, Overrides};
use canary::server;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{accept_async, client_async};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Echoes every text or binary message on every connection.
async fn echo_server(listener: TcpListener) {
    while let Ok((s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(mut ws) = accept_async(s).await else { return };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// One client: `n` sequential round trips; returns each one's duration in µs.
async fn client(addr: SocketAddr, n: usize) -> Result<Vec<u32>> {
    let req = format!("ws://{addr}/ws").into_client_request()?;
    let (mut ws, _) = client_async(req, TcpStream::connect(addr).await?).await?;
    let payload = "x".repeat(64);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        ws.send(Message::text(payload.clone())).await?;
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await? {
            Some(Ok(_)) => out.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
            other => return Err(format!("no echo: {other:?}").into()),
        }
    }
    ws.close(None).await?;
    Ok(out)
}

/// One round against `addr`: (messages/s, p50 µs, p99 µs).
async fn round(addr: SocketAddr, conns: usize, msgs: usize) -> Result<(f64, u32, u32)> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns).map(|_| tokio::spawn(client(addr, msgs))).collect();
    let mut all = Vec::with_capacity(conns * msgs);
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied();
    Ok((rate, at(0.50).unwrap_or(0), at(0.99).unwrap_or(0)))
}

fn arg(i: usize, default: usize) -> Result<usize> {
    std::env::args()
        .nth(i)
        .map_or(Ok(default), |a| a.parse().map_err(|e| format!("argument {i} `{a}`: {e}").into()))
}

fn main() -> Result<()> {
    let (rounds, conns, msgs) = (arg(1, 3)?, arg(2, 8)?, arg(3, 2000)?);
    let echo_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let listener = echo_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let echo = listener.local_addr()?;
    echo_rt.spawn(echo_server(listener));

    let dir = std::env::temp_dir().join(format!("canary-ws-rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let toml = dir.join("canary.toml");
    std::fs::write(&toml, "[proxy]\nworkers = 1\n")?;
    let cli = Overrides {
        stable: Some(format!("http://{echo}")),
        canary: Some(format!("http://{echo}")),
        share: Some("50".into()),
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("state.db")),
        ..Overrides::default()
    };
    let running = server::start(config::load(Some(&toml), &cli)?)?;
    let proxy = running.proxy_addr;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    println!("{conns} connections x {msgs} messages of 64 bytes, sequential per connection");
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [("direct", echo), ("canary", proxy)]
        } else {
            [("canary", proxy), ("direct", echo)]
        };
        for (name, addr) in order {
            let (rate, p50, p99) = rt.block_on(round(addr, conns, msgs))?;
            println!("round {} {name:<7} {rate:>9.0} msg/s  p50 {p50:>5} us  p99 {p99:>5} us", r + 1);
        }
    }
    running.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
