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
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
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
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
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
