//! `[upstreams] ca_file` rotation: a running canary reads the CA file again
//! when it changes (or on SIGHUP), so an https canary whose certificate now
//! comes from a new CA is trusted once the file says so; a bad or missing
//! file keeps the CAs in service, with an event naming the file.

use crate::support::*;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// Which version served a request forced to the canary: "canary" when its
/// certificate verifies, "stable" when the canary is refused as unverified.
async fn forced_to_canary(proxy: SocketAddr) -> String {
    let (status, version, body) = get(&client(), proxy, "/api/v2/rooms", &[("x-canary", "always")]).await;
    assert_eq!((status, body.as_str()), (200, version.as_str()), "answered by the version it names");
    version
}

/// Whether an event of `kind` from `source` whose detail contains every
/// one of `needles` was recorded.
async fn has_event(admin: SocketAddr, kind: &str, source: &str, needles: &[&str]) -> bool {
    let ev = admin_json(&client(), admin, "/api/events").await;
    ev["events"].as_array().unwrap().iter().any(|e| {
        let detail = e["detail"].to_string();
        e["kind"] == kind && e["source"] == source && needles.iter().all(|n| detail.contains(n))
    })
}

fn hup(p: &Process) {
    let pid = p.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ca_file_is_trusted_from_the_next_connection_and_a_bad_one_keeps_the_last() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let (old_ca, new_ca) = (TestCa::new("old upstream CA"), TestCa::new("new upstream CA"));
    let canary = Upstream::start_tls("canary", old_ca.leaf("canary").server_config());
    let (addr, url) = (canary.addr, canary.url());
    let ca_file = arg(dir.path(), "upstream-ca.pem");
    std::fs::write(&ca_file, old_ca.pem()).unwrap();
    let conf = arg(dir.path(), "canary.toml");
    let text =
        format!("[upstreams]\nstable = \"{}\"\ncanary = \"{url}\"\nca_file = \"{ca_file}\"\n", stable.url());
    std::fs::write(&conf, text).unwrap();
    let state = arg(dir.path(), "s.db");
    let p = Process::start(&[
        "--config",
        &conf,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
    ]);
    assert_eq!(forced_to_canary(p.proxy).await, "canary");

    // The canary restarts with a certificate from a new CA: not trusted yet,
    // so it is refused like a dead canary and stable serves.
    drop(canary);
    let new_leaf = || new_ca.leaf("canary").server_config();
    let canary = Upstream::start_tls_at("canary", new_leaf(), addr);
    let refused = eventually(10, || async { forced_to_canary(p.proxy).await == "stable" }).await;
    assert!(refused, "a certificate from a CA not in the file is refused");

    // The file now holds the new CA: the watch takes it, no restart.
    std::fs::write(&ca_file, new_ca.pem()).unwrap();
    let trusted = eventually(15, || async { forced_to_canary(p.proxy).await == "canary" }).await;
    assert!(trusted, "the new CA file is read while running");
    assert!(has_event(p.admin, "upstream_ca_reloaded", "file-watch", &[&ca_file]).await, "recorded");

    // Not PEM, then gone: each refused, named, and the new CA stays. New
    // connections are made after each (the canary restarts) to show it.
    let bad: [(&str, Option<&str>, &str); 2] =
        [("garbage", Some("not a certificate"), "no CERTIFICATE block"), ("missing", None, "cannot read")];
    let mut canary = canary;
    for (what, content, reason) in bad {
        match content {
            Some(text) => std::fs::write(&ca_file, text).unwrap(),
            None => std::fs::remove_file(&ca_file).unwrap(),
        }
        let named = eventually(15, || async {
            has_event(p.admin, "upstream_ca_reload_failed", "file-watch", &[&ca_file, reason]).await
        })
        .await;
        assert!(named, "{what}: the refusal names the file and why");
        drop(canary);
        canary = Upstream::start_tls_at("canary", new_leaf(), addr);
        let fresh = &canary.connections;
        let kept = eventually(10, || async {
            forced_to_canary(p.proxy).await == "canary" && fresh.load(Ordering::Relaxed) > 0
        })
        .await;
        assert!(kept, "{what}: a new connection is verified with the CA in service");
    }

    // SIGHUP reads it at once; the file replaces the CAs, it does not add to them.
    std::fs::write(&ca_file, old_ca.pem()).unwrap();
    hup(&p);
    let reloaded =
        eventually(10, || async { has_event(p.admin, "upstream_ca_reloaded", "sighup", &[]).await }).await;
    assert!(reloaded, "SIGHUP reloads the CA file");
    drop(canary);
    let _canary = Upstream::start_tls_at("canary", new_leaf(), addr);
    let untrusted = eventually(10, || async { forced_to_canary(p.proxy).await == "stable" }).await;
    assert!(untrusted, "the new CA is no longer trusted once the file holds only the old one");
}
