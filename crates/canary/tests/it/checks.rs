//! `canary health` and `canary monitor` against real demo services.

use crate::support::*;
use std::io::Write;

fn demo(args: &[&str]) -> Process {
    let mut full = vec!["demo-service", "--listen", "127.0.0.1:0"];
    full.extend_from_slice(args);
    Process::start_cmd(&full)
}

#[test]
fn health_exits_0_1_2_2_for_healthy_failing_db_garbage_and_closed() {
    let healthy = demo(&[]);
    let failing = demo(&["--fail-db"]);
    // Garbage: a server that answers every request with non-JSON text.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in garbage.incoming().flatten() {
            let mut s = s;
            let _ = std::io::Read::read(&mut s, &mut [0u8; 4096]);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!");
        }
    });
    let (closed, _reserved) = reserved();
    let url = |a: std::net::SocketAddr| format!("http://{a}");
    let cases = [
        (url(healthy.proxy), 0, "overall: healthy"),
        (url(failing.proxy), 1, "database unreachable"),
        (url(garbage_addr), 2, "not JSON"),
        (url(closed), 2, "Connection refused"),
    ];
    for (u, want, needle) in cases {
        let (code, out, err) = cli(&["health", &u, "--retries", "0", "--timeout", "2"]);
        assert_eq!(code, want, "{u}: {out}{err}");
        assert!(out.contains(needle), "{u}: {out}");
    }
    let (_, out, _) = cli(&["health", &url(healthy.proxy), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["overall"], "healthy");
    assert_eq!(v["checks"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_says_go_for_a_healthy_service_and_no_go_for_a_failing_one() {
    let healthy = demo(&[]);
    let failing = demo(&["--error-rate", "30"]);
    let c = client();
    for _ in 0..60 {
        get(&c, healthy.proxy, "/api/v2/rooms", &[]).await;
        get(&c, failing.proxy, "/api/v2/rooms", &[]).await;
    }
    let run = |addr: std::net::SocketAddr| {
        let u = format!("http://{addr}");
        std::thread::spawn(move || cli(&["monitor", &u, "0.04", "--interval", "1"]))
    };
    let (good, bad) = (run(healthy.proxy), run(failing.proxy));
    let (code, out, err) = good.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("decision: go"), "{out}");
    let (code, out, err) = bad.join().unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("decision: no-go") && out.contains("error_rate"), "{out}");
    let (closed, _reserved) = reserved();
    let (code, out, _) = cli(&["monitor", &format!("http://{closed}"), "0.02", "--interval", "1"]);
    assert_eq!(code, 2, "{out}");
}

/// The seed's own pipelines (S10, S21), as written, on the demo service's metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_jq_pipelines_work_on_the_demo_services_metrics() {
    let svc = demo(&["--error-rate", "50"]);
    let c = client();
    for i in 0..40 {
        get(&c, svc.proxy, &format!("/api/v2/rooms/{}", 1 + i % 5), &[]).await;
        get(&c, svc.proxy, "/api/v2/rooms", &[]).await;
    }
    let (_, _, body) = get(&c, svc.proxy, "/api/v2/metrics", &[]).await;
    let jq = |filter: &str| jq(filter, &body);
    let errors = jq(".recent_errors");
    assert!(!errors.as_array().unwrap().is_empty() && errors.as_array().unwrap().len() <= 20, "{errors}");
    assert_eq!(errors[0]["status"], 500);
    let slowest = jq(".response_time | to_entries | sort_by(.value) | reverse | .[0:5]");
    let keys: Vec<&str> = slowest.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"/api/v2/rooms/{id}") && keys.contains(&"/api/v2/rooms"), "{slowest}");
}

/// The seed's runbook names, as written: `health-check URL` and
/// `monitor-metrics URL MINUTES` are `health` and `monitor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbooks_health_check_and_monitor_metrics_work_as_written() {
    let svc = demo(&[]);
    let c = client();
    for _ in 0..40 {
        get(&c, svc.proxy, "/api/v2/rooms", &[]).await;
    }
    let url = format!("http://{}", svc.proxy);
    let (code, out, err) = cli(&["health-check", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("overall: healthy"), "{out}");
    let (code, out, err) = cli(&["monitor-metrics", &url, "0.02", "--interval", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("decision: go"), "{out}");
    let (_, help, _) = cli(&["--help"]);
    assert!(help.contains("health-check") && help.contains("monitor-metrics"), "{help}");
}

/// Writes a config file holding `text` into `dir`; returns its path.
fn config_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_judges_by_the_policy_of_config() {
    let dir = tempdir();
    let strict = config_file(dir.path(), "strict.toml", "[policy]\nmax_p95_ms = 10.0\n");
    let loose = config_file(
        dir.path(),
        "loose.toml",
        // Far above 30%: the demo's failures are random draws, and 40 of them
        // at 30% passed 50% in about one run in 500.
        "[policy]\nmax_error_rate = 80.0\nrollback_error_rate = 90.0\n",
    );
    let slow = demo(&["--extra-latency-ms", "20"]);
    let failing = demo(&["--error-rate", "30"]);
    let c = client();
    for _ in 0..40 {
        get(&c, slow.proxy, "/api/v2/rooms", &[]).await;
        get(&c, failing.proxy, "/api/v2/rooms", &[]).await;
    }
    let monitor = |addr: std::net::SocketAddr, extra: &[&str]| {
        let url = format!("http://{addr}");
        let mut args = vec!["monitor", url.as_str(), "0.02", "--interval", "1"];
        args.extend_from_slice(extra);
        cli(&args)
    };
    // The same service, go by the seed's p95 < 200 ms, no-go by the file's 10 ms.
    let (code, out, err) = monitor(slow.proxy, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("judging by the seed's defaults: error rate < 1%"), "{out}");
    let (code, out, err) = monitor(slow.proxy, &["--config", &strict]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("judging by {strict} [policy]")) && out.contains("p95 < 10 ms"), "{out}");
    // 30% errors: no-go by the seed's 1%, go by a file that allows 80%.
    let (code, out, err) = monitor(failing.proxy, &["--config", &loose, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "go");
    assert_eq!(v["thresholds"]["error_rate"], 80.0);
    assert_eq!(v["thresholds_from"], format!("{loose} [policy]"));
    // A file that serve would refuse is refused here too, naming it and why.
    let bad = config_file(dir.path(), "bad.toml", "[policy]\nmax_error_rat = 2.0\n");
    let (code, _, err) = monitor(slow.proxy, &["--config", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&bad) && err.contains("max_error_rat"), "{err}");
    let (code, _, err) = monitor(slow.proxy, &["--config", &arg(dir.path(), "missing.toml")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.toml") && err.contains("cannot read"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_without_a_url_judges_by_the_running_servers_thresholds() {
    let dir = tempdir();
    let strict = config_file(dir.path(), "strict.toml", "[policy]\nmax_p95_ms = 10.0\n");
    let seed = config_file(dir.path(), "seed.toml", "[policy]\n");
    let stable = demo(&[]);
    let slow = demo(&["--extra-latency-ms", "20"]);
    let (s, k) = (format!("http://{}", stable.proxy), format!("http://{}", slow.proxy));
    let state = arg(dir.path(), "canary.db");
    let srv = Process::start(&[
        "--config",
        &strict,
        "--stable",
        &s,
        "--canary",
        &k,
        "--share",
        "100",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
    ]);
    let c = client();
    for i in 0..40 {
        get(&c, srv.proxy, "/api/v2/rooms", &[("x-user-id", &format!("u{i}"))]).await;
    }
    let admin = format!("http://{}", srv.admin);
    let (code, out, err) = cli(&["monitor", "0.02", "--interval", "1", "--admin", &admin]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("judging by the running server at {admin}")), "{out}");
    assert!(out.contains("p95 < 10 ms") && out.contains("decision: no-go"), "{out}");
    // The same figures by the seed's thresholds: go.
    let (code, out, err) = cli(&["monitor", "0.02", "--interval", "1", "--admin", &admin, "--config", &seed]);
    assert_eq!(code, 0, "{out}{err}");
    // No server to ask: it says so and how to go on.
    let (closed, _reserved) = reserved();
    let (code, _, err) = cli(&["monitor", "0.02", "--admin", &format!("http://{closed}")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read the thresholds in force") && err.contains("--config FILE"), "{err}");
}
