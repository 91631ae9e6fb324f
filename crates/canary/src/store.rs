//! The state file: an SQLite database holding the routing state (share,
//! excludes, which dynamic config was last applied) and an append-only event log.
//!
//! Every change of routing is written in one transaction together with its
//! event, before the router sees it, so what is on disk is never behind what
//! users were served. WAL mode with `synchronous=FULL` makes a committed change
//! survive `kill -9` and power loss.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// The schema this build writes; older files are migrated forward on open.
const SCHEMA_VERSION: i64 = 1;

/// A failed read or write of the state file.
#[derive(Debug, thiserror::Error)]
#[error("state file {path}: {source}")]
pub struct StoreError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// The routing state as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedRouting {
    /// The share in basis points.
    pub share_bp: u16,
    /// Exclude patterns.
    pub excludes: Vec<String>,
    /// The content hash of the dynamic config file last applied, if any.
    pub flags_hash: Option<String>,
    /// The upstreams, once a rollout has set them (they then outlive the config).
    #[serde(default)]
    pub upstreams: Option<(String, Option<String>)>,
    /// The canary was rolled back: no traffic reaches it until a deploy.
    #[serde(default)]
    pub canary_blocked: bool,
}

/// One event in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the log.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened, e.g. `share_changed`.
    pub kind: String,
    /// Who did it: `api`, `flags-file`, `config`, ...
    pub source: String,
    /// The details, as JSON.
    pub detail: serde_json::Value,
}

/// The state file, opened.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: String,
}

impl Store {
    /// Opens (creating if needed) the state file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let wrap = |source| StoreError { path: p.clone(), source };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rollouts (id INTEGER PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
               id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
               kind TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL);",
        )
        .map_err(wrap)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(wrap)?;
        Ok(Store { conn: Mutex::new(conn), path: p })
    }

    /// The state file's path.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.path)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError { path: self.path.clone(), source }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic mid-transaction rolls the transaction back on drop, so the
        // connection is consistent and safe to keep using.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The persisted routing state, if any was ever saved.
    pub fn load_routing(&self) -> Result<Option<PersistedRouting>, StoreError> {
        let text: Option<String> = self
            .lock()
            .query_row("SELECT value FROM kv WHERE key = 'routing'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        // A value this build cannot read is treated as absent rather than
        // fatal: the config's values then apply, and the event log says so.
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Saves the routing state and its event in one transaction.
    pub fn save_routing(
        &self,
        r: &PersistedRouting,
        kind: &str,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let value = serde_json::to_string(r).unwrap_or_default();
        tx.execute(
            "INSERT INTO kv (key, value) VALUES ('routing', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
            [value],
        )
        .map_err(|e| self.err(e))?;
        insert_event(&tx, kind, source, detail).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Saves a rollout (inserted or replaced) with its events, in one transaction.
    pub fn save_rollout(
        &self,
        id: i64,
        state: &str,
        body: &serde_json::Value,
        events: &[(&str, serde_json::Value)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO rollouts (id, state, body) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET state = ?2, body = ?3",
            params![id, state, body.to_string()],
        )
        .map_err(|e| self.err(e))?;
        for (kind, detail) in events {
            insert_event(&tx, kind, "controller", detail).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Rollouts, newest first.
    pub fn rollouts(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM rollouts ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        let bodies: Vec<String> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        Ok(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect())
    }

    /// One rollout's events, oldest first: its timeline.
    pub fn rollout_events(&self, id: i64) -> Result<Vec<Event>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at_ms, kind, source, detail FROM events
                 WHERE json_valid(detail) AND json_extract(detail, '$.rollout') = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([id], row_to_event).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// One rollout as saved.
    pub fn rollout(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let body: Option<String> = self
            .lock()
            .query_row("SELECT body FROM rollouts WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// Appends an event from `source` (hooks, incidents, tags: things done after the fact).
    pub fn record_from(
        &self,
        kind: &str,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        insert_event(&self.lock(), kind, source, detail).map_err(|e| self.err(e))
    }

    /// A JSON value kept under `key`.
    pub fn kv_get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self
            .lock()
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Keeps `value` under `key`, with its event, in one transaction.
    pub fn kv_put(
        &self,
        key: &str,
        value: &serde_json::Value,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value.to_string()],
        )
        .map_err(|e| self.err(e))?;
        insert_event(&tx, kind, "api", detail).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// The next rollout number.
    pub fn next_rollout_id(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM rollouts", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Appends an event.
    pub fn record(&self, kind: &str, source: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        insert_event(&self.lock(), kind, source, detail).map_err(|e| self.err(e))
    }

    /// The newest events, newest first.
    pub fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, at_ms, kind, source, detail FROM events ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([limit as i64], row_to_event).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let detail: String = r.get(4)?;
    Ok(Event {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        source: r.get(3)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
}

fn insert_event(
    conn: &Connection,
    kind: &str,
    source: &str,
    detail: &serde_json::Value,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (at_ms, kind, source, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), kind, source, detail.to_string()],
    )
    .map(|_| ())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_events_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let r = PersistedRouting {
            share_bp: 2500,
            excludes: vec!["/a/*".into()],
            flags_hash: None,
            upstreams: None,
            canary_blocked: true,
        };
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.load_routing().unwrap(), None);
            s.save_routing(&r, "share_changed", "api", &serde_json::json!({"to": 25.0})).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.load_routing().unwrap(), Some(r));
        let ev = s.events(10).unwrap();
        assert_eq!((ev.len(), ev[0].kind.as_str(), ev[0].source.as_str()), (1, "share_changed", "api"));
        assert_eq!(ev[0].detail["to"], 25.0);
    }
}
