//! The shadow step's routes, judged: each route's copies as the proxy
//! tallied them (see `canary_core::shadow::verdict`), for the rollout's
//! verdict and for `canary diff`.

use canary_core::judge::{Criterion, Policy};
use canary_core::shadow::tally::RouteTally;
use canary_core::shadow::verdict::{RouteVerdict, ShadowPolicy, criterion, judge_route};
use canary_proxy::shadow::Shadow;
use canary_proxy::shadow::results::RouteResults;

/// The shadow policy with the rollout's: its rollback error rate (copies
/// the canary fails are held to the rollback criterion), and its routes'
/// alpha (every route is tested at every look).
pub fn policy(p: &ShadowPolicy, rollout: &Policy) -> ShadowPolicy {
    let max_error_rate = rollout.rollback_error_rate / 100.0;
    ShadowPolicy { max_error_rate, alpha: rollout.route_alpha(), ..p.clone() }
}

/// Every route compared so far, judged by `p`, beside what it came to.
pub fn judged(shadow: &Shadow, p: &ShadowPolicy) -> Vec<(RouteVerdict, RouteResults)> {
    shadow
        .results
        .read()
        .into_iter()
        .map(|r| (judge_route(&r.route, &RouteTally::from(r.tally.clone()), p), r))
        .collect()
}

/// The lines of every route compared so far, for the step's verdict (from
/// the tallies alone: the examples are not copied four times a second).
pub fn lines(shadow: &Shadow, p: &ShadowPolicy, rollout: &Policy) -> Vec<Criterion> {
    let p = policy(p, rollout);
    shadow.results.tallies().iter().map(|(route, t)| criterion(&judge_route(route, t, &p), &p)).collect()
}
