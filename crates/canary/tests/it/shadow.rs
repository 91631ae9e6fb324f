//! Shadow traffic through a real proxy: two JSON services in the test
//! (stable's answers carry a timestamp and a random id, as real ones do),
//! the routing table put in a shadow step, and users' requests sent. Every
//! user gets stable's answer; copies reach the canary, marked; and the
//! comparisons, judged, name exactly the field the canary changed, on the
//! route it changed it, and nothing else.

use crate::support::*;
use bytes::Bytes;
use canary::live::{Change, Source};
use canary_core::judge::Outcome;
use canary_core::shadow::diff::{Difference, Kind};
use canary_core::shadow::tally::RouteTally;
use canary_core::shadow::verdict::{ShadowPolicy, judge_route};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A JSON service: `/api/rooms` lists rooms with prices (as strings when
/// `string_prices`), `/api/status` says it is up; every answer has a fresh
/// timestamp and id. Counts the copies it got (`x-canary-shadow: 1`).
struct Service {
    url: String,
    copies: Arc<AtomicU64>,
}

/// How a service answers besides its JSON: a status and a delay.
#[derive(Clone, Copy)]
struct Answers {
    string_prices: bool,
    status: u16,
    delay: Duration,
}

const ALIKE: Answers = Answers { string_prices: false, status: 200, delay: Duration::ZERO };

impl Service {
    async fn start(string_prices: bool) -> Service {
        Service::answering(Answers { string_prices, ..ALIKE }).await
    }

    async fn answering(a: Answers) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let copies = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&copies);
        let counter = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (seen, counter) = (Arc::clone(&seen), Arc::clone(&counter));
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        if req.headers().get("x-canary-shadow").is_some_and(|v| v == "1") {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(a.delay).await;
                            let (parts, body) = req.into_parts();
                            let sent = http_body_util::BodyExt::collect(body).await.unwrap().to_bytes();
                            let mut resp =
                                http::Response::new(Full::new(answer(&parts, &sent, n, a.string_prices)));
                            *resp.status_mut() = http::StatusCode::from_u16(a.status).unwrap();
                            let json = http::HeaderValue::from_static("application/json");
                            resp.headers_mut().insert("content-type", json);
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(sock);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                });
            }
        });
        Service { url, copies }
    }
}

/// A service's JSON for a request: rooms, a search echoing what was sent,
/// or its status; with a fresh timestamp and id, as real ones have.
fn answer(req: &http::request::Parts, sent: &[u8], n: u64, string_prices: bool) -> Bytes {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let price = if string_prices { serde_json::json!("120.5") } else { serde_json::json!(120.5) };
    let body = match req.uri.path() {
        "/api/rooms" => serde_json::json!({
            "generated_at": now.as_nanos().to_string(),
            "request": format!("{n:x}-{}", now.subsec_nanos()),
            "rooms": [{"id": 1, "price": price, "name": "sea"}, {"id": 2, "price": price, "name": "park"}],
        }),
        "/api/search" => serde_json::json!({"query": String::from_utf8_lossy(sent)}),
        _ => serde_json::json!({"status": "up", "at": now.as_nanos().to_string()}),
    };
    Bytes::from(body.to_string())
}

/// The route's tally as the proxy holds it, once it has `n` comparisons
/// and `noise` pairs of stable's answers (within 20 s).
async fn tally_of(srv: &canary::server::Running, route: &str, n: u64, noise: u64) -> RouteTally {
    let read = || srv.shadow.results.read().into_iter().find(|r| r.route == route);
    for _ in 0..200 {
        if let Some(r) = read() {
            let t = RouteTally::from(r.tally.clone());
            if t.compared() >= n && t.noise.samples >= noise {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{route}: not {n} comparisons in 20 s: {:?}", read());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_that_changes_one_fields_type_on_one_route_is_caught_there_only_and_users_get_stable() {
    let (stable, canary) = (Service::start(false).await, Service::start(true).await);
    let dir = tempdir();
    let toml = "[metrics]\nroutes = [\"/api/rooms\", \"/api/status\"]\n[shadow]\nnoise_sample = 0.5\n";
    let cfg = config_of(stable.url.clone(), Some(canary.url.clone()), "0", dir.path(), Some(toml));
    let srv = start(cfg);
    let on = Change { shadow: Some(true), ..Change::default() };
    srv.live.apply(on, Source::Api).unwrap();

    let c = client();
    for i in 0..150 {
        for path in ["/api/rooms", "/api/status"] {
            let (status, version, _) =
                get(&c, srv.proxy_addr, path, &[("x-user-id", &format!("u{i}"))]).await;
            assert_eq!((status, version.as_str()), (200, "stable"), "every user is served by stable");
        }
    }
    let p = ShadowPolicy::default();
    let rooms = judge_route("/api/rooms", &tally_of(&srv, "/api/rooms", 150, 10).await, &p);
    let status = judge_route("/api/status", &tally_of(&srv, "/api/status", 150, 10).await, &p);
    assert_eq!(rooms.outcome, Outcome::Fail, "{}", rooms.note);
    let counted: Vec<&Difference> = rooms.fields.iter().filter(|f| !f.noisy).map(|f| &f.difference).collect();
    assert_eq!(
        counted,
        vec![&Difference { at: "$.rooms[*].price".into(), kind: Kind::Type }],
        "{:?}",
        rooms.fields
    );
    assert_eq!(status.outcome, Outcome::Pass, "{}", status.note);
    assert!(
        status.fields.iter().all(|f| f.noisy),
        "only noise on the route the canary left alone: {:?}",
        status.fields
    );
    assert!(canary.copies.load(Ordering::SeqCst) >= 300, "every copy is marked");
    // Examples show the request and both answers.
    let read = srv.shadow.results.read();
    let ex = &read.iter().find(|r| r.route == "/api/rooms").unwrap().examples;
    let (_, pairs) = ex.iter().find(|(d, _)| d.at == "$.rooms[*].price" && d.kind == Kind::Type).unwrap();
    assert_eq!((pairs[0].method.as_str(), pairs[0].path.as_str()), ("GET", "/api/rooms"));
    assert!(pairs[0].canary.body.contains("\"120.5\"") && pairs[0].stable.body.contains("120.5"));

    // What `canary diff` reads, and what it prints.
    let v = admin_json(&c, srv.admin_addr, "/api/v2/shadow?route=/api/rooms").await;
    assert_eq!((v["shadowing"].clone(), v["routes"].as_array().unwrap().len()), (true.into(), 1), "{v}");
    assert_eq!(v["routes"][0]["outcome"], "fail", "{v}");
    let admin = format!("http://{}", srv.admin_addr);
    let (code, out, err) =
        tokio::task::spawn_blocking(move || cli(&["diff", "--admin", &admin])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let price = out.lines().find(|l| l.trim_start().starts_with("$.rooms[*].price")).expect(&out);
    assert!(price.contains("type") && !price.contains("noise, not counted"), "{out}");
    assert!(out.contains("/api/rooms  FAIL") && out.contains("/api/status  PASS"), "{out}");
    assert!(out.lines().any(|l| l.contains("$.generated_at") && l.contains("noise, not counted")), "{out}");
    // And /metrics counts copies and differences.
    let (_, _, metrics) = get(&c, srv.admin_addr, "/metrics", &[]).await;
    let count = |prefix: &str| -> u64 {
        let line =
            metrics.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(count("canary_shadow_copies_total{result=\"compared\"}") >= 300);
    assert!(count("canary_shadow_differences_total{route=\"/api/rooms\"}") >= 150);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_copied_outside_a_shadow_step_and_posts_are_not_copied_by_default() {
    let (stable, canary) = (Service::start(false).await, Service::start(false).await);
    let dir = tempdir();
    let srv = start(config_of(stable.url.clone(), Some(canary.url.clone()), "0", dir.path(), None));
    let c = client();
    for i in 0..20 {
        get(&c, srv.proxy_addr, "/api/status", &[("x-user-id", &format!("u{i}"))]).await;
    }
    srv.live.apply(Change { shadow: Some(true), ..Change::default() }, Source::Api).unwrap();
    for i in 0..20 {
        let req = http::Request::post(format!("http://{}/api/status", srv.proxy_addr))
            .header("x-user-id", format!("u{i}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(c.request(req).await.unwrap().status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(canary.copies.load(Ordering::SeqCst), 0, "no GET outside the step, no POST in it");
    let method = srv.shadow.skipped().into_iter().find(|(s, _)| s.as_str() == "method").unwrap().1;
    assert_eq!(method, 20, "each POST counted as not copied for its method");
    srv.shutdown();
}

/// Users' GETs on both routes until `done` says stop, as distinct users.
fn users(
    proxy: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let (c, mut i) = (client(), 0u64);
        while !stop.load(Ordering::SeqCst) {
            for path in ["/api/rooms", "/api/status"] {
                let (status, _, _) = get(&c, proxy, path, &[("x-user-id", &format!("u{i}"))]).await;
                assert_eq!(status, 200, "a user never meets the shadow step");
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        i
    })
}

/// A rollout with a shadow step of `shadow` in front of these services.
fn shadowed(
    stable: &Service,
    canary: &Service,
    dir: &std::path::Path,
    shadow: &str,
) -> canary::server::Running {
    shadowed_with(stable, canary, dir, shadow, |_| {})
}

/// As [`shadowed`], the config first changed by `tune`.
fn shadowed_with(
    stable: &Service,
    canary: &Service,
    dir: &std::path::Path,
    shadow: &str,
    tune: impl FnOnce(&mut canary::config::ServeConfig),
) -> canary::server::Running {
    let toml = "[metrics]\nroutes = [\"/api/rooms\", \"/api/status\"]\n[shadow]\nnoise_sample = 0.5\nmin_compared = 30\n";
    let mut cfg = config_of(stable.url.clone(), None, "0", dir, Some(toml));
    tune(&mut cfg);
    let srv = start(cfg);
    let req = canary::controller::api::DeployRequest {
        share: 10.0,
        canary: canary.url.clone(),
        steps: Some("10,100".into()),
        bake: Some("10m".into()),
        shadow: Some(shadow.into()),
        ..Default::default()
    };
    canary::controller::lock(&srv.controller)
        .deploy(&req, canary::controller::clock::now_ms(), None)
        .unwrap();
    srv
}

fn status(srv: &canary::server::Running) -> (String, f64, bool, Option<String>) {
    let s = canary::controller::lock(&srv.controller).status();
    let reason = s.rollout.as_ref().and_then(|r| r.reason.clone());
    (s.state, s.share, srv.live.routing().shadow, reason)
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_with_a_shadow_step_goes_on_to_the_first_share_when_the_canary_answers_alike() {
    let (stable, canary, dir) = (Service::start(false).await, Service::start(false).await, tempdir());
    let srv = shadowed(&stable, &canary, dir.path(), "3s");
    assert_eq!(status(&srv).1, 0.0, "no user share during the shadow step");
    assert!(status(&srv).2, "copying is on");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = users(srv.proxy_addr, Arc::clone(&stop));
    let on = eventually(30, || async { status(&srv).1 == 10.0 }).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let (state, share, copying, reason) = status(&srv);
    assert!(on, "the first share after the shadow step: {state} {share} {reason:?}");
    assert!(!copying, "copying stops with the shadow step");
    assert_eq!(state, "progressing");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_with_a_shadow_step_rolls_back_a_canary_that_changed_a_fields_type() {
    let (stable, canary, dir) = (Service::start(false).await, Service::start(true).await, tempdir());
    let (url, posted) = crate::ops::receiver().await;
    let on_failure = canary::ops::config::Hook {
        events: vec!["shadow_failed".into()],
        action: canary::ops::config::HookAction::Webhook(url),
        timeout: Duration::from_secs(5),
        retries: 0,
    };
    let srv = shadowed_with(&stable, &canary, dir.path(), "10m", |c| c.ops.hooks = vec![on_failure]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = users(srv.proxy_addr, Arc::clone(&stop));
    let ended = eventually(30, || async { status(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let (state, share, copying, reason) = status(&srv);
    assert!(ended, "a sure difference ends the step at once: {state} {reason:?}");
    assert_eq!((share, copying), (0.0, false));
    let reason = reason.unwrap();
    assert!(reason.contains("shadow /api/rooms") && !reason.contains("/api/status"), "{reason}");
    assert!(canary.copies.load(Ordering::SeqCst) > 0, "copies reached the canary");
    // The webhook on `shadow_failed` is told, with the route that failed.
    let told = eventually(10, || async { !posted.lock().unwrap().is_empty() }).await;
    let posted = posted.lock().unwrap().clone();
    assert!(told && posted.len() == 1, "{posted:?}");
    assert_eq!(posted[0]["event"], "shadow_failed", "{}", posted[0]);
    assert!(
        posted[0]["detail"]["reason"].as_str().unwrap_or("").contains("shadow /api/rooms"),
        "{}",
        posted[0]
    );
    srv.shutdown();
}

/// An in-process canary in front of `stable` and `canary` with `toml`, in
/// a shadow step (set directly on the routing table).
fn in_shadow(
    stable: &Service,
    canary: &Service,
    dir: &std::path::Path,
    toml: &str,
) -> canary::server::Running {
    let srv = start(config_of(stable.url.clone(), Some(canary.url.clone()), "0", dir, Some(toml)));
    srv.live.apply(Change { shadow: Some(true), ..Change::default() }, Source::Api).unwrap();
    srv
}

fn skipped(srv: &canary::server::Running, why: &str) -> u64 {
    srv.shadow.skipped().into_iter().find(|(s, _)| s.as_str() == why).unwrap().1
}

async fn post(
    c: &Client<HttpConnector, Full<Bytes>>,
    srv: &canary::server::Running,
    path: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let req = http::Request::post(format!("http://{}{path}", srv.proxy_addr))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_posts_are_copied_with_their_bodies_and_large_bodies_and_upgrades_are_skipped_with_reasons() {
    let (stable, canary, dir) = (Service::start(false).await, Service::start(false).await, tempdir());
    let toml =
        "[metrics]\nroutes = [\"/api/search\"]\n[shadow]\nallow = [\"POST /api/search\"]\nmax_body = 1024\n";
    let srv = in_shadow(&stable, &canary, dir.path(), toml);
    let c = client();
    for i in 0..40 {
        let (status, body) =
            post(&c, &srv, "/api/search", format!("{{\"q\":\"sea {i}\"}}").into_bytes()).await;
        assert_eq!((status, body.contains(&format!("sea {i}"))), (200, true), "{body}");
    }
    // The canary echoed each copy's body exactly as stable did: no difference.
    let t = tally_of(&srv, "/api/search", 40, 0).await;
    assert_eq!(t.signatures.get(&std::collections::BTreeSet::new()), Some(&40), "{t:?}");
    // Over the limit: served, not copied.
    assert_eq!(post(&c, &srv, "/api/search", vec![b'x'; 2048]).await.0, 200);
    assert_eq!(skipped(&srv, "body"), 1);
    // An upgrade: not copied.
    let req = http::Request::get(format!("http://{}/api/status", srv.proxy_addr))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Full::default())
        .unwrap();
    let _ = c.request(req).await;
    assert_eq!(skipped(&srv, "upgrade"), 1);
    // A person testing by hand still reaches the canary, and is not compared.
    let before = t.compared();
    let (_, version, _) = get(&c, srv.proxy_addr, "/api/search", &[("x-canary", "always")]).await;
    assert_eq!(version, "canary");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tally_of(&srv, "/api/search", 40, 0).await.compared(), before);
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_canary_delays_no_user_and_a_full_queue_drops_copies_and_counts_them() {
    let stable = Service::start(false).await;
    let canary = Service::answering(Answers { delay: Duration::from_secs(2), ..ALIKE }).await;
    let dir = tempdir();
    // One copy in flight and room for about two: most copies find no room.
    let srv = in_shadow(&stable, &canary, dir.path(), "[shadow]\nconcurrency = 1\nmax_memory = 2048\n");
    let c = client();
    let mut slowest = Duration::ZERO;
    for i in 0..100 {
        let t = std::time::Instant::now();
        let (status, version, _) =
            get(&c, srv.proxy_addr, "/api/status", &[("x-user-id", &format!("u{i}"))]).await;
        slowest = slowest.max(t.elapsed());
        assert_eq!((status, version.as_str()), (200, "stable"));
    }
    // A user who waited on the canary's copy would have waited 2 s.
    assert!(slowest < Duration::from_millis(1500), "a user waited {slowest:?}");
    let dropped = skipped(&srv, "queue_full");
    assert!(dropped >= 90, "copies with no room are dropped and counted: {dropped}");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_that_fails_its_copies_fails_the_shadow_step() {
    let stable = Service::start(false).await;
    let canary = Service::answering(Answers { status: 500, ..ALIKE }).await;
    let dir = tempdir();
    let srv = shadowed(&stable, &canary, dir.path(), "10m");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = users(srv.proxy_addr, Arc::clone(&stop));
    let ended = eventually(30, || async { status(&srv).0 == "rolled_back" }).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let reason = status(&srv).3.unwrap_or_default();
    assert!(ended && reason.contains("shadow /api/"), "{reason}");
    assert!(
        reason.contains("failed") && reason.contains("copies"),
        "the errors on copies are named: {reason}"
    );
    srv.shutdown();
}
