//! The judge's policy: every threshold and rule it applies, with the seed's
//! values as defaults (S12, S13), read from the config's `[policy]`.

use crate::sequential::normal_tail;
use serde::{Deserialize, Serialize};

/// The decision rules and their thresholds; defaults are the seed's (S12, S13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Advance only below this canary error rate, in percent.
    pub max_error_rate: f64,
    /// Advance only below this canary p95, in ms.
    pub max_p95_ms: f64,
    /// Advance only below this memory use, in percent (where reported).
    pub max_memory: f64,
    /// Advance only below this CPU use, in percent (where reported).
    pub max_cpu: f64,
    /// Advance only below this share of the database pool in use, in percent (where reported).
    pub max_db_connections: f64,
    /// Advance only if the canary's error rate exceeds stable's by at most this many points.
    pub max_error_rate_increase: f64,
    /// Advance only if canary p95 <= stable p95 x this + `p95_slack_ms`.
    pub max_p95_ratio: f64,
    /// Absolute slack for the p95 ratio, in ms, so 1 ms vs 2 ms is not "twice as slow".
    pub p95_slack_ms: f64,
    /// Roll back when the canary error rate is surely above this, in percent.
    pub rollback_error_rate: f64,
    /// Roll back when the canary p95 is surely above this, in ms.
    pub rollback_p95_ms: f64,
    /// Roll back when memory is above this, in percent.
    pub rollback_memory: f64,
    /// Roll back when CPU is above this, in percent.
    pub rollback_cpu: f64,
    /// Roll back when the canary's 5xx rate is surely above stable's by this many
    /// points (5: a canary at 4% errors against a clean stable fails its step,
    /// but is not a surge to pull at once; see examples/decisions).
    pub surge_margin: f64,
    /// Canary requests needed in a step before it can pass.
    pub min_requests: u64,
    /// Canary requests needed in a step before it can fail on a criterion
    /// that is surely past its bar. The tests are valid at any count; this
    /// keeps a new version's first burst of errors as it warms up from
    /// failing it on its own.
    pub min_fail_requests: u64,
    /// Canary requests in the recent window the rollback lines show their
    /// figures over (the decision itself is the CUSUM's, fed every look).
    pub min_fast_requests: u64,
    /// The immediate rollback's false-alarm allowance: the chance, per hour
    /// of looks, that a canary good enough to pass its steps (error rate at
    /// most `max_error_rate`) is rolled back at once (see
    /// `sequential::Cusum::threshold`).
    pub alpha_rollback: f64,
    /// The breach the immediate rollback is tuned to catch fastest, as a
    /// multiple of its bar (2: a canary at 10% errors against the 5% bar).
    pub rollback_effect: f64,
    /// The false-alarm allowance of each step criterion that can fail a step
    /// (error rate, latency shares, targets, against stable), however often
    /// the step is looked at.
    pub alpha_step: f64,
    /// The same for each route's tests: many routes are tested at every look,
    /// so each asks for more certainty.
    pub alpha_route: f64,
    /// Older spelling of `alpha_step` as a one-sided normal quantile; when
    /// set, it wins (1.645 is alpha 0.05).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_z: Option<f64>,
    /// Older spelling of `alpha_route`, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_z: Option<f64>,
    /// The normal quantile at which stable's 5xx rate is bounded above for
    /// the surge test (2.326: one-sided 99%).
    pub surge_z: f64,
    /// Judge the seed's target table too: p50, p99, uptime, success (S12).
    pub targets: bool,
    /// Target p50, ms: fewer than half the canary's requests may be slower.
    pub target_p50_ms: f64,
    /// Target p99, ms: fewer than 1% of the canary's requests may be slower.
    pub target_p99_ms: f64,
    /// Target uptime, percent: the share of requests the canary answered at all.
    pub target_uptime: f64,
    /// Target success rate, percent: the share of requests that were not errors.
    pub target_success_rate: f64,
    /// Canary requests a route needs in the step before it can fail on its own.
    pub min_route_requests: u64,
    /// Consecutive failed health checks of the canary that fail its step (0: off).
    pub health_failures: u32,
    /// What a failed step does: roll back (the default) or pause for a person.
    pub on_failure: OnFailure,
    /// What the immediate-rollback criteria do (default: roll back).
    pub on_failure_immediate: OnFailure,
}

impl Policy {
    /// The step criteria's alpha, from `alpha_step` or the older `confidence_z`.
    pub fn step_alpha(&self) -> f64 {
        self.confidence_z.map_or(self.alpha_step, normal_tail)
    }

    /// The route tests' alpha, from `alpha_route` or the older `route_z`.
    pub fn route_alpha(&self) -> f64 {
        self.route_z.map_or(self.alpha_route, normal_tail)
    }

    /// Checks the alphas and the effect, naming the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let alphas = [
            ("alpha_rollback", self.alpha_rollback),
            ("alpha_step", self.alpha_step),
            ("alpha_route", self.alpha_route),
        ];
        for (key, a) in alphas {
            if !(a > 0.0 && a < 1.0) {
                return Err(format!(
                    "[policy] {key} = {a}: must be a probability between 0 and 1, e.g. 0.01"
                ));
            }
        }
        if !(self.rollback_effect > 1.0 && self.rollback_effect.is_finite()) {
            return Err(format!(
                "[policy] rollback_effect = {}: must be above 1 (the multiple of the bar to catch fastest, e.g. 2)",
                self.rollback_effect
            ));
        }
        Ok(())
    }
}

/// What a failed judgement does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Pull the canary back (share 0).
    #[default]
    Rollback,
    /// Hold the share and wait for a person (`resume`, `rollback`, `adjust`).
    Pause,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_error_rate: 1.0,
            max_p95_ms: 200.0,
            max_memory: 80.0,
            max_cpu: 70.0,
            max_db_connections: 80.0,
            max_error_rate_increase: 1.0,
            max_p95_ratio: 1.5,
            p95_slack_ms: 10.0,
            rollback_error_rate: 5.0,
            rollback_p95_ms: 1000.0,
            rollback_memory: 90.0,
            rollback_cpu: 90.0,
            surge_margin: 5.0,
            min_requests: 100,
            min_fail_requests: 50,
            min_fast_requests: 100,
            alpha_rollback: 0.001,
            rollback_effect: 2.0,
            alpha_step: 0.01,
            alpha_route: 0.001,
            confidence_z: None,
            route_z: None,
            surge_z: 2.326,
            targets: true,
            target_p50_ms: 100.0,
            target_p99_ms: 500.0,
            target_uptime: 99.9,
            target_success_rate: 99.0,
            min_route_requests: 10,
            health_failures: 3,
            on_failure: OnFailure::Rollback,
            on_failure_immediate: OnFailure::Rollback,
        }
    }
}
