//! The shadow step's lines for the rollout's verdict: each route's copies,
//! as the proxy tallied them, judged (see `canary_core::shadow::verdict`).

use canary_core::judge::{Criterion, Policy};
use canary_core::shadow::tally::RouteTally;
use canary_core::shadow::verdict::{ShadowPolicy, criterion, judge_route};
use canary_proxy::shadow::Shadow;

/// The lines of every route compared so far, judged by `p`, with the
/// error rate and alpha of the rollout's `policy`.
pub fn lines(shadow: &Shadow, p: &ShadowPolicy, policy: &Policy) -> Vec<Criterion> {
    let p = ShadowPolicy { max_error_rate: policy.max_error_rate, alpha: policy.step_alpha(), ..p.clone() };
    shadow
        .results
        .read()
        .into_iter()
        .map(|r| criterion(&judge_route(&r.route, &RouteTally::from(r.tally), &p), &p))
        .collect()
}
