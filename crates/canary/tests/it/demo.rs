//! `canary demo` end to end, as a newcomer runs it, and the demo service's knobs.

use crate::support::*;

#[test]
fn the_demo_promotes_a_good_canary_and_rolls_back_a_bad_one() {
    let (code, good, err) = cli(&["demo"]);
    assert_eq!(code, 0, "{good}{err}");
    assert!(good.contains("rollout ended: promoted"), "{good}");
    let (code, out, err) = cli(&["demo", "--bad-canary"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rollout ended: rolled_back"), "{out}");
    // Whichever test is sure first names the error rate: the immediate
    // rollback's (surely above 5%) or the step's (surely above 1%).
    let why = out.lines().find(|l| l.starts_with("why: ")).unwrap_or_default();
    let first =
        why.starts_with("why: immediate rollback at 10%") || why.starts_with("why: step 1 at 10% failed");
    assert!(first && why.contains("error_rate"), "{out}");
    assert!(out.contains("incident record"), "{out}");
    // Nothing left running: the demo services it started (it prints their pids)
    // are gone. Other tests run demo services at the same time, hence pids.
    for out in [&good, &out] {
        let pids: Vec<&str> = out.split("(pid ").skip(1).filter_map(|s| s.split(')').next()).collect();
        assert_eq!(pids.len(), 2, "{out}");
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "demo service {pid} left running"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_service_speaks_the_seeds_metrics_shape_and_fails_on_demand() {
    let bad =
        Process::start_cmd(&["demo-service", "--version", "v2", "--listen", "127.0.0.1:0", "--fail-db"]);
    let c = client();
    let (status, _, body) = get(&c, bad.proxy, "/api/v2/health/db", &[]).await;
    assert_eq!(status, 503, "{body}");
    let (status, _, _) = get(&c, bad.proxy, "/api/v2/rooms", &[]).await;
    assert_eq!(status, 503);
    let good = Process::start_cmd(&["demo-service", "--version", "v1", "--listen", "127.0.0.1:0"]);
    for i in 1..=5 {
        assert_eq!(get(&c, good.proxy, &format!("/api/v2/rooms/{i}"), &[]).await.0, 200);
    }
    let (_, _, body) = get(&c, good.proxy, "/api/v2/metrics", &[]).await;
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["version"], "v1");
    assert!(m["performance"]["p95_response_time"].as_f64().is_some(), "{m}");
    assert!(m["response_time"]["/api/v2/rooms/{id}"].as_f64().is_some(), "route templates: {m}");
    assert_eq!(m["capacity"]["database_pool"]["max"], 10);
    assert!(m["resources"]["memory_percent"].as_f64().unwrap() > 0.0);
    assert!(m["recent_errors"].as_array().unwrap().is_empty());
}
