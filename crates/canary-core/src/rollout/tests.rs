//! Whole rollouts in simulated time: a seeded traffic model feeds the machine
//! every 250 ms of simulated time; hours pass in milliseconds.

use super::*;
use crate::sim::{Behaviour, HEALTHY, Sim, TICK_MS};
use crate::time::UnixMs;

fn quick_plan() -> Plan {
    Plan { bake_ms: 60_000, final_watch_ms: 120_000, ..Plan::default() }
}

#[test]
fn a_healthy_canary_is_promoted_after_exactly_the_plans_steps() {
    let mut sim = Sim::new(7, 200.0);
    let mut r = sim.start(Plan::default());
    sim.run_for(&mut r, 3 * 3_600_000);
    assert_eq!(r.state, State::Promoted, "{:?}", r.reason);
    assert_eq!(sim.shares, [10.0, 25.0, 50.0, 75.0, 100.0, 0.0]);
    // 4 steps x 10 min + 30 min at 100%, to the tick.
    let took = r.ended_ms.unwrap() - r.started_ms;
    assert!((70 * 60_000..70 * 60_000 + 2 * TICK_MS).contains(&took), "took {took} ms");
    assert_eq!(sim.events.iter().filter(|e| **e == "step_advanced").count(), 4);
}

#[test]
fn an_error_spike_at_50_percent_rolls_back_within_one_and_a_half_seconds_and_names_the_error_rate() {
    let mut sim = Sim::new(11, 200.0);
    let mut r = sim.start(quick_plan());
    while r.share.percent() < 50.0 {
        sim.step(&mut r);
    }
    let onset = sim.now;
    sim.canary = Behaviour { error_p: 0.10, ..HEALTHY };
    sim.run_for(&mut r, 60_000);
    assert_eq!(r.state, State::RolledBack);
    let took = r.ended_ms.unwrap() - onset;
    assert!(took <= 1_500, "rolled back {took} ms after the errors began");
    // Whichever is sure first: the immediate rollback's CUSUM (surely above
    // 5%) or the step's always-valid test (surely above 1%) ending the step.
    let reason = r.reason.clone().unwrap();
    let first = reason.starts_with("immediate rollback at 50%") || reason.starts_with("step 3 at 50% failed");
    assert!(first && reason.contains("error_rate"), "{reason}");
    assert_eq!(sim.shares.last(), Some(&0.0));
}

#[test]
fn a_canary_twice_as_slow_as_stable_but_under_200_ms_is_caught_relative_to_stable() {
    let mut sim = Sim::new(5, 200.0);
    sim.stable = Behaviour { error_p: 0.0, latency_ms: (40.0, 60.0), ..HEALTHY };
    sim.canary = Behaviour { error_p: 0.0, latency_ms: (90.0, 120.0), ..HEALTHY };
    let mut r = sim.start(quick_plan());
    sim.run_for(&mut r, 3_600_000);
    assert_eq!(r.state, State::RolledBack);
    let v = r.step_verdict.clone().unwrap();
    let line = |n: &str| v.criteria.iter().find(|c| c.name == n).unwrap().outcome;
    assert_eq!(line("p95_ms"), Outcome::Pass, "under the absolute bar");
    assert_eq!(line("p95_vs_stable"), Outcome::Fail, "but worse than stable");
    assert!(r.reason.unwrap().contains("p95_vs_stable"));
    assert_eq!(r.step, 0, "caught at the first step");
}

#[test]
fn low_traffic_holds_then_pauses_and_never_promotes() {
    let mut sim = Sim::new(3, 0.5); // 0.05 requests/s reach a 10% canary: 30 in 10 minutes
    sim.controls.max_hold_ms = 10 * 60_000;
    let mut r = sim.start(quick_plan());
    sim.run_for(&mut r, 2 * 3_600_000);
    assert!(r.is_active(), "never ends on no data: {:?} {:?}", r.state, r.reason);
    assert_eq!((r.state, r.step), (State::Paused, 0));
    assert!(sim.events.contains(&EventKind::Holding));
    assert!(r.reason.clone().unwrap().contains("too little traffic"), "{:?}", r.reason);
    assert!(!sim.shares.contains(&25.0), "never advanced");
}

#[test]
fn noise_at_a_healthy_level_causes_no_rollback() {
    // 100 whole rollouts (1-minute steps, 2 minutes at 100%) of a canary with
    // a steady 1% error rate, with 100 requests/s on the canary at 50%:
    // about 550,000 rollback evaluations in all.
    let runs = 100;
    let mut false_rollbacks = 0;
    for seed in 1..=runs {
        let mut sim = Sim::new(seed * 7919, 200.0);
        sim.stable = Behaviour { error_p: 0.01, ..HEALTHY };
        sim.canary = Behaviour { error_p: 0.01, ..HEALTHY };
        sim.policy.max_error_rate = 2.0; // the step criteria are not under test here
        sim.policy.target_success_rate = 98.0;
        let mut r = sim.start(quick_plan());
        sim.run_for(&mut r, 3_600_000);
        if r.state == State::RolledBack {
            eprintln!("seed {seed}: {:?}", r.reason);
            false_rollbacks += 1;
        }
    }
    assert_eq!(false_rollbacks, 0, "false rollbacks in {runs} healthy runs");
}

#[test]
fn manual_plans_wait_for_promote_and_commands_check_the_state() {
    let mut sim = Sim::new(9, 200.0);
    let mut r = sim.start(Plan { manual: true, ..quick_plan() });
    sim.run_for(&mut r, 5 * 60_000);
    assert!(r.awaiting_promote && r.state == State::Paused && r.step == 0);
    assert!(matches!(r.resume(sim.now), Err(CommandError::AwaitingPromote { .. })));
    let ds = r.promote(sim.now, false, &sim.verdict()).unwrap();
    assert!(ds.contains(&Decision::SetShare(Share::from_percent(25.0).unwrap())));
    assert_eq!(r.state, State::Progressing);
    let ds = r.adjust(sim.now, Share::ZERO, false, &sim.verdict()).unwrap();
    assert_eq!((ds[0].clone(), r.state), (Decision::SetShare(Share::ZERO), State::Paused));
    let ds = r.resume(sim.now).unwrap();
    assert_eq!(
        ds[0],
        Decision::SetShare(Share::from_percent(25.0).unwrap()),
        "resume returns to the plan's share"
    );
    let ds = r.promote(sim.now, true, &sim.verdict()).unwrap();
    assert!(ds.contains(&Decision::SetUpstreams { stable: "http://canary".into(), canary: None }));
    assert!(matches!(r.promote(sim.now, false, &sim.verdict()), Err(CommandError::Ended { .. })));
    // A rollback after promotion restores the previous stable.
    let ds = r.rollback(sim.now, "bad release", &sim.verdict()).unwrap();
    assert!(ds.contains(&Decision::SetUpstreams { stable: "http://stable".into(), canary: None }));
    assert!(r.reason.unwrap().contains("bad release"));
}

#[test]
fn time_while_stopped_does_not_count_as_watching() {
    let mut sim = Sim::new(13, 200.0);
    let mut r = sim.start(quick_plan());
    for _ in 0..80 {
        sim.step(&mut r); // 20 s baked
    }
    let left = r.time_left_ms();
    sim.now += 3_600_000; // an hour down
    r.resume_after_restart(sim.now);
    sim.step(&mut r);
    assert_eq!(r.time_left_ms(), left - TICK_MS, "one tick of bake after the restart, not an hour");
    assert_eq!(r.step, 0);
}

fn pct(p: f64) -> Share {
    Share::from_percent(p).unwrap()
}

fn event_detail<'a>(ds: &'a [Decision], want: &str) -> &'a Value {
    ds.iter()
        .find_map(|d| match d {
            Decision::Event { kind, detail } if *kind == want => Some(detail),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {want} event in {ds:?}"))
}

#[test]
fn the_seeds_runbook_of_adjusts_walks_the_plan_and_promotes_after_the_final_watch() {
    let mut sim = Sim::new(21, 400.0);
    let mut r = sim.start(quick_plan());
    for (k, share) in [25.0, 50.0, 75.0, 100.0].into_iter().enumerate() {
        sim.run_for(&mut r, 20_000); // watched a while, less than the bake
        let ds = r.adjust(sim.now, pct(share), false, &sim.verdict()).unwrap();
        let d = event_detail(&ds, "step_advanced");
        assert_eq!((d["by_hand"].as_str(), d["from_step"].as_u64()), (Some("adjust"), Some(k as u64 + 1)));
        assert!(d["verdict"]["versions"][1]["requests"].as_u64().unwrap() > 0, "the step's figures are kept");
        assert_eq!((r.step, r.share, r.state), (k + 1, pct(share), State::Progressing), "not paused");
        sim.apply(ds);
    }
    assert_eq!(r.time_left_ms(), 120_000, "adjust 100 starts the final watch");
    sim.run_for(&mut r, 10 * 60_000);
    assert_eq!(r.state, State::Promoted, "promoted by the plan after the final watch: {:?}", r.reason);
    assert_eq!(sim.events.iter().filter(|e| **e == "step_advanced").count(), 4);
}

#[test]
fn a_manual_advance_past_a_failing_step_is_refused_unless_forced() {
    let mut sim = Sim::new(22, 400.0);
    // Twice as slow as stable, under every absolute bar: judged at the end of the bake.
    sim.stable = Behaviour { error_p: 0.0, latency_ms: (30.0, 45.0), ..HEALTHY };
    sim.canary = Behaviour { error_p: 0.0, latency_ms: (70.0, 95.0), ..HEALTHY };
    let mut r = sim.start(quick_plan());
    sim.run_for(&mut r, 40_000);
    assert!(r.is_active(), "a slower canary is judged at the end of the bake: {:?}", r.reason);
    let err = r.adjust(sim.now, pct(25.0), false, &sim.verdict()).unwrap_err();
    assert!(matches!(err, CommandError::VerdictFailed { step: 1, .. }), "{err}");
    assert!(err.to_string().contains("p95") && err.to_string().contains("--force"), "{err}");
    assert_eq!((r.step, r.share), (0, pct(10.0)), "nothing changed");
    let ds = r.adjust(sim.now, pct(25.0), true, &sim.verdict()).unwrap();
    assert_eq!(event_detail(&ds, "step_advanced")["forced"], true);
    assert_eq!(r.share, pct(25.0));
}

#[test]
fn adjusting_back_steps_back_without_pausing_and_off_plan_pauses() {
    let mut sim = Sim::new(23, 400.0);
    let mut r = sim.start(quick_plan());
    for share in [25.0, 50.0] {
        let ds = r.adjust(sim.now, pct(share), false, &sim.verdict()).unwrap();
        sim.apply(ds);
    }
    let ds = r.adjust(sim.now, pct(25.0), false, &sim.verdict()).unwrap();
    assert_eq!(event_detail(&ds, "stepped_back")["from_share"], 50.0);
    assert_eq!((r.step, r.state, r.time_left_ms()), (1, State::Progressing, 60_000));
    // Off the plan: paused; promote then goes to the first step above, never lower.
    let ds = r.adjust(sim.now, pct(60.0), false, &sim.verdict()).unwrap();
    assert_eq!((ds[0].clone(), r.state), (Decision::SetShare(pct(60.0)), State::Paused));
    let _ = r.promote(sim.now, false, &sim.verdict()).unwrap();
    assert_eq!((r.step, r.share, r.state), (3, pct(75.0), State::Progressing));
    // The current step's share puts a paused rollout back on the plan.
    let _ = r.pause(sim.now, "look").unwrap();
    let ds = r.adjust(sim.now, pct(75.0), false, &sim.verdict()).unwrap();
    assert!(matches!(ds.last(), Some(Decision::Event { kind: EventKind::Resumed, .. })));
    assert_eq!(r.state, State::Progressing);
}

#[test]
fn a_manual_plan_driven_by_adjust_promotes_on_promote_after_100() {
    let mut sim = Sim::new(24, 400.0);
    let mut r = sim.start(Plan { manual: true, ..quick_plan() });
    let ds = r.adjust(sim.now, pct(100.0), false, &sim.verdict()).unwrap();
    assert_eq!(event_detail(&ds, "step_advanced")["skipped_steps"], 3);
    sim.apply(ds);
    sim.run_for(&mut r, 5 * 60_000);
    assert!(r.awaiting_promote && r.share == Share::FULL, "{:?}", r.reason);
    let ds = r.promote(sim.now, false, &sim.verdict()).unwrap();
    assert_eq!(r.state, State::Promoted);
    assert!(event_detail(&ds, "promoted")["verdict"]["versions"].is_array());
}

#[test]
fn a_rollback_records_the_step_and_share_in_force_and_blocks_the_canary() {
    let mut sim = Sim::new(25, 400.0);
    let mut r = sim.start(quick_plan());
    let ds = r.adjust(sim.now, pct(50.0), false, &sim.verdict()).unwrap();
    sim.apply(ds);
    sim.canary = Behaviour { error_p: 0.2, ..HEALTHY };
    let mut ds = Vec::new();
    while r.is_active() {
        sim.now += TICK_MS;
        let (c, s) = (sim.arm(200, sim.canary), sim.arm(200, sim.stable));
        let tick = Observation { stable: s, canary: c, ..Observation::default() };
        r.account(&sim.policy, &tick, &tick);
        sim.ticks.push(tick);
        let fast = sim.ticks.recent(sim.policy.min_fast_requests);
        ds = r.tick(sim.now, &sim.policy, &sim.controls, &fast, &sim.step_obs);
    }
    assert!(ds.contains(&Decision::BlockCanary(true)));
    let d = event_detail(&ds, "rolled_back");
    assert_eq!(
        (d["at_share"].as_f64(), d["at_step"].as_u64(), d["share"].as_f64()),
        (Some(50.0), Some(3), Some(0.0))
    );
}

#[test]
fn a_canary_breaking_a_route_with_half_a_percent_of_traffic_is_rolled_back_within_one_step_naming_it() {
    // 100 requests/s in all, the canary at 10%: /pay sees a canary request every 20 s.
    let mut sim = Sim::new(31, 100.0);
    sim.canary = Behaviour { pay_error_p: Some(1.0), ..HEALTHY };
    let mut r = sim.start(Plan::default()); // 10-minute steps
    sim.run_for(&mut r, 10 * 60_000);
    assert_eq!(r.state, State::RolledBack, "not caught within the first step: {:?}", r.reason);
    assert_eq!(r.step, 0);
    let why = r.reason.clone().unwrap();
    assert!(why.contains("immediate rollback") && why.contains("route /pay"), "{why}");
}

#[test]
fn the_same_traffic_mix_with_a_healthy_canary_is_promoted() {
    for seed in [32, 33, 34] {
        let mut sim = Sim::new(seed, 100.0);
        let mut r = sim.start(quick_plan());
        sim.run_for(&mut r, 3_600_000);
        assert_eq!(r.state, State::Promoted, "seed {seed}: {:?}", r.reason);
    }
}

#[test]
fn a_step_fails_on_a_route_worse_than_stable_there_even_below_the_rollback_bar() {
    // /pay fails 4% on the canary, 0.2% on stable: the whole version stays
    // near 0.2%, and 4% is under the 5% rollback bar, so only the route test sees it.
    let mut sim = Sim::new(35, 4000.0);
    sim.canary = Behaviour { pay_error_p: Some(0.04), ..HEALTHY };
    sim.policy.max_error_rate_increase = 0.5;
    let mut r =
        sim.start(Plan { steps: vec![Share::from_percent(50.0).unwrap(), Share::FULL], ..quick_plan() });
    sim.run_for(&mut r, 3_600_000);
    let why = r.reason.clone().unwrap_or_default();
    assert!(r.state == State::RolledBack && why.contains("route /pay"), "{:?}: {why}", r.state);
}

#[test]
fn a_step_fails_on_a_route_that_got_slow_naming_it_while_the_version_as_a_whole_looks_fine() {
    // /pay takes 300-500 ms on the canary, 5-40 ms on stable: 0.5% of the
    // traffic, so the version's p95 and every whole-version line stay fine.
    let mut sim = Sim::new(36, 400.0);
    sim.canary = Behaviour { pay_latency_ms: Some((300.0, 500.0)), ..HEALTHY };
    let mut r = sim.start(Plan { bake_ms: 10 * 60_000, ..quick_plan() });
    sim.run_for(&mut r, 3_600_000);
    let why = r.reason.clone().unwrap_or_default();
    assert!(r.state == State::RolledBack && why.contains("route /pay latency"), "{:?}: {why}", r.state);
    assert_eq!(r.step, 0, "caught within the first step");
    let mut healthy = Sim::new(36, 400.0);
    healthy.stable = Behaviour { pay_latency_ms: Some((300.0, 500.0)), ..HEALTHY };
    healthy.canary = healthy.stable;
    let mut r = healthy.start(quick_plan());
    healthy.run_for(&mut r, 3_600_000);
    assert_eq!(r.state, State::Promoted, "a route slow on both versions is not the canary's: {:?}", r.reason);
}

#[test]
fn the_seeds_targets_fail_a_step_whose_p99_is_over_500_ms() {
    // p95 under 200 ms, but the slowest 3% take 600-800 ms: p99 misses its target.
    let mut sim = Sim::new(36, 400.0);
    sim.canary = Behaviour { latency_ms: (5.0, 40.0), ..HEALTHY };
    let mut r = sim.start(quick_plan());
    // A slow tail: one canary request in 11 takes 700 ms.
    while r.is_active() && sim.now < UnixMs::from_millis(1_000_000 + 3_600_000) {
        sim.now += TICK_MS;
        let (mut c, s) = (sim.arm(10, sim.canary), sim.arm(90, sim.stable));
        if let Some(h) = c.latency.as_mut() {
            h.record_n(700_000, 1).unwrap(); // p99 (and p95) past 500 ms
        }
        c.requests += 1;
        sim.push(&mut r, c, s);
    }
    let why = r.reason.clone().unwrap_or_default();
    assert!(r.state == State::RolledBack && why.contains("p99_ms"), "{:?}: {why}", r.state);
}

#[test]
fn on_failure_pause_holds_a_failed_step_for_a_person_instead_of_rolling_back() {
    let mut sim = Sim::new(37, 400.0);
    sim.canary = Behaviour { latency_ms: (150.0, 400.0), ..HEALTHY }; // p95 over 200 ms, under 1 s
    sim.policy.on_failure = OnFailure::Pause;
    let mut r = sim.start(quick_plan());
    sim.run_for(&mut r, 5 * 60_000);
    assert_eq!((r.state, r.share), (State::Paused, Share::from_percent(10.0).unwrap()));
    assert!(r.reason.clone().unwrap().contains("on_failure"), "{:?}", r.reason);
    // The immediate criteria still roll back unless they are set to pause too.
    sim.canary = Behaviour { error_p: 0.3, ..HEALTHY };
    sim.run_for(&mut r, 60_000);
    assert_eq!(r.state, State::RolledBack);
    let mut sim = Sim::new(38, 400.0);
    sim.canary = Behaviour { error_p: 0.3, ..HEALTHY };
    sim.policy.on_failure_immediate = OnFailure::Pause;
    let mut r = sim.start(quick_plan());
    sim.run_for(&mut r, 60_000);
    assert_eq!(r.state, State::Paused, "{:?}", r.reason);
    assert_eq!(sim.events.iter().filter(|e| **e == "paused").count(), 1, "paused once, not every tick");
}

fn shadow_line(outcome: Outcome) -> crate::judge::Criterion {
    crate::judge::Criterion {
        name: "shadow /api/rooms".into(),
        value: Some(0.0),
        threshold: 1.0,
        outcome,
        note: String::new(),
    }
}

/// Ticks `r` every 250 ms for `ms`, its step observation carrying `lines`.
fn tick_shadow(
    r: &mut Rollout,
    now: &mut UnixMs,
    ms: u64,
    lines: &[crate::judge::Criterion],
) -> Vec<Decision> {
    let step = Observation { shadow: lines.to_vec(), ..Observation::default() };
    let mut all = Vec::new();
    for _ in 0..ms / 250 {
        *now += 250;
        all.extend(r.tick(*now, &Policy::default(), &Controls::default(), &Observation::default(), &step));
    }
    all
}

#[test]
fn a_shadow_step_serves_no_user_then_goes_on_to_the_first_share_when_the_comparisons_pass() {
    let plan = Plan { shadow_ms: 600_000, ..Plan::default() };
    let mut now = UnixMs::from_millis(1_000_000);
    let (mut r, d) = Rollout::start(1, "http://c", "http://s", plan, now);
    assert!(r.shadowing && r.share == Share::ZERO);
    assert!(d.contains(&Decision::SetShadow(true)) && d.contains(&Decision::SetShare(Share::ZERO)));
    assert_eq!(r.time_left_ms(), 600_000);
    // Inconclusive for the whole step: it holds, copying on.
    let d = tick_shadow(&mut r, &mut now, 600_000, &[shadow_line(Outcome::Inconclusive)]);
    assert!(r.shadowing && r.state == State::Holding, "{:?}", r.state);
    assert!(!d.contains(&Decision::SetShadow(false)));
    // It passes: the first share, and copying stops.
    let d = tick_shadow(&mut r, &mut now, 250, &[shadow_line(Outcome::Pass)]);
    assert!(!r.shadowing && r.step == 0 && r.share.percent() == 10.0 && r.state == State::Progressing);
    assert!(d.contains(&Decision::SetShadow(false)) && d.contains(&Decision::SetShare(r.share)));
    assert_eq!(r.time_left_ms(), 600_000, "the first share's own bake");
}

#[test]
fn a_failing_shadow_comparison_rolls_back_at_once_and_stops_copying() {
    let plan = Plan { shadow_ms: 600_000, ..Plan::default() };
    let mut now = UnixMs::from_millis(1_000_000);
    let (mut r, _) = Rollout::start(1, "http://c", "http://s", plan, now);
    let d = tick_shadow(&mut r, &mut now, 1_000, &[shadow_line(Outcome::Pass), shadow_line(Outcome::Fail)]);
    assert_eq!(r.state, State::RolledBack, "a sure failure does not wait out the step");
    let kinds: Vec<&str> = d
        .iter()
        .filter_map(|d| match d {
            Decision::Event { kind, .. } => Some(kind.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["shadow_failed", "rolled_back"], "hooks hear of the shadow step's failure");
    assert!(
        !r.shadowing && d.contains(&Decision::SetShadow(false)) && d.contains(&Decision::BlockCanary(true))
    );
    assert!(r.reason.unwrap().contains("shadow /api/rooms"));
}

#[test]
fn promote_or_adjust_during_the_shadow_step_ends_it_at_a_planned_share() {
    let plan = Plan { shadow_ms: 600_000, ..Plan::default() };
    let now = UnixMs::from_millis(1_000_000);
    let pass = crate::shadow::verdict::of_lines(&[shadow_line(Outcome::Pass)]);
    let (mut r, _) = Rollout::start(1, "http://c", "http://s", plan.clone(), now);
    let d = r.promote(now, false, &pass).unwrap();
    assert!(!r.shadowing && r.step == 0 && r.share.percent() == 10.0);
    assert!(d.contains(&Decision::SetShadow(false)));
    let (mut r, _) = Rollout::start(2, "http://c", "http://s", plan.clone(), now);
    let d = r.adjust(now, Share::from_percent(25.0).unwrap(), false, &pass).unwrap();
    assert!(!r.shadowing && r.step == 1 && d.contains(&Decision::SetShadow(false)));
    let (mut r, _) = Rollout::start(3, "http://c", "http://s", plan, now);
    let d = r.share_moved(now, Share::from_percent(5.0).unwrap(), "a person");
    assert!(!r.shadowing && r.state == State::Paused && d.contains(&Decision::SetShadow(false)));
    // Paused during the shadow step, resume goes back to copying at 0%.
    let (mut r, _) =
        Rollout::start(4, "http://c", "http://s", Plan { shadow_ms: 600_000, ..Plan::default() }, now);
    r.pause(now, "look").unwrap();
    r.resume(now).unwrap();
    assert!(r.shadowing && r.share == Share::ZERO);
}
