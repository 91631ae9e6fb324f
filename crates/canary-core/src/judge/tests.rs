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
        routes: Default::default(),
        health: None,
    }
}

fn outcome(v: &Verdict, name: &str) -> Outcome {
    v.criteria.iter().find(|c| c.name == name).unwrap().outcome
}

#[test]
fn too_few_requests_is_inconclusive_never_a_pass() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(20, 0, 10.0), ..Observation::default() };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Inconclusive);
    assert!(v.reason().contains("20 canary requests, 100 needed"), "{}", v.reason());
}

#[test]
fn resources_not_reported_say_so_and_do_not_block() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 0, 10.0), ..Observation::default() };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(outcome(&v, "memory_percent"), Outcome::NotReported);
    let mut o = o;
    o.canary.resources.memory = Some(85.0);
    let v = judge_step(&Policy::default(), &o);
    assert_eq!((v.outcome, outcome(&v, "memory_percent")), (Outcome::Fail, Outcome::Fail));
    o.canary.resources.memory = Some(95.0);
    assert_eq!(
        outcome(&judge_rollback(&Policy::default(), &o, &Observation::default()), "memory_percent"),
        Outcome::Fail
    );
}

#[test]
fn rollback_needs_the_rate_to_be_surely_above_the_threshold() {
    let p = Policy::default();
    let stable = arm(1000, 0, 10.0);
    // 6% observed on 100 requests: could be noise around 5%.
    let v = judge_rollback(
        &p,
        &Observation { stable: stable.clone(), canary: arm(100, 6, 10.0), ..Observation::default() },
        &Observation::default(),
    );
    assert_eq!(outcome(&v, "error_rate"), Outcome::Pass);
    // 12% on 100: the lower bound is above 5%.
    let v = judge_rollback(
        &p,
        &Observation { stable: stable.clone(), canary: arm(100, 12, 10.0), ..Observation::default() },
        &Observation::default(),
    );
    assert_eq!(outcome(&v, "error_rate"), Outcome::Fail);
    // All slow: p95 surely above 1 s.
    let v = judge_rollback(
        &p,
        &Observation { stable, canary: arm(100, 0, 1500.0), ..Observation::default() },
        &Observation::default(),
    );
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

fn with_routes(mut a: ArmWindow, routes: &[(&str, u64, u64)]) -> ArmWindow {
    for (r, n, e) in routes {
        a.routes.insert(r.to_string(), RouteCount { requests: *n, errors: *e });
    }
    a
}

#[test]
fn a_route_worse_than_stable_there_fails_the_step_by_name_and_canary_only_routes_are_listed() {
    let stable = with_routes(arm(10_000, 0, 10.0), &[("/rooms", 9950, 0), ("/pay", 50, 0)]);
    let canary = with_routes(arm(1000, 20, 10.0), &[("/rooms", 970, 0), ("/pay", 20, 20), ("/beta", 10, 0)]);
    let v = judge_step(&Policy::default(), &Observation { stable, canary, ..Observation::default() });
    assert_eq!(outcome(&v, "route /pay"), Outcome::Fail, "{:?}", v.criteria);
    assert!(v.criteria.iter().all(|c| c.name != "route /rooms"), "healthy routes add no lines");
    let summary = v.criteria.iter().find(|c| c.name == "routes").unwrap();
    assert!(summary.note.contains("only on the canary: /beta"), "{}", summary.note);
}

#[test]
fn a_route_fails_only_with_enough_requests_and_rolls_back_only_surely_past_the_bar() {
    let stable = with_routes(arm(10_000, 0, 10.0), &[("/pay", 50, 0)]);
    let few = with_routes(arm(1000, 9, 10.0), &[("/pay", 9, 9)]);
    let o = Observation { stable: stable.clone(), canary: few, ..Observation::default() };
    assert_eq!(outcome(&judge_rollback(&Policy::default(), &o, &o), "route_error_rates"), Outcome::Pass);
    let broken = with_routes(arm(1000, 10, 10.0), &[("/pay", 10, 10)]);
    let o = Observation { stable, canary: broken, ..Observation::default() };
    let v = judge_rollback(&Policy::default(), &Observation::default(), &o);
    assert_eq!(outcome(&v, "route /pay"), Outcome::Fail, "judged over the step window: {:?}", v.criteria);
    assert!(v.reason().contains("route /pay: canary 10/10 failed"), "{}", v.reason());
}

#[test]
fn the_seeds_targets_are_lines_of_the_verdict() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 0, 150.0), ..Observation::default() };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(outcome(&v, "p50_ms"), Outcome::Fail, "every request over 100 ms");
    assert_eq!(
        (outcome(&v, "p99_ms"), outcome(&v, "uptime"), outcome(&v, "success_rate")),
        (Outcome::Pass, Outcome::Pass, Outcome::Pass)
    );
    let v = judge_step(&Policy { targets: false, ..Policy::default() }, &o);
    assert!(v.criteria.iter().all(|c| c.name != "p50_ms"), "targets = false leaves them out");
}

#[test]
fn the_health_gate_fails_the_step_after_n_failures_in_a_row() {
    let mut o =
        Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 0, 10.0), ..Observation::default() };
    assert_eq!(outcome(&judge_step(&Policy::default(), &o), "health"), Outcome::NotReported);
    o.canary.health = Some(Health { failures: 2, last: "/api/v2/health 503".into() });
    assert_eq!(outcome(&judge_step(&Policy::default(), &o), "health"), Outcome::Pass);
    o.canary.health = Some(Health { failures: 3, last: "/api/v2/health 503".into() });
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Fail);
    assert!(v.reason().contains("last: /api/v2/health 503"), "{}", v.reason());
}
