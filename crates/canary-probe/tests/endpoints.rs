//! The probe's endpoints over a real socket, in the shape canary reads.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::routing::get;
use canary_probe::{DbStatus, Probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_json(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf[9..12].parse().unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())))
}

#[tokio::test]
async fn measures_routes_and_reports_health() {
    let fail_db = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fail_db.clone();
    let probe = Probe::new("v9").with_db_check(move || {
        if f.load(std::sync::atomic::Ordering::Relaxed) {
            Err("down".into())
        } else {
            Ok(DbStatus { in_use: 5, max: 10, latency_ms: 1.0 })
        }
    });
    let app: Router = Router::new()
        .route("/api/v2/items/{id}", get(|| async { "item" }))
        .route("/api/v2/boom", get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route_layer(probe.layer())
        .merge(probe.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for i in 0..9 {
        get_json(addr, &format!("/api/v2/items/{i}")).await;
    }
    get_json(addr, "/api/v2/boom").await;
    let (_, m) = get_json(addr, "/api/v2/metrics").await;
    assert_eq!(m["version"], "v9");
    assert_eq!(m["reliability"]["error_rate"], 10.0);
    assert!(m["response_time"]["/api/v2/items/{id}"].is_number(), "{m}");
    assert_eq!(m["recent_errors"][0]["endpoint"], "GET /api/v2/boom");
    assert_eq!(m["capacity"]["database_connections"], 50.0);
    assert!(m["performance"]["p99_response_time"].is_number());
    let (code, h) = get_json(addr, "/api/v2/health").await;
    assert_eq!((code, h["status"].as_str()), (200, Some("healthy")));
    fail_db.store(true, std::sync::atomic::Ordering::Relaxed);
    let (code, h) = get_json(addr, "/api/v2/health/db").await;
    assert_eq!((code, h["status"].as_str()), (503, Some("unhealthy")));
    let (code, h) = get_json(addr, "/api/v2/health/memory").await;
    assert_eq!(code, 200);
    assert!(h["rss_bytes"].as_u64().unwrap() > 0);
}
