//! The rollout driver: runs the core's state machine with the real clock,
//! feeds it the proxy's measurements, applies its decisions to the router and
//! persists the rollout and every event (verdict tables included).
//!
//! # Layout
//! - [`observe`]: per-tick statistics from the proxy's cumulative totals.
//! - [`brief`]: an event's detail shortened for the log.
//! - [`exposition`]: the rollout's lines in `/metrics`.
//! - [`resources`]: memory, CPU and database use polled from each version.
//! - [`api`]: request and status types shared by the admin API and the CLI.
//! - this file: [`Controller`] (commands and ticks) and the thread that ticks it.
//!
//! One mutex guards the controller; the tick thread and the admin API take it
//! in turn, so a command and a tick never interleave. The proxy never takes it.

pub mod api;
pub mod brief;
pub mod clock;
pub mod exposition;
pub mod health;
pub mod observe;
pub mod probe;
pub mod resources;
pub mod shadow;
pub mod status;

use crate::cluster::Cluster;
use crate::config::ServeConfig;
use crate::live::{Change, Live, Source, Upstreams};
use crate::ops::checklist::ItemResult;
use crate::ops::{OpsEvent, Outbox};
use crate::store::{RolloutWrite, StoreError};
use crate::windows::Windows;
use api::{DeployRequest, Status};
use canary_core::Share;
use canary_core::event::EventKind;
use canary_core::judge::{Observation, Policy, judge_step};
use canary_core::plan::{Plan, parse_duration_ms};
use canary_core::rollout::{CommandError, Controls, Decision, Rollout, State};
use canary_core::time::UnixMs;
use canary_core::upstream::Upstream;
use canary_core::window::{TickRing, merge};
use canary_proxy::metrics::Metrics;
use observe::{FleetObserver, Observer};
use status::with_cluster;
pub use status::{Published, status_now};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a follower's `status` waits for the shared state before it
/// answers with its own view (see [`Controller::catch_up`]).
pub const FRESH_WITHIN: Duration = Duration::from_millis(300);

/// How often the controller looks.
pub const TICK: Duration = Duration::from_millis(250);

/// The longest recent window the rollback check may use: 10 s of ticks.
const MAX_FAST_TICKS: usize = 40;

/// How often bake progress is saved when nothing else happens.
const PERSIST_EVERY_MS: u64 = 1_000;

/// Why a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The input is wrong (HTTP 400, CLI exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The command does not fit the current state (HTTP 409, CLI exit 3).
    #[error("{0}")]
    Conflict(String),
    /// The state file failed: nothing was changed (HTTP 503, CLI exit 1).
    #[error("not changed: {0}")]
    Store(#[from] StoreError),
}

impl From<CommandError> for ControlError {
    fn from(e: CommandError) -> ControlError {
        ControlError::Conflict(e.to_string())
    }
}

/// What a person asks of a rollout.
#[derive(Debug, Clone)]
pub enum Command {
    /// Move the share by hand (`force`: past a failing verdict, or a
    /// rolled-back canary's share above 0).
    Adjust {
        /// The share asked for.
        share: Share,
        /// Whether the person insists.
        force: bool,
    },
    /// Next step now; `true`: promote outright.
    Promote(bool),
    /// Stop advancing.
    Pause(String),
    /// Continue.
    Resume,
    /// Share 0 at once (and the previous stable back after a promotion).
    Rollback(String),
}

/// Replaces `mine` with `new` if they differ, noting `name` in `changed`.
fn take<T: Clone + std::fmt::Debug>(
    mine: &mut T,
    new: &T,
    name: &'static str,
    changed: &mut Vec<&'static str>,
) {
    if crate::config::differs(mine, new) {
        *mine = new.clone();
        changed.push(name);
    }
}

/// The controller's state.
#[derive(Debug)]
pub struct Controller {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    policy: Policy,
    controls: Controls,
    plan: Plan,
    windows: Windows,
    rollout: Option<Rollout>,
    observer: Observer,
    ring: TickRing,
    step_obs: Observation,
    last_persist_ms: UnixMs,
    /// Resource use the versions report, filled by [`resources::poll`].
    pub resources: resources::Shared,
    /// The canary's health checks, filled by [`health::poll`].
    pub health: health::Shared,
    /// A team's own checks' latest answers, filled by [`crate::analysis::spawn`].
    pub analysis: crate::analysis::Shared,
    /// Where events go for hooks, incidents, tags and reports.
    pub outbox: Option<Outbox>,
    /// Why the controller cannot do its job right now (the state file failing).
    fault: Option<String>,
    /// The cluster, when this is one replica of several: only the leader acts.
    pub cluster: Option<Arc<Cluster>>,
    /// Shadow traffic's copies, judged during a shadow step.
    pub shadow: Option<Arc<canary_proxy::shadow::Shadow>>,
    /// What the shadow step holds the canary to.
    shadow_policy: canary_core::shadow::verdict::ShadowPolicy,
    /// Whether this replica acted as the leader at its last look.
    leading: bool,
    /// The term it last took the lead in.
    led_term: Option<i64>,
    /// The other replicas' traffic, added to this one's while leading.
    fleet: FleetObserver,
    /// A rollback decided while the shared store failed: written again until it takes.
    unsaved: Option<(Rollout, Vec<Decision>)>,
    /// Its status after each look, for [`status_now`].
    pub published: Published,
    /// The rollbacks it decided, by cause, for `/metrics`.
    pub rollbacks: exposition::Rollbacks,
    /// A write to the shared store failed without saying whether it landed:
    /// the rollout is read back before the next decision.
    reread: bool,
}

impl Controller {
    /// Loads the latest rollout from the state file; an active one resumes
    /// where it was, without counting the time canary was down.
    pub fn load(live: Arc<Live>, metrics: Arc<Metrics>, cfg: &ServeConfig) -> Result<Controller, StoreError> {
        let mut rollout: Option<Rollout> = live.store().latest_rollout()?;
        if let Some(r) = rollout.as_mut().filter(|r| r.is_active()) {
            r.resume_after_restart(clock::now_ms());
        }
        Ok(Controller {
            live,
            metrics,
            policy: cfg.policy.clone(),
            controls: cfg.controls.clone(),
            plan: cfg.plan.clone(),
            windows: cfg.windows.clone(),
            rollout,
            observer: Observer::default(),
            ring: TickRing::new(MAX_FAST_TICKS),
            step_obs: Observation::default(),
            last_persist_ms: UnixMs::EPOCH,
            resources: Default::default(),
            health: Default::default(),
            analysis: crate::analysis::shared(cfg.analysis.iter().map(|c| c.name.clone()).collect()),
            outbox: None,
            fault: None,
            cluster: None,
            shadow: None,
            shadow_policy: cfg.shadow_policy.clone(),
            leading: false,
            led_term: None,
            fleet: FleetObserver::default(),
            unsaved: None,
            published: Published::default(),
            rollbacks: exposition::rollbacks(),
            reread: false,
        })
    }

    /// Where things stand, for `status`.
    pub fn status(&self) -> Status {
        let mut st = self.own_status();
        with_cluster(&mut st, self.cluster.as_deref());
        st
    }

    /// A follower's view made current before it answers `status`: the
    /// newest rollout and the routing, read from the shared store in one
    /// look, so a command just answered through another replica shows here
    /// too (read your writes). The leader skips it (its state is the newest);
    /// when etcd does not answer within [`FRESH_WITHIN`], the status is this
    /// replica's own, with etcd's error if the election has seen one.
    pub fn catch_up(&mut self) {
        // Cut off from etcd (as the election found): answer now, with why.
        let cut_off = self.cluster.as_ref().is_none_or(|c| c.etcd_error().is_some());
        if self.leading || cut_off {
            return;
        }
        match self.live.store().fresh(FRESH_WITHIN) {
            Ok(Some(f)) => {
                if let Some((p, rev)) = f.routing {
                    self.live.adopt(p, rev);
                }
                if let Some(flags) = &f.flags {
                    self.live.flags.adopt_api(flags);
                }
                self.rollout = f.rollout;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "status: the shared state was not read in time"),
        }
    }

    /// The status without the cluster's view.
    fn own_status(&self) -> Status {
        let mut st = Status::of(self.rollout.as_ref(), &self.live);
        st.error = self.live.fault().map(|f| f.message()).or_else(|| self.fault.clone());
        st.thresholds = Some(api::Thresholds::of(&self.policy));
        st
    }

    /// Keeps the status of this look (or command) for [`status_now`].
    pub fn publish(&self) {
        *self.published.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.own_status());
    }

    /// What a team's own checks need to know of the rollout in progress, if any.
    pub fn analysis_context(&self, name: &str) -> Option<crate::analysis::Context> {
        let r = self.rollout.as_ref().filter(|r| r.is_active())?;
        Some(crate::analysis::Context {
            id: r.id,
            name: name.to_string(),
            step: r.step + 1,
            share: r.share.percent(),
            canary: r.canary.clone(),
        })
    }

    /// Takes the parts of a reloaded configuration the controller owns (the
    /// judge's thresholds, controls, default plan, windows); returns the names
    /// of those that changed. A rollout in progress keeps its own plan.
    pub fn reconfigure(&mut self, cfg: &ServeConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        take(&mut self.policy, &cfg.policy, "[policy]", &mut changed);
        take(&mut self.controls, &cfg.controls, "[controls]", &mut changed);
        take(&mut self.plan, &cfg.plan, "[plan]", &mut changed);
        take(&mut self.windows, &cfg.windows, "[windows]", &mut changed);
        changed
    }

    /// One look: measure, judge, act. In a cluster only the leader acts.
    pub fn tick(&mut self, now: UnixMs) -> Result<(), ControlError> {
        if let Some(c) = self.cluster.clone() {
            if !c.is_leader() {
                self.follow();
                return Ok(());
            }
            if !self.leading {
                self.take_over(&c, now)?;
            }
            if self.reread {
                self.read_back()?;
            }
            self.retry_unsaved(now);
            c.set_judging(self.rollout.as_ref().is_some_and(Rollout::is_active));
        }
        if self.live.fault().is_some() {
            // State that could not be read: nothing is driven on it (the
            // canary is blocked; `status` says why).
            return Ok(());
        }
        // Cheap (a store per worker), and always the policy in force.
        self.metrics.set_route_slow_ms(self.policy.max_p95_ms);
        let mut t = match &self.cluster {
            // The leader's rounds read its own totals with the others'.
            Some(c) => self.fleet.tick(&c.fleet),
            None => self.observer.tick(&self.metrics),
        };
        if self.cluster.is_some() {
            if let Some(r) = self.rollout.as_mut().filter(|r| r.is_active()) {
                r.counted_to = self.fleet.counted_to().cloned();
            }
            for node in self.fleet.take_dropped() {
                let detail = serde_json::json!({"node": node, "why": "its registration in etcd is gone"});
                tracing::warn!(node = %node, "cluster: a replica left the fleet's sum");
                if let Err(e) = self.live.store().record(EventKind::ReplicaDropped, "cluster", &detail) {
                    tracing::warn!(error = %e, "cannot record the replica's leaving");
                }
            }
        }
        let [stable, canary] = resources::read(&self.resources);
        (t.stable.resources, t.canary.resources) = (stable, canary);
        merge(&mut self.step_obs.stable, &t.stable);
        merge(&mut self.step_obs.canary, &t.canary);
        // Resource use is a level, not a count: the step is judged on the latest.
        (self.step_obs.stable.resources, self.step_obs.canary.resources) = (stable, canary);
        let canary_url = self.live.upstreams().canary.as_ref().map(|c| c.url().to_string());
        self.step_obs.canary.health = health::read(&self.health, canary_url.as_deref());
        if let Some(r) = self.rollout.as_mut() {
            r.account(&self.policy, &t, &self.step_obs);
        }
        self.ring.push(t);
        let Some(r) = self.rollout.as_mut().filter(|r| r.is_active()) else { return Ok(()) };
        self.step_obs.external = crate::analysis::read(&self.analysis, r.id);
        self.step_obs.shadow = match (&self.shadow, r.shadowing) {
            (Some(s), true) => shadow::lines(s, &self.shadow_policy, &self.policy),
            _ => Vec::new(),
        };
        let before = r.clone();
        let external = self.live.routing().share;
        let mut ds = Vec::new();
        if external != r.share {
            // Someone else moved the share (API, flags file): a person's hand
            // on the wheel pauses the plan rather than fighting it.
            ds.extend(r.share_moved(now, external, "an operator (outside the rollout)"));
            ds.retain(|d| !matches!(d, Decision::SetShare(_)));
        }
        let fast = self.ring.recent(self.policy.min_fast_requests);
        ds.extend(r.tick(now, &self.policy, &self.controls, &fast, &self.step_obs));
        let due = (now - self.last_persist_ms) >= PERSIST_EVERY_MS;
        if ds.is_empty() && !due {
            return Ok(());
        }
        self.carry_out(before, ds, now)
    }

    /// A replica that does not lead acts on nothing and reads nothing: its
    /// `status` reads the rollout the leader saves when asked
    /// ([`Controller::catch_up`]), so an idle follower costs etcd no read.
    fn follow(&mut self) {
        // The readings stop with the term, not with a late renewal: through
        // such a moment they go on, and so does the count when it is over.
        if let Some(c) = self.cluster.as_ref().filter(|c| c.held_term().is_none()) {
            c.fleet.close();
        }
        if self.leading {
            self.leading = false;
            tracing::warn!("cluster: no longer the leader; this replica's controller stops acting");
        }
    }

    /// This replica just became the leader: it continues the rollout where
    /// the shared store has it (the same step, the bake it had left), judging
    /// from fresh measurements, and records the change of hands.
    fn take_over(&mut self, c: &Cluster, now: UnixMs) -> Result<(), ControlError> {
        let term = c.term();
        if term.is_some() && term == self.led_term {
            // The lead came back within the same term (a lease renewal that
            // ran late): nobody else led meanwhile, so the rollout and its
            // count go on as they were, each replica from its last reading.
            self.leading = true;
            if c.fleet.gate().is_none() {
                c.fleet
                    .open(self.rollout.as_ref().filter(|r| r.is_active()).and_then(|r| r.counted_to.clone()));
            }
            tracing::info!(
                "cluster: this replica leads again in the same term; the rollout and its count go on"
            );
            return Ok(());
        }
        self.led_term = term;
        let mut rollout: Option<Rollout> = self.live.store().latest_rollout()?;
        if let Some(r) = rollout.as_mut().filter(|r| r.is_active()) {
            r.resume_after_restart(now);
        }
        self.rollout = rollout;
        // The count goes on from where the previous leader saved it: every
        // replica's traffic since, this one's included, is added.
        let from = self.rollout.as_ref().filter(|r| r.is_active()).and_then(|r| r.counted_to.clone());
        self.fleet = FleetObserver::new(now, from.clone());
        c.fleet.open(from);
        self.ring.clear();
        self.step_obs = Observation::default();
        self.leading = true;
        let active = self.rollout.as_ref().filter(|r| r.is_active());
        let detail = serde_json::json!({
            "node": c.node_id,
            "rollout": active.map(|r| r.id),
            "step": active.map(|r| r.step + 1),
            "share": active.map(|r| r.share.percent()),
            "baked_ms": active.map(|r| r.baked_ms),
        });
        tracing::info!(detail = %detail, "cluster: this replica's controller takes over");
        if active.is_some() {
            self.apply(vec![Decision::Event { kind: EventKind::LeaderChanged, detail }], now)
        } else {
            self.live.store().record(EventKind::LeaderChanged, "cluster", &detail).map_err(ControlError::from)
        }
    }

    /// After a write to the shared store that failed without an answer (a
    /// time-out), the rollout as the store has it: etcd may have applied
    /// the write after the call gave up (a slow link), and deciding again
    /// from the state before it would do the step twice, or take the share
    /// it set for an operator's and pause. The step's progress in memory is
    /// kept when the store has the same step.
    fn read_back(&mut self) -> Result<(), ControlError> {
        let stored: Option<Rollout> = self.live.store().latest_rollout()?;
        self.reread = false;
        let same = |a: &Rollout, b: &Rollout| a.id == b.id && a.step == b.step && a.state == b.state;
        match (stored, self.rollout.as_ref()) {
            (Some(s), Some(mine)) if same(&s, mine) => {}
            (stored, _) => {
                tracing::warn!(
                    rollout = stored.as_ref().map(|r| r.id),
                    "a write the shared store did not confirm had landed; going on from the stored rollout"
                );
                self.rollout = stored;
                self.ring.clear();
                self.step_obs = Observation::default();
            }
        }
        Ok(())
    }

    /// Starts a rollout.
    pub fn deploy(
        &mut self,
        req: &DeployRequest,
        now: UnixMs,
        checks: Option<Vec<ItemResult>>,
    ) -> Result<Status, ControlError> {
        if let Some(fault) = self.live.fault() {
            return Err(ControlError::Conflict(fault.message()));
        }
        if let Some(r) = self.rollout.as_ref().filter(|r| r.is_active()) {
            return Err(ControlError::Conflict(format!(
                "rollout {} of {} is {} at {}; promote it or roll it back first",
                r.id,
                r.canary,
                r.state.as_str(),
                r.share
            )));
        }
        let (canary, plan) = self.parse_deploy(req)?;
        let overridden = self.check_window(req)?;
        let id = self.live.store().next_rollout_id()?;
        let stable = self.live.upstreams().stable.url().to_string();
        let (r, mut ds) = Rollout::start(id, canary.url(), &stable, plan, now);
        if let Some(detail) = overridden {
            ds.push(Decision::Event { kind: EventKind::WindowOverridden, detail });
        }
        if let Some(results) = checks {
            let passed = crate::ops::checklist::all_passed(&results);
            let detail = serde_json::json!({"rollout": id, "passed": passed, "items": results, "forced_reason": (!passed).then(|| req.reason.clone())});
            ds.push(Decision::Event { kind: EventKind::Checklist, detail });
        }
        let previous = self.rollout.replace(r);
        if let Err(e) = self.apply(ds, now) {
            self.rollout = previous;
            return Err(e);
        }
        Ok(self.status())
    }

    /// Refuses a deploy outside the windows unless forced with a reason;
    /// returns what to record when a refusal was overridden.
    fn check_window(&self, req: &DeployRequest) -> Result<Option<serde_json::Value>, ControlError> {
        let reason = req.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if req.force && reason.is_none() {
            return Err(ControlError::Invalid(
                "--force needs --reason TEXT: an override is recorded with its reason".into(),
            ));
        }
        if !self.windows.enabled {
            return Ok(None);
        }
        let j = self.windows.judge(jiff::Timestamp::now());
        let canary_core::calendar::Answer::Refused(rule) = &j.answer else {
            // Allowed, but in a year the built-in holidays do not know: say so.
            if let Some(note) = &j.note {
                tracing::warn!(at = %j.local, note = %note, "deploy allowed by the windows");
            }
            return Ok(None);
        };
        if let Some(why) = reason.filter(|_| req.force) {
            return Ok(Some(serde_json::json!({"rule": rule, "at": j.local.to_string(), "reason": why})));
        }
        Err(ControlError::Conflict(j.deploy_refusal().unwrap_or_default()))
    }

    /// Refuses a deploy whose canary URL, share or plan is bad, changing nothing.
    pub fn check_deploy(&self, req: &DeployRequest) -> Result<(), ControlError> {
        self.parse_deploy(req).map(|_| ())
    }

    fn parse_deploy(&self, req: &DeployRequest) -> Result<(Upstream, Plan), ControlError> {
        let bad = |what: &str, e: String| ControlError::Invalid(format!("{what}: {e}"));
        let canary = Upstream::parse(&req.canary).map_err(|e| bad("canary URL", e))?;
        let first = Share::from_percent(req.share).map_err(|e| bad("share", e.to_string()))?;
        let mut plan = self.plan.clone();
        if let Some(s) = &req.steps {
            plan.steps = Plan::parse_steps(s).map_err(|e| bad("steps (--steps)", e.to_string()))?;
        }
        if let Some(b) = &req.bake {
            plan.bake_ms = parse_duration_ms(b).map_err(|e| bad("bake (--bake)", e.to_string()))?;
        }
        if let Some(f) = &req.final_watch {
            plan.final_watch_ms =
                parse_duration_ms(f).map_err(|e| bad("final_watch (--final-watch)", e.to_string()))?;
        }
        plan.manual |= req.manual;
        if let Some(s) = &req.shadow {
            plan.shadow_ms = parse_duration_ms(s).map_err(|e| bad("shadow (--shadow)", e.to_string()))?;
        }
        let plan = plan.starting_at(first).map_err(|e| bad("share", e.to_string()))?;
        Ok((canary, plan))
    }

    /// Carries out a person's command.
    pub fn command(&mut self, cmd: Command, now: UnixMs) -> Result<Status, ControlError> {
        if let Some(fault) = self.live.fault() {
            // Here the canary is already blocked at share 0: a rollback has
            // nothing left to do, and nothing else may act on state that was
            // not read.
            // In a cluster, other replicas may still route by a table this
            // one cannot read: a rollback here would say done and do nothing.
            return match cmd {
                Command::Rollback(_) if self.cluster.is_none() => Ok(self.status()),
                _ => Err(ControlError::Conflict(fault.message())),
            };
        }
        let active = self.rollout.as_mut().filter(|r| r.is_active() || matches!(cmd, Command::Rollback(_)));
        let Some(r) = active else { return self.without_rollout(cmd) };
        if r.state == State::RolledBack {
            // Rolling back twice is harmless: make sure the share is 0.
            return self.without_rollout(cmd);
        }
        let before = r.clone();
        // The judge's view of the step so far: what a manual move is checked
        // against, and the step's figures in the record.
        let sv = judge_step(&self.policy, &self.step_obs);
        let ds = match cmd {
            Command::Adjust { share, force } => r.adjust(now, share, force, &sv)?,
            Command::Promote(full) => r.promote(now, full, &sv)?,
            Command::Pause(why) => r.pause(now, &format!("paused by hand: {why}"))?,
            Command::Resume => r.resume(now)?,
            Command::Rollback(why) => r.rollback(now, &why, &sv)?,
        };
        self.carry_out(before, ds, now)?;
        Ok(self.status())
    }

    fn without_rollout(&mut self, cmd: Command) -> Result<Status, ControlError> {
        let mut change = Change::default();
        match cmd {
            Command::Adjust { share, force } => {
                change.share = Some(share);
                if self.live.routing().canary_blocked && share > Share::ZERO {
                    if !force {
                        return Err(ControlError::Conflict(self.blocked_message(share)));
                    }
                    // An explicit choice to send users to this canary again.
                    change.blocked = Some(false);
                }
            }
            // With or without a rollout, a rollback keeps overrides off the
            // canary too, until the next deploy or a forced adjust.
            Command::Rollback(_) => {
                change.share = Some(Share::ZERO);
                change.blocked = Some(true);
            }
            Command::Promote(_) => {
                return Err(ControlError::Conflict(
                    "nothing to promote: no rollout is in progress (start one with `canary deploy`)".into(),
                ));
            }
            Command::Pause(_) | Command::Resume => {
                return Err(ControlError::Conflict(
                    "no rollout is in progress; nothing to pause or resume".into(),
                ));
            }
        }
        self.live.apply(change, Source::Api)?;
        Ok(self.status())
    }

    fn blocked_message(&self, share: Share) -> String {
        let which = self.rollout.as_ref().map_or(String::new(), |r| format!(" of rollout {}", r.id));
        format!(
            "the canary{which} was rolled back: it gets no traffic, overrides included, until the next \
             `canary deploy`; to send it {share} anyway: `canary adjust {} --force`",
            share.percent()
        )
    }

    /// Applies decisions; on a failed write, puts the rollout back as it was.
    /// Applies decisions. If the state file cannot be written, nothing the
    /// rollout decided takes effect, except a rollback: pulling the canary out
    /// must never wait for a disk. Either way the rollout holds (paused, in
    /// memory) and says why; it is recorded once the file can be written again.
    fn carry_out(&mut self, before: Rollout, ds: Vec<Decision>, now: UnixMs) -> Result<(), ControlError> {
        // Kept for a rollback the shared store did not take (see `retry_unsaved`).
        let copy = self.cluster.as_ref().map(|_| ds.clone());
        // Only the bake's progress to save: a failed save loses nothing the
        // next one will not carry, so the rollout is not put back.
        let progress_only = ds.is_empty();
        let result = self.apply(ds, now);
        match &result {
            Ok(()) => self.fault = None,
            Err(ControlError::Store(e)) if progress_only && self.cluster.is_some() => {
                self.fault = Some(self.cannot_write(e));
            }
            Err(ControlError::Store(e)) => {
                let rolled_back = self.rollout.as_ref().is_some_and(|r| r.state == State::RolledBack);
                if let (true, Some(ds), Some(r)) = (rolled_back, copy, self.rollout.clone()) {
                    self.unsaved = Some((r, ds));
                }
                self.hold_on_store_error(before, now, e.to_string())
            }
            Err(_) => self.rollout = Some(before),
        }
        result
    }

    /// A rollback the shared store could not take is written again at each
    /// look until it is: until then only this replica's router is safe, and
    /// a new leader would find the rollout still running.
    fn retry_unsaved(&mut self, now: UnixMs) {
        let Some((r, ds)) = self.unsaved.take() else { return };
        // Only while the rollout is still that one (a later deploy supersedes it).
        let same = self
            .rollout
            .as_ref()
            .is_some_and(|cur| cur.id == r.id && (cur.is_active() || cur.state == State::RolledBack));
        if !same {
            return;
        }
        self.rollout = Some(r.clone());
        match self.apply(ds.clone(), now) {
            Ok(()) => {
                self.fault = None;
                tracing::info!(rollout = r.id, "the rollback is now in the shared store");
            }
            Err(_) => self.unsaved = Some((r, ds)),
        }
    }

    fn cannot_write(&self, e: &dyn std::fmt::Display) -> String {
        let what = if self.cluster.is_some() { "the shared state (etcd)" } else { "the state file" };
        format!("{what} cannot be written ({e}); the rollout holds until it can")
    }

    fn hold_on_store_error(&mut self, before: Rollout, now: UnixMs, e: String) {
        let rolled_back = self.rollout.as_ref().is_some_and(|r| r.state == State::RolledBack)
            && before.state != State::RolledBack;
        self.fault = Some(self.cannot_write(&e));
        if rolled_back {
            self.live.emergency_share_zero();
            return;
        }
        if self.cluster.is_some() {
            // Shared state fails for a moment (etcd, a lost race): look again
            // next tick rather than pause for a person to resume, from the
            // stored rollout (the write may have landed all the same).
            self.rollout = Some(before);
            self.reread = true;
            return;
        }
        let mut held = before;
        if held.is_active() && held.state != State::Paused {
            let _ = held.pause(now, &format!("state file cannot be written: {e}"));
        }
        self.rollout = Some(held);
    }

    fn apply(&mut self, ds: Vec<Decision>, now: UnixMs) -> Result<(), ControlError> {
        let Some(r) = self.rollout.clone() else { return Ok(()) };
        let mut change = Change::default();
        let mut events = Vec::new();
        for d in ds {
            match d {
                Decision::SetShare(s) => change.share = Some(s),
                Decision::BlockCanary(b) => change.blocked = Some(b),
                Decision::SetShadow(on) => {
                    // A new shadow step counts only its own copies.
                    if let (true, Some(s)) = (on, &self.shadow) {
                        s.results.reset();
                    }
                    change.shadow = Some(on);
                }
                Decision::SetUpstreams { stable, canary } => {
                    change.upstreams = Some(upstreams(&stable, canary.as_deref())?)
                }
                Decision::Event { kind, detail } => events.push((kind, detail)),
            }
        }
        let moved = change.share.is_some()
            || change.upstreams.is_some()
            || change.blocked.is_some()
            || change.shadow.is_some();
        if moved {
            // The table and the step that sets it, in one write.
            let write = RolloutWrite { rollout: &r, events: &events };
            self.live.apply_with_rollout(change, write)?;
            // The mix of traffic changed: older ticks describe another step.
            self.ring.clear();
            self.step_obs = Observation::default();
        } else {
            self.live.store().save_rollout(RolloutWrite { rollout: &r, events: &events })?;
        }
        self.last_persist_ms = now;
        for (kind, detail) in events {
            if kind == EventKind::RolledBack {
                exposition::count(&self.rollbacks, exposition::cause(&detail));
            }
            tracing::info!(event = kind.as_str(), detail = %brief::brief(&detail), "rollout");
            tracing::debug!(event = kind.as_str(), detail = %detail, "rollout, whole");
            if let Some(out) = &self.outbox {
                out.send(OpsEvent { kind, detail, rollout: r.clone() });
            }
        }
        Ok(())
    }
}

fn upstreams(stable: &str, canary: Option<&str>) -> Result<Upstreams, ControlError> {
    let parse = |u: &str| Upstream::parse(u).map_err(ControlError::Invalid);
    Ok(Upstreams { stable: parse(stable)?, canary: canary.map(parse).transpose()? })
}

/// Locks the shared controller, whatever a panicking holder left: the rollout
/// itself is only replaced whole, so it is never torn.
pub fn lock(c: &Mutex<Controller>) -> std::sync::MutexGuard<'_, Controller> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ticks the controller every [`TICK`] until `stop` is cancelled.
pub fn spawn(c: Arc<Mutex<Controller>>, stop: CancellationToken) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("canary-controller".into()).spawn(move || {
        while !stop.is_cancelled() {
            std::thread::sleep(TICK);
            let mut g = lock(&c);
            if let Err(e) = g.tick(clock::now_ms()) {
                // A leader that stops leading mid-look (a graceful stop, or
                // another replica took the key) cannot save: expected, and
                // the next leader goes on from the stored rollout.
                if g.cluster.as_ref().is_some_and(|c| !c.is_leader()) {
                    tracing::info!(error = %e, "this replica stopped leading during a look; nothing was saved here");
                } else {
                    tracing::error!(error = %e, "rollout tick failed; nothing was changed, retrying");
                }
            }
            g.publish();
        }
    })
}
