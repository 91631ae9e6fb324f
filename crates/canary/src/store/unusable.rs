//! A state file that cannot be read at all (not an SQLite database, or a
//! damaged one): canary still starts, in front of stable only, and this
//! backend stands in for the file. It reads as empty, refuses every write and
//! reports the fault, so nothing is routed to a canary on values no one
//! could read and the file is left as it was for a person to look at.

use canary_core::event::EventKind;

use super::{Backend, Event, Loaded, PersistedRouting, RolloutRecord, RolloutWrite, StateFault, StoreError};

/// The stand-in for a file that cannot be read.
#[derive(Debug)]
pub struct Unusable {
    fault: StateFault,
}

impl Unusable {
    /// Stands in for the file at `place` ("state file ..."), unreadable because of `problem`.
    pub fn new(place: String, problem: String) -> Unusable {
        Unusable { fault: StateFault { place, record: "file".into(), problem } }
    }
}

impl Backend for Unusable {
    fn load_routing(&self) -> Result<Loaded<PersistedRouting>, StoreError> {
        Ok(Loaded::Absent)
    }

    fn schema_fault(&self) -> Option<StateFault> {
        Some(self.fault.clone())
    }

    fn place(&self) -> String {
        self.fault.place.clone()
    }

    fn save_routing(
        &self,
        _: &PersistedRouting,
        _: &EventKind,
        _: &str,
        _: &serde_json::Value,
    ) -> Result<(), StoreError> {
        Err(self.fault.refusal())
    }

    fn save_rollout(&self, _: RolloutWrite<'_>) -> Result<(), StoreError> {
        Err(self.fault.refusal())
    }

    fn rollouts(&self, _: usize) -> Result<Vec<RolloutRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn rollout(&self, _: i64) -> Result<Option<RolloutRecord>, StoreError> {
        Ok(None)
    }

    fn rollout_events(&self, _: i64) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }

    fn next_rollout_id(&self) -> Result<i64, StoreError> {
        Err(self.fault.refusal())
    }

    fn record(&self, _: &EventKind, _: &str, _: &serde_json::Value) -> Result<(), StoreError> {
        Err(self.fault.refusal())
    }

    fn events(&self, _: usize) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }

    fn kv_get(&self, _: &str) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(None)
    }

    fn kv_create(&self, _: &str, _: &serde_json::Value) -> Result<serde_json::Value, StoreError> {
        Err(self.fault.refusal())
    }

    fn kv_put(
        &self,
        _: &str,
        _: &serde_json::Value,
        _: &EventKind,
        _: &serde_json::Value,
    ) -> Result<(), StoreError> {
        Err(self.fault.refusal())
    }
}
