//! WebSockets (and any HTTP/1.1 upgrade) through the proxy: a real WebSocket
//! client against two echo upstreams that prefix their name, so every answer
//! says which version it came from; and byte-level upstreams and clients for
//! what must never be tunnelled.

use crate::support::*;
use bytes::Bytes;
use canary::config::{OnRollback, ServeConfig};
use canary::controller::api::DeployRequest;
use canary::controller::{Command, lock};
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{WebSocketStream, client_async};

type Ws = WebSocketStream<TcpStream>;

/// A tiny HTTP/1.1 server: plain requests get its name; WebSocket handshakes
/// are accepted and every message is echoed back as `{name}: {message}`. The
/// 101 says in `x-saw-secret` whether a header the client named in
/// `Connection` reached it (it must not).
async fn echo_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let svc = service_fn(move |req| answer(name, req));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades(),
            );
        }
    });
    addr
}

async fn answer(name: &'static str, mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Ok(Response::new(Full::new(Bytes::from(name))));
    };
    let saw_secret = if req.headers().contains_key("x-secret") { "yes" } else { "no" };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            let reply = match msg {
                Message::Text(t) => Message::text(format!("{name}: {t}")),
                Message::Binary(b) => Message::binary([name.as_bytes(), b": ", &b].concat()),
                Message::Close(_) => break,
                _ => continue,
            };
            if ws.send(reply).await.is_err() {
                break;
            }
        }
    });
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .header("x-saw-secret", saw_secret)
        .body(Full::new(Bytes::new()))
        .unwrap();
    Ok(resp)
}

fn serve_config(
    stable: SocketAddr,
    canary: Option<SocketAddr>,
    share: &str,
    dir: &std::path::Path,
) -> ServeConfig {
    config_of(format!("http://{stable}"), canary.map(|c| format!("http://{c}")), share, dir, None)
}

/// Opens a WebSocket through the proxy as `user` with extra headers; returns
/// it with the version the proxy said served it.
async fn open(proxy: SocketAddr, user: &str, extra: &[(&str, &str)]) -> (Ws, String) {
    let mut req = format!("ws://{proxy}/ws").into_client_request().unwrap();
    req.headers_mut().insert("x-user-id", user.parse().unwrap());
    for (k, v) in extra {
        req.headers_mut().insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (ws, resp) = client_async(req, stream).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let version = resp.headers()["x-canary-version"].to_str().unwrap().to_string();
    (ws, version)
}

/// Sends `text` and returns the echo.
async fn echo(ws: &mut Ws, text: &str) -> String {
    ws.send(Message::text(text)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    reply.unwrap().unwrap().into_text().unwrap().to_string()
}

/// Whether the socket was closed by the other end within `secs` (a message
/// arriving instead is a failure).
async fn closed_within(ws: &mut Ws, secs: u64) -> bool {
    match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await {
        Err(_) => false,
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => true,
        Ok(Some(Ok(m))) => panic!("a message instead of the end: {m:?}"),
    }
}

/// Upgraded connections open now on `version`, from both metrics endpoints.
async fn upgraded(admin: SocketAddr, version: &str) -> (i64, i64) {
    let c = client();
    let json = admin_json(&c, admin, "/api/v2/metrics").await;
    let from_json = json["versions"][version]["capacity"]["upgraded_connections"].as_i64().unwrap();
    let (_, _, text) = get(&c, admin, "/metrics", &[]).await;
    let line = format!("canary_upgraded_connections{{version=\"{version}\"}} ");
    let from_prom = text.lines().find_map(|l| l.strip_prefix(&line)).unwrap().parse().unwrap();
    (from_json, from_prom)
}

async fn upgraded_reach(admin: SocketAddr, version: &str, n: i64) -> bool {
    eventually(5, || async { upgraded(admin, version).await == (n, n) }).await
}

async fn set_share(admin: SocketAddr, share: f64) {
    let (status, body) =
        admin_put(&client(), admin, "/api/routing/share", serde_json::json!({"share": share})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_routed_like_requests_and_echo_both_ways() {
    let (stable, canary, dir) = (echo_upstream("stable").await, echo_upstream("canary").await, tempdir());
    let srv = start(serve_config(stable, Some(canary), "50", dir.path()));
    let (proxy, c) = (srv.proxy_addr, client());
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..16 {
        let user = format!("ws-user-{i}");
        // The same sticky decision as the user's plain requests, every time.
        let (_, by_http, _) = get(&c, proxy, "/", &[("x-user-id", &user)]).await;
        for _ in 0..2 {
            let (mut ws, version) = open(proxy, &user, &[]).await;
            assert_eq!(version, by_http, "{user}");
            for n in 0..3 {
                assert_eq!(echo(&mut ws, &format!("hello {n}")).await, format!("{version}: hello {n}"));
            }
            ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
            let bin = ws.next().await.unwrap().unwrap().into_data();
            assert_eq!(&bin[..], [version.as_bytes(), b": ", &[0, 1, 2]].concat().as_slice());
            ws.close(None).await.unwrap();
        }
        seen.insert(by_http);
    }
    assert_eq!(seen.len(), 2, "16 users at 50% land on both versions: {seen:?}");
    // Only Upgrade and Connection: upgrade go up; a header the client named
    // in Connection is stripped like any hop-by-hop header.
    let mut req = format!("ws://{proxy}/ws").into_client_request().unwrap();
    req.headers_mut().insert("connection", "Upgrade, x-secret".parse().unwrap());
    req.headers_mut().insert("x-secret", "1".parse().unwrap());
    let (_, resp) = client_async(req, TcpStream::connect(proxy).await.unwrap()).await.unwrap();
    assert_eq!(resp.headers()["x-saw-secret"], "no");
    set_share(srv.admin_addr, 100.0).await;
    for i in 0..6 {
        assert_eq!(open(proxy, &format!("u{i}"), &[]).await.1, "canary", "share 100");
    }
    set_share(srv.admin_addr, 0.0).await;
    for i in 0..6 {
        assert_eq!(open(proxy, &format!("u{i}"), &[]).await.1, "stable", "share 0");
    }
    assert_eq!(open(proxy, "u0", &[("x-canary", "always")]).await.1, "canary", "overrides apply");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_change_leaves_an_open_socket_working_and_the_gauge_follows_it() {
    let (stable, canary, dir) = (echo_upstream("stable").await, echo_upstream("canary").await, tempdir());
    let srv = start(serve_config(stable, Some(canary), "100", dir.path()));
    let admin = srv.admin_addr;
    let (mut ws, version) = open(srv.proxy_addr, "alice", &[]).await;
    assert_eq!(version, "canary");
    assert!(upgraded_reach(admin, "canary", 1).await, "{:?}", upgraded(admin, "canary").await);
    assert_eq!(upgraded(admin, "stable").await, (0, 0));
    for share in [25.0, 0.0] {
        set_share(admin, share).await;
        assert_eq!(echo(&mut ws, "still there?").await, "canary: still there?", "at {share}%");
    }
    // The upgrade counted once, as a 101 with its handshake time.
    let m = admin_json(&client(), admin, "/api/v2/metrics").await;
    let counts = &m["versions"]["canary"]["requests"];
    assert_eq!((counts["total"].as_u64(), counts["1xx"].as_u64()), (Some(1), Some(1)), "{counts}");
    assert!(m["versions"]["canary"]["performance"]["p50_response_time"].as_f64().is_some());
    ws.close(None).await.unwrap();
    drop(ws);
    assert!(upgraded_reach(admin, "canary", 0).await, "{:?}", upgraded(admin, "canary").await);
    srv.shutdown();
}

/// canary serve in front of `stable` with a rollout of `canary` at 100%
/// (a long bake: only the test's rollback ends it).
fn rolling(
    stable: SocketAddr,
    canary: SocketAddr,
    dir: &std::path::Path,
    on_rollback: OnRollback,
) -> canary::server::Running {
    let mut cfg = serve_config(stable, None, "0", dir);
    cfg.upgraded_on_rollback = on_rollback;
    let srv = start(cfg);
    let req = DeployRequest {
        share: 100.0,
        canary: format!("http://{canary}"),
        steps: Some("100".into()),
        bake: Some("10m".into()),
        final_watch: Some("10m".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    srv
}

fn roll_back(srv: &canary::server::Running) {
    let now = canary::controller::clock::now_ms();
    lock(&srv.controller).command(Command::Rollback("bad canary".into()), now).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_closes_the_canarys_sockets_and_their_users_come_back_on_stable() {
    let (stable, canary, dir) = (echo_upstream("stable").await, echo_upstream("canary").await, tempdir());
    let srv = rolling(stable, canary, dir.path(), OnRollback::Close);
    let (mut on_canary, v) = open(srv.proxy_addr, "bob", &[]).await;
    assert_eq!(v, "canary");
    let (mut on_stable, v) = open(srv.proxy_addr, "carol", &[("x-canary", "never")]).await;
    assert_eq!(v, "stable");
    assert!(upgraded_reach(srv.admin_addr, "canary", 1).await);
    roll_back(&srv);
    assert!(closed_within(&mut on_canary, 3).await, "the canary's socket stayed open after the rollback");
    assert_eq!(echo(&mut on_stable, "hi").await, "stable: hi", "stable's sockets are left alone");
    assert!(
        upgraded_reach(srv.admin_addr, "canary", 0).await,
        "{:?}",
        upgraded(srv.admin_addr, "canary").await
    );
    assert_eq!(upgraded(srv.admin_addr, "stable").await, (1, 1));
    let (mut again, v) = open(srv.proxy_addr, "bob", &[]).await;
    assert_eq!(v, "stable", "the reconnecting user lands on stable");
    assert_eq!(echo(&mut again, "back").await, "stable: back");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keep_a_rollback_leaves_the_canarys_sockets_open() {
    let (stable, canary, dir) = (echo_upstream("stable").await, echo_upstream("canary").await, tempdir());
    let srv = rolling(stable, canary, dir.path(), OnRollback::Keep);
    let (mut ws, v) = open(srv.proxy_addr, "dave", &[]).await;
    assert_eq!(v, "canary");
    roll_back(&srv);
    assert!(srv.live.routing().canary_blocked);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(echo(&mut ws, "still here").await, "canary: still here");
    assert_eq!(upgraded(srv.admin_addr, "canary").await, (1, 1));
    assert_eq!(open(srv.proxy_addr, "dave", &[]).await.1, "stable", "new sockets go to stable");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_is_closed_and_a_busy_one_is_not() {
    let (stable, dir) = (echo_upstream("stable").await, tempdir());
    let mut cfg = serve_config(stable, None, "0", dir.path());
    // A busy socket is quiet 100 ms at a time, a tenth of the timeout, so a
    // busy machine's delays are not taken for idleness.
    cfg.proxy.upgraded_idle_timeout = Duration::from_millis(1000);
    let srv = start(cfg);
    let (mut busy, _) = open(srv.proxy_addr, "erin", &[]).await;
    let (mut idle, _) = open(srv.proxy_addr, "frank", &[]).await;
    // Busy for two and a half timeouts.
    for i in 0..25 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(echo(&mut busy, &i.to_string()).await, format!("stable: {i}"));
    }
    assert!(closed_within(&mut idle, 3).await, "idle past the timeout and still open");
    assert_eq!(echo(&mut busy, "x").await, "stable: x");
    srv.shutdown();
}

/// A byte-level upstream: `/refuse` answers 426 with a body; anything else
/// gets a 101 and then "tunnelled bytes", whatever it asked.
async fn switching_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let reply: &[u8] = if buf.starts_with(b"GET /refuse ") {
                    b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 7\r\n\r\nno, sir"
                } else {
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\ntunnelled bytes"
                };
                let _ = s.write_all(reply).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    addr
}

/// Sends raw bytes; returns what came back before the connection closed or
/// went quiet.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(800), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upgrades_and_stray_101s_are_never_tunnelled() {
    let (up, dir) = (switching_upstream().await, tempdir());
    let srv = start(serve_config(up, None, "0", dir.path()));
    let a = srv.proxy_addr;
    let upgrade = "host: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n";
    // A body on an upgrade request: body to one reader, tunnel to another.
    for framing in
        ["content-length: 5\r\n\r\nhello", "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"]
    {
        let reply = raw(a, format!("GET /ws HTTP/1.1\r\n{upgrade}{framing}").as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 400 "), "{framing:?}: {reply}");
        assert!(!reply.contains("tunnelled"), "{reply}");
    }
    // An upgrade the upstream declines is an ordinary response.
    let reply = raw(a, format!("GET /refuse HTTP/1.1\r\n{upgrade}\r\n").as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 426 ") && reply.ends_with("no, sir"), "{reply}");
    // A real upgrade: the 101, then the upstream's first bytes.
    let reply = raw(a, format!("GET /ws HTTP/1.1\r\n{upgrade}\r\n").as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 101 ") && reply.ends_with("\r\n\r\ntunnelled bytes"), "{reply}");
    // A 101 to requests that did not ask: a failed upstream, on both upstream paths.
    let c = client();
    assert_eq!(get(&c, a, "/plain", &[]).await.0, 502);
    let post = Request::post(format!("http://{a}/upload")).body(Full::new(Bytes::from("data"))).unwrap();
    let resp = c.request(post).await.unwrap();
    assert_eq!(resp.status(), 502);
    let reply = raw(a, b"GET /plain HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n\r\n").await;
    assert!(
        reply.starts_with("HTTP/1.1 502 ") && !reply.contains("tunnelled"),
        "Upgrade without Connection: {reply}"
    );
    let m = admin_json(&c, srv.admin_addr, "/api/v2/metrics").await;
    let stable = &m["versions"]["stable"]["requests"];
    assert_eq!(stable["upstream_failures"], 3, "{stable}");
    assert_eq!((stable["1xx"].as_u64(), stable["4xx"].as_u64()), (Some(1), Some(1)), "{stable}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_refuses_the_upgrade_connection_sends_it_to_stable() {
    let (stable, dir) = (echo_upstream("stable").await, tempdir());
    let (gone, _reserved) = reserved();
    let srv = start(serve_config(stable, Some(gone), "100", dir.path()));
    let (mut ws, v) = open(srv.proxy_addr, "gina", &[]).await;
    assert_eq!(v, "stable");
    assert_eq!(echo(&mut ws, "ok").await, "stable: ok");
    let m = admin_json(&client(), srv.admin_addr, "/api/v2/metrics").await;
    assert_eq!(m["versions"]["canary"]["requests"]["upstream_failures"], 1);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_client_through_the_tls_listener_reaches_a_ws_upstream_both_ways() {
    let (stable, canary, dir) = (echo_upstream("stable").await, echo_upstream("canary").await, tempdir());
    let ca = TestCa::new("wss CA");
    let (cert, key) = ca.leaf("proxy").write(dir.path(), "proxy");
    let mut cfg = serve_config(stable, Some(canary), "0", dir.path());
    cfg.tls = Some(canary::config::TlsFiles { cert: cert.into(), key: key.into() });
    let srv = start(cfg);
    // WebSockets need HTTP/1.1: the client offers only that by ALPN.
    let tls_cfg = ca.client_config(&[b"http/1.1"]);
    for (force, want) in [("always", "canary"), ("never", "stable")] {
        let tls = tls_connect(srv.proxy_addr, &tls_cfg).await.unwrap();
        let mut req = "wss://localhost/ws".into_client_request().unwrap();
        req.headers_mut().insert("x-canary", force.parse().unwrap());
        let (mut ws, resp) = client_async(req, tls).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(resp.headers()["x-canary-version"], want);
        for n in 0..3 {
            ws.send(Message::text(format!("hello {n}"))).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
            assert_eq!(reply.unwrap().unwrap().into_text().unwrap().as_str(), format!("{want}: hello {n}"));
        }
        // A message larger than one TLS record crosses intact both ways.
        let big = vec![7u8; 100_000];
        ws.send(Message::binary(big.clone())).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
        assert_eq!(reply.unwrap().unwrap().into_data(), [want.as_bytes(), b": ", &big].concat());
        ws.close(None).await.unwrap();
    }
    srv.shutdown();
}
