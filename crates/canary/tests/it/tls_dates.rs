//! A listener's certificate outside its validity dates: refused at start
//! (exit 2, with the dates), a rotation to such a pair keeps the pair in
//! service, with an event that gives the dates, and a pair that expires while
//! it is served is said to have expired.

use crate::support::*;
use crate::tls::{last_event, served_cert};
use std::path::Path;

/// Expired since 2021-01-01.
const EXPIRED: ((i32, u8, u8), (i32, u8, u8)) = ((2020, 1, 1), (2021, 1, 1));
/// Valid from 2090-01-01 only.
const FUTURE: ((i32, u8, u8), (i32, u8, u8)) = ((2090, 1, 1), (2091, 1, 1));

#[test]
fn an_expired_or_not_yet_valid_certificate_refuses_the_start_naming_its_dates() {
    let dir = tempdir();
    let ca = TestCa::new("dates CA");
    let (old_cert, old_key) = ca.leaf_dated("old", EXPIRED.0, EXPIRED.1).write(dir.path(), "old");
    let (new_cert, new_key) = ca.leaf_dated("new", FUTURE.0, FUTURE.1).write(dir.path(), "new");
    let state = arg(dir.path(), "never.db");
    let expired = ["expired on 2021-01-01T00:00:00Z", "valid from 2020-01-01T00:00:00Z", "it is now"];
    let future = ["not valid yet", "valid from 2090-01-01T00:00:00Z to 2091-01-01T00:00:00Z", "clock"];
    let cases: [(&str, &str, &str, &[&str]); 3] = [
        ("--tls", &old_cert, &old_key, &expired),
        ("--tls", &new_cert, &new_key, &future),
        ("--admin-tls", &old_cert, &old_key, &expired),
    ];
    for (flag, cert, key, needles) in cases {
        let (cert_flag, key_flag) = (format!("{flag}-cert"), format!("{flag}-key"));
        let args =
            ["serve", "--stable", "http://127.0.0.1:1", "--state", &state, &cert_flag, cert, &key_flag, key];
        let (code, stderr) = run_canary(&args);
        assert_eq!(code, 2, "{flag} {cert}: {stderr}");
        assert!(stderr.contains(cert), "{flag}: the file is named: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{flag} {cert}: stderr lacks {n:?}: {stderr}");
        }
    }
    assert!(!Path::new(&state).exists(), "a refused start writes no state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_to_a_pair_outside_its_dates_keeps_the_one_in_service() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let ca = TestCa::new("rotation dates CA");
    let first = ca.leaf("first");
    let (cert, key) = first.write(dir.path(), "proxy");
    let p = serve_proc(&stable, &arg(dir.path(), "s.db"), &["--tls-cert", &cert, "--tls-key", &key]);
    let cfg = ca.client_config(&[b"http/1.1"]);
    assert_eq!(served_cert(p.proxy, &cfg).await, first.der.to_vec());

    for (dates, needle) in [(EXPIRED, "expired on 2021-01-01T00:00:00Z"), (FUTURE, "not valid yet")] {
        ca.leaf_dated("out of dates", dates.0, dates.1).write(dir.path(), "proxy");
        let refused = eventually(15, || async {
            let reason =
                last_event(p.admin, "tls_reload_failed").await.map(|e| e["detail"]["reason"].to_string());
            reason.is_some_and(|r| r.contains(needle) && r.contains(&cert))
        })
        .await;
        let events = admin_json(&client(), p.admin, "/api/events").await;
        assert!(refused, "the refusal names the file and the dates ({needle}): {events}");
        assert_eq!(served_cert(p.proxy, &cfg).await, first.der.to_vec(), "the pair in service stays");
    }
    // The watch goes on: a pair within its dates is taken.
    let second = ca.leaf("second");
    second.write(dir.path(), "proxy");
    let rotated = eventually(15, || async { served_cert(p.proxy, &cfg).await == second.der.to_vec() }).await;
    assert!(rotated, "a good pair after refused ones is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expires_while_served_is_said_to_have_expired() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let ca = TestCa::new("expiring CA");
    // Valid at start (well within a slow machine's start-up), expired soon after.
    let (cert, key) = ca.leaf_expiring_in("short-lived", 15).write(dir.path(), "proxy");
    let p = serve_proc(&stable, &arg(dir.path(), "s.db"), &["--tls-cert", &cert, "--tls-key", &key]);
    let said = eventually(45, || async {
        let ev = last_event(p.admin, "tls_certificate_expired").await;
        ev.is_some_and(|e| {
            let why = e["detail"]["reason"].to_string();
            why.contains("expired on") && why.contains(&cert) && e["detail"]["listener"] == "proxy"
        })
    })
    .await;
    let events = admin_json(&client(), p.admin, "/api/events").await;
    assert!(said, "the expiry is recorded, naming the files to replace: {events}");
    // The way out it names works: a current pair is taken.
    let current = ca.leaf("current");
    current.write(dir.path(), "proxy");
    let mut cfg = rustls::ClientConfig::clone(&ca.client_config(&[b"http/1.1"]));
    cfg.resumption = rustls::client::Resumption::disabled();
    let cfg = std::sync::Arc::new(cfg);
    // Until then, handshakes fail on the expired certificate: not a panic here.
    let rotated = eventually(15, || async {
        tls_get(p.proxy, &cfg, "/", &[]).await.is_ok_and(|(_, _, served)| served == current.der.to_vec())
    })
    .await;
    assert!(rotated, "a current pair replaces the expired one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_refused_as_not_valid_yet_is_taken_once_its_dates_begin() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let ca = TestCa::new("early CA");
    let first = ca.leaf("first");
    let (cert, key) = first.write(dir.path(), "proxy");
    let p = serve_proc(&stable, &arg(dir.path(), "s.db"), &["--tls-cert", &cert, "--tls-key", &key]);
    let cfg = ca.client_config(&[b"http/1.1"]);
    // Issued a few seconds ahead of this machine's clock, and not written again.
    let early = ca.leaf_valid_in("early", 10);
    early.write(dir.path(), "proxy");
    let refused = eventually(15, || async {
        let reason =
            last_event(p.admin, "tls_reload_failed").await.map(|e| e["detail"]["reason"].to_string());
        reason.is_some_and(|r| r.contains("not valid yet"))
    })
    .await;
    assert!(refused, "{}", admin_json(&client(), p.admin, "/api/events").await);
    let taken = eventually(30, || async { served_cert(p.proxy, &cfg).await == early.der.to_vec() }).await;
    assert!(
        taken,
        "the pair was not taken once valid: {}",
        admin_json(&client(), p.admin, "/api/events").await
    );
}
