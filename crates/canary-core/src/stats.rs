//! Small statistics for judging proportions from few samples: the Wilson score
//! interval, which stays sensible near 0% and 100% and for small counts, where
//! the textbook normal interval does not.

/// The Wilson score interval for `hits` out of `n` at normal quantile `z`,
/// as fractions (0..1). `None` when there are no samples.
pub fn wilson(hits: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p) = (n as f64, hits.min(n) as f64 / n as f64);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(((center - margin).max(0.0), (center + margin).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_the_observed_rate() {
        let (lo, hi) = wilson(10, 100, 1.645).unwrap();
        assert!(lo < 0.1 && 0.1 < hi);
        assert!((0.05..0.07).contains(&lo), "{lo}");
    }

    #[test]
    fn zero_hits_still_has_an_upper_bound() {
        let (lo, hi) = wilson(0, 100, 1.645).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 0.03);
        assert_eq!(wilson(0, 0, 1.645), None);
    }
}
