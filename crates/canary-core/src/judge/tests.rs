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
fn a_step_passes_on_its_error_rate_only_once_it_is_surely_below_the_bar() {
    let p = Policy::default();
    let few = Observation { stable: arm(1000, 0, 10.0), canary: arm(200, 0, 10.0), ..Observation::default() };
    let v = judge_step(&p, &few);
    assert_eq!(outcome(&v, "error_rate"), Outcome::Inconclusive, "200 clean requests do not show < 1%");
    let note = &v.criteria.iter().find(|c| c.name == "error_rate").unwrap().note;
    assert!(note.contains("not yet surely") && note.contains("clean requests"), "{note}");
    let enough = Observation { canary: arm(1000, 0, 10.0), ..few };
    assert_eq!(outcome(&judge_step(&p, &enough), "error_rate"), Outcome::Pass);
}

#[test]
fn resources_not_reported_say_so_and_do_not_block() {
    let o = Observation { stable: arm(1000, 0, 10.0), canary: arm(1000, 0, 10.0), ..Observation::default() };
    let v = judge_step(&Policy::default(), &o);
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(outcome(&v, "memory_percent"), Outcome::NotReported);
    let mut o = o;
    o.canary.resources.memory = Some(85.0);
    let v = judge_step(&Policy::default(), &o);
    assert_eq!((v.outcome, outcome(&v, "memory_percent")), (Outcome::Fail, Outcome::Fail));
    o.canary.resources.memory = Some(95.0);
    assert_eq!(
        outcome(
            &judge_rollback(&Policy::default(), &o, &Observation::default(), &Watch::default()),
            "memory_percent"
        ),
        Outcome::Fail
    );
}

/// Feeds `looks` looks of `tick` to a fresh watch; the look at which the
/// line `name` first fails, if it does.
fn looks_to_fail(p: &Policy, tick: &Observation, looks: u32, name: &str) -> Option<u32> {
    let mut w = Watch::default();
    (1..=looks).find(|_| {
        w.add(p, tick, tick);
        outcome(&judge_rollback(p, tick, tick, &w), name) == Outcome::Fail
    })
}

#[test]
fn rollback_needs_the_rate_to_be_surely_above_the_threshold() {
    let p = Policy::default();
    let look = |canary| Observation { stable: arm(250, 0, 10.0), canary, ..Observation::default() };
    // 12% of 25 requests a look (100 requests/s): caught within two seconds.
    let n = looks_to_fail(&p, &look(arm(25, 3, 10.0)), 40, "error_rate");
    assert!(n.is_some_and(|n| n <= 8), "12% caught at look {n:?}");
    // 4% a look, below the 5% bar: never, however long it is watched.
    assert_eq!(looks_to_fail(&p, &look(arm(25, 1, 10.0)), 14_400, "error_rate"), None);
    // Every request failing: the first look.
    assert_eq!(looks_to_fail(&p, &look(arm(25, 25, 10.0)), 10, "error_rate"), Some(1));
    // All slow: p95 surely above 1 s within a second.
    let n = looks_to_fail(&p, &look(arm(25, 0, 1500.0)), 10, "p95_ms");
    assert!(n.is_some_and(|n| n <= 4), "all slow caught at look {n:?}");
}

#[test]
fn a_stricter_alpha_asks_for_more_evidence_and_the_line_shows_it() {
    let tick = Observation { stable: arm(250, 0, 10.0), canary: arm(25, 3, 10.0), ..Observation::default() };
    let loose = looks_to_fail(&Policy { alpha_rollback: 0.1, ..Policy::default() }, &tick, 40, "error_rate");
    let strict =
        looks_to_fail(&Policy { alpha_rollback: 1e-6, ..Policy::default() }, &tick, 40, "error_rate");
    assert!(loose.unwrap() < strict.unwrap(), "{loose:?} {strict:?}");
    let mut w = Watch::default();
    w.add(&Policy::default(), &tick, &tick);
    let v = judge_rollback(&Policy::default(), &tick, &tick, &w);
    let line = v.criteria.iter().find(|c| c.name == "error_rate").unwrap();
    assert!(line.note.contains("evidence") && line.note.contains("CUSUM"), "{}", line.note);
}

#[test]
fn the_surge_line_compares_with_stable_and_needs_stable_traffic() {
    let p = Policy::default();
    let alone = Observation { canary: arm(25, 25, 10.0), ..Observation::default() };
    assert_eq!(
        outcome(&judge_rollback(&p, &alone, &alone, &Watch::default()), "5xx_surge_vs_stable"),
        Outcome::NotReported
    );
    // Stable failing 20% too: a canary at 20% is no surge.
    let both =
        Observation { stable: arm(1000, 200, 10.0), canary: arm(25, 5, 10.0), ..Observation::default() };
    assert_eq!(
        looks_to_fail(&Policy { rollback_error_rate: 50.0, ..p.clone() }, &both, 400, "5xx_surge_vs_stable"),
        None
    );
    let worse =
        Observation { stable: arm(1000, 200, 10.0), canary: arm(25, 20, 10.0), ..Observation::default() };
    assert!(
        looks_to_fail(&Policy { rollback_error_rate: 90.0, ..p }, &worse, 40, "5xx_surge_vs_stable")
            .is_some()
    );
}

#[test]
fn a_step_fails_early_only_on_lines_that_are_surely_past_their_bar() {
    let p = Policy::default();
    let bad =
        Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 50, 10.0), ..Observation::default() };
    assert!(fails_now(&judge_step(&p, &bad)), "10% errors against a 1% bar");
    let mut hot =
        Observation { stable: arm(1000, 0, 10.0), canary: arm(500, 0, 10.0), ..Observation::default() };
    hot.canary.resources.memory = Some(85.0);
    let v = judge_step(&p, &hot);
    assert_eq!(v.outcome, Outcome::Fail);
    assert!(!fails_now(&v), "a level read now waits for the end of the bake");
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
        a.routes.insert(r.to_string(), RouteCount { requests: *n, errors: *e, slow: 0 });
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
    assert_eq!(
        outcome(&judge_rollback(&Policy::default(), &o, &o, &Watch::default()), "route_error_rates"),
        Outcome::Pass
    );
    let broken = with_routes(arm(1000, 10, 10.0), &[("/pay", 10, 10)]);
    let o = Observation { stable, canary: broken, ..Observation::default() };
    let v = judge_rollback(&Policy::default(), &Observation::default(), &o, &Watch::default());
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
