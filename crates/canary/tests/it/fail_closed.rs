//! State that cannot be read fails closed: a damaged routing record, a state
//! file of a newer schema or no state file at all still serve stable, never
//! the canary, until a person restarts with `--reset-state`; an older build's
//! file is read as it was written; and a rollback, with or without a rollout,
//! keeps overrides off the canary.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The state file an earlier canary (0.1.0, df328db) left after `serve
/// --share 30 --exclude '/internal/*'`, a deploy, a rollback and a flag set.
const OLDER_BUILD_STATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-0.1.0-df328db.db");

/// `canary serve` with a canary at 30%, as the command line a team restarts with.
fn serve(stable: &Upstream, canary: &Upstream, state: &Path, extra: &[&str]) -> Process {
    let (s, c, st) = (stable.url(), canary.url(), state.display().to_string());
    let mut args = vec![
        "--stable",
        &s,
        "--canary",
        &c,
        "--share",
        "30",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &st,
    ];
    args.extend_from_slice(extra);
    Process::start(&args)
}

/// Who served 300 distinct users, and who served one asking for the canary.
async fn who_serves(p: &Process) -> (usize, String) {
    let c = client();
    let mut to_canary = 0;
    for i in 0..300 {
        let user = format!("user-{i}");
        let (status, version, _) = get(&c, p.proxy, "/", &[("x-user-id", user.as_str())]).await;
        assert_eq!(status, 200);
        to_canary += usize::from(version == "canary");
    }
    let (_, overridden, _) = get(&c, p.proxy, "/", &[("x-canary", "always")]).await;
    (to_canary, overridden)
}

async fn json(p: &Process, path: &str) -> Value {
    admin_json(&client(), p.admin, path).await
}

fn admin(p: &Process) -> String {
    format!("http://{}", p.admin)
}

/// The routing record as stored, read straight from the file.
fn stored_routing(state: &Path) -> String {
    let db = rusqlite::Connection::open(state).unwrap();
    db.query_row("SELECT value FROM kv WHERE key = 'routing'", [], |r| r.get(0)).unwrap()
}

fn event_count(state: &Path) -> i64 {
    let db = rusqlite::Connection::open(state).unwrap();
    db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap()
}

/// Asserts the replica serves stable only and says why, naming `record` and the way out.
async fn assert_failed_closed(p: &Process, state: &Path, record: &str) {
    let (to_canary, overridden) = who_serves(p).await;
    assert_eq!((to_canary, overridden.as_str()), (0, "stable"), "a canary was served on unreadable state");
    let routing = json(p, "/api/routing").await;
    assert_eq!((routing["share"].as_f64(), routing["canary_blocked"].as_bool()), (Some(0.0), Some(true)));
    let health = json(p, "/api/v2/health").await;
    let why = health["state_error"].as_str().unwrap_or_default().to_string();
    assert_eq!(health["status"], "degraded", "{health}");
    let file = state.display().to_string();
    for needed in [file.as_str(), record, "--reset-state", "stable only"] {
        assert!(why.contains(needed), "health's state_error lacks {needed:?}: {why}");
    }
    let (code, out, err) = cli(&["status", "--admin", &admin(p)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&file) && out.contains("--reset-state"), "status does not say why: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_routing_record_serves_stable_only_until_reset_state() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = dir.path().join("canary.db");
    // A rolled-back canary, then the record damaged while canary was stopped.
    let p = serve(&stable, &canary, &state, &[]);
    let (code, _, err) = cli(&["rollback", "--admin", &admin(&p)]);
    assert_eq!(code, 0, "{err}");
    p.kill9();
    let damaged = r#"{"share_bp": "thirty", "excludes": 7}"#;
    let db = rusqlite::Connection::open(&state).unwrap();
    db.execute("UPDATE kv SET value = ?1 WHERE key = 'routing'", [damaged]).unwrap();
    drop(db);
    // The same command line (--share 30) must not send anyone to the canary again.
    let p = serve(&stable, &canary, &state, &[]);
    assert_failed_closed(&p, &state, "routing").await;
    // Nothing is changed on values that could not be read, and nothing is written.
    let events = event_count(&state);
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin(&p)]);
    assert_eq!(code, 3, "a deploy over unreadable state must be refused: {err}");
    assert!(err.contains("--reset-state"), "{err}");
    let (code, _, err) = cli(&["adjust", "30", "--force", "--admin", &admin(&p)]);
    assert_ne!(code, 0, "{err}");
    assert_eq!(stored_routing(&state), damaged);
    assert_eq!(event_count(&state), events);
    p.kill9();
    // --reset-state: the command line's values, the damaged record kept in the log.
    let p = serve(&stable, &canary, &state, &["--reset-state"]);
    let (to_canary, _) = who_serves(&p).await;
    assert!((40..=140).contains(&to_canary), "{to_canary} of 300 users at 30%");
    let health = json(&p, "/api/v2/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    let ev = json(&p, "/api/events").await;
    let reset = ev["events"].as_array().unwrap().iter().find(|e| e["kind"] == "state_reset").cloned();
    let reset = reset.unwrap_or_else(|| panic!("no state_reset event: {ev}"));
    assert_eq!(reset["detail"]["unreadable"], damaged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_of_a_newer_schema_is_not_touched_and_serves_stable_only() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = dir.path().join("canary.db");
    let p = serve(&stable, &canary, &state, &[]);
    p.kill9();
    let newer = canary::store::sqlite::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&state).unwrap().pragma_update(None, "user_version", newer).unwrap();
    let before = std::fs::read(&state).unwrap();
    let p = serve(&stable, &canary, &state, &[]);
    assert_failed_closed(&p, &state, "schema").await;
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin(&p)]);
    assert_eq!(code, 3, "{err}");
    p.kill9();
    assert_eq!(std::fs::read(&state).unwrap(), before, "a newer canary's file was changed");
    // --reset-state sets the file aside, whole, and starts a new one.
    let p = serve(&stable, &canary, &state, &["--reset-state"]);
    let (to_canary, _) = who_serves(&p).await;
    assert!(to_canary > 0, "the command line's 30% did not apply after the reset");
    let aside = set_aside(dir.path());
    assert_eq!(std::fs::read(&aside).unwrap(), before, "the set-aside file is not the original");
    let ev = json(&p, "/api/events").await;
    let kinds: Vec<&str> =
        ev["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"state_reset"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_no_state_file_serves_stable_only() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = dir.path().join("canary.db");
    let garbage = b"this is not an SQLite database, but it is 64 bytes long at least..".repeat(64);
    std::fs::write(&state, &garbage).unwrap();
    // A flags file asking for 50%: not applied over state that could not be read.
    let flags = dir.path().join("flags.json");
    std::fs::write(&flags, r#"{"v2-api-canary": {"enabled": true, "percentage": 50}}"#).unwrap();
    let p = serve(&stable, &canary, &state, &["--flags", flags.to_str().unwrap()]);
    assert_failed_closed(&p, &state, "file").await;
    let file = json(&p, "/api/flags-file").await;
    assert!(file["last_error"].as_str().unwrap_or_default().contains("--reset-state"), "{file}");
    p.kill9();
    assert_eq!(std::fs::read(&state).unwrap(), garbage);
    let p = serve(&stable, &canary, &state, &["--reset-state"]);
    assert_eq!(json(&p, "/api/v2/health").await["status"], "healthy");
    assert_eq!(std::fs::read(set_aside(dir.path())).unwrap(), garbage);
}

/// The one file `--reset-state` set aside in `dir`.
fn set_aside(dir: &Path) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("canary.db.set-aside-"))
        .filter(|p| !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_builds_state_file_is_read_as_it_was_written() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = dir.path().join("canary.db");
    std::fs::copy(OLDER_BUILD_STATE, &state).unwrap();
    let p = serve(&stable, &canary, &state, &[]);
    // Its routing: rolled back (share 0, overrides off), its excludes, its pinned upstreams.
    let routing = json(&p, "/api/routing").await;
    assert_eq!(routing["share"], 0.0, "{routing}");
    assert_eq!(routing["canary_blocked"], true, "{routing}");
    assert_eq!(routing["excludes"], serde_json::json!(["/internal/*"]), "{routing}");
    assert_eq!(routing["stable"], "http://127.0.0.1:43217", "{routing}");
    let health = json(&p, "/api/v2/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    // Its history, events and flags.
    let history = json(&p, "/api/rollouts").await;
    assert_eq!(history["rollouts"][0]["state"], "rolled_back", "{history}");
    assert_eq!(history["rollouts"][0]["reason"], "by hand: fixture: an older build's rollback", "{history}");
    let ev = json(&p, "/api/events").await;
    let kinds: Vec<&str> =
        ev["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    assert!(kinds.contains(&"rolled_back") && kinds.contains(&"flag_set"), "{kinds:?}");
    let flags = json(&p, "/api/flags").await;
    assert!(flags.to_string().contains("new-search"), "{flags}");
    // And this build goes on writing it: a new rollout is number 2.
    let (code, out, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin(&p)]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&p, "/api/rollout").await["rollout"]["id"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_without_a_rollout_keeps_overrides_off_the_canary_until_forced() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let p = serve(&stable, &canary, &dir.path().join("canary.db"), &[]);
    let c = client();
    assert_eq!(get(&c, p.proxy, "/", &[("x-canary", "always")]).await.1, "canary");
    let (code, _, err) = cli(&["rollback", "--reason", "no rollout running", "--admin", &admin(&p)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(who_serves(&p).await, (0, "stable".to_string()));
    assert_eq!(json(&p, "/api/routing").await["canary_blocked"], true);
    let (code, _, err) = cli(&["adjust", "10", "--admin", &admin(&p)]);
    assert_eq!(code, 3, "an adjust after a rollback must be refused unless forced: {err}");
    let (code, _, err) = cli(&["adjust", "10", "--force", "--admin", &admin(&p)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(get(&c, p.proxy, "/", &[("x-canary", "always")]).await.1, "canary");
}
