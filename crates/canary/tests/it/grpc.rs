//! HTTP/2 upstreams and gRPC end to end: tonic services behind `h2c://` and
//! `https://` (h2 by ALPN) upstreams, a tonic client through the proxy, and
//! an HTTP/2 client reading the chunked trailers of an HTTP/1.1 upstream.

use crate::grpc_upstream::*;
use crate::load::*;
use crate::support::*;
use bytes::Bytes;
use canary::controller::api::DeployRequest;
use canary::controller::lock;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// Two workers, so "one connection per upstream per worker" has a number.
const TWO_WORKERS: &str = "[proxy]\nworkers = 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_streaming_calls_pass_through_h2c_upstreams_with_their_trailers() {
    let (stable, canary, dir) =
        (GrpcUpstream::start("stable", 0), GrpcUpstream::start("canary", 0), tempdir());
    let cfg = config_of(stable.url(), Some(canary.url()), "0", dir.path(), Some(TWO_WORKERS));
    let srv = start(cfg);
    let mut c = grpc_client(srv.proxy_addr);

    for (force, who) in [("never", "stable"), ("always", "canary")] {
        for _ in 0..20 {
            let (answer, version) = say(&mut c, ask("ana", 0, &[("x-canary", force)])).await.unwrap();
            assert_eq!((answer.text.as_str(), answer.served_by.as_str()), ("hello ana", who));
            assert_eq!(version, who, "x-canary-version");
        }
    }
    let (answer, _) = say(&mut c, ask("te", 0, &[("x-canary", "always")])).await.unwrap();
    assert_eq!(answer.text, "trailers", "the client's TE: trailers reaches the gRPC server");
    // Streamed answers, then the stream's trailers with its custom metadata.
    let (answers, trailers) = count(&mut c, ask("bo", 50, &[("x-canary", "always")])).await.unwrap();
    assert_eq!(answers.len(), 50);
    assert!(answers.iter().enumerate().all(|(i, a)| a.text == i.to_string() && a.served_by == "canary"));
    assert_eq!(trailers.get("x-total").map(|v| v.to_str().unwrap()), Some("50"), "{trailers:?}");
    // A status in the trailers after some answers reaches the client as such.
    let e = count(&mut c, ask("fail", 3, &[("x-canary", "always")])).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::Unavailable, "gone away"));

    // A shared connection per worker (two), and the controller's probes of
    // the canary's health and metrics endpoints (one or two).
    let conns = canary.connections.load(Ordering::Relaxed);
    assert!(conns <= 4, "one multiplexed connection per worker, not one per call: {conns} for 22 calls");
    // An HTTP/2 call is counted as its stream is done with, which may be a
    // moment after the client has its trailers: the last one is waited for.
    let web = client();
    let counted = || async {
        let m = admin_json(&web, srv.admin_addr, "/api/v2/metrics").await;
        m["versions"]["canary"]["routes"][COUNT]["requests"] == 2
    };
    eventually(5, counted).await;
    let m = admin_json(&web, srv.admin_addr, "/api/v2/metrics").await;
    let canary_m = &m["versions"]["canary"];
    assert_eq!(canary_m["routes"][SAY]["requests"], 21, "calls are labelled by method: {canary_m}");
    assert_eq!(canary_m["routes"][COUNT]["requests"], 2, "{canary_m}");
    assert_eq!(canary_m["routes"][COUNT]["errors"], 1, "the UNAVAILABLE stream: {canary_m}");
    assert_eq!(canary_m["requests"]["grpc_errors"], 1, "{canary_m}");
    assert_eq!(m["versions"]["stable"]["requests"]["grpc_errors"], 0);
    srv.shutdown();
}

/// Unary calls from many users, as fast as `loops` callers go, until `stop`;
/// each call ends ok, failed (its gRPC status) or timed out, and the tally is
/// taken once every caller has stopped.
fn grpc_load(
    addr: std::net::SocketAddr,
    loops: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Tally> {
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..loops)
            .map(|l| {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let (mut c, mut tally) = (grpc_client(addr), Tally::default());
                    while !stop.load(Ordering::Relaxed) {
                        let user = format!("user-{l}-{}", tally.sent);
                        let call = say(&mut c, ask("load", 0, &[("x-user-id", user.as_str())]));
                        tally.count(match tokio::time::timeout(REQUEST_DEADLINE, call).await {
                            Ok(Ok(_)) => Outcome::Ok,
                            Ok(Err(status)) => Outcome::Failed(format!("grpc-status {:?}", status.code())),
                            Err(_) => Outcome::TimedOut,
                        });
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tally
                })
            })
            .collect();
        let mut tallies = Vec::new();
        for t in tasks {
            tallies.push(t.await.unwrap());
        }
        Tally::sum(tallies)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_a_fifth_of_calls_unavailable_is_counted_and_rolled_back() {
    let (stable, canary, dir) =
        (GrpcUpstream::start("stable", 0), GrpcUpstream::start("canary", 5), tempdir());
    let srv = start(config_of(stable.url(), None, "0", dir.path(), None));
    let stop = Arc::new(AtomicBool::new(false));
    let load = grpc_load(srv.proxy_addr, 8, Arc::clone(&stop));
    let req = DeployRequest {
        share: 50.0,
        canary: canary.url(),
        steps: Some("50,100".into()),
        bake: Some("10m".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    let status = || {
        let s = lock(&srv.controller).status();
        (s.state, s.rollout.and_then(|r| r.reason))
    };
    let rolled = eventually(60, || async { status().0 == "rolled_back" }).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    // The canary fails a fifth of its calls on purpose: none may hang.
    tally.assert_no_hang("gRPC calls");
    let (state, reason) = status();
    assert!(rolled, "still {state} after {tally:?}");
    let reason = reason.unwrap();
    assert!(reason.contains("error_rate"), "{reason}");

    let m = admin_json(&client(), srv.admin_addr, "/api/v2/metrics?window=10m").await;
    let (c, s) = (&m["versions"]["canary"], &m["versions"]["stable"]);
    let (calls, failed) =
        (c["requests"]["total"].as_u64().unwrap(), c["requests"]["grpc_errors"].as_u64().unwrap());
    assert!(calls >= 20 && failed > 0, "{c}");
    // Every fifth call fails: about 20%, loosely (the count starts mid-cycle).
    let share = failed as f64 / calls as f64;
    assert!((0.1..0.3).contains(&share), "{failed} of {calls} counted as errors: {c}");
    assert_eq!(c["requests"]["2xx"], calls, "each failed call is still an HTTP 200: {c}");
    assert_eq!(c["routes"][SAY]["errors"].as_u64(), Some(failed), "{c}");
    assert_eq!(s["requests"]["grpc_errors"], 0, "{s}");
    let recent = c["recent_errors"].to_string();
    assert!(recent.contains("grpc-status 14 UNAVAILABLE: overloaded"), "{recent}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_grpc_canary_is_promoted() {
    // Its health endpoint is a gRPC "no such method": no endpoint, not a
    // failing one, so the health gate does not hold it back.
    let (stable, canary, dir) =
        (GrpcUpstream::start("stable", 0), GrpcUpstream::start("canary", 0), tempdir());
    let srv = start(config_of(stable.url(), None, "0", dir.path(), None));
    let stop = Arc::new(AtomicBool::new(false));
    let load = grpc_load(srv.proxy_addr, 4, Arc::clone(&stop));
    let req = DeployRequest {
        share: 50.0,
        canary: canary.url(),
        steps: Some("50,100".into()),
        bake: Some("1s".into()),
        final_watch: Some("1s".into()),
        ..DeployRequest::default()
    };
    lock(&srv.controller).deploy(&req, canary::controller::clock::now_ms(), None).unwrap();
    let promoted = eventually(60, || async { lock(&srv.controller).status().state == "promoted" }).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("gRPC calls through the promotion");
    let s = lock(&srv.controller).status();
    assert!(promoted, "still {}: {:?}", s.state, s.rollout.and_then(|r| r.reason));
    assert_eq!(srv.live.upstreams().stable.url(), canary.url());
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_offering_h2_by_alpn_is_spoken_to_in_http2() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("private CA"));
    let leaf = ca.leaf("grpc");
    let mut tls = Arc::unwrap_or_clone(leaf.server_config());
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The service speaks HTTP/2 only: a call that succeeds went over h2.
    let canary = GrpcUpstream::start_tls("canary", Arc::new(tls));
    let ca_file = arg(dir.path(), "ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let toml = format!("[upstreams]\nca_file = \"{ca_file}\"\n{TWO_WORKERS}");
    let srv = start(config_of(stable.url(), Some(canary.url()), "0", dir.path(), Some(&toml)));
    let mut c = grpc_client(srv.proxy_addr);
    for _ in 0..20 {
        let (answer, version) = say(&mut c, ask("tls", 0, &[("x-canary", "always")])).await.unwrap();
        assert_eq!((answer.served_by.as_str(), version.as_str()), ("canary", "canary"));
    }
    let (answers, trailers) = count(&mut c, ask("tls", 5, &[("x-canary", "always")])).await.unwrap();
    assert_eq!((answers.len(), trailers.get("x-total").map(|v| v.to_str().unwrap())), (5, Some("5")));
    // As over h2c: one per worker, and the controller's probes.
    let conns = canary.connections.load(Ordering::Relaxed);
    assert!(conns <= 4, "the h2 connection is shared: {conns} TLS connections for 21 calls");
    // Plain HTTP to stable is untouched.
    assert_eq!(get(&client(), srv.proxy_addr, "/", &[("x-canary", "never")]).await.2, "stable");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_dying_mid_stream_fails_the_call_instead_of_hanging() {
    let (stable, mut canary, dir) =
        (GrpcUpstream::start("stable", 0), GrpcUpstream::start("canary", 0), tempdir());
    let srv = start(config_of(stable.url(), Some(canary.url()), "0", dir.path(), None));
    let mut c = grpc_client(srv.proxy_addr);
    c.ready().await.unwrap();
    let resp = c
        .server_streaming(
            ask("hang", 0, &[("x-canary", "always")]),
            http::uri::PathAndQuery::from_static(COUNT),
            tonic_prost::ProstCodec::<Ask, Answer>::default(),
        )
        .await
        .unwrap();
    let mut s = resp.into_inner();
    assert_eq!(s.message().await.unwrap().unwrap().text, "first");
    canary.kill();
    // Bounded only so a regression fails rather than hangs the suite.
    let next = tokio::time::timeout(Duration::from_secs(30), s.message()).await;
    let err = next.expect("the client is told, not left waiting").expect_err("an error, not a clean end");
    assert_ne!(err.code(), Code::Ok, "{err:?}");
    // The proxy is fine and stable still serves.
    let (answer, _) = say(&mut c, ask("after", 0, &[("x-canary", "never")])).await.unwrap();
    assert_eq!(answer.served_by, "stable");
    srv.shutdown();
}

/// An HTTP/1.1 upstream that answers every request with a chunked body and
/// trailers, written byte by byte as a server would put them on the wire.
fn chunked_trailers_upstream() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut s, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc123\r\ncontent-length: 99\r\n\r\n";
                    let _ = s.write_all(wire.as_bytes()).await;
                });
            }
        });
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_gets_the_chunked_trailers_of_an_http1_upstream() {
    let (upstream, dir) = (chunked_trailers_upstream(), tempdir());
    let srv = start(config_of(format!("http://{upstream}"), None, "0", dir.path(), None));
    let tcp = tokio::net::TcpStream::connect(srv.proxy_addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    // A GET takes the lean HTTP/1.1 path, a POST hyper's client: both pass trailers.
    for method in [http::Method::GET, http::Method::POST] {
        let req = http::Request::builder()
            .method(method.clone())
            .uri(format!("http://{}/t", srv.proxy_addr))
            .body(Full::new(Bytes::from_static(if method == http::Method::POST { b"x" } else { b"" })))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap();
        let trailers = body.trailers().cloned().unwrap_or_else(|| panic!("{method}: no trailers"));
        assert_eq!(trailers["x-checksum"], "abc123", "{method}");
        assert!(!trailers.contains_key("content-length"), "{method}: framing fields are not passed on");
        assert_eq!(body.to_bytes(), "hello");
    }
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_canary_that_speaks_only_http1_fails_over_to_stable_at_once() {
    // A misconfigured URL: h2c:// in front of an HTTP/1.1 server. Its answer
    // to the HTTP/2 preface is a protocol error, not a hang.
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let canary_url = format!("h2c://{}", canary.addr);
    let srv = start(config_of(stable.url(), Some(canary_url), "0", dir.path(), None));
    let c = client();
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        get(&c, srv.proxy_addr, "/", &[("x-canary", "always")]),
    )
    .await
    .expect("an answer, not a hang");
    assert_eq!((got.0, got.1.as_str()), (200, "stable"), "a safe request is replayed on stable");
    let post = http::Request::post(format!("http://{}/count", srv.proxy_addr))
        .header("x-canary", "always")
        .body(Full::new(Bytes::from_static(b"abc")))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), c.request(post)).await.unwrap().unwrap();
    // Sent and failed: not replayed, the client is told (502). Found dead
    // before it was sent (the race the error wins less often): stable serves it.
    let served_by = resp.headers().get("x-canary-version").map(|v| v.to_str().unwrap().to_string());
    let fine = resp.status() == 502 || (resp.status() == 200 && served_by.as_deref() == Some("stable"));
    assert!(fine, "{} from {served_by:?}", resp.status());
    let m = admin_json(&c, srv.admin_addr, "/api/v2/metrics").await;
    assert_eq!(m["versions"]["canary"]["requests"]["upstream_failures"], 2, "{}", m["versions"]["canary"]);
    srv.shutdown();
}
