//! Tests of a proportion that stay honest when they are looked at again and
//! again. The controller looks four times a second; a fixed-sample test
//! (a Wilson bound at 95%) asked that often is sure to cry wolf sooner or
//! later. Two tools, both built on likelihood ratios, whose false-alarm
//! chance is bounded however often they are read (Ville's inequality: a
//! nonnegative martingale that starts at 1 reaches `1/alpha` with chance at
//! most `alpha`):
//!
//! - [`surely_above`] and [`upper_bound`]: a mixture of likelihood ratios
//!   over the whole sample so far (an always-valid test, as in mSPRT). Used
//!   where the question is about everything seen in a step.
//! - [`Cusum`]: Page's cumulative sum, which forgets a healthy past and so
//!   catches a change within the same few requests whenever it starts; its
//!   false-alarm chance is bounded per look, so per hour of looks. Used for
//!   the immediate rollback.

use serde::{Deserialize, Serialize};

/// The alternatives the mixture weighs, as odds ratios to the null's odds:
/// from slightly worse (1.4x) to far worse (x60), equal weights. A mixture
/// catches a large breach within a handful of requests and a small one
/// given more, without being tuned to one effect size.
const ODDS_RATIOS: [f64; 12] = [1.4, 1.7, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0, 60.0];

/// The log of the mixture likelihood ratio of "the rate is above `p0`"
/// against "it is `p0`", for `hits` of `n`. Under any true rate at or below
/// `p0` every term is a supermartingale, so the mixture is one too.
fn log_mixture(hits: u64, n: u64, p0: f64) -> f64 {
    let p0 = p0.clamp(1e-9, 1.0 - 1e-9);
    let (k, m) = (hits.min(n) as f64, (n - hits.min(n)) as f64);
    let odds0 = p0 / (1.0 - p0);
    let terms = ODDS_RATIOS.map(|r| {
        let p1 = odds0 * r / (1.0 + odds0 * r);
        k * (p1 / p0).ln() + m * ((1.0 - p1) / (1.0 - p0)).ln()
    });
    log_mean_exp(&terms)
}

fn log_mean_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = xs.iter().map(|x| (x - max).exp()).sum();
    max + (sum / xs.len() as f64).ln()
}

/// Whether `hits` of `n` show, at level `alpha` (0..1) however often this is
/// asked as the sample grows, that the true proportion is above `p0`.
pub fn surely_above(hits: u64, n: u64, p0: f64, alpha: f64) -> bool {
    if p0 >= 1.0 {
        return false;
    }
    n > 0 && log_mixture(hits, n, p0) >= (1.0 / alpha).ln()
}

/// Whether `hits` of `n` show, likewise, that the proportion is below `p0`.
pub fn surely_below(hits: u64, n: u64, p0: f64, alpha: f64) -> bool {
    p0 > 0.0 && surely_above(n - hits.min(n), n, 1.0 - p0, alpha)
}

/// How many requests without a single failure show a proportion surely
/// below `p0` at `alpha` (for telling a person how long a step will hold).
pub fn clean_requests_needed(p0: f64, alpha: f64) -> u64 {
    // The evidence grows with every clean request: double, then bisect.
    let mut hi = 1u64;
    while !surely_below(0, hi, p0, alpha) && hi < 1 << 40 {
        hi *= 2;
    }
    let mut lo = hi / 2;
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if surely_below(0, mid, p0, alpha) { hi = mid } else { lo = mid }
    }
    hi
}

/// The always-valid upper confidence bound of `hits / n` at `alpha`: the
/// smallest proportion the data can surely be said to be below (1 with no
/// data).
pub fn upper_bound(hits: u64, n: u64, alpha: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (hits.min(n) as f64 / n as f64, 1.0);
    if surely_below(hits, n, lo.max(1e-9), alpha) {
        return lo;
    }
    // "Surely below q" grows more certain as q rises: bisect for where it
    // starts. 24 halvings (to 1e-7) are far finer than any rate shown.
    for _ in 0..24 {
        let mid = (lo + hi) / 2.0;
        if surely_below(hits, n, mid, alpha) { hi = mid } else { lo = mid }
    }
    hi
}

/// The always-valid lower confidence bound of `hits / n` at `alpha` (0 with
/// no data), mirrored from [`upper_bound`].
pub fn lower_bound(hits: u64, n: u64, alpha: f64) -> f64 {
    1.0 - upper_bound(n - hits.min(n), n, alpha)
}

/// Page's CUSUM of "the rate is `effect` times `p0`" against "it is `p0`":
/// the log likelihood ratio summed over batches, floored at 0 so a healthy
/// past is forgotten. It alarms at [`Cusum::threshold`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    /// The statistic: evidence of a breach, in nats.
    pub s: f64,
}

impl Cusum {
    /// Adds a batch of `hits` of `n` judged against `p0`.
    pub fn add(&mut self, hits: u64, n: u64, p0: f64, effect: f64) {
        let (a, b) = llr_steps(p0, effect);
        let (k, m) = (hits.min(n) as f64, (n - hits.min(n)) as f64);
        self.s = (self.s + k * a + m * b).max(0.0);
    }

    /// The alarm threshold for `alpha`, the false-alarm chance allowed per
    /// hour of looks (4 a second) for a version whose true rate is at most
    /// `healthy` (below `p0`; taken as at least a tenth of it).
    ///
    /// Why it holds: each look starts, in effect, a fresh likelihood-ratio
    /// test. For a true rate `q`, `exp(theta * LLR)` is a martingale, where
    /// `theta` solves `q e^(theta a) + (1 - q) e^(theta b) = 1` (`theta` is 1
    /// at `q = p0` and grows as `q` falls), so by Ville each such test alarms
    /// with chance at most `exp(-theta h)`; a union over an hour's looks
    /// gives `h = ln(looks / alpha) / theta`. At `p0` itself the same `h`
    /// allows `looks * exp(-h)` an hour: a version right at its bar is not
    /// healthy, and is caught soon after it is past it.
    pub fn threshold(p0: f64, effect: f64, healthy: f64, alpha: f64) -> f64 {
        let theta = theta(healthy.clamp(p0 / 10.0, p0), p0, effect);
        (LOOKS_PER_HOUR / alpha.clamp(1e-12, 1.0)).ln() / theta
    }
}

/// The controller's looks in an hour (one every 250 ms).
pub const LOOKS_PER_HOUR: f64 = 14_400.0;

/// The per-hit and per-miss log likelihood ratio of rate `effect * p0`
/// (kept below 1) against rate `p0`.
fn llr_steps(p0: f64, effect: f64) -> (f64, f64) {
    let p0 = p0.clamp(1e-6, 0.999);
    let p1 = (p0 * effect).min((1.0 + p0) / 2.0);
    ((p1 / p0).ln(), ((1.0 - p1) / (1.0 - p0)).ln())
}

/// The positive root of `q e^(t a) + (1 - q) e^(t b) = 1`: how much faster
/// than at `p0` the evidence fades at a true rate `q` below it.
fn theta(q: f64, p0: f64, effect: f64) -> f64 {
    let (a, b) = llr_steps(p0, effect);
    let f = |t: f64| q * (t * a).exp() + (1.0 - q) * (t * b).exp() - 1.0;
    let (mut lo, mut hi) = (1e-6, 1.0);
    // f < 0 between the roots 0 and theta: widen until it turns.
    while f(hi) < 0.0 && hi < 1e3 {
        (lo, hi) = (hi, hi * 2.0);
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if f(mid) < 0.0 { lo = mid } else { hi = mid }
    }
    lo.max(1.0)
}

/// The one-sided tail of the standard normal beyond `z`, for reading a
/// confidence given as a z score as an alpha (Abramowitz and Stegun 7.1.26,
/// error below 1.5e-7).
pub fn normal_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 { erfc / 2.0 } else { 1.0 - erfc / 2.0 }
}

/// The `z` whose one-sided normal tail is `alpha` (the inverse of
/// [`normal_tail`], by bisection).
pub fn normal_quantile(alpha: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if normal_tail(mid) > alpha { lo = mid } else { hi = mid }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests;
