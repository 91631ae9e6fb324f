//! The Grafana dashboard and the Prometheus alerting rules in `dist/`,
//! against a real Prometheus scraping a real canary: the rules pass
//! promtool, every dashboard query (its variables substituted) evaluates
//! and returns data, and the canary's error-rate alert fires while a
//! failing canary runs.

use crate::cluster::{Etcd, deploy_args, get_json, replica, run, wait_for_leader};
use crate::prometheus::Prometheus;
use crate::support::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/grafana/canary.json");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/prometheus/canary-rules.yml");

/// Every query of the dashboard, with its variables as Grafana fills them
/// for "All" jobs and a one-minute rate interval.
fn queries() -> Vec<String> {
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let panels = d["panels"].as_array().expect("the dashboard has panels");
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_string())
        .map(|e| e.replace("$__rate_interval", "1m").replace("$job", ".*"))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for e in &exprs {
        assert!(!e.contains('$'), "a variable the test does not fill: {e}");
    }
    exprs
}

#[test]
fn the_alerting_rules_pass_promtool() {
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", RULES])
        .output()
        .expect("promtool is needed: apt-get install prometheus (./test.sh does)");
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
}

/// Users until `stop`, each on their version.
async fn users(proxy: std::net::SocketAddr, stop: Arc<AtomicBool>) {
    let c = client();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let req = http::Request::get(format!("http://{proxy}/api/v2/rooms"))
            .header("x-user-id", format!("user-{}", i % 400))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        // Answers are not checked: the alert is what this load is for. A
        // proxy that hangs fails the test by the alert's deadline, not here.
        let _ = tokio::time::timeout(Duration::from_secs(5), c.request(req)).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_data_and_the_error_rate_alert_fires_while_a_failing_canary_runs() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    // A canary failing 12% of its requests, at random.
    let flaky = ["demo-service", "--version", "v2", "--listen", "127.0.0.1:0", "--error-rate", "12"];
    let canary = Process::start_cmd(&flaky);
    // One replica on etcd, so the cluster's panels have data too. The judge
    // pauses rather than rolls back (the immediate rollback is put out of
    // reach), so the failing canary keeps serving while the alert's `for` runs.
    let etcd = Etcd::start(dir.path(), 1);
    let policy = "on_failure = \"pause\"\nrollback_error_rate = 50.0\nsurge_margin = 50.0\n";
    let toml = format!("[cluster]\nlease_ttl = \"3s\"\n[policy]\n{policy}");
    let p = replica(&etcd, &stable.url(), dir.path(), "r1", &toml);
    wait_for_leader(&[&p]).await;
    let prom = Prometheus::start_with(dir.path(), p.admin, Some(Path::new(RULES)));
    prom.ready().await;
    let (code, out, err) =
        run(&deploy_args(p.admin, &format!("http://{}", canary.proxy), &["50", "--bake", "10m"]));
    assert_eq!(code, 0, "{out}{err}");
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(users(p.proxy, Arc::clone(&stop)));

    let fired =
        eventually(120, || async { prom.firing().await.iter().any(|a| a == "CanaryErrorRateHigh") }).await;
    let rate = "sum(rate(canary_requests_total{version=\"canary\",class=\"5xx\"}[1m])) / sum(rate(canary_requests_total{version=\"canary\"}[1m]))";
    assert!(
        fired,
        "the error-rate alert never fired; canary error rate {:?}; state {:?}; {}",
        prom.query(rate).await,
        prom.query("canary_rollout_state == 1").await,
        get_json(p.admin, "/api/rollout").await
    );
    assert!(
        !prom.firing().await.iter().any(|a| a == "CanaryLatencyHigh"),
        "a latency alert with fast answers"
    );

    // A rollback by hand, for the rollbacks panel.
    let admin = format!("http://{}", p.admin);
    let (code, out, err) =
        run(&["rollback".into(), "--reason".into(), "test".into(), "--admin".into(), admin]);
    assert_eq!(code, 0, "{out}{err}");
    // Counted from zero, so `increase` sees it (a series born at 1 would hide it).
    let counted = eventually(20, || async {
        !prom.query("increase(canary_rollbacks_total{cause=\"operator\"}[1m]) > 0").await.is_empty()
    })
    .await;
    assert!(counted, "the rollback by hand was never counted");
    for q in queries() {
        let got = prom.query(&q).await;
        assert!(!got.is_empty(), "the dashboard's query returns nothing: {q}");
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
}
