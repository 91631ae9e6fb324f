//! TLS: on the proxy listener (ALPN, certificate rotation without dropping a
//! request, bad pairs refused) and to `https://` upstreams (a private CA, an
//! unknown CA refused like a dead canary, `insecure_skip_verify`). Every
//! certificate is made by the test.

use crate::support::*;
use bytes::Bytes;
use canary::config::{self, Overrides, TlsFiles};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A canary config with the listener serving TLS with `cert` and `key`.
fn tls_config(
    stable: &Upstream,
    canary: &Upstream,
    dir: &Path,
    cert: &str,
    key: &str,
) -> config::ServeConfig {
    let mut cfg = config(stable, Some(canary), "0", dir);
    cfg.tls = Some(TlsFiles { cert: cert.into(), key: key.into() });
    cfg
}

/// The newest event of `kind` at the admin API, if any.
pub(crate) async fn last_event(admin: std::net::SocketAddr, kind: &str) -> Option<serde_json::Value> {
    let ev = admin_json(&client(), admin, "/api/events").await;
    ev["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind).cloned()
}

/// The certificate a new TLS connection to `addr` is shown: a full
/// handshake, since a resumed session shows none and keeps its first one.
pub(crate) async fn served_cert(addr: std::net::SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut fresh = rustls::ClientConfig::clone(cfg);
    fresh.resumption = rustls::client::Resumption::disabled();
    tls_get(addr, &Arc::new(fresh), "/", &[]).await.unwrap().2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_serves_h2_and_http1_by_alpn() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let ca = TestCa::new("listener CA");
    let (cert, key) = ca.leaf("proxy").write(dir.path(), "proxy");
    let r = start(tls_config(&stable, &canary, dir.path(), &cert, &key));

    let tls = tls_connect(r.proxy_addr, &ca.client_config(&[b"h2", b"http/1.1"])).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "h2 is chosen when offered");
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    for (force, want) in [("always", "canary"), ("never", "stable")] {
        let req = Request::get("https://localhost/api/v2/rooms")
            .header("x-canary", force)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.headers()["x-canary-version"], want);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), want);
    }

    let h1 = ca.client_config(&[b"http/1.1"]);
    let tls = tls_connect(r.proxy_addr, &h1).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    for (force, want) in [("always", "canary"), ("never", "stable")] {
        let (status, version, _) =
            tls_get(r.proxy_addr, &h1, "/api/v2/rooms", &[("x-canary", force)]).await.unwrap();
        assert_eq!((status, version.as_str()), (200, want));
    }
    // A client that does not trust the certificate is refused at the handshake.
    let stranger = TestCa::new("another CA").client_config(&[b"http/1.1"]);
    assert!(tls_connect(r.proxy_addr, &stranger).await.is_err());
    r.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_reaches_new_connections_without_a_failed_request() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let ca = TestCa::new("rotation CA");
    let first = ca.leaf("first");
    let (cert, key) = first.write(dir.path(), "proxy");
    let r = start(tls_config(&stable, &canary, dir.path(), &cert, &key));
    let cfg = ca.client_config(&[b"http/1.1"]);
    assert_eq!(served_cert(r.proxy_addr, &cfg).await, first.der.to_vec());

    // Load: new connections in a loop, and one kept-alive connection that
    // lives through the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (stop, ok, bad, cfg, addr) = (stop.clone(), ok.clone(), bad.clone(), cfg.clone(), r.proxy_addr);
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tls_get(addr, &cfg, "/api/v2/rooms", &[]).await {
                    Ok((200, _, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        bad.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let kept = tls_connect(r.proxy_addr, &cfg).await.unwrap();
    let (mut kept, conn) = hyper::client::conn::http1::handshake(TokioIo::new(kept)).await.unwrap();
    tokio::spawn(conn);
    let (kept_stop, kept_ok, kept_bad) = (stop.clone(), ok.clone(), bad.clone());
    load.push(tokio::spawn(async move {
        while !kept_stop.load(Ordering::Relaxed) {
            let req = Request::get("/api/v2/rooms").header("host", "localhost").body(Full::new(Bytes::new()));
            let good = match kept.send_request(req.unwrap()).await {
                Ok(resp) => resp.status() == 200 && resp.into_body().collect().await.is_ok(),
                Err(_) => false,
            };
            (if good { &kept_ok } else { &kept_bad }).fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Rewritten in place: the certificate first, then its key.
    let second = ca.leaf("second");
    second.write(dir.path(), "proxy");
    let rotated =
        eventually(10, || async { served_cert(r.proxy_addr, &cfg).await == second.der.to_vec() }).await;
    assert!(rotated, "new connections are shown the new certificate");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert_eq!(bad, 0, "no request failed ({ok} answered)");
    assert!(ok > 50, "the load ran: {ok}");
    let ev = last_event(r.admin_addr, "tls_reloaded").await.expect("the rotation is recorded");
    assert_eq!(ev["detail"]["cert"], cert.as_str());
    assert!(
        last_event(r.admin_addr, "tls_reload_failed").await.is_none(),
        "a pair written in two steps is read whole"
    );
    r.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_new_pair_keeps_the_old_one_and_sighup_reloads() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let ca = TestCa::new("reload CA");
    let (first, other, third) = (ca.leaf("first"), ca.leaf("other"), ca.leaf("third"));
    let (cert, key) = first.write(dir.path(), "proxy");
    let p = serve_proc(&stable, &arg(dir.path(), "s.db"), &["--tls-cert", &cert, "--tls-key", &key]);
    let cfg = ca.client_config(&[b"http/1.1"]);
    let hup = || {
        let pid = p.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };

    // A certificate beside a key that is not its own.
    std::fs::write(&cert, &third.cert_pem).unwrap();
    std::fs::write(&key, &other.key_pem).unwrap();
    hup();
    let failed = eventually(10, || async { last_event(p.admin, "tls_reload_failed").await.is_some() }).await;
    assert!(failed, "the refusal is recorded");
    let why = last_event(p.admin, "tls_reload_failed").await.unwrap()["detail"]["reason"].to_string();
    assert!(why.contains(&key) && why.contains("does not match"), "names the key and the reason: {why}");
    assert_eq!(served_cert(p.proxy, &cfg).await, first.der.to_vec(), "the old pair stays in service");

    // Not PEM at all: refused the same way.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup();
    let named = eventually(10, || async {
        let ev = admin_json(&client(), p.admin, "/api/events").await;
        ev["events"].as_array().unwrap().iter().any(|e| {
            e["kind"] == "tls_reload_failed"
                && e["detail"]["reason"].as_str().unwrap().contains("no CERTIFICATE")
        })
    })
    .await;
    assert!(named, "a file that is not PEM is named as such");
    assert_eq!(served_cert(p.proxy, &cfg).await, first.der.to_vec());

    // A good pair and SIGHUP: in service at once.
    third.write(dir.path(), "proxy");
    hup();
    let ok = eventually(5, || async {
        let ev = admin_json(&client(), p.admin, "/api/events").await;
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "tls_reloaded" && e["source"] == "sighup")
    })
    .await;
    assert!(ok, "SIGHUP reloads the pair");
    assert_eq!(served_cert(p.proxy, &cfg).await, third.der.to_vec());
}

#[test]
fn a_bad_pair_or_ca_file_at_start_exits_2_naming_the_file() {
    let dir = tempdir();
    let ca = TestCa::new("start CA");
    let (cert, key) = ca.leaf("a").write(dir.path(), "a");
    let (_, other_key) = ca.leaf("b").write(dir.path(), "b");
    let garbage = arg(dir.path(), "garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let missing = arg(dir.path(), "missing.pem");
    let ca_conf = arg(dir.path(), "ca.toml");
    std::fs::write(
        &ca_conf,
        format!("[upstreams]\nstable = \"https://localhost:1\"\nca_file = \"{missing}\"\n"),
    )
    .unwrap();
    let state = arg(dir.path(), "never.db");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--tls-cert", &missing, "--tls-key", &key], vec![&missing, "cannot read the TLS certificate"]),
        (vec!["--tls-cert", &garbage, "--tls-key", &key], vec![&garbage, "no CERTIFICATE block"]),
        (vec!["--tls-cert", &cert, "--tls-key", &garbage], vec![&garbage, "no PRIVATE KEY block"]),
        (vec!["--tls-cert", &cert, "--tls-key", &other_key], vec![&other_key, "does not match", &cert]),
        (vec!["--tls-cert", &cert], vec!["--tls-key"]),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["serve", "--stable", "http://127.0.0.1:1", "--state", &state];
        args.extend(extra.iter().copied());
        let (code, stderr) = run_canary(&args);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{extra:?}: stderr lacks {n:?}: {stderr}");
        }
    }
    let (code, stderr) = run_canary(&["serve", "--config", &ca_conf, "--state", &state]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&missing) && stderr.contains("CA file"), "{stderr}");
    assert!(!Path::new(&state).exists(), "a refused start writes no state");
}

/// Canary in-process with a config file saying `upstreams` (stable plain,
/// and `tls` lines), on ephemeral ports.
fn start_with_file(dir: &Path, upstreams: &str) -> canary::server::Running {
    let file = dir.join("canary.toml");
    std::fs::write(&file, format!("[upstreams]\n{upstreams}")).unwrap();
    let cli = Overrides {
        listen: Some("127.0.0.1:0".into()),
        admin: Some("127.0.0.1:0".into()),
        state: Some(dir.join("canary.db")),
        ..Overrides::default()
    };
    start(config::load(Some(&file), &cli).unwrap())
}

async fn canary_metrics(admin: std::net::SocketAddr) -> serde_json::Value {
    admin_json(&client(), admin, "/api/v2/metrics").await["versions"]["canary"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_canary_with_a_private_ca_is_routed_pooled_and_measured() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("private CA"));
    let canary = Upstream::start_tls("canary", ca.leaf("canary").server_config());
    let ca_file = arg(dir.path(), "ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let r = start_with_file(dir.path(), &format!("stable = \"{}\"\nca_file = \"{ca_file}\"\n", stable.url()));

    // The canary comes by `canary deploy`, as in a rollout.
    let admin = format!("http://{}", r.admin_addr);
    let (code, out, err) = cli(&["deploy", "10", &canary.url(), "--bake", "10m", "--admin", &admin]);
    assert_eq!(code, 0, "{out}{err}");

    let c = client();
    for _ in 0..20 {
        let got = get(&c, r.proxy_addr, "/api/v2/rooms", &[("x-canary", "always")]).await;
        assert_eq!(got, (200, "canary".into(), "canary".into()));
    }
    let sni = get(&c, r.proxy_addr, "/sni", &[("x-canary", "always")]).await;
    assert_eq!(sni.2, "localhost", "SNI is the URL's host");
    // A request with a body takes hyper's client, over TLS too.
    let post = Request::post(format!("http://{}/count", r.proxy_addr))
        .header("x-canary", "always")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let resp = c.request(post).await.unwrap();
    assert_eq!(resp.headers()["x-canary-version"], "canary");
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "5");
    assert_eq!(get(&c, r.proxy_addr, "/", &[("x-canary", "never")]).await.1, "stable");

    let handshakes = canary.connections.load(Ordering::Relaxed);
    assert!(
        handshakes <= 4,
        "connections are kept alive and reused: {handshakes} TLS handshakes for 22 requests"
    );
    let m = canary_metrics(r.admin_addr).await;
    assert_eq!(m["requests"]["total"], 22, "{m}");
    assert_eq!(m["requests"]["upstream_failures"], 0, "{m}");
    r.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_certificate_does_not_verify_is_refused_and_stable_serves() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("trusted CA"));
    let stranger = TestCa::new("unknown CA");
    let canary = Upstream::start_tls("canary", stranger.leaf("canary").server_config());
    let ca_file = arg(dir.path(), "ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let upstreams =
        format!("stable = \"{}\"\ncanary = \"{}\"\nca_file = \"{ca_file}\"\n", stable.url(), canary.url());
    let r = start_with_file(dir.path(), &upstreams);

    let c = client();
    // The lean path (GET) and hyper's (a POST with a body) both fall back.
    let got = get(&c, r.proxy_addr, "/api/v2/rooms", &[("x-canary", "always")]).await;
    assert_eq!(got, (200, "stable".into(), "stable".into()));
    let post = Request::post(format!("http://{}/count", r.proxy_addr))
        .header("x-canary", "always")
        .body(Full::new(Bytes::from_static(b"abc")))
        .unwrap();
    let resp = c.request(post).await.unwrap();
    assert_eq!(resp.headers()["x-canary-version"], "stable");
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "3");

    assert_eq!(canary.connections.load(Ordering::Relaxed), 0, "no exchange with the unverified canary");
    let m = canary_metrics(r.admin_addr).await;
    assert_eq!(m["requests"]["upstream_failures"], 2, "counted as canary failures: {m}");
    let why = m["recent_errors"][0]["error"].as_str().unwrap();
    assert!(why.contains("TLS handshake") && why.contains("certificate"), "{why}");
    r.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_accepts_any_certificate_and_says_so() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let canary = Upstream::start_tls("canary", TestCa::new("anyone").leaf("canary").server_config());
    let file = arg(dir.path(), "canary.toml");
    let text = format!(
        "[upstreams]\nstable = \"{}\"\ncanary = \"{}\"\ninsecure_skip_verify = true\n",
        stable.url(),
        canary.url()
    );
    std::fs::write(&file, text).unwrap();
    let log_path = dir.path().join("canary.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let state = arg(dir.path(), "s.db");
    let args =
        ["serve", "--config", &file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--state", &state];
    let p = Process::start_logged(&args, &[], log);

    let got = get(&client(), p.proxy, "/api/v2/rooms", &[("x-canary", "always")]).await;
    assert_eq!(got, (200, "canary".into(), "canary".into()));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("WARN") && log.contains("insecure_skip_verify"), "logged at start: {log}");
}
