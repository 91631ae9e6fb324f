//! SIGHUP re-reads the TOML config file of a running `canary serve`: the
//! thresholds change without a restart, and a broken file, or one that changes
//! what only a restart can, changes nothing and says why.

use crate::support::*;
use std::path::Path;

fn hup(p: &Process) {
    let pid = p.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
}

fn write_policy(file: &Path, extra: &str, max_error_rate: &str) {
    std::fs::write(file, format!("{extra}[policy]\nmax_error_rate = {max_error_rate}\n")).unwrap();
}

async fn error_rate_threshold(p: &Process) -> serde_json::Value {
    admin_json(&client(), p.admin, "/api/rollout").await["thresholds"]["error_rate"].clone()
}

/// The newest event of `kind`, if any.
async fn last_event(p: &Process, kind: &str) -> Option<serde_json::Value> {
    let ev = admin_json(&client(), p.admin, "/api/events").await;
    ev["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_new_thresholds_and_keeps_the_last_good_config() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let file = dir.path().join("canary.toml");
    write_policy(&file, "", "1.5");
    let mut p = serve_proc(&stable, &arg(dir.path(), "canary.db"), &["--config", file.to_str().unwrap()]);
    assert_eq!(error_rate_threshold(&p).await, 1.5);

    write_policy(&file, "", "2.5");
    hup(&p);
    assert!(
        eventually(5, || async { error_rate_threshold(&p).await == 2.5 }).await,
        "the new threshold applies"
    );
    let ev = last_event(&p, "config_reloaded").await.expect("the reload is recorded");
    assert_eq!(ev["detail"]["changed"][0], "[policy]");

    // A file that does not parse: refused, the running config stays.
    std::fs::write(&file, "[policy\nmax_error_rate = ").unwrap();
    hup(&p);
    let refused = eventually(5, || async { last_event(&p, "config_reload_refused").await.is_some() }).await;
    assert!(refused, "the refusal is recorded");
    let why = last_event(&p, "config_reload_refused").await.unwrap()["detail"]["reason"].to_string();
    assert!(why.contains("canary.toml") && why.contains("line"), "names the file and line: {why}");
    assert_eq!(error_rate_threshold(&p).await, 2.5);

    // Valid, but it moves the proxy's workers, which needs a restart: refused
    // whole, so the threshold in the same file is not applied either.
    write_policy(&file, "[proxy]\nworkers = 3\n", "4.0");
    hup(&p);
    let named = eventually(5, || async {
        let n = admin_json(&client(), p.admin, "/api/events").await["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "config_reload_refused")
            .count();
        n == 2
    })
    .await;
    assert!(named, "a second refusal is recorded");
    let why = last_event(&p, "config_reload_refused").await.unwrap()["detail"]["reason"].to_string();
    assert!(why.contains("[proxy]") && why.contains("restart"), "{why}");
    assert_eq!(error_rate_threshold(&p).await, 2.5);

    // Through all of it the process kept serving.
    assert!(p.child.try_wait().unwrap().is_none());
    assert_eq!(get(&client(), p.proxy, "/", &[]).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_config_file_does_not_end_the_process() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let mut p = serve_proc(&stable, &arg(dir.path(), "canary.db"), &[]);
    hup(&p);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(p.child.try_wait().unwrap().is_none(), "SIGHUP's default action would have ended it");
    assert_eq!(get(&client(), p.proxy, "/", &[]).await.0, 200);
}
