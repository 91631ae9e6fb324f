//! Hostile input over a raw socket: each gets the right 4xx or a closed
//! connection, and the proxy keeps serving everyone else.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes and returns what came back before the connection closed
/// or went quiet.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).to_string()
}

fn status(reply: &str) -> &str {
    reply.get(9..12).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_malformed_requests_are_refused_and_others_still_served() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let a = srv.proxy_addr;
    let cases: [(&str, &[u8], &[&str]); 6] = [
        // Framed by Transfer-Encoding alone (Content-Length dropped before it
        // reaches the upstream), and the connection closed after the answer
        // (RFC 9112 6.1), so the request behind it is never read.
        ("CL and TE together", b"POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n", &["200", "400"]),
        ("two different content-lengths", b"POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello", &["400"]),
        ("obs-fold", b"GET / HTTP/1.1\r\nhost: x\r\nx-folded: a\r\n b\r\n\r\n", &["400"]),
        ("request line too long", format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000)).leak().as_bytes(), &["414", "431", "400"]),
        ("raw invalid UTF-8 in the path", b"GET /\xff\xfe HTTP/1.1\r\nhost: x\r\n\r\n", &["400"]),
        ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", &["400", ""]),
    ];
    for (name, bytes, allowed) in cases {
        let reply = raw(a, bytes).await;
        assert!(allowed.contains(&status(&reply)), "{name}: {:?}", reply.lines().next());
        assert!(
            reply.matches("HTTP/1.1 ").count() <= 1,
            "{name}: a second request was smuggled through: {reply}"
        );
        let c = client();
        assert_eq!(get(&c, a, "/", &[]).await.0, 200, "others are still served after: {name}");
    }
    // Opaque bytes in a header value and an encoded invalid path are passed on, not fatal.
    let reply =
        raw(a, b"GET /%ff HTTP/1.1\r\nhost: x\r\nx-user-id: \xff\xfe\xfd\r\nconnection: close\r\n\r\n").await;
    assert_eq!(status(&reply), "200", "{reply}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_and_does_not_starve_others() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.proxy.header_read_timeout = Duration::from_millis(800);
    let srv = start(cfg);
    let a = srv.proxy_addr;
    // Fifty clients dribble a request head one byte at a time and never finish.
    let slow: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
                for b in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle().take(200) {
                    if s.write_all(&[*b]).await.is_err() {
                        return true; // cut off
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                false
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, a, "/", &[]).await.0, 200, "served while the slow clients dribble");
    }
    for t in slow {
        assert!(t.await.unwrap(), "a slow client was not cut off by the header timeout");
    }
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_body_gets_408_and_frees_the_upstream() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.proxy.body_read_timeout = Duration::from_millis(500);
    let srv = start(cfg);
    let a = srv.proxy_addr;
    let stalled = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let reply = raw(a, b"POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nonly ten.").await;
        (reply, started.elapsed())
    });
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, a, "/", &[]).await.0, 200, "others are served meanwhile");
    }
    let (reply, took) = stalled.await.unwrap();
    assert_eq!(status(&reply), "408", "{reply}");
    assert!(reply.contains("body_timeout"), "{reply}");
    assert!(took < Duration::from_secs(3), "answered soon after the stall: {took:?}");
    srv.shutdown();
}
