use super::*;
use crate::sim::Rng;
use crate::stats::wilson;

/// How many of `runs` streams at true rate `q` a rule alarms on within `n`
/// requests when it is asked after every `every` requests.
fn alarms(q: f64, runs: u64, n: u64, every: u64, rule: impl Fn(u64, u64) -> bool) -> u64 {
    let mut rng = Rng::new(42);
    let mut fired = 0;
    for _ in 0..runs {
        let mut hits = 0;
        for i in 1..=n {
            hits += u64::from(rng.next_f64() < q);
            if i % every == 0 && rule(hits, i) {
                fired += 1;
                break;
            }
        }
    }
    fired
}

#[test]
fn the_mixture_test_keeps_its_false_alarm_rate_under_repeated_looks_where_wilson_does_not() {
    let (runs, n) = (400, 3_000);
    let seq = alarms(0.05, runs, n, 10, |k, n| surely_above(k, n, 0.05, 0.05));
    let fixed =
        alarms(0.05, runs, n, 10, |k, n| n >= 30 && wilson(k, n, 1.645).is_some_and(|(lo, _)| lo > 0.05));
    assert!(seq <= runs * 5 / 100, "always-valid test alarmed on {seq} of {runs}");
    assert!(fixed > runs * 15 / 100, "a 95% Wilson bound asked 300 times alarmed on only {fixed}");
}

#[test]
fn the_mixture_test_catches_a_clear_breach_soon() {
    let mut rng = Rng::new(7);
    let (mut hits, mut n) = (0, 0);
    while !surely_above(hits, n, 0.05, 0.01) {
        hits += u64::from(rng.next_f64() < 0.20);
        n += 1;
        assert!(n < 400, "20% against a 5% bar not told apart in 400 requests");
    }
    // Every request failing: a handful is enough.
    assert!(surely_above(8, 8, 0.05, 0.001));
    assert!(!surely_above(0, 1_000, 0.05, 0.05));
}

#[test]
fn bounds_bracket_the_rate_and_narrow_with_more_data() {
    let (lo, hi) = (lower_bound(10, 100, 0.05), upper_bound(10, 100, 0.05));
    assert!(lo < 0.10 && 0.10 < hi, "{lo} {hi}");
    let (lo2, hi2) = (lower_bound(100, 1_000, 0.05), upper_bound(100, 1_000, 0.05));
    assert!(lo < lo2 && hi2 < hi, "{lo2} {hi2}");
    assert_eq!(upper_bound(0, 0, 0.05), 1.0);
    assert!(upper_bound(0, 1_000, 0.05) < 0.02);
    // Always-valid bounds are wider than a fixed-sample bound at the same level.
    assert!(hi > wilson(10, 100, 1.645).unwrap().1);
}

#[test]
fn normal_tails_match_the_tables() {
    assert!((normal_tail(1.645) - 0.05).abs() < 1e-4);
    assert!((normal_tail(3.09) - 0.001).abs() < 1e-4);
    assert!((normal_tail(0.0) - 0.5).abs() < 1e-6);
    assert!((normal_quantile(0.05) - 1.645).abs() < 1e-3);
}

/// Looks of `per_look` requests each at rate `q` until the CUSUM alarms;
/// the look it alarmed at, if within `looks`.
fn cusum_alarm(rng: &mut Rng, q: f64, per_look: u64, looks: u64, h: f64) -> Option<u64> {
    let mut c = Cusum::default();
    for look in 1..=looks {
        let hits = (0..per_look).filter(|_| rng.next_f64() < q).count() as u64;
        c.add(hits, per_look, 0.05, 2.0);
        if c.s >= h {
            return Some(look);
        }
    }
    None
}

#[test]
fn the_cusum_threshold_bounds_false_alarms_per_hour_for_a_healthy_rate() {
    // alpha 1 per hour: at most 0.1 in 6 minutes (1,440 looks) at half the bar.
    let h = Cusum::threshold(0.05, 2.0, 0.025, 1.0);
    let mut rng = Rng::new(3);
    let runs = 300;
    let fired = (0..runs).filter(|_| cusum_alarm(&mut rng, 0.025, 10, 1_440, h).is_some()).count();
    assert!(fired <= runs / 10, "{fired} of {runs} six-minute runs alarmed");
    // A stricter alpha asks for more evidence.
    assert!(Cusum::threshold(0.05, 2.0, 0.025, 0.001) > h + 2.0);
}

#[test]
fn the_cusum_catches_a_change_as_fast_after_an_hour_of_health_as_at_the_start() {
    let h = Cusum::threshold(0.05, 2.0, 0.025, 0.001);
    let mut rng = Rng::new(9);
    let mut c = Cusum::default();
    for _ in 0..14_400 {
        let hits = (0..25).filter(|_| rng.next_f64() < 0.002).count() as u64;
        c.add(hits, 25, 0.05, 2.0);
    }
    assert!(c.s < 1.0, "a healthy hour left evidence {}", c.s);
    let mut looks = 0;
    while c.s < h {
        let hits = (0..25).filter(|_| rng.next_f64() < 0.15).count() as u64;
        c.add(hits, 25, 0.05, 2.0);
        looks += 1;
        assert!(looks < 40, "15% errors at 100 req/s not caught in 10 s");
    }
}
