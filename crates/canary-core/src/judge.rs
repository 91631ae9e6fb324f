//! The judge: policy plus both versions' statistics in, a verdict out, with a
//! line per criterion (value, threshold, outcome) so every decision explains
//! itself.
//!
//! Two questions, asked differently:
//! - **May the step advance?** ([`judge_step`], over the whole step so far):
//!   the success criteria (S12) and the comparisons with stable, once there
//!   are at least `min_requests` canary requests (fewer is *inconclusive*,
//!   never a pass). A criterion passes on its estimate at the end of the
//!   bake, and fails only when an always-valid test
//!   ([`crate::sequential`]) says it is surely past its bar at `alpha_step`:
//!   the step is looked at four times a second, and such a failure may end
//!   the step before its bake is over ([`fails_now`]).
//! - **Must it roll back now?** ([`judge_rollback`], see `immediate`): CUSUMs
//!   fed every look, whose false alarms are bounded per hour of looks.

mod immediate;
mod latency;
mod policy;
mod routes;
mod targets;

pub use immediate::{Watch, judge_rollback};
pub use latency::mann_whitney;
pub use policy::{OnFailure, Policy};
pub use routes::RouteCount;

use crate::sequential::{clean_requests_needed, lower_bound, surely_above, surely_below, upper_bound};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resource use a version reports about itself, when it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory in use, percent.
    pub memory: Option<f64>,
    /// CPU in use, percent.
    pub cpu: Option<f64>,
    /// Database pool in use, percent.
    pub db_connections: Option<f64>,
}

/// What a version's health endpoints said lately.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Failed checks in a row (0 after a success).
    pub failures: u32,
    /// The last answer, e.g. `/api/v2/health 503 {"status":"unhealthy"}`.
    pub last: String,
}

/// One version's statistics over a window.
#[derive(Debug, Clone, Default)]
pub struct ArmWindow {
    /// Requests routed to it.
    pub requests: u64,
    /// 5xx responses plus upstream failures.
    pub errors: u64,
    /// 5xx responses only.
    pub server_errors: u64,
    /// Failures replayed on stable, which the client never saw.
    pub recovered: u64,
    /// Requests and errors per route label.
    pub routes: BTreeMap<String, RouteCount>,
    /// The version's own health checks, when they are polled.
    pub health: Option<Health>,
    /// Latencies in microseconds.
    pub latency: Option<Histogram<u64>>,
    /// Self-reported resource use.
    pub resources: Resources,
}

impl ArmWindow {
    /// Error rate in percent, if any requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 * 100.0 / self.requests as f64)
    }

    /// A latency quantile in ms, if any samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let h = self.latency.as_ref().filter(|h| !h.is_empty())?;
        Some(h.value_at_quantile(q) as f64 / 1000.0)
    }

    /// Requests the upstream never answered (errors that are not 5xx).
    fn unanswered(&self) -> u64 {
        self.errors.saturating_sub(self.server_errors)
    }

    fn samples(&self) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.len())
    }

    /// How many answered requests took longer than `ms`.
    fn slower_than(&self, ms: f64) -> u64 {
        let Some(h) = &self.latency else { return 0 };
        h.len() - h.count_between(0, (ms * 1000.0) as u64)
    }
}

/// Both versions over the same window.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Stable.
    pub stable: ArmWindow,
    /// Canary.
    pub canary: ArmWindow,
    /// Lines from a team's own checks (Prometheus, webhooks), judged outside.
    pub external: Vec<Criterion>,
    /// During a shadow step, a line per route compared (see `shadow::verdict`).
    pub shadow: Vec<Criterion>,
}

/// The outcome of one criterion, or of a whole verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Within the threshold.
    Pass,
    /// Beyond it.
    Fail,
    /// Too little data to tell.
    Inconclusive,
    /// The version does not report this figure.
    NotReported,
}

/// One line of a verdict table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// What is judged, e.g. `error_rate`.
    pub name: String,
    /// The measured value (percent, ms), if any.
    pub value: Option<f64>,
    /// The threshold it is held to.
    pub threshold: f64,
    /// Pass, fail, inconclusive or not reported.
    pub outcome: Outcome,
    /// How it was judged, in words.
    pub note: String,
}

/// A verdict: the overall outcome and the table behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Fail if any criterion fails, else inconclusive if any is, else pass.
    pub outcome: Outcome,
    /// One line per criterion.
    pub criteria: Vec<Criterion>,
    /// What each version looked like in the window judged (for reports).
    #[serde(default)]
    pub versions: Vec<ArmSummary>,
}

/// One version's figures in a judged window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// `stable` or `canary`.
    pub version: String,
    /// Requests.
    pub requests: u64,
    /// Error rate, percent.
    pub error_rate: Option<f64>,
    /// p50 latency, ms.
    pub p50_ms: Option<f64>,
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// p99 latency, ms.
    pub p99_ms: Option<f64>,
}

impl ArmWindow {
    fn summary(&self, version: &str) -> ArmSummary {
        ArmSummary {
            version: version.to_string(),
            requests: self.requests,
            error_rate: self.error_rate().map(round2),
            p50_ms: self.quantile_ms(0.5),
            p95_ms: self.quantile_ms(0.95),
            p99_ms: self.quantile_ms(0.99),
        }
    }
}

fn with_versions(mut v: Verdict, o: &Observation) -> Verdict {
    v.versions = vec![o.stable.summary("stable"), o.canary.summary("canary")];
    v
}

impl Verdict {
    fn from(criteria: Vec<Criterion>) -> Verdict {
        let has = |o| criteria.iter().any(|c| c.outcome == o);
        let outcome = if has(Outcome::Fail) {
            Outcome::Fail
        } else if has(Outcome::Inconclusive) {
            Outcome::Inconclusive
        } else {
            Outcome::Pass
        };
        Verdict { outcome, criteria, versions: Vec::new() }
    }

    /// The failing criteria in one line, e.g. `error_rate 12.0 > 5 (...)`.
    pub fn reason(&self) -> String {
        let failing: Vec<String> = self
            .criteria
            .iter()
            .filter(|c| c.outcome == self.outcome)
            .map(|c| match c.value {
                Some(v) => {
                    format!("{} {} vs threshold {} ({})", c.name, round2(v), round2(c.threshold), c.note)
                }
                None => format!("{} ({})", c.name, c.note),
            })
            .collect();
        failing.join("; ")
    }
}

/// Lines whose failure is a level read now (resource use) or a test made
/// for one look at the end of the bake (latency against stable): they fail
/// a step at its end, never before it.
const JUDGED_AT_END: [&str; 4] = ["p95_vs_stable", "memory_percent", "cpu_percent", "db_connections_percent"];

/// Whether the step verdict `v` already fails on a line that may end a step
/// early: an always-valid test surely past its bar, the health gate, a route,
/// or a team's own check. Waiting out the bake would only expose more users.
pub fn fails_now(v: &Verdict) -> bool {
    v.criteria.iter().any(|c| c.outcome == Outcome::Fail && !JUDGED_AT_END.contains(&c.name.as_str()))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn line(
    name: &str,
    value: Option<f64>,
    threshold: f64,
    outcome: Outcome,
    note: impl Into<String>,
) -> Criterion {
    Criterion { name: name.to_string(), value, threshold, outcome, note: note.into() }
}

/// May the step advance? Judged over the step so far.
pub fn judge_step(p: &Policy, o: &Observation) -> Verdict {
    let c = &o.canary;
    let enough = c.requests >= p.min_requests;
    let few = format!("{} canary requests, {} needed", c.requests, p.min_requests);
    let gate = (!enough).then_some(few.as_str());
    let mut out = vec![
        proportion_below(
            p,
            "error_rate",
            (c.errors, c.requests),
            c.error_rate(),
            Bar { limit: p.max_error_rate / 100.0, shown: p.max_error_rate, unit: "%", sure_pass: true },
            gate,
        ),
        quantile_below(p, c, 0.95, p.max_p95_ms, gate),
        error_vs_stable(p, o, enough, &few),
        latency::p95_vs_stable(p, o, enough, &few),
    ];
    if p.targets {
        out.extend(targets::lines(p, c, gate));
    }
    out.extend(routes::step_lines(p, o));
    out.push(health_line(p, c.health.as_ref()));
    out.extend(o.external.iter().cloned());
    out.extend(resources(&c.resources, [p.max_memory, p.max_cpu, p.max_db_connections], false));
    with_versions(Verdict::from(out), o)
}

/// The bar a proportion is held to: the proportion's limit (0..1), and the
/// threshold as shown (1% for the error rate; 200 ms for "5% slower than 200 ms").
struct Bar {
    limit: f64,
    shown: f64,
    unit: &'static str,
    /// Pass only when the proportion is surely below the limit, not merely
    /// estimated below it: the step's error rate, so a handful of clean
    /// requests at a trickle of traffic never promotes a canary.
    sure_pass: bool,
}

/// A step criterion on a proportion (errors, or requests slower than a bar)
/// that must stay below its limit: pass when the estimate is below it, fail
/// only when an always-valid test says it is surely above it, and otherwise
/// hold for more data. So a step never advances on a bad-looking estimate and
/// never fails on the noise of a small sample, however often it is looked at.
fn proportion_below(
    p: &Policy,
    name: &str,
    (hits, n): (u64, u64),
    value: Option<f64>,
    bar: Bar,
    few: Option<&str>,
) -> Criterion {
    let t = bar.shown;
    let alpha = p.step_alpha();
    // The test is valid at any count, so a sure failure need not wait for
    // `min_requests`; `min_fail_requests` only keeps a version's first burst
    // of errors as it warms up from failing it on its own.
    if n >= p.min_fail_requests.max(1) && bar.limit < 1.0 && surely_above(hits, n, bar.limit, alpha) {
        let lo = lower_bound(hits, n, alpha);
        let note = format!(
            "surely above {}{} (lower bound {}% of requests)",
            round2(t),
            bar.unit,
            round2(lo * 100.0)
        );
        return line(name, value, t, Outcome::Fail, note);
    }
    if let Some(few) = few {
        return line(name, value, t, Outcome::Inconclusive, few);
    }
    if n == 0 {
        return line(name, value, t, Outcome::Inconclusive, "no requests");
    }
    let estimate = hits as f64 / n as f64;
    let (outcome, note) = if estimate >= bar.limit {
        (
            Outcome::Inconclusive,
            format!(
                "at or above {}{} but within noise of it on {n} requests; collecting more",
                round2(t),
                bar.unit
            ),
        )
    } else if bar.sure_pass && !surely_below(hits, n, bar.limit, alpha) {
        (
            Outcome::Inconclusive,
            format!(
                "below {}{} on {n} requests but not yet surely (the bar needs about {} clean requests); collecting more",
                round2(t),
                bar.unit,
                clean_requests_needed(bar.limit, alpha)
            ),
        )
    } else {
        (Outcome::Pass, format!("must be below {}{}", round2(t), bar.unit))
    };
    line(name, value, t, outcome, note)
}

/// "The q-quantile of latency is below `ms`", judged as the share of
/// requests slower than `ms` held below `1 - q` (p95 < 200 ms: fewer than 5%
/// of requests slower than 200 ms). The line is named `p{q*100}_ms`.
fn quantile_below(p: &Policy, c: &ArmWindow, q: f64, ms: f64, gate: Option<&str>) -> Criterion {
    let name = format!("p{}_ms", (q * 100.0).round());
    let bar = Bar { limit: 1.0 - q, shown: ms, unit: " ms", sure_pass: false };
    proportion_below(p, &name, (c.slower_than(ms), c.samples()), c.quantile_ms(q), bar, gate)
}

fn error_vs_stable(p: &Policy, o: &Observation, enough: bool, few: &str) -> Criterion {
    let name = "error_rate_vs_stable";
    match (o.canary.error_rate(), o.stable.error_rate()) {
        (Some(c), Some(s)) if enough || o.canary.requests >= p.min_fail_requests.max(1) => {
            let t = s + p.max_error_rate_increase;
            // Both sides are uncertain: half the alpha to each.
            let alpha = p.step_alpha() / 2.0;
            let surely_worse = || {
                let bar = upper_bound(o.stable.errors, o.stable.requests, alpha)
                    + p.max_error_rate_increase / 100.0;
                surely_above(o.canary.errors, o.canary.requests, bar, alpha)
            };
            let note = format!("stable {}% + {} points", round2(s), p.max_error_rate_increase);
            // As for `proportion_below`: a sure failure needs no `min_requests`.
            let (outcome, note) = if c > t && surely_worse() {
                (Outcome::Fail, note)
            } else if !enough {
                (Outcome::Inconclusive, few.to_string())
            } else if c <= t {
                (Outcome::Pass, note)
            } else {
                (Outcome::Inconclusive, note)
            };
            line(name, Some(c), t, outcome, note)
        }
        (c, None) if enough => line(name, c, 0.0, Outcome::NotReported, NO_STABLE),
        (c, _) => line(name, c, 0.0, Outcome::Inconclusive, few),
    }
}

/// Why a relative criterion cannot be judged at 100%.
const NO_STABLE: &str = "no stable traffic to compare with (the canary takes it all)";

fn resources(r: &Resources, limits: [f64; 3], rollback: bool) -> Vec<Criterion> {
    let names = ["memory_percent", "cpu_percent", "db_connections_percent"];
    let values = [r.memory, r.cpu, r.db_connections];
    names
        .iter()
        .zip(values)
        .zip(limits)
        .filter(|((n, _), _)| !(rollback && **n == "db_connections_percent"))
        .map(|((n, v), t)| match v {
            None => line(n, None, t, Outcome::NotReported, "not reported by the canary"),
            Some(v) if rollback => line(
                n,
                Some(v),
                t,
                if v > t { Outcome::Fail } else { Outcome::Pass },
                format!("rollback above {t}%"),
            ),
            Some(v) => line(
                n,
                Some(v),
                t,
                if v < t { Outcome::Pass } else { Outcome::Fail },
                format!("must be below {t}%"),
            ),
        })
        .collect()
}

/// The health gate: `health_failures` failed checks in a row fail the step.
fn health_line(p: &Policy, h: Option<&Health>) -> Criterion {
    let t = f64::from(p.health_failures);
    match h {
        _ if p.health_failures == 0 => line("health", None, t, Outcome::NotReported, "health gate off"),
        None => line("health", None, t, Outcome::NotReported, "no health endpoint answered yet"),
        Some(h) => {
            let failed = h.failures >= p.health_failures;
            let note = format!(
                "{} failed in a row ({} fail the step); last: {}",
                h.failures, p.health_failures, h.last
            );
            line(
                "health",
                Some(f64::from(h.failures)),
                t,
                if failed { Outcome::Fail } else { Outcome::Pass },
                note,
            )
        }
    }
}

#[cfg(test)]
mod tests;

/// Point figures as a metrics endpoint reports them (S10), for judging a
/// service canary does not proxy (`canary monitor URL`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Error rate, percent.
    pub error_rate: Option<f64>,
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// Resource use.
    pub resources: Resources,
}

/// The seed's go/no-go on point figures (S12-S14), with the same thresholds as
/// the controller: a figure past a rollback threshold is a failure, one past
/// a success threshold too; a missing error rate or p95 is inconclusive.
pub fn judge_figures(p: &Policy, f: &Figures) -> Verdict {
    let at_most = |name: &str, v: Option<f64>, ok_below: f64, fail_above: f64, unit: &str| match v {
        None => line(name, None, ok_below, Outcome::Inconclusive, "not measured"),
        Some(v) if v > fail_above => {
            line(name, Some(v), fail_above, Outcome::Fail, format!("rollback threshold {fail_above}{unit}"))
        }
        Some(v) if v >= ok_below => {
            line(name, Some(v), ok_below, Outcome::Fail, format!("must be below {ok_below}{unit}"))
        }
        Some(v) => line(name, Some(v), ok_below, Outcome::Pass, format!("must be below {ok_below}{unit}")),
    };
    let mut out = vec![
        at_most("error_rate", f.error_rate, p.max_error_rate, p.rollback_error_rate, "%"),
        at_most("p95_ms", f.p95_ms, p.max_p95_ms, p.rollback_p95_ms, " ms"),
    ];
    out.extend(resources(&f.resources, [p.max_memory, p.max_cpu, p.max_db_connections], false));
    Verdict::from(out)
}
