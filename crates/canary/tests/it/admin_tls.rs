//! TLS on the admin listener (`--admin-tls-cert/--admin-tls-key`): the CLI
//! reaching it over https with `--ca-file`, the pair rotated like the
//! proxy's, bad pairs refused at start; and `canary health` / `canary
//! monitor` polling a service over https. Every certificate is made here.

use crate::support::*;
use canary::cli::client::fetch;
use std::path::Path;
use std::time::Duration;

/// `canary serve` with its admin API over TLS (the pair `name` in `dir`).
fn serve_admin_tls(stable: &Upstream, dir: &Path, ca: &TestCa, name: &str) -> Process {
    let (cert, key) = ca.leaf(name).write(dir, name);
    let state = arg(dir, "state.db");
    serve_proc(stable, &state, &["--admin-tls-cert", &cert, "--admin-tls-key", &key])
}

/// The CA's certificate written as `ca.pem` in `dir`.
fn ca_file(ca: &TestCa, dir: &Path) -> String {
    let path = arg(dir, "ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    path
}

#[test]
fn the_cli_reaches_an_https_admin_api_with_its_ca_file_and_not_without() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("admin CA"));
    let p = serve_admin_tls(&stable, dir.path(), &ca, "admin");
    let https = format!("https://localhost:{}", p.admin.port());
    let ca_pem = ca_file(&ca, dir.path());

    let (code, out, err) = cli(&["status", "--admin", &https, "--ca-file", &ca_pem]);
    assert_eq!(code, 0, "{out}{err}");
    // The address by IP: the certificate names 127.0.0.1 too.
    let by_ip = format!("https://{}", p.admin);
    let (code, out, err) = cli(&["status", "--admin", &by_ip, "--ca-file", &ca_pem]);
    assert_eq!(code, 0, "{out}{err}");

    // Without the private CA the system's roots do not know the certificate.
    let (code, _, err) = cli(&["status", "--admin", &https]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach the admin API") && err.contains("certificate"), "{err}");
    // Plain HTTP to the TLS port gets no answer it can read.
    let (code, _, err) = cli(&["status", "--admin", &format!("http://{}", p.admin)]);
    assert_eq!(code, 1, "{err}");
    // A CA file that is not one is bad input, named.
    let junk = arg(dir.path(), "junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (code, _, err) = cli(&["status", "--admin", &https, "--ca-file", &junk]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("junk.pem") && err.contains("--ca-file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_pair_is_rotated_when_its_files_change() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("admin CA"));
    let p = serve_admin_tls(&stable, dir.path(), &ca, "admin");
    let cfg = ca.client_config(&[b"http/1.1"]);
    let served = || async {
        let mut fresh = rustls::ClientConfig::clone(&cfg);
        fresh.resumption = rustls::client::Resumption::disabled();
        tls_get(p.admin, &std::sync::Arc::new(fresh), "/api/rollout", &[]).await.unwrap().2
    };
    let before = served().await;
    let next = ca.leaf("admin, rotated");
    next.write(dir.path(), "admin");
    let rotated = eventually(15, || async { served().await == next.der.to_vec() }).await;
    assert!(rotated, "the new admin certificate was not served");
    assert_ne!(before, next.der.to_vec());
    let url = format!("https://localhost:{}/api/events", p.admin.port());
    let ca_pem = ca_file(&ca, dir.path());
    let events = fetch(&url, Duration::from_secs(5), Some(Path::new(&ca_pem))).await.unwrap();
    let events = events.json.unwrap();
    let ev = events["events"].as_array().unwrap().iter().find(|e| e["kind"] == "tls_reloaded").cloned();
    assert_eq!(ev.expect("a tls_reloaded event")["detail"]["listener"], "admin", "{events}");
}

#[test]
fn a_bad_admin_pair_or_half_a_pair_refuses_the_start_with_exit_2() {
    let (stable, dir, ca) = (Upstream::start("stable"), tempdir(), TestCa::new("admin CA"));
    let (cert, _) = ca.leaf("admin").write(dir.path(), "admin");
    let (_, other_key) = ca.leaf("other").write(dir.path(), "other");
    let url = stable.url();
    let base = ["serve", "--stable", &url, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
    let state = arg(dir.path(), "s.db");
    let cases: [(&[&str], &str); 3] = [
        (&["--admin-tls-cert", &cert], "--admin-tls-key"),
        (&["--admin-tls-cert", &cert, "--admin-tls-key", &other_key], "other.key"),
        (&["--admin-tls-ca", &cert], "--admin-tls-cert"),
    ];
    for (extra, needle) in cases {
        let mut args = base.to_vec();
        args.extend(["--state", &state]);
        args.extend_from_slice(extra);
        let (code, err) = run_canary(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: stderr lacks {needle:?}: {err}");
    }
}

#[test]
fn health_and_monitor_poll_a_service_over_https() {
    let (dir, ca) = (tempdir(), TestCa::new("service CA"));
    let svc = Upstream::start_tls("service", ca.leaf("service").server_config());
    let ca_pem = ca_file(&ca, dir.path());
    let url = svc.url();

    let (code, out, err) = cli(&["health", &url, "--ca-file", &ca_pem]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("overall: healthy"), "{out}");
    // Not trusted without the CA: unreachable, so "could not check" (2).
    let (code, out, _) = cli(&["health", &url, "--retries", "0", "--json"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("certificate"), "the reason is the certificate: {out}");

    let (code, out, err) =
        cli(&["monitor", &url, "0.03", "--interval", "0.5", "--ca-file", &ca_pem, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = cli(&["monitor", &url, "0.03", "--ca-file", "/nonexistent/ca.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}
