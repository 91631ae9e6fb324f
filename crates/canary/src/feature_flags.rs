//! Feature flags served to services (S15, S16): from `FEATURE_FLAG_*`
//! environment variables at start, the dynamic JSON file (reloaded with it),
//! and flags set through the admin API (kept in the state file). Later sources
//! win per flag: env < file < API.

use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use canary_core::Share;
use canary_core::event::EventKind;
use canary_core::exclude::Excludes;
use canary_core::flags::{Flag, merge};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};

/// The flags.
#[derive(Debug)]
pub struct FeatureFlags {
    env: Vec<Flag>,
    file: ArcSwap<Vec<Flag>>,
    api: Mutex<Vec<Flag>>,
}

const KEY: &str = "flags";

impl FeatureFlags {
    /// From the environment's pairs and the flags the API set before (in `store`).
    pub fn new(env: Vec<Flag>, store: &Store) -> Result<FeatureFlags, StoreError> {
        let api = store.kv_get(KEY)?.map(|v| from_json(&v)).unwrap_or_default();
        Ok(FeatureFlags { env, file: ArcSwap::from_pointee(Vec::new()), api: Mutex::new(api) })
    }

    /// Replaces the file's flags (on each good load of the file).
    pub fn set_file(&self, flags: Vec<Flag>) {
        self.file.store(Arc::new(flags));
    }

    /// All flags, merged.
    pub fn all(&self) -> Vec<Flag> {
        let file = self.file.load();
        let api = self.lock().clone();
        merge(&[&self.env, &file, &api])
    }

    /// Sets a flag through the API; persisted with its event.
    pub fn set(&self, store: &Store, name: &str, enabled: bool, percentage: Share) -> Result<(), StoreError> {
        let mut api = self.lock();
        let mut next = api.clone();
        next.retain(|f| f.name != name);
        next.push(Flag {
            name: name.to_string(),
            enabled,
            percentage,
            excludes: Excludes::none(),
            source: "api",
        });
        store.kv_put(
            KEY,
            &to_json(&next),
            &EventKind::FlagSet,
            &json!({"flag": name, "enabled": enabled, "percentage": percentage.percent()}),
        )?;
        *api = next;
        Ok(())
    }

    /// Removes the API's value of a flag (env or file values show again).
    pub fn unset(&self, store: &Store, name: &str) -> Result<bool, StoreError> {
        let mut api = self.lock();
        let mut next = api.clone();
        next.retain(|f| f.name != name);
        if next.len() == api.len() {
            return Ok(false);
        }
        store.kv_put(KEY, &to_json(&next), &EventKind::FlagUnset, &json!({"flag": name}))?;
        *api = next;
        Ok(true)
    }

    /// Takes the API-set flags another replica stored.
    pub fn adopt_api(&self, v: &Value) {
        *self.lock() = from_json(v);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Flag>> {
        self.api.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A flag as JSON.
pub fn describe(f: &Flag) -> Value {
    json!({"name": f.name, "enabled": f.enabled, "percentage": f.percentage.percent(), "exclude": f.excludes.patterns(), "source": f.source})
}

fn to_json(flags: &[Flag]) -> Value {
    Value::Array(flags.iter().map(describe).collect())
}

fn from_json(v: &Value) -> Vec<Flag> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(Flag {
                name: f["name"].as_str()?.to_string(),
                enabled: f["enabled"].as_bool()?,
                percentage: Share::from_percent(f["percentage"].as_f64()?).ok()?,
                excludes: Excludes::none(),
                source: "api",
            })
        })
        .collect()
}
