//! What the connections saw: latency histograms, counts and the timeline,
//! merged at the end and reported.

use crate::args::Args;
use crate::plan::Plan;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

/// The histograms' ceiling (latencies above it are recorded as it): 60 s.
const MAX_US: u64 = 60_000_000;
/// The timeline's resolution.
pub(crate) const BUCKET: Duration = Duration::from_millis(100);

/// What one connection saw.
pub(crate) struct Tally {
    pub(crate) latency: Histogram<u64>,
    /// From the request's actual send to its response (what wrk would report).
    pub(crate) service: Histogram<u64>,
    pub(crate) gen_lag: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) non_2xx: u64,
    pub(crate) unanswered: u64,
    /// Responses that ended inside the measured window, whatever their slot.
    pub(crate) done_in_window: u64,
    /// The next slot this connection owns.
    pub(crate) next: u64,
    /// Per timeline bucket: answers recorded, the slowest, how many over 1 ms.
    pub(crate) timeline: Vec<(u64, u64, u64)>,
    pub(crate) first_error: Option<String>,
}

impl Tally {
    pub(crate) fn new(first_slot: u64, buckets: usize) -> Result<Tally, String> {
        let hist = || Histogram::<u64>::new_with_bounds(1, MAX_US, 3).map_err(|e| format!("histogram: {e}"));
        Ok(Tally {
            latency: hist()?,
            service: hist()?,
            gen_lag: hist()?,
            ok: 0,
            errors: 0,
            non_2xx: 0,
            unanswered: 0,
            done_in_window: 0,
            next: first_slot,
            timeline: vec![(0, 0, 0); buckets],
            first_error: None,
        })
    }

    pub(crate) fn failed(&mut self, plan: &Plan, at: Instant, e: &io::Error) {
        if plan.measured(at) {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

impl Tally {
    /// Adds another connection's counts to these.
    pub(crate) fn merge(&mut self, t: Tally) -> Result<(), String> {
        self.latency.add(&t.latency).map_err(|e| format!("histogram: {e}"))?;
        self.service.add(&t.service).map_err(|e| format!("histogram: {e}"))?;
        self.gen_lag.add(&t.gen_lag).map_err(|e| format!("histogram: {e}"))?;
        self.ok += t.ok;
        self.errors += t.errors;
        self.non_2xx += t.non_2xx;
        self.unanswered += t.unanswered;
        self.done_in_window += t.done_in_window;
        for (a, b) in self.timeline.iter_mut().zip(&t.timeline) {
            a.0 += b.0;
            a.1 = a.1.max(b.1);
            a.2 += b.2;
        }
        if self.first_error.is_none() {
            self.first_error = t.first_error;
        }
        Ok(())
    }
}

/// One line per 100 ms of the measured window: `t_s requests max_us over_1ms`.
pub(crate) fn write_timeline(path: &str, all: &Tally, duration: Duration) -> Result<(), String> {
    let mut out = String::from("t_s\trequests\tmax_us\tover_1ms\n");
    for (i, (n, max, over)) in all.timeline.iter().enumerate() {
        let t_s = (i as f64) * BUCKET.as_secs_f64();
        if t_s < duration.as_secs_f64() {
            let _ = writeln!(out, "{t_s:.1}\t{n}\t{max}\t{over}");
        }
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write FIXED_RATE_TIMELINE '{path}': {e}"))
}

/// The stdout line, and a readable summary on stderr; an error when nothing
/// was answered at all.
pub(crate) fn report(args: &Args, all: &Tally) -> Result<String, String> {
    let secs = args.duration.as_secs_f64();
    let achieved = all.done_in_window as f64 / secs;
    let (l, g, sv) = (&all.latency, &all.gen_lag, &all.service);
    let q = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
    // Each figure once, for both the line and the summary.
    let (p50, p90, p99, p999, max) = (q(l, 0.5), q(l, 0.9), q(l, 0.99), q(l, 0.999), l.max());
    let mean = if l.is_empty() { 0.0 } else { l.mean() };
    let (svc50, svc99, svc999) = (q(sv, 0.5), q(sv, 0.99), q(sv, 0.999));
    let (lag99, lag_max) = (q(g, 0.99), g.max());
    let (rate, conns, ok, errors, non_2xx) = (args.rate, args.connections, all.ok, all.errors, all.non_2xx);
    let line = format!(
        "rate={rate} achieved={achieved:.1} requests={ok} errors={errors} non_2xx={non_2xx} p50_us={p50} \
         p90_us={p90} p99_us={p99} p999_us={p999} max_us={max} mean_us={mean:.1} svc_p50_us={svc50} \
         svc_p99_us={svc99} svc_p999_us={svc999} gen_lag_p99_us={lag99} gen_lag_max_us={lag_max} \
         connections={conns} duration_s={secs}"
    );
    eprintln!(
        "fixed_rate: {} at {rate} req/s over {conns} connections, {secs} s measured after {} s of warm-up: \
         achieved {achieved:.1} req/s; {ok} answers, {errors} errors ({} unanswered at the deadline), \
         {non_2xx} not 2xx; latency from the scheduled send: p50 {p50} us, p90 {p90} us, p99 {p99} us, \
         p99.9 {p999} us, max {max} us; from the actual send: p50 {svc50} us, p99 {svc99} us, \
         p99.9 {svc999} us; the generator's own send lag: p99 {lag99} us, max {lag_max} us",
        args.url,
        args.warmup.as_secs_f64(),
        all.unanswered,
    );
    if let Some(e) = &all.first_error {
        eprintln!("fixed_rate: first error: {e}");
    }
    if achieved < args.rate * 0.99 {
        eprintln!("fixed_rate: warning: achieved {achieved:.1} req/s, under 99% of the {} asked", args.rate);
    }
    if all.ok == 0 {
        return Err(format!("no request was answered ({line})"));
    }
    Ok(line)
}
