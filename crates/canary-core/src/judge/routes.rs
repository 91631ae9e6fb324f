//! Per-route judgement: the canary against stable on the same route, so a
//! canary that breaks one endpoint carrying a sliver of traffic (a payment
//! call at 0.5%) is caught even though the version as a whole looks fine.
//!
//! Each route's error proportion is tested with always-valid tests at
//! `alpha_route` (0.001 by default: dozens of routes are tested at every
//! look, so each test asks for more certainty than the whole-version ones),
//! half of it to bound stable's rate on the route above and half to the
//! canary's test:
//! - a step fails on a route whose canary error rate is surely above stable's
//!   on that route by more than `max_error_rate_increase` points (or surely
//!   above `max_error_rate` when stable has too few requests there to compare);
//! - the canary is rolled back at once on a route whose error rate is surely
//!   above `rollback_error_rate` and surely above stable's on that route by
//!   `surge_margin` points, judged over the step so far.
//!
//! - a step fails on a route whose canary got slow: its share of requests
//!   slower than `max_p95_ms` surely above 5% and surely 5 points above
//!   stable's share there (`route {label} latency`); only against stable,
//!   since some endpoints are slow by nature.
//!
//! A route needs `min_route_requests` canary requests before it can fail.

use super::{Criterion, Observation, Outcome, Policy, line, round2};
use crate::sequential::{lower_bound, surely_above, upper_bound};
use serde::{Deserialize, Serialize};

/// Requests and errors on one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCount {
    /// Requests.
    pub requests: u64,
    /// Of those, 5xx or unanswered.
    pub errors: u64,
    /// Of those answered, slower than `max_p95_ms`.
    #[serde(default)]
    pub slow: u64,
}

impl RouteCount {
    /// Adds another count.
    pub fn add(&mut self, o: &RouteCount) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.slow += o.slow;
    }

    fn rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 * 100.0 / self.requests as f64 }
    }

    /// The always-valid upper bound of the error rate at `alpha`, in percent.
    fn upper(&self, alpha: f64) -> f64 {
        upper_bound(self.errors, self.requests, alpha) * 100.0
    }

    /// Whether the error rate is surely above `bar` percent at `alpha`.
    fn surely_above(&self, bar: f64, alpha: f64) -> bool {
        surely_above(self.errors, self.requests, bar / 100.0, alpha)
    }

    /// The always-valid lower bound of the error rate at `alpha`, in percent.
    fn lower(&self, alpha: f64) -> f64 {
        lower_bound(self.errors, self.requests, alpha) * 100.0
    }
}

/// One route compared.
struct Compared<'a> {
    route: &'a str,
    canary: RouteCount,
    /// Stable on the route, when it has enough requests to compare with.
    stable: Option<RouteCount>,
}

fn compared<'a>(p: &Policy, o: &'a Observation) -> Vec<Compared<'a>> {
    o.canary
        .routes
        .iter()
        .filter(|(_, c)| c.requests >= p.min_route_requests)
        .map(|(route, c)| Compared {
            route,
            canary: *c,
            stable: o.stable.routes.get(route).copied().filter(|s| s.requests >= p.min_route_requests),
        })
        .collect()
}

/// The step's route lines: one per failing route, named, then a summary line
/// (routes compared, routes seen only on the canary, routes still too small).
pub(super) fn step_lines(p: &Policy, o: &Observation) -> Vec<Criterion> {
    let all = compared(p, o);
    let mut out = Vec::new();
    let alpha = p.route_alpha() / 2.0;
    for c in &all {
        let (bar, against) = match c.stable {
            Some(s) => {
                (s.upper(alpha) + p.max_error_rate_increase, format!("stable {}/{}", s.errors, s.requests))
            }
            None => (p.max_error_rate, "no stable traffic on it to compare".to_string()),
        };
        // The estimate past the bar first: it is cheap, and the test cannot
        // pass without it.
        if c.canary.rate() > bar && c.canary.surely_above(bar, alpha) {
            let lo = c.canary.lower(alpha);
            let note = format!(
                "canary {}/{} failed ({against}); surely worse (lower bound {}%)",
                c.canary.errors,
                c.canary.requests,
                round2(lo)
            );
            out.push(line(
                &format!("route {}", c.route),
                Some(round2(c.canary.rate())),
                round2(bar),
                Outcome::Fail,
                note,
            ));
        }
        out.extend(latency_line(p, c, alpha));
    }
    out.push(summary_line(p, o, &all));
    out
}

/// "p95 under `max_p95_ms`" is "fewer than 5% of requests slower than it".
const SLOW_SHARE: f64 = 5.0;

/// A route whose canary got slow: its share of requests slower than
/// `max_p95_ms` surely above 5% (its p95 is past the bar) and surely above
/// stable's share on the route by 5 points. Only against stable: some
/// endpoints are slow by nature (an export, a search), and without stable's
/// figures on the route there is nothing to say the canary made it so. A
/// line only when it fails.
fn latency_line(p: &Policy, c: &Compared<'_>, alpha: f64) -> Option<Criterion> {
    let pct = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 * 100.0 / n as f64 };
    let (slow, n) = (c.canary.slow, c.canary.requests);
    let s = c.stable?;
    let bar = SLOW_SHARE.max(upper_bound(s.slow, s.requests, alpha) * 100.0 + SLOW_SHARE);
    let against = format!("stable {}/{}", s.slow, s.requests);
    if pct(slow, n) <= bar || !surely_above(slow, n, bar / 100.0, alpha) {
        return None;
    }
    let note = format!(
        "canary {slow}/{n} slower than {} ms ({against}); surely more (lower bound {}%): the route's p95 is past the bar",
        p.max_p95_ms,
        round2(lower_bound(slow, n, alpha) * 100.0)
    );
    let name = format!("route {} latency", c.route);
    Some(line(&name, Some(round2(pct(slow, n))), round2(bar), Outcome::Fail, note))
}

fn summary_line(p: &Policy, o: &Observation, all: &[Compared<'_>]) -> Criterion {
    let with_stable = all.iter().filter(|c| c.stable.is_some()).count();
    let only: Vec<&str> =
        o.canary.routes.keys().filter(|r| !o.stable.routes.contains_key(*r)).map(String::as_str).collect();
    let small = o.canary.routes.len() - all.len();
    let mut note = format!(
        "{} routes judged ({with_stable} against stable); {small} under {} canary requests",
        all.len(),
        p.min_route_requests
    );
    if !only.is_empty() {
        note.push_str(&format!("; only on the canary: {}", only.join(", ")));
    }
    line("routes", Some(all.len() as f64), p.min_route_requests as f64, Outcome::Pass, note)
}

/// The immediate-rollback route line over the step window `o`: the worst
/// route surely above `rollback_error_rate` and surely above stable's there.
pub(super) fn rollback_line(p: &Policy, o: &Observation) -> Criterion {
    let t = p.rollback_error_rate;
    let alpha = p.route_alpha() / 2.0;
    let worst = compared(p, o)
        .into_iter()
        .filter(|c| c.canary.rate() > t)
        .filter_map(|c| {
            let stable_hi = c.stable.map_or(0.0, |s| s.upper(alpha));
            let bar = t.max(stable_hi + p.surge_margin);
            if !c.canary.surely_above(bar, alpha) {
                return None;
            }
            let lo = c.canary.lower(alpha);
            Some((c, lo))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match worst {
        Some((c, lo)) => {
            let stable = c.stable.map_or("none".to_string(), |s| format!("{}/{}", s.errors, s.requests));
            let note = format!(
                "route {}: canary {}/{} failed, stable {stable}; surely above {t}% (lower bound {}%)",
                c.route,
                c.canary.errors,
                c.canary.requests,
                round2(lo)
            );
            line(&format!("route {}", c.route), Some(round2(c.canary.rate())), t, Outcome::Fail, note)
        }
        None => {
            line("route_error_rates", None, t, Outcome::Pass, format!("no route surely above {t}% this step"))
        }
    }
}
