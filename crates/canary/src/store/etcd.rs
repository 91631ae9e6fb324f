//! The etcd store: the state every replica of a cluster shares, under one key
//! prefix. Keys (all under the prefix):
//! - `/routing`: the routing state, JSON, as [`PersistedRouting`].
//! - `/rollouts/{id:012}`: each rollout's body.
//! - `/kv/{key}`: API-set feature flags and the like.
//! - `/events/{ms:013}-{node}-{seq:08}`: the event log; an event's id is the
//!   etcd revision that created it, so ids follow the order etcd committed.
//! - `/leader` and `/replicas/{node}`: the election and the replica
//!   registry (see `crate::cluster`), held by leases.
//! - `/schema`: the version of this layout, written by the first replica; a
//!   replica that finds a newer one reads what it can and writes nothing.
//!
//! Writes that must not race are transactions: a routing change compares the
//! routing key's revision with the one this replica last saw (two replicas
//! never both move the share from the same state), and whatever the
//! controller writes also compares the leader key's creation revision with
//! this replica's own term (a replica that lost the leadership cannot write).
//!
//! The rest of canary is synchronous around its store (the SQLite file is
//! too); etcd calls run on this store's own runtime, and a caller waits at
//! most [`CALL_TIMEOUT`] for one.

use super::{
    Backend, Event, Fresh, Loaded, PersistedRouting, RolloutRecord, RolloutWrite, StateFault, StoreError, now,
};
use canary_core::event::EventKind;
use canary_core::time::UnixMs;
use canary_etcd::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, SortOrder, SortTarget, Txn, TxnOp,
};
use serde::Deserialize;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The longest a caller waits for etcd: beyond it the write is reported as
/// failed (it may still land; the watch then brings it). Long enough to
/// outlast an etcd leader election (its election timeout is 1 s by default,
/// and a vote or two may be split).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one try waits: a member that was killed, or one whose
/// leader is being elected, can hold a request until it times out; short
/// tries leave time within [`CALL_TIMEOUT`] to try again elsewhere.
const TRY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The layout this build writes under the prefix (the `/schema` key).
pub const SCHEMA_VERSION: i64 = 1;

/// The most events `rollout_events` scans.
const EVENT_SCAN: i64 = 100_000;

/// A connection to etcd and the revisions this replica relies on.
pub struct Etcd {
    client: Client,
    /// Dropped with `shutdown_background`, never in place: the store may be
    /// dropped from within another runtime, where a blocking drop panics.
    rt: Mutex<Option<Runtime>>,
    handle: tokio::runtime::Handle,
    prefix: String,
    node: String,
    endpoints: String,
    /// The routing key's revision as last seen (0: absent).
    routing_rev: AtomicI64,
    /// The leader key's creation revision while this replica leads (0: not leading).
    fence: AtomicI64,
    /// Whether the last lease renewal got through: when not, calls are not
    /// retried, so a controller facing a dead etcd fails fast and keeps judging.
    reachable: AtomicBool,
    /// Lease renewals that failed since the start: a watch that has been
    /// quiet across one may sit on a connection cut without a close.
    failed_renewals: AtomicU64,
    seq: AtomicU64,
    /// A layout newer than this build's: every write is refused.
    fault: Option<StateFault>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd").field("endpoints", &self.endpoints).field("prefix", &self.prefix).finish()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.lock().unwrap_or_else(PoisonError::into_inner).take() {
            rt.shutdown_background();
        }
    }
}

impl Etcd {
    /// Connects to `endpoints` (tried in turn by the client); fails when none
    /// answers, since a replica must not serve before it has the shared state.
    pub fn connect(endpoints: &[String], prefix: &str, node: &str) -> Result<Arc<Etcd>, StoreError> {
        let place = format!("etcd {} (prefix {prefix})", endpoints.join(","));
        let fail = |message: String| StoreError { place: place.clone(), message };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("canary-etcd")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start its runtime: {e}")))?;
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(TRY_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_require_leader(true);
        let eps = endpoints.to_vec();
        let connect = async move {
            let c = Client::connect(eps, Some(opts)).await?;
            // `connect` is lazy: ask once so an unreachable etcd fails the start.
            c.get("/", Some(GetOptions::new().with_count_only())).await?;
            Ok::<_, canary_etcd::Error>(c)
        };
        let client = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), connect).await })
            .map_err(|_| fail("no answer within 5 s; is etcd running there?".into()))?
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        Etcd {
            client,
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
            prefix: prefix.trim_end_matches('/').to_string(),
            node: node.to_string(),
            endpoints: endpoints.join(","),
            routing_rev: AtomicI64::new(0),
            fence: AtomicI64::new(0),
            reachable: AtomicBool::new(true),
            failed_renewals: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            fault: None,
        }
        .with_schema_checked()
    }

    /// Writes this build's schema version when the prefix has none (a new
    /// cluster, or one whose replicas predate the key), else checks it.
    fn with_schema_checked(mut self) -> Result<Arc<Etcd>, StoreError> {
        let key = self.key("schema");
        let first = Txn::new()
            .when(vec![Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then(vec![TxnOp::put(key.clone(), SCHEMA_VERSION.to_string(), None)])
            .or_else(vec![TxnOp::get(key, None)]);
        let resp = self.run(move |c| {
            let txn = first.clone();
            async move { c.txn(txn).await }
        })?;
        let found = resp.op_responses().into_iter().find_map(|op| match op {
            canary_etcd::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        let Some(found) = found else { return Ok(Arc::new(self)) };
        let text = String::from_utf8_lossy(&found).trim().to_string();
        let problem = match text.parse::<i64>() {
            Ok(v) if v <= SCHEMA_VERSION => return Ok(Arc::new(self)),
            Ok(v) => format!(
                "the cluster's state has schema version {v}, written by a newer canary; this canary {} reads \
                 versions up to {SCHEMA_VERSION}",
                env!("CARGO_PKG_VERSION")
            ),
            Err(_) => format!("the schema key holds {text:?}, not a version number"),
        };
        self.fault = Some(StateFault { place: self.place_name(), record: "schema".into(), problem });
        Ok(Arc::new(self))
    }

    /// The runtime the cluster's own tasks (watch, election) run on.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }

    /// A client handle (cheap: they share one channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// `key` under the prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }

    /// This replica's node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Sets (or, with 0, clears) the leadership term the controller's writes
    /// are fenced with.
    pub fn set_fence(&self, create_revision: i64) {
        self.fence.store(create_revision, Ordering::SeqCst);
    }

    /// Whether etcd answered the last lease renewal (set by the election).
    pub fn set_reachable(&self, yes: bool) {
        self.reachable.store(yes, Ordering::Relaxed);
    }

    /// Counts a lease renewal that failed (set by the election).
    pub fn renewal_failed(&self) {
        self.failed_renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// How many lease renewals have failed since the start.
    pub fn failed_renewals(&self) -> u64 {
        self.failed_renewals.load(Ordering::Relaxed)
    }

    /// Records that the routing state at `rev` has been applied here; false
    /// when this replica has already seen it or a later one.
    pub fn accept_routing(&self, rev: i64) -> bool {
        self.routing_rev.fetch_max(rev, Ordering::SeqCst) < rev
    }

    fn err(&self, message: impl Into<String>) -> StoreError {
        StoreError { place: self.place_name(), message: message.into() }
    }

    /// Where the state is, as errors name it.
    fn place_name(&self) -> String {
        format!("etcd {} (prefix {})", self.endpoints, self.prefix)
    }

    /// A schema newer than this build's, if the prefix holds one.
    pub fn fault(&self) -> Option<&StateFault> {
        self.fault.as_ref()
    }

    /// Runs `f` once on the store's runtime and waits for it at most
    /// `within`: for a read that is worth having only now.
    fn run_within<T, F>(&self, within: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, canary_etcd::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(tokio::time::timeout(within, f).await);
        });
        match rx.recv_timeout(within + Duration::from_millis(50)) {
            Ok(Ok(r)) => r.map_err(|e| self.err(e.to_string())),
            _ => Err(self.err(format!("no answer within {} ms", within.as_millis()))),
        }
    }

    /// Runs `f` on the store's runtime and waits for it, at most
    /// [`CALL_TIMEOUT`]; an etcd member failing or its leader changing is
    /// retried within that time (the client moves to another member).
    fn run<T, F>(&self, f: impl Fn(Client) -> F + Send + 'static) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, canary_etcd::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let client = self.client.clone();
        let retry_for = if self.reachable.load(Ordering::Relaxed) { CALL_TIMEOUT } else { Duration::ZERO };
        let deadline = tokio::time::Instant::now() + retry_for.saturating_sub(Duration::from_millis(300));
        self.handle.spawn(async move {
            let result = loop {
                match f(client.clone()).await {
                    Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    r => break r,
                }
            };
            let _ = tx.send(result);
        });
        match rx.recv_timeout(CALL_TIMEOUT) {
            Ok(r) => r.map_err(|e| self.err(e.to_string())),
            Err(_) => Err(self.err(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))),
        }
    }

    fn event_op(&self, kind: &EventKind, source: &str, detail: &serde_json::Value) -> TxnOp {
        let at = now();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let key = self.key(&format!("events/{:013}-{}-{seq:08}", at.as_millis(), self.node));
        let body = serde_json::json!({"at_ms": at, "kind": kind, "source": source, "detail": detail});
        TxnOp::put(key, body.to_string(), None)
    }

    /// The leader fence, when the controller writes; an error when this
    /// replica does not lead (its writes would be a deposed leader's).
    fn fence_compare(&self) -> Result<Compare, StoreError> {
        match self.fence.load(Ordering::SeqCst) {
            0 => {
                Err(self.err("this replica is not the leader: only the leader's controller writes rollouts"))
            }
            rev => Ok(Compare::create_revision(self.key("leader"), CompareOp::Equal, rev)),
        }
    }

    /// Commits `ops` if `when` holds; a failed compare is reported with `why`.
    fn commit(&self, when: Vec<Compare>, ops: Vec<TxnOp>, why: &str) -> Result<i64, StoreError> {
        if let Some(f) = &self.fault {
            return Err(f.refusal());
        }
        let txn = Txn::new().when(when).and_then(ops);
        let resp = self.run(move |c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })?;
        if !resp.succeeded() {
            return Err(self.err(why));
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    fn get_json(&self, key: String) -> Result<Option<(serde_json::Value, i64)>, StoreError> {
        let resp = self.run(move |c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        Ok(resp
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice(kv.value()).ok().map(|v| (v, kv.mod_revision()))))
    }

    fn list(&self, prefix: String, opts: GetOptions) -> Result<Vec<canary_etcd::KeyValue>, StoreError> {
        let mut resp = self.run(move |c| {
            let (prefix, opts) = (prefix.clone(), opts.clone());
            async move { c.get(prefix, Some(opts.with_prefix())).await }
        })?;
        Ok(resp.take_kvs())
    }

    /// The routing state with its event, and with `rollout` when given, in
    /// one transaction.
    fn write_routing(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        source: &str,
        detail: &serde_json::Value,
        rollout: Option<RolloutWrite<'_>>,
    ) -> Result<(), StoreError> {
        let key = self.key("routing");
        let seen = self.routing_rev.load(Ordering::SeqCst);
        let mut when = vec![Compare::mod_revision(key.clone(), CompareOp::Equal, seen)];
        if source == "controller" {
            when.push(self.fence_compare()?);
        }
        let value = serde_json::to_string(r).unwrap_or_default();
        let mut ops = vec![TxnOp::put(key, value, None), self.event_op(kind, source, detail)];
        if let Some(w) = rollout {
            ops.push(TxnOp::put(self.rollout_key(w.id()), w.body().to_string(), None));
            ops.extend(w.events.iter().map(|(kind, d)| self.event_op(kind, "controller", d)));
        }
        let why = "the routing was changed by another replica, or this one lost the leadership, \
                   a moment ago: nothing was changed here; look again and retry";
        // A write retried after a member failed may have landed on its first
        // try: then the state is already the one asked for.
        let rev = self.commit(when, ops, why).or_else(|e| self.landed(r, rollout).ok_or(e))?;
        self.accept_routing(rev);
        Ok(())
    }

    /// The routing key's revision when it holds `r` and the rollout's key
    /// holds `rollout`'s body: a write that failed to answer landed whole.
    fn landed(&self, r: &PersistedRouting, rollout: Option<RolloutWrite<'_>>) -> Option<i64> {
        let (v, rev) = self.get_json(self.key("routing")).ok()??;
        if PersistedRouting::deserialize(&v).ok()? != *r {
            return None;
        }
        let body_landed = |w: RolloutWrite<'_>| {
            self.get_json(self.rollout_key(w.id())).ok().flatten().is_some_and(|(b, _)| b == w.body())
        };
        rollout.is_none_or(body_landed).then_some(rev)
    }

    /// A rollout's key.
    fn rollout_key(&self, id: i64) -> String {
        self.key(&format!("rollouts/{id:012}"))
    }
}

/// An error that another try may not meet: a member down, an election, a
/// try cut by [`TRY_TIMEOUT`].
fn transient(e: &canary_etcd::Error) -> bool {
    e.is_transient()
}

/// A rollout's number, from its key (`.../rollouts/{id:012}`).
fn rollout_id(kv: &canary_etcd::KeyValue) -> Option<i64> {
    let key = String::from_utf8_lossy(kv.key());
    key.rsplit('/').next().and_then(|n| n.parse::<i64>().ok())
}

/// An event as stored under `/events/` (its id is the key's creation revision).
#[derive(Deserialize)]
struct StoredEvent {
    #[serde(default)]
    at_ms: UnixMs,
    #[serde(default = "unnamed")]
    kind: EventKind,
    #[serde(default)]
    source: String,
    #[serde(default)]
    detail: serde_json::Value,
}

/// The kind of an event stored without one.
fn unnamed() -> EventKind {
    EventKind::Other(String::new())
}

fn to_event(kv: &canary_etcd::KeyValue) -> Option<Event> {
    let v: StoredEvent = serde_json::from_slice(kv.value()).ok()?;
    Some(Event { id: kv.create_revision(), at_ms: v.at_ms, kind: v.kind, source: v.source, detail: v.detail })
}

impl Backend for Arc<Etcd> {
    fn load_routing(&self) -> Result<Loaded<PersistedRouting>, StoreError> {
        let key = self.key("routing");
        let resp = self.run(move |c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        let Some(kv) = resp.kvs().first() else { return Ok(Loaded::Absent) };
        self.accept_routing(kv.mod_revision());
        Ok(Loaded::routing(Some(kv.value())))
    }

    fn schema_fault(&self) -> Option<StateFault> {
        self.fault.clone()
    }

    fn place(&self) -> String {
        self.place_name()
    }

    fn save_routing(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        source: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write_routing(r, kind, source, detail, None)
    }

    fn save_routing_and_rollout(
        &self,
        r: &PersistedRouting,
        kind: &EventKind,
        detail: &serde_json::Value,
        rollout: RolloutWrite<'_>,
    ) -> Result<(), StoreError> {
        self.write_routing(r, kind, "controller", detail, Some(rollout))
    }

    fn save_rollout(&self, w: RolloutWrite<'_>) -> Result<(), StoreError> {
        let mut ops = vec![TxnOp::put(self.rollout_key(w.id()), w.body().to_string(), None)];
        ops.extend(w.events.iter().map(|(k, d)| self.event_op(k, "controller", d)));
        let why = "this replica lost the leadership: the rollout was not saved here";
        self.commit(vec![self.fence_compare()?], ops, why).map(|_| ())
    }

    fn fresh(&self, within: Duration) -> Result<Option<Fresh>, StoreError> {
        // One transaction, so the rollout, the routing and the flags are of one revision.
        let newest =
            GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Descend).with_limit(1);
        let txn = Txn::new().and_then(vec![
            TxnOp::get(self.key("rollouts/"), Some(newest)),
            TxnOp::get(self.key("routing"), None),
            TxnOp::get(self.key("kv/flags"), None),
        ]);
        let c = self.client();
        let resp = self.run_within(within, async move { c.txn(txn).await })?;
        let mut gets = resp.op_responses().into_iter().filter_map(|op| match op {
            canary_etcd::TxnOpResponse::Get(g) => Some(g),
            _ => None,
        });
        let (rollouts, routing, flags) = (gets.next(), gets.next(), gets.next());
        let rollout = rollouts.as_ref().and_then(|g| g.kvs().first()).and_then(|kv| {
            RolloutRecord::from_stored(rollout_id(kv)?, kv.value()).and_then(RolloutRecord::into_rollout)
        });
        let routing = routing.as_ref().and_then(|g| g.kvs().first()).and_then(|kv| {
            match Loaded::routing(Some(kv.value())) {
                Loaded::Found(p) => Some((p, kv.mod_revision())),
                _ => None,
            }
        });
        let flags = flags
            .as_ref()
            .and_then(|g| g.kvs().first())
            .and_then(|kv| serde_json::from_slice(kv.value()).ok());
        Ok(Some(Fresh { rollout, routing, flags }))
    }

    fn rollouts(&self, limit: usize) -> Result<Vec<RolloutRecord>, StoreError> {
        let opts = GetOptions::new().with_sort(SortTarget::Key, SortOrder::Descend).with_limit(limit as i64);
        let kvs = self.list(self.key("rollouts/"), opts)?;
        Ok(kvs.iter().filter_map(|kv| RolloutRecord::from_stored(rollout_id(kv)?, kv.value())).collect())
    }

    fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>, StoreError> {
        let key = self.rollout_key(id);
        let resp = self.run(move |c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        Ok(resp.kvs().first().and_then(|kv| RolloutRecord::from_stored(id, kv.value())))
    }

    fn rollout_events(&self, id: i64) -> Result<Vec<Event>, StoreError> {
        let opts = GetOptions::new().with_sort(SortTarget::Create, SortOrder::Ascend).with_limit(EVENT_SCAN);
        let kvs = self.list(self.key("events/"), opts)?;
        Ok(kvs.iter().filter_map(to_event).filter(|e| e.detail["rollout"].as_i64() == Some(id)).collect())
    }

    fn next_rollout_id(&self) -> Result<i64, StoreError> {
        let opts =
            GetOptions::new().with_sort(SortTarget::Key, SortOrder::Descend).with_limit(1).with_keys_only();
        let kvs = self.list(self.key("rollouts/"), opts)?;
        Ok(kvs.first().and_then(rollout_id).unwrap_or(0) + 1)
    }

    fn record(&self, kind: &EventKind, source: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        self.commit(Vec::new(), vec![self.event_op(kind, source, detail)], "").map(|_| ())
    }

    fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let opts =
            GetOptions::new().with_sort(SortTarget::Create, SortOrder::Descend).with_limit(limit as i64);
        Ok(self.list(self.key("events/"), opts)?.iter().filter_map(to_event).collect())
    }

    fn kv_get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self.get_json(self.key(&format!("kv/{key}")))?.map(|(v, _)| v))
    }

    fn kv_create(&self, key: &str, value: &serde_json::Value) -> Result<serde_json::Value, StoreError> {
        let k = self.key(&format!("kv/{key}"));
        if let Some((v, _)) = self.get_json(k.clone())? {
            return Ok(v);
        }
        let when = vec![Compare::create_revision(k.clone(), CompareOp::Equal, 0)];
        match self.commit(when, vec![TxnOp::put(k.clone(), value.to_string(), None)], "created meanwhile") {
            Ok(_) => Ok(value.clone()),
            // Another replica created it first: its value is everyone's.
            Err(e) => self.get_json(k)?.map(|(v, _)| v).ok_or(e),
        }
    }

    fn kv_put(
        &self,
        key: &str,
        value: &serde_json::Value,
        kind: &EventKind,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let ops = vec![
            TxnOp::put(self.key(&format!("kv/{key}")), value.to_string(), None),
            self.event_op(kind, "api", detail),
        ];
        self.commit(Vec::new(), ops, "").map(|_| ())
    }

    fn accept_revision(&self, rev: i64) -> bool {
        self.accept_routing(rev)
    }
}
