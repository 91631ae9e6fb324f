//! Where canary's state lives: the routing state (share, excludes, upstreams,
//! which dynamic config was last applied), the rollouts, API-set feature flags
//! and an append-only event log.
//!
//! [`Store`] is the one interface the rest of canary uses; behind it sits one
//! of two [`Backend`]s:
//! - [`sqlite`]: a local file, the default for one machine.
//! - `etcd`: shared by every replica of a cluster; its writes
//!   that must not race are transactions compared on a revision.
//!
//! Every change of routing is written together with its event, before the
//! router sees it, so what is stored is never behind what users were served.

pub mod etcd;
pub mod secret;
pub mod sqlite;
pub mod unusable;

use canary_core::event::EventKind;
use canary_core::rollout::{Rollout, State};
use canary_core::time::UnixMs;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A failed read or write of the state.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{place}: {message}")]
pub struct StoreError {
    /// Which store: "state file /var/lib/canary/state.db", "etcd /canary/api".
    pub place: String,
    /// What went wrong.
    pub message: String,
}

/// Why the state cannot be trusted: a record this build cannot read, or a
/// schema newer than it knows. canary then serves stable only, the canary
/// blocked, and writes nothing until a person chooses a way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFault {
    /// Which store: "state file /var/lib/canary/state.db", "etcd ... (prefix /canary)".
    pub place: String,
    /// Which record: "routing", "schema".
    pub record: String,
    /// What is wrong with it.
    pub problem: String,
}

impl StateFault {
    /// The routing record at `place` cannot be read, because of `problem`.
    pub fn routing(place: String, problem: String) -> StateFault {
        StateFault { place, record: "routing".into(), problem }
    }

    /// The whole story for `status`, `/api/v2/health` and the log: what, where,
    /// what canary does meanwhile and the ways out.
    pub fn message(&self) -> String {
        format!(
            "{}: the {} record cannot be used ({}). canary serves stable only, with the canary \
             blocked, and changes no routing and runs no rollout until this is resolved: {}",
            self.place,
            self.record,
            self.problem,
            self.ways_out()
        )
    }

    /// What a person can do about it.
    fn ways_out(&self) -> &'static str {
        if self.record == "schema" && self.place.starts_with("etcd") {
            // Other replicas may be the newer canary: its state is not reset from here.
            return "run the canary version that wrote this state, or give this one a prefix of its own \
                    ([cluster] prefix); `--reset-state` does not override a newer cluster's state";
        }
        "restart with `--reset-state` to start again from the command line's and config's values \
         (what could not be read is kept, see `canary serve --help`), or run the canary version \
         that wrote this state"
    }

    /// The error a refused write returns.
    pub fn refusal(&self) -> StoreError {
        StoreError { place: self.place.clone(), message: format!("not written: {}", self.message()) }
    }
}

/// A record as read: absent, read, or there but not readable by this build.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded<T> {
    /// Never written.
    Absent,
    /// Read.
    Found(T),
    /// Written, but this build cannot read it: why, and the stored text.
    Unreadable {
        /// What is wrong with it.
        problem: String,
        /// The stored value, kept when the state is reset.
        raw: String,
    },
}

impl Loaded<PersistedRouting> {
    /// The routing record from its stored text.
    pub fn routing(text: Option<&[u8]>) -> Loaded<PersistedRouting> {
        let Some(bytes) = text else { return Loaded::Absent };
        match serde_json::from_slice(bytes) {
            Ok(p) => Loaded::Found(p),
            Err(e) => Loaded::Unreadable {
                problem: e.to_string(),
                raw: String::from_utf8_lossy(bytes).into_owned(),
            },
        }
    }
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
    /// A shadow step is on: copies of requests go to the canary. Written
    /// only when on, so a state without a shadow step reads as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// One event in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the log.
    pub id: i64,
    /// When it happened.
    pub at_ms: UnixMs,
    /// What happened, e.g. `share_changed`.
    pub kind: EventKind,
    /// Who did it: `api`, `flags-file`, `config`, ...
    pub source: String,
    /// The details, as JSON.
    pub detail: serde_json::Value,
}

/// A rollout as stored: read, or written by a build whose record this one
/// cannot read (kept as stored, never dropped: `history` still shows it).
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutRecord {
    /// Read.
    Read(Box<Rollout>),
    /// Stored, but not a rollout this build can read.
    Unreadable {
        /// Its number.
        id: i64,
        /// What is wrong with it.
        problem: String,
        /// The record as stored.
        raw: serde_json::Value,
    },
}

impl RolloutRecord {
    /// Rollout `id` from its stored text; `None` when the text is not JSON
    /// at all (such a record has never been listed).
    pub fn from_stored(id: i64, text: &[u8]) -> Option<RolloutRecord> {
        let raw: serde_json::Value = serde_json::from_slice(text).ok()?;
        Some(match Rollout::deserialize(&raw) {
            Ok(r) => RolloutRecord::Read(Box::new(r)),
            Err(e) => RolloutRecord::Unreadable { id, problem: e.to_string(), raw },
        })
    }

    /// Its number.
    pub fn id(&self) -> i64 {
        match self {
            RolloutRecord::Read(r) => r.id,
            RolloutRecord::Unreadable { id, .. } => *id,
        }
    }

    /// The rollout, when it could be read.
    pub fn rollout(&self) -> Option<&Rollout> {
        match self {
            RolloutRecord::Read(r) => Some(r),
            RolloutRecord::Unreadable { .. } => None,
        }
    }

    /// The rollout, when it could be read.
    pub fn into_rollout(self) -> Option<Rollout> {
        match self {
            RolloutRecord::Read(r) => Some(*r),
            RolloutRecord::Unreadable { .. } => None,
        }
    }
}

/// Written as stored: a rollout read as its record, an unreadable one as it was found.
impl Serialize for RolloutRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RolloutRecord::Read(r) => r.serialize(s),
            RolloutRecord::Unreadable { raw, .. } => raw.serialize(s),
        }
    }
}

/// A rollout and the events it is saved with.
#[derive(Debug, Clone, Copy)]
pub struct RolloutWrite<'a> {
    /// The rollout.
    pub rollout: &'a Rollout,
    /// The events the change is recorded with.
    pub events: &'a [(EventKind, serde_json::Value)],
}

impl RolloutWrite<'_> {
    /// The rollout's number.
    pub fn id(&self) -> i64 {
        self.rollout.id
    }

    /// Its state, kept beside the record (the state file's `state` column).
    pub fn state(&self) -> State {
        self.rollout.state
    }

    /// Its record as stored: a JSON object, keys in order (as written since
    /// the first build, so the stored text of an unchanged rollout does not change).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.rollout).unwrap_or_default()
    }
}

/// The shared state as read in one look: the newest rollout, and the
/// routing with the revision that wrote it.
#[derive(Debug)]
pub struct Fresh {
    /// The newest rollout, when there is one this build can read.
    pub rollout: Option<Rollout>,
    /// The routing and its revision, when there is one this build can read.
    pub routing: Option<(PersistedRouting, i64)>,
    /// The API-set feature flags, when any were set and can be read.
    pub flags: Option<serde_json::Value>,
}

/// What a store keeps, and how. Each write of state is atomic with its events.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The persisted routing state: absent, read, or unreadable by this build.
    fn load_routing(&self) -> Result<Loaded<PersistedRouting>, StoreError>;
    /// A schema newer than this build's, found when the store was opened:
    /// nothing of it is written while it stands.
    fn schema_fault(&self) -> Option<StateFault> {
        None
    }
    /// Where the state is, as errors name it.
    fn place(&self) -> String;
    /// Saves the routing state with its event, atomically.
    fn save_routing(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Saves a rollout (inserted or replaced) with its events, atomically.
    fn save_rollout(&self, w: RolloutWrite<'_>) -> Result<(), StoreError>;
    /// Saves the routing state and a rollout together: the controller's
    /// step, with the share it sets. Where another replica may read the two
    /// between the writes (etcd), they are one transaction: a write that
    /// lands late or half would otherwise leave a share that no rollout
    /// step explains, which the next leader takes for an operator's hand
    /// and pauses on. A single file has no such reader: written one after
    /// the other, as before.
    fn save_routing_and_rollout(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        detail: &serde_json::Value,
        rollout: RolloutWrite<'_>,
    ) -> Result<(), StoreError> {
        self.save_routing(r, kind, "controller", detail)?;
        self.save_rollout(rollout)
    }
    /// Rollouts, newest first.
    fn rollouts(&self, limit: usize) -> Result<Vec<RolloutRecord>, StoreError>;
    /// One rollout as saved.
    fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>, StoreError>;
    /// One rollout's events, oldest first.
    fn rollout_events(&self, id: i64) -> Result<Vec<Event>, StoreError>;
    /// The next rollout number.
    fn next_rollout_id(&self) -> Result<i64, StoreError>;
    /// The shared state as it is now, read in one look within `within`:
    /// for a replica to answer with what another replica just wrote.
    /// `None` for a store only this process writes, which is never behind.
    fn fresh(&self, _within: std::time::Duration) -> Result<Option<Fresh>, StoreError> {
        Ok(None)
    }
    /// Appends an event.
    fn record(&self, kind: &EventKind, source: &str, detail: &serde_json::Value) -> Result<(), StoreError>;
    /// The newest events, newest first.
    fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// A JSON value kept under `key`.
    fn kv_get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// The value under `key`, first keeping `value` there if there is none:
    /// of replicas racing to create it, every one gets the winner's.
    fn kv_create(&self, key: &str, value: &serde_json::Value) -> Result<serde_json::Value, StoreError>;
    /// Keeps `value` under `key`, with its event, atomically.
    fn kv_put(
        &self,
        key: &str,
        value: &serde_json::Value,
        kind: &EventKind,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Whether the routing state at store revision `rev`, written elsewhere,
    /// is newer than what this process last saw (and now it has seen it).
    /// A single file has no other writer.
    fn accept_revision(&self, _rev: i64) -> bool {
        true
    }
}

/// The state, opened.
#[derive(Debug)]
pub struct Store {
    backend: Box<dyn Backend>,
    /// The local state file's path: relative record folders resolve beside it
    /// even when the state itself is in etcd.
    local: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state file at `path`. A file that is no
    /// state file, or a damaged one, does not stop the start: it is opened as
    /// [`unusable::Unusable`], whose fault keeps the canary blocked. With
    /// `reset`, such a file, or one of a newer schema, is renamed aside and a
    /// new one started, the move recorded as its first event.
    pub fn open(path: &Path, reset: bool) -> Result<Store, StoreError> {
        let fault = match sqlite::Sqlite::open(path) {
            Ok(s) => match s.schema_fault() {
                Some(f) if reset => f,
                _ => return Ok(Store { backend: Box::new(s), local: path.to_path_buf() }),
            },
            Err(sqlite::OpenError::Damaged(e)) => {
                let place = format!("state file {}", path.display());
                if !reset {
                    let backend = Box::new(unusable::Unusable::new(place, e.to_string()));
                    return Ok(Store { backend, local: path.to_path_buf() });
                }
                StateFault { place, record: "file".into(), problem: e.to_string() }
            }
            Err(sqlite::OpenError::Other(e)) => return Err(e),
        };
        let aside = sqlite::set_aside(path)?;
        let fresh = sqlite::Sqlite::open(path).map_err(|e| e.into_store_error(path))?;
        let detail = serde_json::json!({
            "record": fault.record, "problem": fault.problem, "set_aside": aside.display().to_string(),
        });
        fresh.record(&EventKind::StateReset, "config", &detail)?;
        tracing::warn!(file = %path.display(), set_aside = %aside.display(), problem = %fault.problem,
            "--reset-state: the state file could not be used; it was renamed aside and a new one started");
        Ok(Store { backend: Box::new(fresh), local: path.to_path_buf() })
    }

    /// A store over another backend; `local` is where the state file would be.
    pub fn with_backend(backend: Box<dyn Backend>, local: &Path) -> Store {
        Store { backend, local: local.to_path_buf() }
    }

    /// The state file's path (beside which records are written).
    pub fn path(&self) -> PathBuf {
        self.local.clone()
    }

    /// The shared state as it is now (see [`Backend::fresh`]).
    pub fn fresh(&self, within: std::time::Duration) -> Result<Option<Fresh>, StoreError> {
        self.backend.fresh(within)
    }

    /// The newest rollout, when it can be read.
    pub fn latest_rollout(&self) -> Result<Option<Rollout>, StoreError> {
        Ok(self.backend.rollouts(1)?.into_iter().next().and_then(RolloutRecord::into_rollout))
    }

    /// Appends an event from `source` (hooks, incidents, tags: things done
    /// after the fact). A kind may be given by its name (`"tls_reloaded"`).
    pub fn record(
        &self,
        kind: impl Into<EventKind>,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.backend.record(&kind.into(), source, detail)
    }
}

/// Every read and write is the backend's own.
impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}

/// The wall clock now (the epoch if the clock is before it): when an event
/// happened, as recorded.
pub fn now() -> UnixMs {
    UnixMs::from(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::plan::Plan;
    use canary_core::time::UnixMs;

    #[test]
    fn a_rollout_is_listed_as_it_was_stored() {
        let (r, _) = Rollout::start(7, "http://c", "http://s", Plan::default(), UnixMs::from_millis(1_000));
        let stored = RolloutWrite { rollout: &r, events: &[] }.body();
        let read = RolloutRecord::from_stored(7, stored.to_string().as_bytes()).unwrap();
        assert_eq!(read.rollout(), Some(&r));
        assert_eq!(serde_json::to_value(&read).unwrap(), stored);
    }

    #[test]
    fn a_record_this_build_cannot_read_is_kept_as_stored() {
        let raw = serde_json::json!({"id": 3, "state": "made_up", "shape": "newer"});
        let read = RolloutRecord::from_stored(3, raw.to_string().as_bytes()).unwrap();
        assert!(matches!(&read, RolloutRecord::Unreadable { id: 3, .. }), "{read:?}");
        assert_eq!(serde_json::to_value(&read).unwrap(), raw);
        assert_eq!(RolloutRecord::from_stored(4, b"not json"), None);
    }
}
