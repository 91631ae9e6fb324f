//! A seeded traffic model that drives the rollout state machine in simulated
//! time: every 250 ms of simulated time each version gets its requests
//! (errors and latencies drawn from its [`Behaviour`]), the driver's windows
//! are kept as the real controller keeps them, and the machine ticks. Hours of
//! rollout pass in milliseconds, the same for every run of a seed.
//!
//! Used by the core's tests and by `examples/decisions.rs`, which prints the
//! judge's detection times and false-alarm rates per scenario.

use crate::event::EventKind;
use crate::judge::{ArmWindow, Observation, Policy, Verdict, judge_step};
use crate::plan::Plan;
use crate::rollout::{Controls, Decision, Rollout};
use crate::time::UnixMs;
use crate::window::{TickRing, latency_histogram, merge};

/// The controller's tick.
pub const TICK_MS: u64 = 250;

/// The driver's longest rollback window: 10 s of ticks.
pub const MAX_FAST_TICKS: usize = 40;

/// The share of requests on `/pay` (the rest go to `/rooms`).
pub const PAY_SHARE: f64 = 0.005;

/// A deterministic pseudo-random source (xorshift64*), so every run is repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed` (0 is taken as 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number in 0..1.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one version behaves: its error probability and latency (ms) range.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// The probability that a request fails.
    pub error_p: f64,
    /// Latencies are drawn uniformly from this range, ms.
    pub latency_ms: (f64, f64),
    /// The error probability on the `/pay` route, when it differs.
    pub pay_error_p: Option<f64>,
    /// The latency range on the `/pay` route, when it differs.
    pub pay_latency_ms: Option<(f64, f64)>,
}

/// A healthy service: 0.2% errors, 5-40 ms.
pub const HEALTHY: Behaviour =
    Behaviour { error_p: 0.002, latency_ms: (5.0, 40.0), pay_error_p: None, pay_latency_ms: None };

/// Drives one rollout against the traffic model.
#[derive(Debug)]
pub struct Sim {
    rng: Rng,
    /// Requests per second across both versions.
    pub total_rps: f64,
    /// How stable behaves.
    pub stable: Behaviour,
    /// How the canary behaves.
    pub canary: Behaviour,
    /// The recent ticks (the rollback window is drawn from them).
    pub ticks: TickRing,
    /// Everything since the step began.
    pub step_obs: Observation,
    /// Simulated time, ms.
    pub now: UnixMs,
    /// Every share the machine set, in order.
    pub shares: Vec<f64>,
    /// Every event kind the machine recorded, in order.
    pub events: Vec<EventKind>,
    /// The judge's policy.
    pub policy: Policy,
    /// The controller's settings.
    pub controls: Controls,
}

impl Sim {
    /// A simulation of seed `seed` at `total_rps`, both versions healthy.
    pub fn new(seed: u64, total_rps: f64) -> Sim {
        Sim {
            rng: Rng::new(seed),
            total_rps,
            stable: HEALTHY,
            canary: HEALTHY,
            ticks: TickRing::new(MAX_FAST_TICKS),
            step_obs: Observation::default(),
            now: UnixMs::from_millis(1_000_000),
            shares: Vec::new(),
            events: Vec::new(),
            policy: Policy::default(),
            controls: Controls::default(),
        }
    }

    /// `n` requests of behaviour `b`, with their routes.
    pub fn arm(&mut self, n: u64, b: Behaviour) -> ArmWindow {
        let mut w = ArmWindow { requests: n, ..ArmWindow::default() };
        let mut h = latency_histogram();
        let slow_ms = self.policy.max_p95_ms;
        for _ in 0..n {
            let pay = self.rng.next_f64() < PAY_SHARE;
            let p = if pay { b.pay_error_p.unwrap_or(b.error_p) } else { b.error_p };
            let failed = self.rng.next_f64() < p;
            if failed {
                w.errors += 1;
                w.server_errors += 1;
            }
            let route = w.routes.entry(if pay { "/pay" } else { "/rooms" }.to_string()).or_default();
            route.requests += 1;
            route.errors += u64::from(failed);
            let (lo, hi) = if pay { b.pay_latency_ms.unwrap_or(b.latency_ms) } else { b.latency_ms };
            let ms = lo + self.rng.next_f64() * (hi - lo);
            route.slow += u64::from(ms > slow_ms);
            if let Some(h) = h.as_mut() {
                h.saturating_record((ms * 1000.0) as u64);
            }
        }
        w.latency = h;
        w
    }

    /// Requests in one tick for a rate, with the fraction carried as a coin flip.
    pub fn count(&mut self, rps: f64) -> u64 {
        let exact = rps * TICK_MS as f64 / 1000.0;
        exact.floor() as u64 + u64::from(self.rng.next_f64() < exact.fract())
    }

    /// Carries out the machine's decisions as the driver would.
    pub fn apply(&mut self, ds: Vec<Decision>) {
        for d in ds {
            match d {
                Decision::SetShare(s) => {
                    self.shares.push(s.percent());
                    // The mix of traffic changed: older ticks describe another step.
                    self.ticks.clear();
                    self.step_obs = Observation::default();
                }
                Decision::Event { kind, .. } => self.events.push(kind),
                Decision::SetUpstreams { .. } | Decision::BlockCanary(_) | Decision::SetShadow(_) => {}
            }
        }
    }

    /// Starts a rollout of `plan` now.
    pub fn start(&mut self, plan: Plan) -> Rollout {
        let (r, ds) = Rollout::start(1, "http://canary", "http://stable", plan, self.now);
        self.apply(ds);
        r
    }

    /// One tick of traffic and judging.
    pub fn step(&mut self, r: &mut Rollout) {
        self.now += TICK_MS;
        let p = r.share.percent() / 100.0;
        let (nc, ns) = (self.count(self.total_rps * p), self.count(self.total_rps * (1.0 - p)));
        let (c, s) = (self.arm(nc, self.canary), self.arm(ns, self.stable));
        self.push(r, c, s);
    }

    /// Feeds one tick of given traffic to the windows and the machine.
    pub fn push(&mut self, r: &mut Rollout, canary: ArmWindow, stable: ArmWindow) {
        merge(&mut self.step_obs.canary, &canary);
        merge(&mut self.step_obs.stable, &stable);
        let tick = Observation { stable, canary, ..Observation::default() };
        r.account(&self.policy, &tick, &self.step_obs);
        self.ticks.push(tick);
        let fast = self.ticks.recent(self.policy.min_fast_requests);
        let ds = r.tick(self.now, &self.policy, &self.controls, &fast, &self.step_obs);
        self.apply(ds);
    }

    /// The judge's view of the step so far, as the driver passes to commands.
    pub fn verdict(&self) -> Verdict {
        judge_step(&self.policy, &self.step_obs)
    }

    /// Ticks for `ms` of simulated time, or until the rollout ends.
    pub fn run_for(&mut self, r: &mut Rollout, ms: u64) {
        let end = self.now + ms;
        while r.is_active() && self.now < end {
            self.step(r);
        }
    }
}
