//! The state file: an SQLite database holding the routing state, rollouts,
//! key-value state and the event log; one machine's store.
//!
//! Every change of routing is written in one transaction together with its
//! event. WAL mode with `synchronous=FULL` makes a committed change survive
//! `kill -9` and power loss.

use super::{
    Backend, Event, Loaded, PersistedRouting, RolloutRecord, RolloutWrite, StateFault, StoreError, now,
};
use canary_core::event::EventKind;
use canary_core::time::UnixMs;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The schema this build writes (SQLite's `user_version`); older files are
/// migrated forward on open, newer ones are not touched.
pub const SCHEMA_VERSION: i64 = 1;

/// Why a state file did not open.
#[derive(Debug)]
pub enum OpenError {
    /// It is not an SQLite database, or a damaged one: its content cannot be read.
    Damaged(rusqlite::Error),
    /// Anything else (no such folder, no permission): the start fails.
    Other(StoreError),
}

impl OpenError {
    /// As a store error about the file at `path`, whatever the cause.
    pub fn into_store_error(self, path: &Path) -> StoreError {
        match self {
            OpenError::Damaged(e) => {
                StoreError { place: format!("state file {}", path.display()), message: e.to_string() }
            }
            OpenError::Other(e) => e,
        }
    }
}

/// Renames the state file at `path` (with its WAL and shared-memory files)
/// to `{path}.set-aside-{ms}`, so a new one can start in its place and the
/// old one stays for a person to look at; returns the new name.
pub fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let aside = PathBuf::from(format!("{}.set-aside-{}", path.display(), now()));
    let fail = |e: std::io::Error| StoreError {
        place: format!("state file {}", path.display()),
        message: format!("cannot rename it to {}: {e}", aside.display()),
    };
    std::fs::rename(path, &aside).map_err(fail)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", aside.display())).map_err(fail)?;
        }
    }
    Ok(aside)
}

/// The state file, opened.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    path: String,
    /// A newer schema: read what can be read, write nothing.
    fault: Option<StateFault>,
}

impl Sqlite {
    /// Opens (creating if needed) the state file at `path`. A file of a newer
    /// schema is opened as it is, not touched: [`Backend::schema_fault`] says so
    /// and every write is refused.
    pub fn open(path: &Path) -> Result<Sqlite, OpenError> {
        let p = path.display().to_string();
        Sqlite::open_as(path, p.clone()).map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
            {
                OpenError::Damaged(rusqlite::Error::SqliteFailure(f, None))
            }
            e => OpenError::Other(StoreError { place: format!("state file {p}"), message: e.to_string() }),
        })
    }

    fn open_as(path: &Path, p: String) -> rusqlite::Result<Sqlite> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            let fault = StateFault {
                place: format!("state file {p}"),
                record: "schema".into(),
                problem: format!(
                    "the file has schema version {found}, written by a newer canary; this canary {} reads \
                     versions up to {SCHEMA_VERSION}",
                    env!("CARGO_PKG_VERSION")
                ),
            };
            return Ok(Sqlite { conn: Mutex::new(conn), path: p, fault: Some(fault) });
        }
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rollouts (id INTEGER PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
               id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
               kind TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL);",
        )?;
        // Version 0 is a new file: the tables above are version 1's.
        if found < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Sqlite { conn: Mutex::new(conn), path: p, fault: None })
    }

    /// Refuses a write to a file of a newer schema.
    fn writable(&self) -> Result<(), StoreError> {
        self.fault.as_ref().map_or(Ok(()), |f| Err(f.refusal()))
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
    /// The persisted routing state: absent, read, or unreadable by this build.
    fn load_routing(&self) -> Result<Loaded<PersistedRouting>, StoreError> {
        let text: Option<Vec<u8>> = self
            .lock()
            .query_row("SELECT CAST(value AS BLOB) FROM kv WHERE key = 'routing'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(Loaded::routing(text.as_deref()))
    }

    fn schema_fault(&self) -> Option<StateFault> {
        self.fault.clone()
    }

    fn place(&self) -> String {
        format!("state file {}", self.path)
    }

    /// Saves the routing state and its event in one transaction.
    fn save_routing(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.writable()?;
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
    fn save_rollout(&self, w: RolloutWrite<'_>) -> Result<(), StoreError> {
        self.writable()?;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO rollouts (id, state, body) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET state = ?2, body = ?3",
            params![w.id(), w.state().as_str(), w.body().to_string()],
        )
        .map_err(|e| self.err(e))?;
        for (kind, detail) in w.events {
            insert_event(&tx, kind, "controller", detail).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Rollouts, newest first.
    fn rollouts(&self, limit: usize) -> Result<Vec<RolloutRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, body FROM rollouts ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let bodies: Vec<(i64, String)> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        Ok(bodies.iter().filter_map(|(id, b)| RolloutRecord::from_stored(*id, b.as_bytes())).collect())
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
    fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>, StoreError> {
        let body: Option<String> = self
            .lock()
            .query_row("SELECT body FROM rollouts WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(body.and_then(|b| RolloutRecord::from_stored(id, b.as_bytes())))
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

    fn kv_create(&self, key: &str, value: &serde_json::Value) -> Result<serde_json::Value, StoreError> {
        self.writable()?;
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO kv (key, value) VALUES (?1, ?2)",
            params![key, value.to_string()],
        )
        .map_err(|e| self.err(e))?;
        let text: String = conn
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        serde_json::from_str(&text).map_err(|e| StoreError {
            place: format!("state file {}", self.path),
            message: format!("the value of `{key}` is not JSON: {e}"),
        })
    }

    /// Keeps `value` under `key`, with its event, in one transaction.
    fn kv_put(
        &self,
        key: &str,
        value: &serde_json::Value,
        kind: &EventKind,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.writable()?;
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
    fn record(&self, kind: &EventKind, source: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        self.writable()?;
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
        at_ms: UnixMs::from_i64(r.get(1)?),
        kind: EventKind::parse(&r.get::<_, String>(2)?),
        source: r.get(3)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
}

fn insert_event(
    conn: &Connection,
    kind: &EventKind,
    source: &str,
    detail: &serde_json::Value,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (at_ms, kind, source, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now().as_i64(), kind.as_str(), source, detail.to_string()],
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
            shadow: false,
        };
        {
            let s = Sqlite::open(&path).unwrap();
            assert_eq!(s.load_routing().unwrap(), Loaded::Absent);
            s.save_routing(&r, &EventKind::ShareChanged, "api", &serde_json::json!({"to": 25.0})).unwrap();
        }
        let s = Sqlite::open(&path).unwrap();
        assert_eq!(s.load_routing().unwrap(), Loaded::Found(r));
        let ev = s.events(10).unwrap();
        assert_eq!((ev.len(), ev[0].kind.as_str(), ev[0].source.as_str()), (1, "share_changed", "api"));
        assert_eq!(ev[0].detail["to"], 25.0);
    }
}
