//! The upstream side of the wire for body-less requests, which the proxy
//! speaks itself (see `proxy::h1`): an upstream written byte by byte answers
//! each path with a different framing or fault, and clients must get exactly
//! the body it sent, or an error, and never a mix-up between requests.

use crate::support::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the raw upstream does after writing a response.
#[derive(PartialEq)]
enum After {
    KeepOpen,
    Close,
}

/// The canned answer for a request line (method and path).
fn answer(method: &str, path: &str) -> (&'static str, After) {
    use After::*;
    match (method, path) {
        ("HEAD", _) => ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", KeepOpen),
        (_, "/chunked") => (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n",
            KeepOpen,
        ),
        (_, "/until-close") => ("HTTP/1.1 200 OK\r\n\r\nall of it, until close", Close),
        (_, "/http10") => ("HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nold ok", Close),
        // Keep-alive framing, then the socket closes anyway: what an upstream
        // with a short idle timeout does to a pooled connection.
        (_, "/then-close") => ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Close),
        (_, "/continue") => {
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", KeepOpen)
        }
        (_, "/no-content") => ("HTTP/1.1 204 No Content\r\n\r\n", KeepOpen),
        (_, "/truncated") => ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", Close),
        (_, "/garbage") => ("SSH-2.0-OpenSSH_9.2\r\n\r\n", Close),
        (_, "/bad-length") => ("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", Close),
        (_, "/te-and-cl") => (
            "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            KeepOpen,
        ),
        // Half the announced body, then silence with the connection open.
        (_, "/stall") => ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", KeepOpen),
        _ => ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain", KeepOpen),
    }
}

/// Starts the raw upstream; returns its address and a count of connections.
async fn raw_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_raw(s));
        }
    });
    (addr, conns)
}

async fn serve_raw(mut s: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 4);
        let mut words = head.split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (reply, after) = answer(method, path);
        if s.write_all(reply.as_bytes()).await.is_err() || after == After::Close {
            return;
        }
    }
}

async fn start_in_front_of(addr: SocketAddr) -> (canary::server::Running, tempfile::TempDir) {
    start_with(addr, |_| {}).await
}

async fn start_with(
    addr: SocketAddr,
    tune: impl FnOnce(&mut canary::config::ServeConfig),
) -> (canary::server::Running, tempfile::TempDir) {
    let (dummy, dir) = (Upstream::start("unused"), tempdir());
    let mut cfg = config(&dummy, None, "0", dir.path());
    tune(&mut cfg);
    cfg.stable = canary_core::upstream::Upstream::parse(&format!("http://{addr}")).unwrap();
    (start(cfg), dir)
}

/// Whether stable's upstream failures reach `n` within 5 s.
async fn stable_failures_reach(admin: SocketAddr, n: u64) -> bool {
    eventually(5, || async {
        let m = admin_json(&client(), admin, "/api/v2/metrics").await;
        m["versions"]["stable"]["requests"]["upstream_failures"] == n
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_framing_arrives_whole() {
    let (up, conns) = raw_upstream().await;
    let (srv, _dir) = start_in_front_of(up).await;
    let c = client();
    let cases = [
        ("/chunked", 200, "hello world"),
        ("/until-close", 200, "all of it, until close"),
        ("/http10", 200, "old ok"),
        ("/continue", 200, "final"),
        ("/no-content", 204, ""),
        ("/plain", 200, "plain"),
        // Transfer-Encoding wins; the Content-Length beside it is not forwarded.
        ("/te-and-cl", 200, "hello"),
    ];
    for round in 0..3 {
        for (path, status, body) in cases {
            let got = get(&c, srv.proxy_addr, path, &[]).await;
            assert_eq!((got.0, got.2.as_str()), (status, body), "{path}, round {round}");
        }
    }
    // HEAD announces a length but sends no body: the answer must not wait
    // for one, and the connection must stay usable.
    for _ in 0..3 {
        let req = Request::head(format!("http://{}/x", srv.proxy_addr)).body(Full::default()).unwrap();
        let resp = c.request(req).await.unwrap();
        assert_eq!(resp.headers()["content-length"], "1000");
        assert!(resp.into_body().collect().await.unwrap().to_bytes().is_empty());
    }
    let opened = conns.load(Ordering::SeqCst);
    // Kept-alive answers reuse their connection; the two that close cannot,
    // nor can the one with both Transfer-Encoding and Content-Length.
    assert!(opened <= 3 * 3 + 4, "{opened} upstream connections for 24 requests");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_the_upstream_closed_cost_nothing() {
    let (up, conns) = raw_upstream().await;
    let (srv, _dir) = start_in_front_of(up).await;
    let c = client();
    for i in 0..100 {
        let got = get(&c, srv.proxy_addr, "/then-close", &[("x-user-id", &format!("u{i}"))]).await;
        assert_eq!((got.0, got.2.as_str()), (200, "ok"), "request {i}");
        // Give the close time to arrive half of the time, and race it the rest.
        if i % 2 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    assert!(conns.load(Ordering::SeqCst) >= 100, "each answer closed its connection");
    let m = admin_json(&c, srv.admin_addr, "/api/v2/metrics").await;
    assert_eq!(m["versions"]["stable"]["requests"]["upstream_failures"], 0);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_answers_are_502_or_a_cut_body_and_counted() {
    let (up, _) = raw_upstream().await;
    // No success sampled into the request log: the cut body's record must
    // come from the failure itself, not from a draft made for the sample.
    let (srv, _dir) = start_with(up, |c| c.logs.sample = 0.0).await;
    let c = client();
    for path in ["/garbage", "/bad-length"] {
        let (status, _, body) = get(&c, srv.proxy_addr, path, &[]).await;
        assert_eq!(status, 502, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "upstream_failed", "{path}");
    }
    // A body cut short: the client connection is closed mid-response. Whether
    // the head reached the client first depends on timing; either way the
    // client must see a failure, never a complete response.
    let req = Request::get(format!("http://{}/truncated", srv.proxy_addr)).body(Full::default()).unwrap();
    let whole = match c.request(req).await {
        Ok(resp) => resp.into_body().collect().await.is_ok(),
        Err(_) => false,
    };
    assert!(!whole, "a short body must not look complete");
    // And the proxy still serves the next request.
    assert_eq!(get(&c, srv.proxy_addr, "/plain", &[]).await.2, "plain");
    assert!(
        stable_failures_reach(srv.admin_addr, 3).await,
        "two bad heads and one cut body count as upstream failures"
    );
    // The cut body is an error in the request log, though its status was
    // 200 and nothing drafted it: `canary logs --errors` shows it.
    let logs = admin_json(&c, srv.admin_addr, "/api/v2/logs?errors=true&since=10m").await;
    let bad_heads = logs["records"].as_array().unwrap().iter().filter(|r| r["status"] == 502);
    assert!(bad_heads.clone().count() == 2, "{logs}");
    assert!(
        bad_heads.into_iter().all(|r| r["cause"] == "protocol_error"),
        "not HTTP is UPE, not a reset: {logs}"
    );
    let cut: Vec<_> = logs["records"].as_array().unwrap().iter().filter(|r| r["status"] == 200).collect();
    assert_eq!(cut.len(), 1, "one record of the cut body: {logs}");
    assert_eq!((&cut[0]["cause"], &cut[0]["route"]), (&"reset".into(), &"/truncated".into()), "{logs}");
    assert_eq!(
        (&cut[0]["status"], &cut[0]["method"], &cut[0]["version"]),
        (&200.into(), &"GET".into(), &"stable".into())
    );
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_upstream_stops_sending_is_cut_after_the_response_timeout() {
    let (up, _) = raw_upstream().await;
    let (srv, _dir) =
        start_with(up, |c| c.proxy.response_timeout = std::time::Duration::from_millis(400)).await;
    let c = client();
    let req = Request::get(format!("http://{}/stall", srv.proxy_addr)).body(Full::default()).unwrap();
    let exchange = async {
        match c.request(req).await {
            Ok(resp) => resp.into_body().collect().await.is_ok(),
            Err(_) => false,
        }
    };
    // Without the body timeout the client would wait as long as the upstream stays silent.
    let whole = tokio::time::timeout(std::time::Duration::from_secs(20), exchange).await;
    assert_eq!(whole, Ok(false), "the body is cut, not left hanging, and does not look complete");
    assert!(stable_failures_reach(srv.admin_addr, 1).await, "the stalled body counts as an upstream failure");
    srv.shutdown();
}
