//! Canary latency against stable as distributions, not two points: the
//! Mann-Whitney U test over the two HDR histograms (ties take mid-ranks; the
//! histogram's buckets are the ties) says whether the canary is *surely*
//! slower, and the p95 ratio says by how much. The step fails only on both:
//! p95 past `stable p95 x max_p95_ratio + p95_slack_ms` and the canary
//! stochastically slower at `alpha_step`; past the bar but not surely
//! slower, it holds for more data; within the bar it passes.
//!
//! Every value of a histogram is counted: with tens of thousands of samples
//! the test finds even tiny shifts significant, which is why the effect size
//! (the ratio bar) must be past too before a step fails on it.

use super::{Criterion, NO_STABLE, Observation, Outcome, Policy, line, round2};
use crate::sequential::normal_quantile;
use hdrhistogram::Histogram;

/// The one-sided Mann-Whitney test that `slower` is stochastically larger
/// than `faster`: the z score (normal approximation with the tie correction)
/// and the probability that a random `slower` sample exceeds a random
/// `faster` one (ties count half), the common-language effect size.
pub fn mann_whitney(slower: &Histogram<u64>, faster: &Histogram<u64>) -> Option<(f64, f64)> {
    let (n1, n2) = (slower.len() as f64, faster.len() as f64);
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let (mut a, mut b) = (buckets(slower).peekable(), buckets(faster).peekable());
    let (mut rank_sum, mut below, mut ties) = (0.0, 0.0, 0.0);
    loop {
        let v = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        let c1 = a.next_if(|x| x.0 == v).map_or(0.0, |x| x.1);
        let c2 = b.next_if(|y| y.0 == v).map_or(0.0, |y| y.1);
        let t = c1 + c2;
        rank_sum += c1 * (below + (t + 1.0) / 2.0);
        below += t;
        ties += t * t * t - t;
    }
    let n = n1 + n2;
    let u = rank_sum - n1 * (n1 + 1.0) / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let z = if var > 0.0 { (u - n1 * n2 / 2.0) / var.sqrt() } else { 0.0 };
    Some((z, u / (n1 * n2)))
}

/// (value, count) for every non-empty bucket, ascending.
fn buckets(h: &Histogram<u64>) -> impl Iterator<Item = (u64, f64)> + '_ {
    h.iter_recorded().map(|v| (h.highest_equivalent(v.value_iterated_to()), v.count_at_value() as f64))
}

/// The step line comparing the canary's latency with stable's.
pub(super) fn p95_vs_stable(p: &Policy, o: &Observation, enough: bool, few: &str) -> Criterion {
    let name = "p95_vs_stable";
    let (c, s) = (&o.canary, &o.stable);
    match (c.quantile_ms(0.95), s.quantile_ms(0.95), &c.latency, &s.latency) {
        (Some(cp), Some(sp), Some(ch), Some(sh)) if enough => {
            let t = sp * p.max_p95_ratio + p.p95_slack_ms;
            let (z, effect) = mann_whitney(ch, sh).unwrap_or((0.0, 0.5));
            let ratio = if sp > 0.0 { cp / sp } else { f64::INFINITY };
            let how = format!(
                "canary p95 {}x stable's ({} ms); slower in {}% of pairs, z = {}; bar: x {} + {} ms",
                round2(ratio),
                round2(sp),
                round2(effect * 100.0),
                round2(z),
                p.max_p95_ratio,
                p.p95_slack_ms
            );
            let outcome = if cp <= t {
                Outcome::Pass
            } else if z > normal_quantile(p.step_alpha()) {
                Outcome::Fail
            } else {
                Outcome::Inconclusive
            };
            line(name, Some(cp), t, outcome, how)
        }
        (cp, None, _, _) if enough => line(name, cp, 0.0, Outcome::NotReported, NO_STABLE),
        (cp, _, _, _) => line(name, cp, 0.0, Outcome::Inconclusive, few),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_ms: &[(f64, u64)]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap();
        for (ms, n) in values_ms {
            h.record_n((ms * 1000.0) as u64, *n).unwrap();
        }
        h
    }

    #[test]
    fn the_same_distribution_is_not_slower_and_a_shifted_one_surely_is() {
        let same =
            mann_whitney(&hist(&[(10.0, 500), (20.0, 500)]), &hist(&[(10.0, 500), (20.0, 500)])).unwrap();
        assert!(same.0.abs() < 1e-9 && (same.1 - 0.5).abs() < 1e-9, "{same:?}");
        let slow =
            mann_whitney(&hist(&[(20.0, 500), (40.0, 500)]), &hist(&[(10.0, 500), (20.0, 500)])).unwrap();
        assert!(slow.0 > 10.0 && slow.1 > 0.8, "{slow:?}");
        let fast =
            mann_whitney(&hist(&[(10.0, 500), (20.0, 500)]), &hist(&[(20.0, 500), (40.0, 500)])).unwrap();
        assert!(fast.0 < -10.0, "{fast:?}");
    }

    #[test]
    fn matches_the_textbook_u_on_small_samples() {
        // slower = {3, 4, 5}, faster = {1, 2, 3}: U = 8.5 of 9 pairs.
        let (_, effect) =
            mann_whitney(&hist(&[(3.0, 1), (4.0, 1), (5.0, 1)]), &hist(&[(1.0, 1), (2.0, 1), (3.0, 1)]))
                .unwrap();
        assert!((effect - 8.5 / 9.0).abs() < 1e-9, "{effect}");
    }
}
