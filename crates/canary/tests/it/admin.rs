//! The admin API: the seed's metrics shape and jq pipelines, Prometheus text,
//! routing changes refused or applied, and the watched dynamic config file.

use crate::support::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_the_seeds_jq_pipelines() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "50", dir.path()));
    let c = client();
    // Before any request: no rate and no percentile to give, so null, not "0% errors, 100% up".
    let empty = admin_json(&c, srv.admin_addr, "/api/v2/metrics").await;
    for scope in [&empty, &empty["versions"]["canary"]] {
        for f in ["/reliability/error_rate", "/reliability/uptime", "/reliability/success_rate"] {
            assert_eq!(scope.pointer(f), Some(&serde_json::Value::Null), "{f}: {scope}");
        }
        assert_eq!(scope["performance"]["p95_response_time"], serde_json::Value::Null);
    }
    for i in 0..40 {
        get(&c, srv.proxy_addr, "/api/v2/rooms", &[("x-user-id", &format!("u{i}"))]).await;
        get(&c, srv.proxy_addr, "/status/503", &[("x-user-id", &format!("u{i}"))]).await;
    }
    get(&c, srv.proxy_addr, "/slow/150", &[]).await;
    let (_, _, body) = get(&c, srv.admin_addr, "/api/v2/metrics", &[]).await;
    let errors = jq(".recent_errors", &body);
    assert_eq!(errors.as_array().unwrap().len(), 20, "bounded list");
    assert_eq!(errors[0]["status"], 503);
    let slowest = jq(".response_time | to_entries | sort_by(.value) | reverse | .[0:5]", &body);
    assert_eq!(slowest[0]["key"], "/slow/{id}", "numeric segments are folded into one route: {slowest}");
    assert!(slowest[0]["value"].as_f64().unwrap() >= 150.0);
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["requests"]["total"], 81);
    assert!((m["reliability"]["error_rate"].as_f64().unwrap() - 40.0 / 81.0 * 100.0).abs() < 0.01);
    assert!(m["performance"]["p95_response_time"].as_f64().unwrap() > 0.0);
    let by_version = m["versions"]["stable"]["requests"]["total"].as_u64().unwrap()
        + m["versions"]["canary"]["requests"]["total"].as_u64().unwrap();
    assert_eq!(by_version, 81);
    assert_eq!(get(&c, srv.admin_addr, "/api/v2/metrics?window=2h", &[]).await.0, 400);
    assert_eq!(admin_json(&c, srv.admin_addr, "/api/v2/metrics?window=5m").await["window"]["spec"], "5m");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_passes_promtool() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let c = client();
    get(&c, srv.proxy_addr, "/", &[]).await;
    let (status, _, body) = get(&c, srv.admin_addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("canary_share_percent{rollout=\"v2-api-canary\"} 0"));
    assert!(body.contains("canary_requests_total{version=\"stable\",class=\"2xx\"} 1"));
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed for this test: apt-get install prometheus (./test.sh does)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_routing_changes_are_refused_and_change_nothing() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "10", dir.path()));
    let c = client();
    let a = srv.admin_addr;
    for bad in [
        serde_json::json!({"share": 150}),
        serde_json::json!({"share": "ten"}),
        serde_json::json!({"share": 1.234}),
        serde_json::json!({"shar": 5}),
    ] {
        let (status, reply) = admin_put(&c, a, "/api/routing/share", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert!(reply["message"].as_str().unwrap().contains("share"), "{reply}");
    }
    let (status, reply) =
        admin_put(&c, a, "/api/routing/excludes", serde_json::json!({"excludes": ["api/x"]})).await;
    assert_eq!(status, 400);
    assert!(reply["message"].as_str().unwrap().contains("api/x"));
    let r = admin_json(&c, a, "/api/routing").await;
    assert_eq!((r["share"].as_f64(), r["excludes"].as_array().map(Vec::len)), (Some(10.0), Some(0)));
    let (status, r) = admin_put(&c, a, "/api/routing/share", serde_json::json!({"share": "12.5"})).await;
    assert_eq!((status, r["share"].as_f64()), (200, Some(12.5)));
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamic_config_file_is_reloaded_and_a_bad_one_keeps_the_last_good() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let flags = dir.path().join("flags.json");
    let write = |pct: &str| {
        let text = format!(
            r#"{{"v2-api-canary": {{"enabled": true, "percentage": {pct}, "excludePatterns": ["/api/admin/*"]}}}}"#
        );
        std::fs::write(&flags, text).unwrap();
    };
    // Each write changes the file's length: the watch compares modification
    // time and size, and two writes a few ms apart can share a timestamp tick.
    write("5");
    let mut cfg = config(&stable, Some(&canary), "0", dir.path());
    cfg.flags = Some(flags.clone());
    let srv = start(cfg);
    let c = client();
    let a = srv.admin_addr;
    let r = admin_json(&c, a, "/api/routing").await;
    assert_eq!((r["share"].as_f64(), r["excludes"][0].as_str()), (Some(5.0), Some("/api/admin/*")));
    write("40");
    let share =
        wait_for(|| async { admin_json(&c, a, "/api/routing").await["share"].as_f64() == Some(40.0) }).await;
    assert!(share, "the file's change was applied");
    std::fs::write(&flags, "{ not json").unwrap();
    let errored =
        wait_for(|| async { !admin_json(&c, a, "/api/flags-file").await["last_error"].is_null() }).await;
    assert!(errored, "the bad file's error is shown");
    assert_eq!(admin_json(&c, a, "/api/routing").await["share"], 40.0, "the last good config stays");
    assert_eq!(admin_json(&c, a, "/api/v2/health").await["status"], "degraded");
    write("25");
    let fixed =
        wait_for(|| async { admin_json(&c, a, "/api/flags-file").await["last_error"].is_null() }).await;
    assert!(fixed);
    assert_eq!(admin_json(&c, a, "/api/routing").await["share"], 25.0);
    let events = admin_json(&c, a, "/api/events").await;
    assert_eq!(events["events"][0]["source"], "flags-file");
    srv.shutdown();
}

async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
