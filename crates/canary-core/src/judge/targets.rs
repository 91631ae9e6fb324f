//! The seed's target table (S12) as step criteria: p50 < 100 ms, p99 < 500 ms,
//! uptime > 99.9%, success > 99%. Each is a proportion of the canary's
//! requests held below a limit, judged like the error rate: pass on the
//! estimate, fail only when even the lower confidence bound is past the limit,
//! otherwise hold for more data.

use super::{ArmWindow, Bar, Criterion, Policy, proportion_below};

/// The target lines for the canary `c`; `gate` says why it is too early.
pub(super) fn lines(p: &Policy, c: &ArmWindow, gate: Option<&str>) -> Vec<Criterion> {
    let pct_of = |part: u64| (c.requests > 0).then(|| part as f64 * 100.0 / c.requests as f64);
    let p50 = proportion_below(
        p,
        "p50_ms",
        (c.slower_than(p.target_p50_ms), c.samples()),
        c.quantile_ms(0.50),
        Bar { limit: 0.50, shown: p.target_p50_ms, unit: " ms" },
        gate,
    );
    let p99 = proportion_below(
        p,
        "p99_ms",
        (c.slower_than(p.target_p99_ms), c.samples()),
        c.quantile_ms(0.99),
        Bar { limit: 0.01, shown: p.target_p99_ms, unit: " ms" },
        gate,
    );
    // Uptime and success are "at least" targets: their complements (requests
    // not answered, requests that were errors) are held below the rest.
    let mut uptime = proportion_below(
        p,
        "uptime",
        (c.unanswered(), c.requests),
        pct_of(c.requests - c.unanswered().min(c.requests)),
        Bar {
            limit: (100.0 - p.target_uptime) / 100.0,
            shown: 100.0 - p.target_uptime,
            unit: "% unanswered",
        },
        gate,
    );
    uptime.threshold = p.target_uptime;
    let mut success = proportion_below(
        p,
        "success_rate",
        (c.errors, c.requests),
        pct_of(c.requests - c.errors.min(c.requests)),
        Bar {
            limit: (100.0 - p.target_success_rate) / 100.0,
            shown: 100.0 - p.target_success_rate,
            unit: "% errors",
        },
        gate,
    );
    success.threshold = p.target_success_rate;
    vec![p50, p99, uptime, success]
}
