//! The rollout state machine. Time and observations come in as arguments;
//! decisions (set the share, swap upstreams, record an event) come out. No
//! clock, socket or file is touched here, so hours of rollout run in tests in
//! milliseconds.
//!
//! States: `progressing` (baking step k), `holding` (the bake is over but the
//! judge cannot yet tell), `paused` (waiting for a person), and the ends:
//! `promoted` and `rolled_back`. "Idle" is the absence of an active rollout.
//!
//! Every tick judges the immediate-rollback evidence, then (unless paused)
//! adds the elapsed time to the step's bake; when the bake is complete the
//! step's verdict decides: pass advances (or, in a manual plan, waits for
//! `promote`), fail rolls back (or pauses, by `on_failure`), inconclusive
//! holds and, past `max_hold_ms`, pauses for a person. A step whose verdict
//! surely fails before its bake is over fails then (`judge::fails_now`).

use crate::event::EventKind;
use crate::judge::{
    Observation, OnFailure, Outcome, Policy, Verdict, Watch, fails_now, judge_rollback, judge_step,
};
use crate::plan::Plan;
use crate::share::Share;
use crate::time::UnixMs;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Baking a step.
    Progressing,
    /// Bake over, too little data to judge: the step is held.
    Holding,
    /// Waiting for a person (`resume`, or `promote` in a manual plan).
    Paused,
    /// Done: the canary is the new stable.
    Promoted,
    /// Done: the canary was pulled back.
    RolledBack,
}

impl State {
    /// The name used in JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Progressing => "progressing",
            State::Holding => "holding",
            State::Paused => "paused",
            State::Promoted => "promoted",
            State::RolledBack => "rolled_back",
        }
    }

    /// The state named `name`, if it is one.
    pub fn parse(name: &str) -> Option<State> {
        [State::Progressing, State::Holding, State::Paused, State::Promoted, State::RolledBack]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Whether a rollout in this state still runs (not promoted or rolled back).
    pub fn is_active(self) -> bool {
        matches!(self, State::Progressing | State::Holding | State::Paused)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Controller settings that are not judging thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Controls {
    /// Consecutive failing rollback evaluations before rolling back (1: the
    /// evidence is already sequential; more only adds 250 ms a look).
    pub rollback_after: u32,
    /// How long a step may hold on too little data before pausing, in ms.
    pub max_hold_ms: u64,
    /// The most time one tick may add to a bake, in ms: a stalled or stopped
    /// controller must not count the time it was not watching.
    pub max_tick_gap_ms: u64,
}

impl Default for Controls {
    fn default() -> Controls {
        Controls { rollback_after: 1, max_hold_ms: 30 * 60_000, max_tick_gap_ms: 5_000 }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Decision {
    /// Route this share of traffic to the canary.
    SetShare(Share),
    /// Replace the upstreams (on start, promotion and rollback after promotion).
    SetUpstreams {
        /// The new stable URL.
        stable: String,
        /// The new canary URL, if any.
        canary: Option<String>,
    },
    /// Keep every request off the canary, overrides included (`true`, after a
    /// rollback), or let the share and overrides apply again (`false`, a deploy).
    BlockCanary(bool),
    /// Start (`true`) or end the shadow step's copying.
    SetShadow(bool),
    /// Record an event in the log.
    Event {
        /// What happened.
        kind: EventKind,
        /// Details, verdict tables included.
        detail: Value,
    },
}

/// A command that cannot apply in the current state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The rollout has ended.
    #[error("rollout {id} has already ended ({state}); start a new one with `canary deploy`")]
    Ended {
        /// The rollout.
        id: i64,
        /// Its end state.
        state: State,
    },
    /// Resume on a rollout that is not paused.
    #[error("rollout {id} is {state}, not paused: nothing to resume")]
    NotPaused {
        /// The rollout.
        id: i64,
        /// Its state.
        state: State,
    },
    /// A manual advance past a step whose verdict fails, without `force`.
    #[error(
        "rollout {id}: step {step} at {share} fails its verdict ({reason}); moving on needs --force, or roll back with `canary rollback`"
    )]
    VerdictFailed {
        /// The rollout.
        id: i64,
        /// The 1-based step being left.
        step: usize,
        /// Its share.
        share: Share,
        /// The failing criteria.
        reason: String,
    },
    /// Resume on a step waiting for `promote`.
    #[error("rollout {id} passed step {step} and waits for `canary promote` (a manual plan)")]
    AwaitingPromote {
        /// The rollout.
        id: i64,
        /// The 1-based step.
        step: usize,
    },
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Its number.
    pub id: i64,
    /// The canary's URL.
    pub canary: String,
    /// The stable URL when it started (restored by a rollback after promotion).
    pub previous_stable: String,
    /// Its plan (steps start at the deploy's first share).
    pub plan: Plan,
    /// Where it stands.
    pub state: State,
    /// The current step, 0-based.
    pub step: usize,
    /// The share the router has now.
    pub share: Share,
    /// When it started, ms since the epoch.
    pub started_ms: UnixMs,
    /// When it ended.
    pub ended_ms: Option<UnixMs>,
    /// When the current step started.
    pub step_started_ms: UnixMs,
    /// Watching time accrued at this step.
    pub baked_ms: u64,
    /// The last tick.
    pub last_tick_ms: UnixMs,
    /// When the step started holding.
    pub hold_since_ms: Option<UnixMs>,
    /// Consecutive failing rollback evaluations.
    pub breaches: u32,
    /// Why it is paused, holding, or rolled back.
    pub reason: Option<String>,
    /// A manual plan's step passed and waits for `promote`.
    pub awaiting_promote: bool,
    /// The latest step verdict.
    pub step_verdict: Option<Verdict>,
    /// The latest rollback-window verdict.
    pub fast_verdict: Option<Verdict>,
    /// The traffic it carried, counted over every tick while it ran.
    #[serde(default)]
    pub tally: Tally,
    /// The immediate rollback's evidence so far (kept with the rollout, so a
    /// replica taking over goes on from it).
    #[serde(default)]
    pub watch: Watch,
    /// In a cluster, where the tally and the watch stop: a new leader
    /// counts each replica's traffic from the reading it served there, so a
    /// change of leader loses none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_to: Option<CountedTo>,
    /// In the shadow step, before the first share: the canary serves no
    /// user, and `step` is the first share's, not yet entered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadowing: bool,
}

/// Where the count saved with a rollout stops, in a cluster: the leader's
/// latest round of readings counted, and the replicas counted only up to
/// an earlier round (their fetches failed since).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedTo {
    /// The latest round counted.
    pub look: Look,
    /// Replicas whose last reading counted came from an earlier round of
    /// the same term, with that round's number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub behind: BTreeMap<String, u64>,
}

impl CountedTo {
    /// The round replica `node` is counted up to.
    pub fn of(&self, node: &str) -> Look {
        match self.behind.get(node) {
            Some(n) => Look { n: *n, ..self.look },
            None => self.look,
        }
    }
}

/// One round of the leader's fetches of the replicas' totals: its term,
/// its number within the term, and when it began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Look {
    /// The leader's term (its leader key's creation revision).
    pub term: i64,
    /// The look's number within the term.
    pub n: u64,
    /// When it began.
    pub at: UnixMs,
}

/// What a rollout carried and what it cost users (S22: zero downtime).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests routed to the canary.
    pub canary_requests: u64,
    /// Of those, failed (5xx or no answer).
    pub canary_errors: u64,
    /// Of the failures, replayed on stable: the client never saw them.
    pub canary_recovered: u64,
    /// Requests routed to stable.
    pub stable_requests: u64,
    /// Of those, failed.
    pub stable_errors: u64,
}

impl Tally {
    /// Requests the canary failed in front of a user: its errors less the
    /// ones replayed on stable.
    pub fn lost(&self) -> u64 {
        self.canary_errors.saturating_sub(self.canary_recovered)
    }
}

impl Rollout {
    /// Starts rollout `id` of `canary` in front of `stable` with `plan` (already
    /// starting at the first share) at `now`.
    pub fn start(id: i64, canary: &str, stable: &str, plan: Plan, now: UnixMs) -> (Rollout, Vec<Decision>) {
        let shadowing = plan.shadow_ms > 0;
        let first = plan.steps.first().copied().unwrap_or(Share::FULL);
        let share = if shadowing { Share::ZERO } else { first };
        let r = Rollout {
            id,
            canary: canary.to_string(),
            previous_stable: stable.to_string(),
            plan,
            state: State::Progressing,
            step: 0,
            share,
            started_ms: now,
            ended_ms: None,
            step_started_ms: now,
            baked_ms: 0,
            last_tick_ms: now,
            hold_since_ms: None,
            breaches: 0,
            reason: None,
            awaiting_promote: false,
            step_verdict: None,
            fast_verdict: None,
            tally: Tally::default(),
            watch: Watch::default(),
            counted_to: None,
            shadowing,
        };
        let mut d = vec![
            Decision::SetUpstreams { stable: stable.to_string(), canary: Some(canary.to_string()) },
            Decision::SetShare(share),
            Decision::BlockCanary(false),
        ];
        if shadowing {
            d.push(Decision::SetShadow(true));
        }
        d.push(
            r.event(EventKind::RolloutStarted, json!({"canary": canary, "stable": stable, "plan": r.plan})),
        );
        (r, d)
    }

    /// Whether it still runs (not promoted or rolled back).
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// Watching time left at this step, in ms.
    pub fn time_left_ms(&self) -> u64 {
        self.bake_ms().saturating_sub(self.baked_ms)
    }

    /// The watching time of the step in force: the shadow step's, or the
    /// plan's for the step.
    fn bake_ms(&self) -> u64 {
        if self.shadowing { self.plan.shadow_ms } else { self.plan.bake_of(self.step) }
    }

    /// Ends the shadow step, if in it: copying stops.
    fn end_shadow(&mut self, d: &mut Vec<Decision>) {
        if self.shadowing {
            self.shadowing = false;
            d.push(Decision::SetShadow(false));
        }
    }

    /// Adds one tick's traffic to the tally and to the immediate rollback's
    /// evidence while the rollout runs; `step` is the step so far.
    pub fn account(&mut self, p: &Policy, tick: &Observation, step: &Observation) {
        if !self.is_active() {
            return;
        }
        self.watch.add(p, tick, step);
        let t = &mut self.tally;
        t.canary_requests += tick.canary.requests;
        t.canary_errors += tick.canary.errors;
        t.canary_recovered += tick.canary.recovered;
        t.stable_requests += tick.stable.requests;
        t.stable_errors += tick.stable.errors;
    }

    /// After a restart: the time the controller was down is not watching time.
    pub fn resume_after_restart(&mut self, now: UnixMs) {
        self.last_tick_ms = now;
        self.breaches = 0;
    }

    /// One evaluation at `now`: `fast` is the recent window, `step` the step so far.
    pub fn tick(
        &mut self,
        now: UnixMs,
        p: &Policy,
        c: &Controls,
        fast: &Observation,
        step: &Observation,
    ) -> Vec<Decision> {
        if !self.is_active() {
            return Vec::new();
        }
        let dt = (now - self.last_tick_ms).min(c.max_tick_gap_ms);
        self.last_tick_ms = now;
        let fv = judge_rollback(p, fast, step, &self.watch);
        self.breaches = if fv.outcome == Outcome::Fail { self.breaches + 1 } else { 0 };
        let breached = self.breaches >= c.rollback_after.max(1);
        self.fast_verdict = Some(fv.clone());
        if breached {
            return self.on_breach(now, p, &fv);
        }
        if self.state == State::Paused {
            return Vec::new();
        }
        self.baked_ms += dt;
        let sv =
            if self.shadowing { crate::shadow::verdict::of_lines(&step.shadow) } else { judge_step(p, step) };
        self.step_verdict = Some(sv.clone());
        if self.baked_ms < self.bake_ms() && !fails_now(&sv) {
            return Vec::new();
        }
        self.conclude_step(now, p, c, &sv)
    }

    /// The immediate-rollback criteria failed: roll back, or with
    /// `on_failure_immediate = "pause"` hold the share for a person (once).
    fn on_breach(&mut self, now: UnixMs, p: &Policy, fv: &Verdict) -> Vec<Decision> {
        let why = format!("immediate rollback at {}: {}", self.share, fv.reason());
        match p.on_failure_immediate {
            OnFailure::Rollback => self.roll_back(now, why, Some(fv)),
            OnFailure::Pause if self.state == State::Paused => Vec::new(),
            OnFailure::Pause => {
                self.step_verdict = Some(fv.clone());
                let why = format!(
                    "paused instead of rolling back ([policy] on_failure_immediate = \"pause\"): {why}"
                );
                self.pause_with(now, why, EventKind::Paused)
            }
        }
    }

    fn conclude_step(&mut self, now: UnixMs, p: &Policy, c: &Controls, sv: &Verdict) -> Vec<Decision> {
        if self.shadowing && sv.outcome == Outcome::Fail {
            // Its own event first, for hooks that wait on it; the rollback
            // or pause that follows ends the step.
            let failed = self.event(EventKind::ShadowFailed, json!({"verdict": sv, "reason": sv.reason()}));
            let mut d = vec![failed];
            d.extend(self.conclude_judged(now, p, c, sv));
            return d;
        }
        self.conclude_judged(now, p, c, sv)
    }

    fn conclude_judged(&mut self, now: UnixMs, p: &Policy, c: &Controls, sv: &Verdict) -> Vec<Decision> {
        match sv.outcome {
            Outcome::Fail if p.on_failure == OnFailure::Pause => {
                let why = format!(
                    "{} failed, paused for a person ([policy] on_failure = \"pause\"): {}",
                    self.step_name(),
                    sv.reason()
                );
                self.pause_with(now, why, EventKind::Paused)
            }
            Outcome::Fail => {
                let reason = format!("{} failed: {}", self.step_name(), sv.reason());
                self.roll_back(now, reason, Some(sv))
            }
            Outcome::Inconclusive => self.hold(now, c, sv),
            _ if self.plan.manual => {
                self.awaiting_promote = true;
                let why =
                    format!("step {} at {} passed; waiting for `canary promote`", self.step + 1, self.share);
                self.pause_with(now, why, EventKind::AwaitingPromote)
            }
            _ => self.advance(now, sv),
        }
    }

    /// The step in force, in words: `step 2 at 25%`, or `the shadow step`.
    fn step_name(&self) -> String {
        if self.shadowing {
            "the shadow step".into()
        } else {
            format!("step {} at {}", self.step + 1, self.share)
        }
    }

    fn hold(&mut self, now: UnixMs, c: &Controls, sv: &Verdict) -> Vec<Decision> {
        let Some(since) = self.hold_since_ms else {
            self.hold_since_ms = Some(now);
            self.state = State::Holding;
            self.reason = Some(format!("holding at {}: {}", self.share, sv.reason()));
            return vec![self.event(EventKind::Holding, json!({"verdict": sv}))];
        };
        if now - since <= c.max_hold_ms {
            return Vec::new();
        }
        let mins = c.max_hold_ms / 60_000;
        let why = format!("too little traffic to judge {} for {mins} min: {}", self.step_name(), sv.reason());
        self.pause_with(now, why, EventKind::Paused)
    }

    fn advance(&mut self, now: UnixMs, verdict: &Verdict) -> Vec<Decision> {
        if self.shadowing {
            return self.move_to(now, 0, EventKind::StepAdvanced, verdict, json!({"from_shadow": true}));
        }
        if self.step + 1 >= self.plan.steps.len() {
            return self.complete(now, verdict, json!({}));
        }
        self.move_to(now, self.step + 1, EventKind::StepAdvanced, verdict, json!({}))
    }

    /// Enters step `to` with a fresh bake. `verdict` is the judge's view of
    /// the step being left (kept with the event: the report's step figures);
    /// `extra` says how, e.g. by whose hand.
    fn move_to(
        &mut self,
        now: UnixMs,
        to: usize,
        kind: EventKind,
        verdict: &Verdict,
        extra: Value,
    ) -> Vec<Decision> {
        let (from_step, from_share) = (self.step + 1, self.share.percent());
        let mut d = Vec::new();
        self.end_shadow(&mut d);
        self.step = to;
        self.share = self.plan.steps[to];
        self.enter_step(now);
        let mut detail = json!({"verdict": verdict, "from_step": from_step, "from_share": from_share});
        merge_into(&mut detail, extra);
        d.push(Decision::SetShare(self.share));
        d.push(self.event(kind, detail));
        d
    }

    fn enter_step(&mut self, now: UnixMs) {
        self.state = State::Progressing;
        self.step_started_ms = now;
        self.baked_ms = 0;
        self.hold_since_ms = None;
        self.awaiting_promote = false;
        self.reason = None;
        self.step_verdict = None;
    }

    fn complete(&mut self, now: UnixMs, verdict: &Verdict, extra: Value) -> Vec<Decision> {
        let (from_step, from_share) = (self.step + 1, self.share.percent());
        self.state = State::Promoted;
        self.ended_ms = Some(now);
        self.share = Share::ZERO;
        self.reason = None;
        let mut detail = json!({"verdict": verdict, "new_stable": self.canary, "from_step": from_step, "from_share": from_share});
        merge_into(&mut detail, extra);
        vec![
            Decision::SetUpstreams { stable: self.canary.clone(), canary: None },
            Decision::SetShare(Share::ZERO),
            self.event(EventKind::Promoted, detail),
        ]
    }

    /// Ends the rollout rolled back. The event keeps the step and share in
    /// force when the failure was seen (`at_step`, `at_share`), the verdict
    /// that decided it (none for a person's rollback) and the step's latest
    /// figures, for the incident record and the report.
    fn roll_back(&mut self, now: UnixMs, reason: String, verdict: Option<&Verdict>) -> Vec<Decision> {
        let was_promoted = self.state == State::Promoted;
        let (at_step, at_share) = (self.step + 1, self.share.percent());
        let planned_share = self.plan.steps.get(self.step).map(|s| s.percent());
        self.state = State::RolledBack;
        self.ended_ms = Some(now);
        self.share = Share::ZERO;
        self.reason = Some(reason.clone());
        let mut d = Vec::new();
        self.end_shadow(&mut d);
        if was_promoted {
            d.push(Decision::SetUpstreams { stable: self.previous_stable.clone(), canary: None });
        }
        d.push(Decision::SetShare(Share::ZERO));
        d.push(Decision::BlockCanary(true));
        d.push(self.event(
            EventKind::RolledBack,
            json!({
                "reason": reason,
                "verdict": verdict,
                "step_verdict": self.step_verdict,
                "restored_stable": was_promoted,
                "at_step": if was_promoted { None } else { Some(at_step) },
                "at_share": if was_promoted { 100.0 } else { at_share },
                "planned_share": if was_promoted { None } else { planned_share },
            }),
        ));
        d
    }

    fn pause_with(&mut self, _now: UnixMs, why: String, kind: EventKind) -> Vec<Decision> {
        self.state = State::Paused;
        self.reason = Some(why.clone());
        vec![self.event(kind, json!({"reason": why, "verdict": self.step_verdict}))]
    }

    fn event(&self, kind: EventKind, mut detail: Value) -> Decision {
        if let Value::Object(m) = &mut detail {
            m.insert("rollout".into(), json!(self.id));
            m.insert("step".into(), json!(self.step + 1));
            m.insert("share".into(), json!(self.share.percent()));
            m.insert("state".into(), json!(self.state.as_str()));
        }
        Decision::Event { kind, detail }
    }

    fn ensure_active(&self) -> Result<(), CommandError> {
        if self.is_active() { Ok(()) } else { Err(CommandError::Ended { id: self.id, state: self.state }) }
    }
}

/// Adds the fields of `extra` (an object) to `detail`.
fn merge_into(detail: &mut Value, extra: Value) {
    if let (Value::Object(d), Value::Object(e)) = (detail, extra) {
        d.extend(e);
    }
}

mod commands;

#[cfg(test)]
mod tests;
