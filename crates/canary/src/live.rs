//! The live routing state: what the data plane routes by (its
//! [`Routes`] snapshot), and every change to it, persisted first.
//!
//! Workers read the routing table and upstreams from [`Routes`] without a
//! lock. A change builds a whole new table, writes it with its event to the
//! state file, and only then publishes it, so a request sees the old table or
//! the new one, and the file is never behind. Changes are serialised by one
//! mutex that the hot path never takes.
//!
//! State that cannot be read fails closed: a routing record this build cannot
//! parse, a newer schema or a damaged file leaves canary serving stable only,
//! the canary blocked, and every routing change refused with the reason, until
//! a person restarts with `--reset-state` or runs the canary that wrote it.
//! It never routes users to a canary on values it could not read.

use crate::feature_flags::FeatureFlags;
use crate::store::{Loaded, PersistedRouting, RolloutWrite, StateFault, Store, StoreError};
use arc_swap::{ArcSwapOption, Guard};
use canary_core::event::EventKind;
use canary_core::exclude::Excludes;
use canary_core::upstream::Upstream;
use canary_core::{RoutingTable, Share};
pub use canary_proxy::Upstreams;
use canary_proxy::routes::Routes;
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Who changed the routing; recorded with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file or flags at start, for a new state file.
    Config,
    /// The admin API.
    Api,
    /// The dynamic config file.
    FlagsFile,
    /// The rollout controller.
    Controller,
}

impl Source {
    /// The name recorded in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
            Source::FlagsFile => "flags-file",
            Source::Controller => "controller",
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
    /// New upstreams (a rollout starting, promoted, or undone).
    pub upstreams: Option<Upstreams>,
    /// Block the canary (a rollback) or lift the block (a deploy, a forced adjust).
    pub blocked: Option<bool>,
    /// Start (`true`) or end a shadow step: copies of requests to the canary.
    pub shadow: Option<bool>,
}

/// What is persisted beside the routing table.
#[derive(Debug, Clone, Default, PartialEq)]
struct Meta {
    flags_hash: Option<String>,
    /// Upstreams set at runtime; they outlive the config's from then on.
    pinned: Option<(String, Option<String>)>,
    /// The table in effect is ahead of the store (an emergency rollback the
    /// store did not take): the next change is written even if it changes
    /// nothing here.
    unsaved: bool,
}

/// The live state.
#[derive(Debug)]
pub struct Live {
    /// What the workers route by; written only under the meta lock.
    routes: Arc<Routes>,
    meta: Mutex<Meta>,
    /// The state could not be read: the canary is blocked and no routing is
    /// written. Read without the meta lock, which a writer holds while it
    /// waits on the store: the election and health look at it meanwhile.
    fault: ArcSwapOption<StateFault>,
    store: Store,
    /// Feature flags served to services.
    pub flags: FeatureFlags,
}

impl Live {
    /// Starts from the persisted state when there is one, else from the config
    /// (recording that as the first event). State that cannot be read fails
    /// closed (see the module's doc), unless `reset` says to start from the
    /// config's values, keeping the unreadable record in the event log.
    pub fn new(
        store: Store,
        table: RoutingTable,
        upstreams: Upstreams,
        env_flags: Vec<canary_core::flags::Flag>,
        reset: bool,
    ) -> Result<Live, StoreError> {
        let flags = FeatureFlags::new(env_flags, &store)?;
        let (table, upstreams, meta, fault) = match (store.schema_fault(), store.load_routing()?) {
            (Some(fault), _) => {
                if reset {
                    tracing::warn!("--reset-state ignored: {}", fault.message());
                }
                fail_closed(table, upstreams, fault)
            }
            (None, Loaded::Found(p)) => sound(restore(table, upstreams, p)),
            (None, Loaded::Absent) => initialise(&store, table, upstreams)?,
            (None, Loaded::Unreadable { problem, raw }) if reset => {
                sound(reset_routing(&store, table, upstreams, &problem, &raw)?)
            }
            (None, Loaded::Unreadable { problem, .. }) => {
                let fault = StateFault::routing(store.place(), problem);
                fail_closed(table, upstreams, fault)
            }
        };
        Ok(Live {
            routes: Arc::new(Routes::new(table, upstreams)),
            meta: Mutex::new(meta),
            fault: ArcSwapOption::from(fault.map(Arc::new)),
            store,
            flags,
        })
    }

    /// Why the state cannot be used, while it cannot.
    pub fn fault(&self) -> Option<StateFault> {
        self.fault.load_full().map(|f| (*f).clone())
    }

    /// A routing record another replica stored that this build cannot read
    /// (from the cluster's watch): fail closed until a readable one comes.
    pub fn unreadable(&self, problem: String) {
        let _meta = self.lock_meta();
        let fault = StateFault::routing(self.store.place(), problem);
        tracing::error!("{}", fault.message());
        self.fault.store(Some(Arc::new(fault)));
        self.block_in_memory();
    }

    /// Takes a routing state another replica stored at revision `rev` (from
    /// the cluster's watch): swapped in as a local change would be, but not
    /// written again. Ignored when this replica has already seen it or a
    /// later one (its own writes come back through the watch too).
    pub fn adopt(&self, p: PersistedRouting, rev: i64) {
        let mut meta = self.lock_meta();
        if !self.store.accept_revision(rev) || self.store.schema_fault().is_some() {
            return;
        }
        if meta.unsaved {
            // This replica pulled the canary out while the store could not
            // be written: its table stays ahead until that write lands.
            return;
        }
        let old = self.routes.routing_full();
        // A readable record from the fleet ends a fault an unreadable one began.
        let (table, ups, new_meta) = restore((*old).clone(), (**self.routes.upstreams()).clone(), p);
        *meta = new_meta;
        self.fault.store(None);
        self.routes.publish(Arc::new(table), Some(ups));
        tracing::debug!(revision = rev, "routing state from the cluster applied");
    }

    /// Sends no traffic to the canary without recording it: only for a rollback
    /// while the state file cannot be written. The next successful write
    /// records the share as it is.
    pub fn emergency_share_zero(&self) {
        let mut meta = self.lock_meta();
        self.block_in_memory();
        meta.unsaved = true;
        tracing::error!("canary share set to 0 in memory only: the state file cannot be written");
    }

    /// Share 0 and the canary blocked, in memory only; the caller holds the meta lock.
    fn block_in_memory(&self) {
        let mut t = (*self.routes.routing_full()).clone();
        t.share = Share::ZERO;
        t.canary_blocked = true;
        self.routes.publish(Arc::new(t), None);
    }

    /// What the data plane routes by.
    pub fn routes(&self) -> Arc<Routes> {
        Arc::clone(&self.routes)
    }

    /// The current routing table (lock-free).
    pub fn routing(&self) -> Guard<Arc<RoutingTable>> {
        self.routes.routing()
    }

    /// The current upstreams (lock-free).
    pub fn upstreams(&self) -> Guard<Arc<Upstreams>> {
        self.routes.upstreams()
    }

    /// A receiver that changes each time the canary is rolled back from now
    /// on (the routing table becomes `canary_blocked`).
    pub fn canary_rollbacks(&self) -> watch::Receiver<u64> {
        self.routes.canary_rollbacks()
    }

    /// The state file.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hash of the dynamic config last applied.
    pub fn flags_hash(&self) -> Option<String> {
        self.lock_meta().flags_hash.clone()
    }

    fn lock_meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a change: persist with its event, then swap. Returns the new
    /// table, or the unchanged one when the change changes nothing.
    pub fn apply(&self, change: Change, source: Source) -> Result<Arc<RoutingTable>, StoreError> {
        self.apply_with(change, source, None)
    }

    /// As [`Live::apply`] for the controller, with the rollout's record and
    /// events written in the same store write (see
    /// `Backend::save_routing_and_rollout`); when the table does not change,
    /// the rollout alone is written.
    pub fn apply_with_rollout(
        &self,
        change: Change,
        rollout: RolloutWrite<'_>,
    ) -> Result<Arc<RoutingTable>, StoreError> {
        self.apply_with(change, Source::Controller, Some(rollout))
    }

    fn apply_with(
        &self,
        change: Change,
        source: Source,
        rollout: Option<RolloutWrite<'_>>,
    ) -> Result<Arc<RoutingTable>, StoreError> {
        // Holding the meta lock serialises writers, so the order on disk is the
        // order of swaps.
        let mut meta = self.lock_meta();
        let old = self.routes.routing_full();
        let mut new = (*old).clone();
        let mut new_meta = meta.clone();
        if let Some(s) = change.share {
            new.share = s;
        }
        if let Some(e) = change.excludes {
            new.excludes = e;
        }
        if let Some(b) = change.blocked {
            new.canary_blocked = b;
        }
        if let Some(on) = change.shadow {
            new.shadow = on;
        }
        if let Some(h) = change.flags_hash {
            new_meta.flags_hash = Some(h);
        }
        if let Some(u) = &change.upstreams {
            new.has_canary = u.canary.is_some();
            new_meta.pinned =
                Some((u.stable.url().to_string(), u.canary.as_ref().map(|c| c.url().to_string())));
        }
        let ups_changed = change.upstreams.as_ref().is_some_and(|u| **self.routes.upstreams() != *u);
        if new == *old && new_meta == *meta && !ups_changed && !meta.unsaved {
            if let Some(w) = rollout {
                self.store.save_rollout(w)?;
            }
            return Ok(old);
        }
        if let Some(fault) = self.fault.load_full() {
            return Err(fault.refusal());
        }
        new_meta.unsaved = false;
        let mut detail = json!({"from": describe(&old), "to": describe(&new)});
        if let (true, Some(u)) = (ups_changed, &change.upstreams) {
            detail["upstreams"] =
                json!({"stable": u.stable.url(), "canary": u.canary.as_ref().map(|c| c.url())});
        }
        let kind = if ups_changed { EventKind::UpstreamsChanged } else { kind(&old, &new) };
        match rollout {
            Some(w) => self.store.save_routing_and_rollout(&persisted(&new, &new_meta), &kind, &detail, w)?,
            None => self.store.save_routing(&persisted(&new, &new_meta), &kind, source.as_str(), &detail)?,
        }
        *meta = new_meta;
        let new = Arc::new(new);
        self.routes.publish(Arc::clone(&new), change.upstreams);
        Ok(new)
    }
}

fn restore(
    mut table: RoutingTable,
    mut ups: Upstreams,
    p: PersistedRouting,
) -> (RoutingTable, Upstreams, Meta) {
    table.share = Share::from_basis_points(p.share_bp).unwrap_or(table.share);
    table.canary_blocked = p.canary_blocked;
    table.shadow = p.shadow;
    // Patterns were validated before they were saved; a file edited by hand
    // into an invalid state keeps the config's excludes instead.
    if let Ok(ex) = Excludes::new(&p.excludes) {
        table.excludes = ex;
    }
    if let Some(pinned) = restore_upstreams(p.upstreams.as_ref()) {
        ups = pinned;
        table.has_canary = ups.canary.is_some();
    }
    (table, ups, Meta { flags_hash: p.flags_hash, pinned: p.upstreams, unsaved: false })
}

/// What the live state starts from: the table, the upstreams, what is kept
/// beside them, and why the state could not be read, if it could not.
type Start = (RoutingTable, Upstreams, Meta, Option<StateFault>);

/// A start from state that was read.
fn sound((table, ups, meta): (RoutingTable, Upstreams, Meta)) -> Start {
    (table, ups, meta, None)
}

/// No state yet: the config's, recorded as the first event.
fn initialise(store: &Store, table: RoutingTable, upstreams: Upstreams) -> Result<Start, StoreError> {
    let meta = Meta::default();
    let first = persisted(&table, &meta);
    let kind = EventKind::RoutingInitialised;
    let saved = store.save_routing(&first, &kind, Source::Config.as_str(), &describe(&table));
    match (saved, store.load_routing()?) {
        (Ok(()), _) => Ok((table, upstreams, meta, None)),
        // Another replica of the cluster initialised it first: theirs stands.
        (Err(_), Loaded::Found(p)) => Ok(sound(restore(table, upstreams, p))),
        (Err(_), Loaded::Unreadable { problem, .. }) => {
            let fault = StateFault::routing(store.place(), problem);
            Ok(fail_closed(table, upstreams, fault))
        }
        (Err(e), Loaded::Absent) => Err(e),
    }
}

/// `--reset-state` over an unreadable routing record: the config's values,
/// written with an event that keeps what could not be read.
fn reset_routing(
    store: &Store,
    table: RoutingTable,
    upstreams: Upstreams,
    problem: &str,
    raw: &str,
) -> Result<(RoutingTable, Upstreams, Meta), StoreError> {
    let meta = Meta::default();
    let detail = json!({"record": "routing", "problem": problem, "unreadable": raw, "to": describe(&table)});
    store.save_routing(
        &persisted(&table, &meta),
        &EventKind::StateReset,
        Source::Config.as_str(),
        &detail,
    )?;
    tracing::warn!(
        problem,
        "--reset-state: the unreadable routing record was replaced by the config's values (kept in the event log)"
    );
    Ok((table, upstreams, meta))
}

/// State that cannot be read: stable only, the canary blocked, the fault kept.
fn fail_closed(mut table: RoutingTable, ups: Upstreams, fault: StateFault) -> Start {
    tracing::error!("{}", fault.message());
    table.share = Share::ZERO;
    table.canary_blocked = true;
    (table, ups, Meta::default(), Some(fault))
}

fn restore_upstreams(p: Option<&(String, Option<String>)>) -> Option<Upstreams> {
    let (stable, canary) = p?;
    let stable = Upstream::parse(stable).ok()?;
    let canary = match canary {
        Some(c) => Some(Upstream::parse(c).ok()?),
        None => None,
    };
    Some(Upstreams { stable, canary })
}

fn persisted(t: &RoutingTable, meta: &Meta) -> PersistedRouting {
    PersistedRouting {
        share_bp: t.share.basis_points(),
        excludes: t.excludes.patterns().to_vec(),
        flags_hash: meta.flags_hash.clone(),
        upstreams: meta.pinned.clone(),
        canary_blocked: t.canary_blocked,
        shadow: t.shadow,
    }
}

fn describe(t: &RoutingTable) -> serde_json::Value {
    let mut v = json!({"share": t.share.percent(), "excludes": t.excludes.patterns(), "canary_blocked": t.canary_blocked});
    if t.shadow {
        v["shadow"] = json!(true);
    }
    v
}

fn kind(old: &RoutingTable, new: &RoutingTable) -> EventKind {
    // A rollback moves the share and blocks at once: it stays a share change
    // (the detail's `canary_blocked` tells the rest).
    if old.canary_blocked != new.canary_blocked && old.share == new.share {
        return if new.canary_blocked { EventKind::CanaryBlocked } else { EventKind::CanaryUnblocked };
    }
    if old.shadow != new.shadow && old.share == new.share && old.excludes == new.excludes {
        return EventKind::RoutingChanged;
    }
    match (old.share != new.share, old.excludes != new.excludes) {
        (true, false) => EventKind::ShareChanged,
        (false, true) => EventKind::ExcludesChanged,
        (true, true) => EventKind::RoutingChanged,
        (false, false) => EventKind::FlagsApplied,
    }
}
