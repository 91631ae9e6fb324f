//! The proxy as a proxy: failures, limits, headers, streaming, share changes under load.

use crate::support::*;
use bytes::Bytes;
use canary::live::{Change, Source};
use canary_core::Share;
use futures_util::future::join_all;
use http::Request;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_canary_costs_clients_nothing() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    // A port with nothing listening, kept so that no other server takes it.
    let (dead, _reserved) = reserved();
    let mut cfg = config(&stable, None, "50", dir.path());
    cfg.canary = Some(canary_core::upstream::Upstream::parse(&format!("http://{dead}")).unwrap());
    let srv = start(cfg);
    let c = client();
    for i in 0..200 {
        let (status, version, body) =
            get(&c, srv.proxy_addr, "/api/v2/rooms", &[("x-user-id", &format!("u{i}"))]).await;
        assert_eq!((status, version.as_str(), body.as_str()), (200, "stable", "stable"));
    }
    let m = admin_json(&c, srv.admin_addr, "/api/v2/metrics").await;
    let failures = m["versions"]["canary"]["requests"]["upstream_failures"].as_u64().unwrap();
    assert!((60..=140).contains(&failures), "about half the users were tried on the canary: {failures}");
    assert_eq!(m["versions"]["canary"]["reliability"]["error_rate"], 100.0);
    assert_eq!(m["versions"]["stable"]["requests"]["2xx"], 200);
    assert_eq!(m["recent_errors"][0]["version"], "canary");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_refusals_answer_502_and_504_with_json() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.proxy.response_timeout = std::time::Duration::from_millis(300);
    let srv = start(cfg);
    let c = client();
    let (status, _, body) = get(&c, srv.proxy_addr, "/slow/2000", &[]).await;
    assert_eq!(status, 504);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"], "upstream_timeout");
    // The slow request did not stop others from being served.
    assert_eq!(get(&c, srv.proxy_addr, "/", &[]).await.0, 200);
    let gone = stable.addr;
    drop(stable);
    // Its server thread stops when it gets to it: until then it still answers.
    let closed = eventually(10, || async { tokio::net::TcpStream::connect(gone).await.is_err() }).await;
    assert!(closed, "the stable upstream did not stop");
    let (status, _, body) = get(&c, srv.proxy_addr, "/", &[]).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"], "upstream_unavailable");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_dropped_and_forwarded_headers_set() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let c = client();
    let hdrs = [
        ("connection", "keep-alive, x-private"),
        ("x-private", "1"),
        ("keep-alive", "timeout=5"),
        ("x-kept", "yes"),
    ];
    let (_, _, body) = get(&c, srv.proxy_addr, "/headers", &hdrs).await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["x-kept"], "yes");
    assert!(seen.get("x-private").is_none() && seen.get("keep-alive").is_none(), "{seen}");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], srv.proxy_addr.to_string());
    assert_eq!(seen["host"], stable.addr.to_string());
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w3c_trace_context_reaches_either_version_unchanged() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "0", dir.path()));
    let c = client();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    for (version, forced) in [("stable", "never"), ("canary", "always")] {
        // A GET goes by the in-task path, a POST with a body by hyper's client.
        for method in ["GET", "POST"] {
            let req = Request::builder()
                .method(method)
                .uri(format!("http://{}/headers", srv.proxy_addr))
                .header("traceparent", parent)
                .header("tracestate", state)
                .header("x-canary", forced)
                .body(Full::new(Bytes::from_static(if method == "POST" { b"{}" } else { b"" })))
                .unwrap();
            let resp = c.request(req).await.unwrap();
            assert_eq!(resp.headers()["x-canary-version"], version);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                (&seen["traceparent"], &seen["tracestate"]),
                (&parent.into(), &state.into()),
                "{method} to {version}: {seen}"
            );
        }
    }
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_oversized_heads_431() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let mut cfg = config(&stable, None, "0", dir.path());
    cfg.proxy.max_body_bytes = 1000;
    let srv = start(cfg);
    let c = client();
    let req = Request::post(format!("http://{}/count", srv.proxy_addr))
        .body(Full::new(Bytes::from(vec![b'a'; 5000])))
        .unwrap();
    assert_eq!(c.request(req).await.unwrap().status(), 413);
    let req = Request::post(format!("http://{}/count", srv.proxy_addr))
        .body(Full::new(Bytes::from(vec![b'a'; 500])))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "500");
    // A chunked body that grows past the limit without declaring a length.
    let mut s = tokio::net::TcpStream::connect(srv.proxy_addr).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 800, "b".repeat(800));
    let head = "POST /count HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    s.write_all(format!("{head}{chunk}{chunk}0\r\n\r\n").as_bytes()).await.unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 413"));
    // A request head larger than the limit.
    let mut s = tokio::net::TcpStream::connect(srv.proxy_addr).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "y".repeat(64 * 1024));
    let _ = s.write_all(big.as_bytes()).await;
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 431"));
    srv.shutdown();
}

async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_changed_a_thousand_times_under_load_fails_no_request() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = Arc::new(start(config(&stable, Some(&canary), "50", dir.path())));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = (0..16).map(|w| {
        let (stop, ok, bad, addr) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&bad), srv.proxy_addr);
        tokio::spawn(async move {
            let c = client();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("w{w}-{i}");
                let (status, version, body) = get(&c, addr, "/", &[("x-user-id", &id)]).await;
                let good = status == 200 && version == body;
                (if good { &ok } else { &bad }).fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    });
    let load: Vec<_> = load.collect();
    let live = Arc::clone(&srv.live);
    let before = ok.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        for i in 0..1000u16 {
            let share = Share::from_basis_points((i * 37) % 10_001).unwrap();
            live.apply(Change { share: Some(share), ..Change::default() }, Source::Api).unwrap();
        }
    })
    .await
    .unwrap();
    let during = ok.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    join_all(load).await;
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert_eq!(bad, 0, "{bad} of {} requests failed", ok + bad);
    // However slow the machine, requests must have been answered while the
    // share was changing, or the test proved nothing.
    assert!(during >= 100, "only {during} requests were answered during the 1,000 changes");
    let events = srv.live.store().events(2000).unwrap();
    assert!(events.iter().filter(|e| e.kind == "share_changed").count() >= 990, "every change is recorded");
    Arc::try_unwrap(srv).unwrap().shutdown();
}

#[test]
fn a_100_mb_body_streams_both_ways_in_flat_memory() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let p = serve_proc(&stable, &arg(dir.path(), "s.db"), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let size: u64 = 100 * 1024 * 1024;
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Zeros>();
    // Warm up first (pools, metric slots, allocator arenas), so what is measured
    // is what the bodies themselves cost.
    rt.block_on(async {
        let up = Request::post(format!("http://{}/count", p.proxy)).body(Zeros::new(1 << 20)).unwrap();
        let _ = c.request(up).await.unwrap().into_body().collect().await.unwrap();
        let down = Request::get(format!("http://{}/bytes/1048576", p.proxy)).body(Zeros::new(0)).unwrap();
        let _ = c.request(down).await.unwrap().into_body().collect().await.unwrap();
    });
    let before = p.peak_rss_kib();
    rt.block_on(async {
        let up = Request::post(format!("http://{}/count", p.proxy)).body(Zeros::new(size)).unwrap();
        let resp = c.request(up).await.unwrap();
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), size.to_string());
        let down = Request::get(format!("http://{}/bytes/{size}", p.proxy)).body(Zeros::new(0)).unwrap();
        let mut body = c.request(down).await.unwrap().into_body();
        let mut got = 0u64;
        while let Some(f) = body.frame().await {
            got += f.unwrap().data_ref().map_or(0, |d| d.len() as u64);
        }
        assert_eq!(got, size);
    });
    let growth = p.peak_rss_kib().saturating_sub(before);
    // Buffering either body whole would add 100 MiB; streaming costs a few
    // buffers' worth whatever the size.
    assert!(growth < 32 * 1024, "peak memory grew by {growth} KiB while streaming 2 x 100 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served_and_routed_like_http1() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "100", dir.path()));
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req =
        Request::get(format!("http://{}/headers", srv.proxy_addr)).body(Full::new(Bytes::new())).unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.headers()["x-canary-version"], "canary");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        seen["x-forwarded-host"],
        srv.proxy_addr.to_string(),
        "the :authority is forwarded as the host"
    );
    assert_eq!(seen["host"], canary.addr.to_string());
    srv.shutdown();
}
