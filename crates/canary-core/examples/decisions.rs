//! The judge's evidence: how fast each kind of bad canary is caught and how
//! often a healthy one is wrongly rolled back, over many seeded rollouts of
//! the pure core in simulated time (`canary_core::sim`).
//!
//! `cargo run --release -p canary-core --example decisions [RUNS]` prints one
//! line per scenario. RUNS (default 1000) is the number of healthy rollouts
//! per false-alarm scenario; detection scenarios run a fifth as many.
//! `VERBOSE=1` prints how each run ended; `ALPHA_ROLLBACK=0.01`,
//! `CONFIDENCE_Z=2.326` and `SURGE_MARGIN=2` replace those policy values, to
//! compare settings.

use canary_core::Share;
use canary_core::event::EventKind;
use canary_core::plan::Plan;
use canary_core::rollout::{Rollout, State};
use canary_core::sim::{Behaviour, HEALTHY, Sim};
use std::time::Instant;

/// What a scenario expects of the judge.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// A rollback: measure how long it takes.
    Rollback,
    /// No rollback at once: count immediate rollbacks (and any rollback).
    NoImmediate,
    /// Never advance on too little data.
    Hold,
}

struct Scenario {
    name: &'static str,
    rps: f64,
    plan: Plan,
    stable: Behaviour,
    canary: Behaviour,
    expect: Expect,
    runs: u64,
    limit_ms: u64,
    /// The canary is healthy until this long into the rollout, then turns
    /// bad; detection is timed from then.
    onset_ms: u64,
}

/// What one run did.
struct Run {
    state: State,
    immediate: bool,
    took_ms: u64,
    advanced: bool,
}

fn run(s: &Scenario, seed: u64) -> Run {
    let mut sim = Sim::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, s.rps);
    (sim.stable, sim.canary) = (s.stable, s.canary);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(z) = env("CONFIDENCE_Z") {
        sim.policy.confidence_z = Some(z);
    }
    if let Some(a) = env("ALPHA_ROLLBACK") {
        sim.policy.alpha_rollback = a;
    }
    if let Some(m) = env("SURGE_MARGIN") {
        sim.policy.surge_margin = m;
    }
    let mut r: Rollout = sim.start(s.plan.clone());
    if s.onset_ms > 0 {
        sim.canary = HEALTHY;
        sim.run_for(&mut r, s.onset_ms);
        sim.canary = s.canary;
    }
    let start = sim.now;
    sim.run_for(&mut r, s.limit_ms);
    if std::env::var_os("VERBOSE").is_some() {
        eprintln!("{}: {:?} {:?} {:?}", s.name, r.state, r.reason, sim.events);
    }
    Run {
        state: r.state,
        immediate: r.reason.as_deref().is_some_and(|w| w.starts_with("immediate rollback")),
        took_ms: sim.now - start,
        advanced: sim.events.contains(&EventKind::StepAdvanced) || r.state == State::Promoted,
    }
}

fn quantile(sorted: &[u64], q: f64) -> Option<f64> {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map(|ms| *ms as f64 / 1000.0)
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| if s < 120.0 { format!("{s:.1} s") } else { format!("{:.1} min", s / 60.0) })
}

fn report(s: &Scenario) {
    let t = Instant::now();
    let runs: Vec<Run> = (1..=s.runs).map(|seed| run(s, seed)).collect();
    let rolled: Vec<&Run> = runs.iter().filter(|r| r.state == State::RolledBack).collect();
    let mut times: Vec<u64> = rolled.iter().map(|r| r.took_ms).collect();
    times.sort_unstable();
    let immediate = rolled.iter().filter(|r| r.immediate).count();
    let per_1000 = |n: usize| n as f64 * 1000.0 / s.runs as f64;
    let outcome = match s.expect {
        Expect::Rollback => format!("caught {}/{}", rolled.len(), s.runs),
        Expect::NoImmediate => format!(
            "immediate rollbacks {:.1}/1000, any rollback {:.1}/1000",
            per_1000(immediate),
            per_1000(rolled.len())
        ),
        Expect::Hold => format!("advanced {}/{}", runs.iter().filter(|r| r.advanced).count(), s.runs),
    };
    println!(
        "| {} | {} | {} | {} | {} | {:.1} s |",
        s.name,
        s.runs,
        outcome,
        if s.expect == Expect::Rollback { secs(quantile(&times, 0.5)) } else { "-".into() },
        if s.expect == Expect::Rollback { secs(quantile(&times, 0.95)) } else { "-".into() },
        t.elapsed().as_secs_f64()
    );
}

fn plan_from(first: f64, bake_ms: u64, final_ms: u64) -> Plan {
    let first = Share::from_percent(first).unwrap_or(Share::FULL);
    let base = Plan { bake_ms, final_watch_ms: final_ms, ..Plan::default() };
    base.starting_at(first).unwrap_or(base)
}

fn scenarios(runs: u64) -> Vec<Scenario> {
    let detect = (runs / 5).max(10);
    let minutes = |m: u64| m * 60_000;
    let seed_plan = plan_from(10.0, minutes(10), minutes(30));
    let quick = plan_from(10.0, minutes(1), minutes(2));
    let at = |p: f64| Behaviour { error_p: p, ..HEALTHY };
    let base = |name, rps, plan: &Plan, stable, canary, expect, runs, limit_ms| Scenario {
        name,
        rps,
        plan: plan.clone(),
        stable,
        canary,
        expect,
        runs,
        limit_ms,
        onset_ms: 0,
    };
    vec![
        base(
            "10% errors, whole canary (200 req/s, at 50%)",
            200.0,
            &plan_from(50.0, minutes(10), minutes(30)),
            HEALTHY,
            at(0.10),
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "10% errors, whole canary (100 req/s, at 50%)",
            100.0,
            &plan_from(50.0, minutes(10), minutes(30)),
            HEALTHY,
            at(0.10),
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "10% errors, whole canary (100 req/s, at 10%)",
            100.0,
            &seed_plan,
            HEALTHY,
            at(0.10),
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "5% errors, whole canary (100 req/s, at 10%)",
            100.0,
            &seed_plan,
            HEALTHY,
            at(0.05),
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "100% errors on a 0.5% route (100 req/s, at 10%)",
            100.0,
            &seed_plan,
            HEALTHY,
            Behaviour { pay_error_p: Some(1.0), ..HEALTHY },
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "a 0.5% route at 300-500 ms, stable's at 5-40 (100 req/s, at 10%)",
            100.0,
            &seed_plan,
            HEALTHY,
            Behaviour { pay_latency_ms: Some((300.0, 500.0)), ..HEALTHY },
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        base(
            "2x stable's latency (100 req/s, at 10%)",
            100.0,
            &seed_plan,
            HEALTHY,
            Behaviour { latency_ms: (10.0, 80.0), ..HEALTHY },
            Expect::Rollback,
            detect,
            minutes(20),
        ),
        Scenario {
            onset_ms: minutes(25),
            ..base(
                "10% errors from 25 min in, mid-step (100 req/s, seed's plan)",
                100.0,
                &seed_plan,
                HEALTHY,
                at(0.10),
                Expect::Rollback,
                detect,
                minutes(20),
            )
        },
        base(
            "healthy, 0.2% errors both (100 req/s, 1-min steps)",
            100.0,
            &quick,
            HEALTHY,
            HEALTHY,
            Expect::NoImmediate,
            runs,
            minutes(10),
        ),
        base(
            "healthy at 1% errors both (100 req/s, 1-min steps)",
            100.0,
            &quick,
            at(0.01),
            at(0.01),
            Expect::NoImmediate,
            runs,
            minutes(10),
        ),
        base(
            "canary at 4% errors (100 req/s, 1-min steps)",
            100.0,
            &quick,
            HEALTHY,
            at(0.04),
            Expect::NoImmediate,
            runs,
            minutes(10),
        ),
        base(
            "30 requests per minute (seed's plan)",
            0.5,
            &seed_plan,
            HEALTHY,
            HEALTHY,
            Expect::Hold,
            detect,
            minutes(120),
        ),
    ]
}

fn main() {
    let runs = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("| scenario | runs | outcome | detection median | detection p95 | simulated in |");
    println!("|---|---|---|---|---|---|");
    for s in scenarios(runs) {
        report(&s);
    }
}
