//! What a person asks of a rollout: promote, pause, resume, roll back, and
//! adjust the share. Like a tick, each command checks the state, changes the
//! rollout and returns the decisions for the driver to carry out.
//!
//! Commands that end or leave a step take the judge's verdict on the step so
//! far (`sv`, computed by the driver from the same figures a tick uses), so
//! the record of a rollout driven by hand has each step's figures too.

use super::{CommandError, Decision, Rollout, State};
use crate::event::EventKind;
use crate::judge::{Outcome, Verdict};
use crate::share::Share;
use crate::time::UnixMs;
use serde_json::json;
use std::cmp::Ordering;

impl Rollout {
    /// `promote`: the next step now, skipping the rest of the bake; with
    /// `full`, straight to promotion. From a share set by hand off the plan,
    /// the next step is the first one above that share, so `promote` never
    /// lowers the share.
    pub fn promote(&mut self, now: UnixMs, full: bool, sv: &Verdict) -> Result<Vec<Decision>, CommandError> {
        self.ensure_active()?;
        let next = self.next_step_up();
        let how = json!({"by_hand": "promote", "skipped_bake": true});
        if full || next >= self.plan.steps.len() {
            return Ok(self.complete(now, sv, how));
        }
        Ok(self.move_to(now, next, EventKind::StepAdvanced, sv, how))
    }

    /// The step `promote` goes to (the plan's length: promotion).
    fn next_step_up(&self) -> usize {
        if self.shadowing {
            return 0;
        }
        let steps = &self.plan.steps;
        if steps.get(self.step) == Some(&self.share) {
            return self.step + 1;
        }
        (self.step + 1..steps.len()).find(|&i| steps[i] > self.share).unwrap_or(steps.len())
    }

    /// `pause`: stop advancing (rollback criteria stay armed).
    pub fn pause(&mut self, now: UnixMs, reason: &str) -> Result<Vec<Decision>, CommandError> {
        self.ensure_active()?;
        Ok(self.pause_with(now, reason.to_string(), EventKind::Paused))
    }

    /// `resume`: continue the bake where it stopped, at the step's share.
    pub fn resume(&mut self, now: UnixMs) -> Result<Vec<Decision>, CommandError> {
        self.ensure_active()?;
        if self.awaiting_promote {
            return Err(CommandError::AwaitingPromote { id: self.id, step: self.step + 1 });
        }
        if self.state != State::Paused {
            return Err(CommandError::NotPaused { id: self.id, state: self.state });
        }
        Ok(self.back_on_plan(now, json!({})))
    }

    /// Back to the current step's share and its bake where it stopped.
    fn back_on_plan(&mut self, now: UnixMs, how: serde_json::Value) -> Vec<Decision> {
        let planned = if self.shadowing { Share::ZERO } else { self.plan.steps[self.step] };
        let mut d = Vec::new();
        if self.share != planned {
            self.share = planned;
            d.push(Decision::SetShare(planned));
        }
        self.state = State::Progressing;
        self.hold_since_ms = None;
        self.reason = None;
        self.last_tick_ms = now;
        d.push(self.event(EventKind::Resumed, how));
        d
    }

    /// `rollback`: share 0 at once, no analysis; after a promotion, the
    /// previous stable comes back. `sv` is kept as the step's last figures.
    pub fn rollback(
        &mut self,
        now: UnixMs,
        reason: &str,
        sv: &Verdict,
    ) -> Result<Vec<Decision>, CommandError> {
        if self.state == State::RolledBack {
            return Err(CommandError::Ended { id: self.id, state: self.state });
        }
        if self.is_active() {
            self.step_verdict = Some(sv.clone());
        }
        Ok(self.roll_back(now, format!("by hand: {reason}"), None))
    }

    /// `canary adjust N`, the seed's manual flow. A share that is a step of the
    /// plan moves the rollout to that step: a later step is a manual advance,
    /// refused when the step being left fails its verdict unless `force`; an
    /// earlier one steps back; the current one returns to the plan. Either way
    /// the plan goes on from there (the last step is the final watch, then
    /// promotion). Any other share pauses the plan until `resume`.
    pub fn adjust(
        &mut self,
        now: UnixMs,
        share: Share,
        force: bool,
        sv: &Verdict,
    ) -> Result<Vec<Decision>, CommandError> {
        self.ensure_active()?;
        let Some(to) = self.plan.steps.iter().position(|s| *s == share) else {
            return Ok(self.share_moved(now, share, "`canary adjust`"));
        };
        let failing = sv.outcome == Outcome::Fail;
        if self.shadowing {
            // Any planned share ends the shadow step: a person chose to serve users.
            let how = json!({"by_hand": "adjust", "forced": failing, "from_shadow": true});
            return match failing && !force {
                true => Err(CommandError::VerdictFailed {
                    id: self.id,
                    step: 0,
                    share: self.share,
                    reason: sv.reason(),
                }),
                false => Ok(self.move_to(now, to, EventKind::StepAdvanced, sv, how)),
            };
        }
        match to.cmp(&self.step) {
            Ordering::Greater if failing && !force => Err(CommandError::VerdictFailed {
                id: self.id,
                step: self.step + 1,
                share: self.share,
                reason: sv.reason(),
            }),
            Ordering::Greater => {
                let how =
                    json!({"by_hand": "adjust", "forced": failing, "skipped_steps": to - self.step - 1});
                Ok(self.move_to(now, to, EventKind::StepAdvanced, sv, how))
            }
            Ordering::Less => {
                Ok(self.move_to(now, to, EventKind::SteppedBack, sv, json!({"by_hand": "adjust"})))
            }
            Ordering::Equal if self.awaiting_promote => Ok(Vec::new()),
            Ordering::Equal if self.share == share && self.state != State::Paused => Ok(Vec::new()),
            Ordering::Equal => Ok(self.back_on_plan(now, json!({"by_hand": "adjust"}))),
        }
    }

    /// The share was set off the plan (by `adjust`, the routing API or the
    /// flags file): a person's hand on the wheel pauses the plan rather than
    /// fighting it, until `resume`.
    pub fn share_moved(&mut self, now: UnixMs, share: Share, source: &str) -> Vec<Decision> {
        self.share = share;
        let why = format!("share set to {share} by {source}; `canary resume` returns to the plan");
        let mut d = vec![Decision::SetShare(share)];
        // A share set by hand ends the shadow step: users meet the canary now.
        self.end_shadow(&mut d);
        d.extend(self.pause_with(now, why, EventKind::Adjusted));
        d
    }
}
