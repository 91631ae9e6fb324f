//! What this build writes keeps the shape the previous release wrote and
//! reads: the state file's schema and the JSON of its records (routing,
//! rollouts, events, flags), and with `--etcd` the cluster's keys and values.
//!
//! The same steps (deploy, adjust, a flag, an exclude, a rollback) are run,
//! and what was stored is reduced to its shape: every key, every JSON
//! field's type, every event kind with its sources and detail fields. The
//! shape is compared with the one recorded from the previous release in
//! `tests/fixtures/`. A record that gains, loses or retypes a field fails
//! here, before an older replica or a downgrade meets it; a change meant to
//! be seen by older builds comes with a schema version (see
//! `store/sqlite.rs` and `store/etcd.rs`), and the fixture is recorded anew
//! with `CANARY_RECORD_SHAPES=1` on the test run.

use crate::support::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

const SQLITE_SHAPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-shape-sqlite.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_file_is_written_in_the_previous_releases_shape() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    steps(srv.admin_addr, &canary.url()).await;
    srv.shutdown();
    let shape = sqlite_shape(&dir.path().join("canary.db"));
    compare(&shape, SQLITE_SHAPE);
}

/// Deploy at 10%, adjust to 25%, set a flag and an exclude, roll back.
async fn steps(admin: std::net::SocketAddr, canary: &str) {
    let c = client();
    let deploy = json!({"share": 10, "canary": canary, "bake": "10m", "steps": "10,25,50,100"});
    let (status, r) = admin_post(&c, admin, "/api/rollout/deploy", deploy).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = admin_post(&c, admin, "/api/rollout/adjust", json!({"share": 25})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = admin_put(&c, admin, "/api/flags/beta", json!({"value": "25%"})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) =
        admin_put(&c, admin, "/api/routing/excludes", json!({"excludes": ["/internal/*"]})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = admin_post(&c, admin, "/api/rollout/rollback", json!({"reason": "shape"})).await;
    assert_eq!(status, 200, "{r}");
}

/// The state file's schema, version and records, reduced to their shape.
fn sqlite_shape(path: &Path) -> Value {
    let db = rusqlite::Connection::open(path).unwrap();
    let column = |sql: &str| -> Vec<String> {
        let mut q = db.prepare(sql).unwrap();
        q.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    };
    let schema: Vec<String> = column("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let mut kv = Map::new();
    for pair in column("SELECT key || char(0) || value FROM kv") {
        let (key, value) = pair.split_once('\0').unwrap();
        kv.insert(normalise_key(key), text_shape(value));
    }
    let mut rollouts = Shapes::default();
    for pair in column("SELECT state || char(0) || body FROM rollouts") {
        let (state, body) = pair.split_once('\0').unwrap();
        rollouts.add(state, text_shape(body));
    }
    let mut events = Shapes::default();
    for row in column("SELECT kind || char(0) || source || char(0) || detail FROM events") {
        let mut f = row.split('\0');
        let (kind, source, detail) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        events.add(kind, json!({"source": {source: "source"}, "detail": text_shape(detail)}));
    }
    json!({"schema": schema, "user_version": version, "kv": kv, "rollouts": rollouts.0, "events": events.0})
}

/// Shapes by name, those of the same name merged.
#[derive(Default)]
struct Shapes(BTreeMap<String, Value>);

impl Shapes {
    fn add(&mut self, name: &str, shape: Value) {
        let merged = match self.0.remove(name) {
            Some(old) => merge(old, shape),
            None => shape,
        };
        self.0.insert(name.to_string(), merged);
    }
}

/// A stored text's shape: its JSON's, or `text` when it is not JSON.
fn text_shape(text: &str) -> Value {
    serde_json::from_str::<Value>(text).map_or(json!("text"), |v| shape(&v))
}

/// A JSON value's shape: objects keep their keys, arrays the merged shape of
/// their items, scalars become their type's name.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!([items.iter().map(shape).reduce(merge).unwrap_or(json!("empty"))]),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Two shapes as one: objects by the union of their keys, differing types
/// as `a|b` (a field that is sometimes null, say).
fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Value::Object(x)
        }
        (Value::Array(x), Value::Array(y)) => {
            let items = x.into_iter().chain(y).filter(|v| v != &json!("empty")).reduce(merge);
            json!([items.unwrap_or(json!("empty"))])
        }
        (x, y) if x == y => x,
        (x, y) => {
            let mut names: Vec<String> =
                [x, y].iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect();
            names = names.iter().flat_map(|n| n.split('|').map(str::to_string)).collect();
            names.sort();
            names.dedup();
            json!(names.join("|"))
        }
    }
}

/// A key with the parts that differ from run to run (times, sequence
/// numbers, addresses) made placeholders: every run of digits is `<n>`.
fn normalise_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut digits = false;
    for c in key.chars() {
        match (c.is_ascii_digit(), digits) {
            (true, false) => out.push_str("<n>"),
            (true, true) => {}
            (false, _) => out.push(c),
        }
        digits = c.is_ascii_digit();
    }
    out
}

/// Fails, showing both, when `shape` is not the recorded one; records it
/// instead with `CANARY_RECORD_SHAPES=1`.
fn compare(shape: &Value, fixture: &str) {
    let now = serde_json::to_string_pretty(shape).unwrap() + "\n";
    if std::env::var_os("CANARY_RECORD_SHAPES").is_some() {
        std::fs::write(fixture, &now).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(fixture)
        .unwrap_or_else(|e| panic!("{fixture}: {e}: record it with CANARY_RECORD_SHAPES=1"));
    if recorded != now {
        let written = std::env::temp_dir().join("canary-shape-now.json");
        std::fs::write(&written, &now).unwrap();
        panic!(
            "what this build stores differs from the previous release's shape in {fixture}; this build's is in {}: \
             diff them. A change older builds must not misread needs a schema version; a deliberate one is recorded \
             with CANARY_RECORD_SHAPES=1",
            written.display()
        );
    }
}

mod etcd {
    use super::*;
    use crate::cluster::{Etcd, FAST, replica, wait_for_leader};
    use std::process::Command;

    const ETCD_SHAPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-shape-etcd.json");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cluster_state_is_written_in_the_previous_releases_shape() {
        let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
        let etcd = Etcd::start(dir.path(), 1);
        let p = replica(&etcd, &stable.url(), dir.path(), "node-a", FAST);
        wait_for_leader(&[&p]).await;
        // The controller records taking the lead at its next look: waited
        // for, so the steps never race it (it would record a rollout's step).
        let took = eventually(10, || async {
            let ev = admin_json(&client(), p.admin, "/api/events").await;
            ev["events"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "leader_changed"))
        })
        .await;
        assert!(took, "the controller did not take the lead");
        steps(p.admin, &canary.url()).await;
        // The incident and the report are written after the rollback, by
        // the ops worker: the shape is read once both are in.
        let mut shape = etcd_shape(&etcd.urls());
        for _ in 0..100 {
            let text = shape.to_string();
            if text.contains(" incident_recorded") && text.contains(" report_written") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            shape = etcd_shape(&etcd.urls());
        }
        drop(p);
        compare(&shape, ETCD_SHAPE);
    }

    /// Every key under `/canary/`, normalised, with its value's shape.
    fn etcd_shape(urls: &str) -> Value {
        let out = Command::new("etcdctl")
            .args(["--endpoints", urls, "get", "--prefix", "/canary/"])
            .output()
            .unwrap();
        assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
        // Key and value on a line each; canary's values are one-line JSON or plain words.
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut keys = Shapes::default();
        for pair in lines.chunks(2) {
            let [key, value] = pair else { panic!("a key without a value: {pair:?}") };
            // Events are keyed by time: named by their kind instead.
            let kind = serde_json::from_str::<Value>(value)
                .ok()
                .and_then(|v| v["kind"].as_str().map(str::to_string));
            let name = normalise_key(key).replace("node-a", "<node>");
            let name = match kind {
                Some(kind) if name.contains("/events/") => format!("{name} {kind}"),
                _ => name,
            };
            keys.add(&name, text_shape(value));
        }
        json!(keys.0)
    }
}
