//! The one forwarding policy, seen from outside: for each way a canary can
//! fail a request (it refuses the connection, resets it before answering,
//! or never answers) and each way a request travels through the proxy (the
//! fast HTTP/1.1 path, hyper's server for HTTP/2 clients, a request with a
//! body, a body-less request whose method is not safe to repeat, an
//! upgrade), what the client gets and what is counted against the canary.
//!
//! The rule, the same on every path: a request the canary never got goes to
//! stable; one it took and then failed goes to stable when its method is
//! safe to repeat (GET, HEAD, OPTIONS), and is answered 502 or 504
//! otherwise. Either way the attempt counts as a canary failure.

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the canary fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Nothing listens.
    Refuses,
    /// Reads the request head, then resets the connection.
    Resets,
    /// Reads the request head and never answers.
    Hangs,
}

/// How the request travels.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A plain GET: the fast path, forwarded from its client's bytes.
    FastGet,
    /// A GET from an HTTP/2 client: hyper's server, then the in-task exchange.
    H2Get,
    /// A POST with a body: hyper's server and hyper's client.
    PostWithBody,
    /// A body-less DELETE: the fast path, a method not safe to repeat.
    Delete,
    /// A GET asking to switch protocols: the upgrade path.
    Upgrade,
}

/// What the client gets.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Stable's answer.
    Stable,
    /// The proxy's own error reply: status and `error` code.
    Error(u16, String),
}

const KINDS: [Kind; 5] = [Kind::FastGet, Kind::H2Get, Kind::PostWithBody, Kind::Delete, Kind::Upgrade];

/// The policy's answer, written once: what each case must get.
fn expected(fault: Fault, kind: Kind) -> Answer {
    let safe = matches!(kind, Kind::FastGet | Kind::H2Get | Kind::Upgrade);
    match fault {
        Fault::Refuses => Answer::Stable,
        _ if safe => Answer::Stable,
        Fault::Resets => Answer::Error(502, "upstream_failed".into()),
        Fault::Hangs => Answer::Error(504, "upstream_timeout".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_path_follows_the_one_fallback_policy() {
    for fault in [Fault::Refuses, Fault::Resets, Fault::Hangs] {
        let (canary, _keep) = faulty_canary(fault);
        let (stable, dir) = (Upstream::start("stable"), tempdir());
        let mut cfg = config(&stable, None, "0", dir.path());
        cfg.canary = Some(canary_core::upstream::Upstream::parse(&format!("http://{canary}")).unwrap());
        cfg.proxy.response_timeout = Duration::from_millis(400);
        let srv = start(cfg);
        for (n, kind) in KINDS.into_iter().enumerate() {
            let got = send(kind, srv.proxy_addr).await;
            assert_eq!(got, expected(fault, kind), "{fault:?} canary, {kind:?} request");
            // Every attempt on the canary counts against it, recovered or not.
            let failures = canary_failures(srv.admin_addr).await;
            assert_eq!(failures, n as u64 + 1, "{fault:?} canary, {kind:?}: canary failures");
        }
        srv.shutdown();
    }
}

async fn canary_failures(admin: SocketAddr) -> u64 {
    let m = admin_json(&client(), admin, "/api/v2/metrics").await;
    m["versions"]["canary"]["requests"]["upstream_failures"].as_u64().unwrap_or(0)
}

/// A canary at the returned address failing as `fault` says; the listener
/// (or the reserved port) is kept alive by the second value.
fn faulty_canary(fault: Fault) -> (SocketAddr, Box<dyn std::any::Any>) {
    if fault == Fault::Refuses {
        let (addr, reserved) = reserved();
        return (addr, Box::new(reserved));
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            read_head(&mut conn);
            match fault {
                // SO_LINGER 0: the close sends a reset, not a FIN.
                Fault::Resets => drop(socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO))),
                _ => held.push(conn),
            }
        }
    });
    (addr, Box::new(()))
}

fn read_head(conn: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => return,
        }
    }
}

async fn send(kind: Kind, proxy: SocketAddr) -> Answer {
    let forced = "x-canary: always\r\n";
    let (status, version, body) = match kind {
        Kind::FastGet => raw(proxy, &format!("GET /rooms HTTP/1.1\r\nhost: api\r\n{forced}\r\n")).await,
        Kind::Delete => raw(proxy, &format!("DELETE /rooms/1 HTTP/1.1\r\nhost: api\r\n{forced}\r\n")).await,
        Kind::PostWithBody => {
            let head = format!("POST /rooms HTTP/1.1\r\nhost: api\r\n{forced}content-length: 5\r\n\r\nhello");
            raw(proxy, &head).await
        }
        Kind::Upgrade => {
            let head = format!(
                "GET /ws HTTP/1.1\r\nhost: api\r\n{forced}connection: upgrade\r\nupgrade: websocket\r\n\r\n"
            );
            raw(proxy, &head).await
        }
        Kind::H2Get => h2_get(proxy).await,
    };
    if version == "stable" && status == 200 {
        return Answer::Stable;
    }
    let error =
        serde_json::from_str::<serde_json::Value>(&body).map(|v| v["error"].clone()).unwrap_or_default();
    Answer::Error(status, error.as_str().unwrap_or(&body).to_string())
}

/// Writes `request` on a new connection; the status, `x-canary-version` and
/// body of the answer (read to the connection's end: each request says
/// nothing of keep-alive, so the proxy's `connection: close` is asked).
async fn raw(proxy: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let request = request.replacen("\r\n", "\r\nconnection: close\r\n", 1);
    let request = if request.contains("upgrade: websocket") {
        // An upgrade needs `upgrade` in Connection: keep one header.
        request.replace("connection: close\r\n", "")
    } else {
        request
    };
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut s, &mut out)).await;
    assert!(read.is_ok(), "no answer within 10 s to {request:?}: {}", String::from_utf8_lossy(&out));
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let version =
        head.lines().find_map(|l| l.strip_prefix("x-canary-version: ")).unwrap_or_default().to_string();
    (status, version, body.to_string())
}

/// Reads until the connection closes, or a whole answer with a
/// content-length has arrived (an upgrade's connection may stay open).
async fn read_answer(s: &mut tokio::net::TcpStream, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(out);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ")?.parse().ok());
            if len.is_some_and(|len: usize| body.len() >= len) {
                return;
            }
        }
    }
}

async fn h2_get(proxy: SocketAddr) -> (u16, String, String) {
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = Request::get(format!("http://{proxy}/rooms"))
        .header("x-canary", "always")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req)).await.unwrap().unwrap();
    let status = resp.status().as_u16();
    let version = resp.headers().get("x-canary-version").map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, version.unwrap_or_default(), String::from_utf8_lossy(&body).to_string())
}
