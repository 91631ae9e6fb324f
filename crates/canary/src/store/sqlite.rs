//! The state file: an SQLite database holding the routing state, rollouts,
//! key-value state and the event log; one machine's store.
//!
//! Every change of routing is written in one transaction together with its
//! event. WAL mode with `synchronous=FULL` makes a committed change survive
//! `kill -9` and power loss.

use super::{Backend, Event, PersistedRouting, StoreError, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// The schema this build writes; older files are migrated forward on open.
const SCHEMA_VERSION: i64 = 1;

/// The state file, opened.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    path: String,
}

impl Sqlite {
    /// Opens (creating if needed) the state file at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let p = path.display().to_string();
        let wrap =
            |e: rusqlite::Error| StoreError { place: format!("state file {p}"), message: e.to_string() };
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
        Ok(Sqlite { conn: Mutex::new(conn), path: p })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError { place: format!("state file {}", self.path), message: e.to_string() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic mid-transaction rolls the transaction back on drop, so the
        // connection is consistent and safe to keep using.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for Sqlite {
    /// The persisted routing state, if any was ever saved.
    fn load_routing(&self) -> Result<Option<PersistedRouting>, StoreError> {
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
    fn save_routing(
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
    fn save_rollout(
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
    fn rollouts(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM rollouts ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        let bodies: Vec<String> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        Ok(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect())
    }

    /// One rollout's events, oldest first: its timeline.
    fn rollout_events(&self, id: i64) -> Result<Vec<Event>, StoreError> {
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
    fn rollout(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let body: Option<String> = self
            .lock()
            .query_row("SELECT body FROM rollouts WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// A JSON value kept under `key`.
    fn kv_get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self
            .lock()
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Keeps `value` under `key`, with its event, in one transaction.
    fn kv_put(
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
    fn next_rollout_id(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM rollouts", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Appends an event.
    fn record(&self, kind: &str, source: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        insert_event(&self.lock(), kind, source, detail).map_err(|e| self.err(e))
    }

    /// The newest events, newest first.
    fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
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
            let s = Sqlite::open(&path).unwrap();
            assert_eq!(s.load_routing().unwrap(), None);
            s.save_routing(&r, "share_changed", "api", &serde_json::json!({"to": 25.0})).unwrap();
        }
        let s = Sqlite::open(&path).unwrap();
        assert_eq!(s.load_routing().unwrap(), Some(r));
        let ev = s.events(10).unwrap();
        assert_eq!((ev.len(), ev[0].kind.as_str(), ev[0].source.as_str()), (1, "share_changed", "api"));
        assert_eq!(ev[0].detail["to"], 25.0);
    }
}
