//! The live routing state shared by the proxy workers and the admin API.
//!
//! Workers read the routing table and upstreams through `ArcSwap` pointers: a
//! load is a few atomic operations and never blocks. A change builds a whole new
//! table, writes it with its event to the state file, and only then swaps it in,
//! so a request sees the old table or the new one, and the file is never behind.
//! Changes are serialised by one mutex that the hot path never takes.

use crate::store::{PersistedRouting, Store, StoreError};
use crate::upstream::Upstream;
use arc_swap::{ArcSwap, Guard};
use canary_core::exclude::Excludes;
use canary_core::{RoutingTable, Share};
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};

/// The two upstreams, replaced together.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstreams {
    /// Stable.
    pub stable: Upstream,
    /// Canary, if configured.
    pub canary: Option<Upstream>,
}

/// Who changed the routing; recorded with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file or flags at start, for a new state file.
    Config,
    /// The admin API.
    Api,
    /// The dynamic config file.
    FlagsFile,
}

impl Source {
    /// The name recorded in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
            Source::FlagsFile => "flags-file",
        }
    }
}

/// A requested change; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// A new share.
    pub share: Option<Share>,
    /// New excludes.
    pub excludes: Option<Excludes>,
    /// The dynamic config content hash this change applies.
    pub flags_hash: Option<String>,
}

/// The live state.
#[derive(Debug)]
pub struct Live {
    routing: ArcSwap<RoutingTable>,
    upstreams: ArcSwap<Upstreams>,
    flags_hash: Mutex<Option<String>>,
    store: Store,
}

impl Live {
    /// Starts from the persisted state when there is one, else from the config
    /// (recording that as the first event).
    pub fn new(store: Store, table: RoutingTable, upstreams: Upstreams) -> Result<Live, StoreError> {
        let (table, hash) = match store.load_routing()? {
            Some(p) => restore(table, p),
            None => {
                store.save_routing(
                    &persisted(&table, None),
                    "routing_initialised",
                    Source::Config.as_str(),
                    &describe(&table),
                )?;
                (table, None)
            }
        };
        Ok(Live {
            routing: ArcSwap::from_pointee(table),
            upstreams: ArcSwap::from_pointee(upstreams),
            flags_hash: Mutex::new(hash),
            store,
        })
    }

    /// The current routing table (lock-free).
    pub fn routing(&self) -> Guard<Arc<RoutingTable>> {
        self.routing.load()
    }

    /// The current upstreams (lock-free).
    pub fn upstreams(&self) -> Guard<Arc<Upstreams>> {
        self.upstreams.load()
    }

    /// The state file.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hash of the dynamic config last applied.
    pub fn flags_hash(&self) -> Option<String> {
        self.lock_hash().clone()
    }

    fn lock_hash(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.flags_hash.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a change: persist with its event, then swap. Returns the new
    /// table, or the unchanged one when the change changes nothing.
    pub fn apply(&self, change: Change, source: Source) -> Result<Arc<RoutingTable>, StoreError> {
        // Holding the hash lock serialises writers, so the order on disk is the
        // order of swaps.
        let mut hash = self.lock_hash();
        let old = self.routing.load_full();
        let mut new = (*old).clone();
        if let Some(s) = change.share {
            new.share = s;
        }
        if let Some(e) = change.excludes {
            new.excludes = e;
        }
        let new_hash = change.flags_hash.or_else(|| hash.clone());
        if new == *old && new_hash == *hash {
            return Ok(old);
        }
        let detail = json!({"from": describe(&old), "to": describe(&new)});
        self.store.save_routing(
            &persisted(&new, new_hash.clone()),
            kind(&old, &new),
            source.as_str(),
            &detail,
        )?;
        *hash = new_hash;
        let new = Arc::new(new);
        self.routing.store(Arc::clone(&new));
        Ok(new)
    }
}

fn restore(mut table: RoutingTable, p: PersistedRouting) -> (RoutingTable, Option<String>) {
    table.share = Share::from_basis_points(p.share_bp).unwrap_or(table.share);
    // Patterns were validated before they were saved; a file edited by hand
    // into an invalid state keeps the config's excludes instead.
    if let Ok(ex) = Excludes::new(&p.excludes) {
        table.excludes = ex;
    }
    (table, p.flags_hash)
}

fn persisted(t: &RoutingTable, flags_hash: Option<String>) -> PersistedRouting {
    PersistedRouting {
        share_bp: t.share.basis_points(),
        excludes: t.excludes.patterns().to_vec(),
        flags_hash,
    }
}

fn describe(t: &RoutingTable) -> serde_json::Value {
    json!({"share": t.share.percent(), "excludes": t.excludes.patterns()})
}

fn kind(old: &RoutingTable, new: &RoutingTable) -> &'static str {
    match (old.share != new.share, old.excludes != new.excludes) {
        (true, false) => "share_changed",
        (false, true) => "excludes_changed",
        (true, true) => "routing_changed",
        (false, false) => "flags_applied",
    }
}
