//! The seed's target table (S12) as step criteria: p50 < 100 ms, p99 < 500 ms,
//! uptime > 99.9%, success > 99%. Each is a proportion of the canary's
//! requests held below a limit, judged like the error rate: pass on the
//! estimate, fail only when even the lower confidence bound is past the limit,
//! otherwise hold for more data.

use super::{ArmWindow, Bar, Criterion, Policy, proportion_below, quantile_below};

/// The target lines for the canary `c`; `gate` says why it is too early.
pub(super) fn lines(p: &Policy, c: &ArmWindow, gate: Option<&str>) -> Vec<Criterion> {
    let p50 = quantile_below(p, c, 0.50, p.target_p50_ms, gate);
    let p99 = quantile_below(p, c, 0.99, p.target_p99_ms, gate);
    // Uptime and success are "at least" targets: their complements (requests
    // not answered, requests that were errors) are held below the rest.
    let uptime = at_least(p, "uptime", (c.unanswered(), c.requests), p.target_uptime, "% unanswered", gate);
    let success =
        at_least(p, "success_rate", (c.errors, c.requests), p.target_success_rate, "% errors", gate);
    vec![p50, p99, uptime, success]
}

/// A target on the share of requests that went right (`target` percent), judged
/// as the share that went wrong (`bad` of `n`) held below `100 - target`.
fn at_least(
    p: &Policy,
    name: &str,
    (bad, n): (u64, u64),
    target: f64,
    unit: &'static str,
    gate: Option<&str>,
) -> Criterion {
    let value = (n > 0).then(|| (n - bad.min(n)) as f64 * 100.0 / n as f64);
    let bar = Bar { limit: (100.0 - target) / 100.0, shown: 100.0 - target, unit, sure_pass: false };
    let mut line = proportion_below(p, name, (bad, n), value, bar, gate);
    line.threshold = target;
    line
}
