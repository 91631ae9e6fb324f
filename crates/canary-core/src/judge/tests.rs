use super::*;

fn arm(requests: u64, errors: u64, latency_ms: f64) -> ArmWindow {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap();
    h.record_n((latency_ms * 1000.0) as u64, requests.max(1)).unwrap();
    ArmWindow {
        requests,
        errors,
        server_errors: errors,
        recovered: 0,
        latency: Some(h),
        resources: Resources::default(),
    }
}

fn outcome(v: &Verdict, name: &str) -> Outcome {
    v.criteria.iter().find(|c| c.name == name).unwrap().outcome
}

#[test]
fn too_few_requests_is_inconclusive_never_a_pass() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(20, 0, 10.0) };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Inconclusive);
    assert!(v.reason().contains("20 canary requests, 100 needed"), "{}", v.reason());
}

#[test]
fn resources_not_reported_say_so_and_do_not_block() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 0, 10.0) };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(outcome(&v, "memory_percent"), Outcome::NotReported);
    let mut o = o;
    o.canary.resources.memory = Some(85.0);
    let v = judge_step(&Policy::default(), &o);
    assert_eq!((v.outcome, outcome(&v, "memory_percent")), (Outcome::Fail, Outcome::Fail));
    o.canary.resources.memory = Some(95.0);
    assert_eq!(outcome(&judge_rollback(&Policy::default(), &o), "memory_percent"), Outcome::Fail);
}

#[test]
fn rollback_needs_the_rate_to_be_surely_above_the_threshold() {
    let p = Policy::default();
    let stable = arm(1000, 0, 10.0);
    // 6% observed on 100 requests: could be noise around 5%.
    let v = judge_rollback(&p, &Observation { stable: stable.clone(), canary: arm(100, 6, 10.0) });
    assert_eq!(outcome(&v, "error_rate"), Outcome::Pass);
    // 12% on 100: the lower bound is above 5%.
    let v = judge_rollback(&p, &Observation { stable: stable.clone(), canary: arm(100, 12, 10.0) });
    assert_eq!(outcome(&v, "error_rate"), Outcome::Fail);
    // All slow: p95 surely above 1 s.
    let v = judge_rollback(&p, &Observation { stable, canary: arm(100, 0, 1500.0) });
    assert_eq!(outcome(&v, "p95_ms"), Outcome::Fail);
}

#[test]
fn figures_are_judged_by_the_same_thresholds() {
    let p = Policy::default();
    let good = Figures { error_rate: Some(0.2), p95_ms: Some(50.0), resources: Resources::default() };
    assert_eq!(judge_figures(&p, &good).outcome, Outcome::Pass);
    let slow = Figures { p95_ms: Some(250.0), ..good };
    assert_eq!(judge_figures(&p, &slow).outcome, Outcome::Fail);
    let unknown = Figures { error_rate: None, ..good };
    assert_eq!(judge_figures(&p, &unknown).outcome, Outcome::Inconclusive);
}
