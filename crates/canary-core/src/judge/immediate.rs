//! Must the canary be rolled back now? The immediate-rollback criteria (S13),
//! asked at every look (four a second).
//!
//! Each rate criterion is a CUSUM ([`crate::sequential::Cusum`]) fed every
//! look with that look's requests: the canary's error rate against
//! `rollback_error_rate`, its share of requests slower than `rollback_p95_ms`
//! against 5% (p95 above the bar), and its 5xx rate against stable's (bounded
//! above over the step) plus `surge_margin` points. A CUSUM forgets a healthy
//! past, so a canary that breaks an hour into a rollout is caught as fast as
//! one broken from the start. Its alarm threshold bounds the false-alarm
//! chance per hour of looks at `alpha_rollback` for a canary that would pass
//! its steps (errors at most `max_error_rate`, 5xx at most stable's plus
//! `max_error_rate_increase`; half the bar for slow requests), however long
//! the rollout. The figures shown are the recent window's.
//!
//! Per route, the step so far is tested instead (a route carrying a sliver of
//! traffic gathers too few requests in seconds): rolled back when a route's
//! canary error rate is surely above `rollback_error_rate` and surely above
//! stable's there by `surge_margin` points, with an always-valid test at
//! `alpha_route`.

use super::{
    ArmWindow, Criterion, NO_STABLE, Observation, Outcome, Policy, Verdict, line, resources, round2,
};
use super::{routes, with_versions};
use crate::sequential::Cusum;
use crate::stats::wilson;
use serde::{Deserialize, Serialize};

/// The evidence the immediate rollback has gathered, one CUSUM per criterion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// The canary's errors against `rollback_error_rate`.
    pub errors: Cusum,
    /// The canary's requests slower than `rollback_p95_ms`, against 5%.
    pub slow: Cusum,
    /// The canary's 5xx against stable's plus `surge_margin`.
    pub surge: Cusum,
}

impl Watch {
    /// Adds one look's canary requests (`tick`); `step` (the step so far)
    /// gives stable's rate for the surge.
    pub fn add(&mut self, p: &Policy, tick: &Observation, step: &Observation) {
        let c = &tick.canary;
        let e = p.rollback_effect;
        self.errors.add(c.errors, c.requests, p.rollback_error_rate / 100.0, e);
        self.slow.add(c.slower_than(p.rollback_p95_ms), c.samples(), SLOW_SHARE, e);
        if let Some(bar) = surge_bar(p, &step.stable) {
            self.surge.add(c.server_errors, c.requests, bar, e);
        }
    }
}

/// "p95 above the bar" is "more than 5% of requests slower than it".
const SLOW_SHARE: f64 = 0.05;

/// Stable's 5xx rate over the step at its Wilson upper bound (`surge_z`),
/// plus `surge_margin` points; `None` while stable has too few requests.
/// A baseline, recomputed every look: a fixed-sample bound is enough here
/// (the CUSUM carries the repeated looks), and it costs no search.
fn surge_bar(p: &Policy, stable: &ArmWindow) -> Option<f64> {
    (stable.requests >= p.min_fast_requests).then(|| {
        let hi = wilson(stable.server_errors, stable.requests, p.surge_z).map_or(1.0, |b| b.1);
        (hi + p.surge_margin / 100.0).min(1.0)
    })
}

/// Must the canary be rolled back now? `o` is the recent window (its figures
/// are shown), `step` the step so far, `w` the evidence gathered.
pub fn judge_rollback(p: &Policy, o: &Observation, step: &Observation, w: &Watch) -> Verdict {
    let c = &o.canary;
    let mut out = vec![
        cusum_line(p, "error_rate", c.error_rate(), p.rollback_error_rate, "%", w.errors),
        cusum_line(p, "p95_ms", c.quantile_ms(0.95), p.rollback_p95_ms, " ms", w.slow),
        surge_line(p, o, step, w.surge),
        routes::rollback_line(p, step),
    ];
    out.extend(resources(&c.resources, [p.rollback_memory, p.rollback_cpu, 100.0], true));
    with_versions(Verdict::from(out), o)
}

/// A CUSUM's line: fail once its evidence reaches the threshold for its bar.
fn cusum_line(p: &Policy, name: &str, value: Option<f64>, t: f64, unit: &str, c: Cusum) -> Criterion {
    // The rate a canary passing its step would have: the step's error bar
    // for errors; for slow requests there is none on the same scale, so
    // half the bar.
    let (p0, healthy) = if unit == "%" {
        (t / 100.0, (p.max_error_rate / 100.0).min(t / 200.0))
    } else {
        (SLOW_SHARE, SLOW_SHARE / 2.0)
    };
    let h = Cusum::threshold(p0, p.rollback_effect, healthy, p.alpha_rollback);
    let what = if unit == "%" {
        format!("surely above {t}%")
    } else {
        format!("surely over 5% of requests slower than {t} ms")
    };
    let note = format!("rollback when {what}: evidence {} of {} (CUSUM)", round2(c.s), round2(h));
    line(name, value, t, if c.s >= h { Outcome::Fail } else { Outcome::Pass }, note)
}

fn surge_line(p: &Policy, o: &Observation, step: &Observation, c: Cusum) -> Criterion {
    let name = "5xx_surge_vs_stable";
    let can = &o.canary;
    let value = (can.requests > 0).then(|| can.server_errors as f64 * 100.0 / can.requests as f64);
    let Some(bar) = surge_bar(p, &step.stable) else {
        return line(name, value, 0.0, Outcome::NotReported, NO_STABLE);
    };
    let stable_hi = bar - p.surge_margin / 100.0;
    let healthy = (stable_hi + p.max_error_rate_increase / 100.0).min(bar / 2.0);
    let h = Cusum::threshold(bar, p.rollback_effect, healthy, p.alpha_rollback);
    let note = format!(
        "rollback when the canary's 5xx are surely above stable's ({}% at most this step) + {} points: evidence {} of {} (CUSUM)",
        round2((bar * 100.0 - p.surge_margin).max(0.0)),
        p.surge_margin,
        round2(c.s),
        round2(h)
    );
    line(name, value, round2(bar * 100.0), if c.s >= h { Outcome::Fail } else { Outcome::Pass }, note)
}
