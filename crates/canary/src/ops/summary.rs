//! Success indicators across rollouts (S22: zero downtime, zero rollbacks, a
//! better p95, a lower error rate): for each of the last N rollouts, what it
//! carried, the requests users lost to it, and the p95 and error rate before
//! (stable while it ran) and after (the canary at its last step); then the
//! totals and the trend. `canary report --summary` and the dashboard's history
//! read it from `GET /api/rollouts/summary`.
//!
//! Everything comes from what is already recorded: each rollout's tally of
//! requests and the verdicts kept with its step events.

use super::error::RecordError;
use super::report::fmt_ms;
use crate::live::Live;
use crate::store::Event;
use crate::store::RolloutRecord;
use canary_core::rollout::{Rollout, State};
use canary_core::time::UnixMs;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// One version's figures at a point of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// Error rate, percent.
    pub error_rate: Option<f64>,
    /// How many requests they rest on.
    pub requests: u64,
}

/// One rollout's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The rollout.
    pub id: i64,
    /// The canary's URL.
    pub canary: String,
    /// `promoted`, `rolled_back`, or still running.
    pub state: State,
    /// When it started, RFC 3339.
    pub started: String,
    /// How long it ran (so far), seconds.
    pub duration_seconds: f64,
    /// Requests the canary served.
    pub canary_requests: u64,
    /// Requests the canary failed in front of a user.
    pub requests_lost: u64,
    /// Canary failures replayed on stable, unseen by users.
    pub replayed_on_stable: u64,
    /// Stable while the rollout ran: the version being replaced.
    pub before: Option<Figures>,
    /// The canary at its last judged step (for a promotion: at 100%).
    pub after: Option<Figures>,
}

/// Totals and trend over the entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Newest first.
    pub rollouts: Vec<Entry>,
    /// How many were promoted.
    pub promoted: usize,
    /// How many were rolled back.
    pub rolled_back: usize,
    /// How many still run.
    pub in_progress: usize,
    /// Requests the canaries served.
    pub canary_requests: u64,
    /// Requests users lost to them.
    pub requests_lost: u64,
    /// S22: no request lost.
    pub zero_downtime: bool,
    /// S22: no rollback.
    pub zero_rollbacks: bool,
    /// Promotions whose p95 after is at most the p95 before.
    pub better_p95: usize,
    /// Promotions whose error rate after is at most the error rate before.
    pub lower_error_rate: usize,
    /// Promotions with both figures to compare.
    pub compared: usize,
    /// Older half against newer half.
    pub trend: Trend,
}

/// How things move from the older half of the rollouts to the newer half.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Mean p95 after promotion, older half then newer half (ms).
    pub p95_ms: Option<(f64, f64)>,
    /// Mean error rate after promotion, older half then newer half (percent).
    pub error_rate: Option<(f64, f64)>,
    /// Rollbacks in the older half, then in the newer half, and the halves' sizes.
    pub rollbacks: (usize, usize, usize, usize),
}

/// The summary of the last `last` rollouts.
pub fn json(live: &Live, last: usize) -> Result<Summary, RecordError> {
    let rollouts = live.store().rollouts(last)?;
    let mut entries = Vec::with_capacity(rollouts.len());
    // A record this build cannot read has no figures to add up.
    for r in rollouts.iter().filter_map(RolloutRecord::rollout) {
        let events = live.store().rollout_events(r.id)?;
        entries.push(entry(r, &events, crate::store::now()));
    }
    Ok(summarize(entries))
}

/// One rollout's line from its saved body and events.
pub fn entry(r: &Rollout, events: &[Event], now: UnixMs) -> Entry {
    let tally = &r.tally;
    let (started, ended) = (r.started_ms, r.ended_ms.unwrap_or(now));
    let latest = r.step_verdict.as_ref().and_then(|v| serde_json::to_value(v).ok());
    let verdicts: Vec<&Value> = events
        .iter()
        .filter_map(|e| [&e.detail["verdict"], &e.detail["step_verdict"]].into_iter().find(|v| v.is_object()))
        .chain(latest.as_ref())
        .collect();
    // Before: stable over the step with the most stable traffic (the largest
    // sample of the version being replaced); after: the canary at the last
    // judged step.
    let before = verdicts.iter().filter_map(|v| arm(v, "stable")).max_by_key(|f| f.requests);
    let after = verdicts.iter().rev().find_map(|v| arm(v, "canary"));
    Entry {
        id: r.id,
        canary: r.canary.clone(),
        state: r.state,
        started: fmt_ms(started),
        duration_seconds: (ended - started) as f64 / 1000.0,
        canary_requests: tally.canary_requests,
        requests_lost: tally.lost(),
        replayed_on_stable: tally.canary_recovered,
        before,
        after,
    }
}

fn arm(verdict: &Value, version: &str) -> Option<Figures> {
    let a = verdict["versions"].as_array()?.iter().find(|a| a["version"] == version)?;
    let requests = a["requests"].as_u64().unwrap_or(0);
    (requests > 0).then(|| Figures {
        p95_ms: a["p95_ms"].as_f64(),
        error_rate: a["error_rate"].as_f64(),
        requests,
    })
}

/// Totals and trend over `rollouts` (newest first).
pub fn summarize(rollouts: Vec<Entry>) -> Summary {
    let is = |s: State| rollouts.iter().filter(|e| e.state == s).count();
    let (promoted, rolled_back) = (is(State::Promoted), is(State::RolledBack));
    let canary_requests = rollouts.iter().map(|e| e.canary_requests).sum();
    let requests_lost: u64 = rollouts.iter().map(|e| e.requests_lost).sum();
    let pairs = |f: fn(&Figures) -> Option<f64>| -> Vec<(f64, f64)> {
        rollouts
            .iter()
            .filter(|e| e.state == State::Promoted)
            .filter_map(|e| Some((f(e.before.as_ref()?)?, f(e.after.as_ref()?)?)))
            .collect()
    };
    let (p95, err) = (pairs(|f| f.p95_ms), pairs(|f| f.error_rate));
    let trend = trend(&rollouts);
    Summary {
        promoted,
        rolled_back,
        in_progress: rollouts.len() - promoted - rolled_back,
        canary_requests,
        requests_lost,
        zero_downtime: requests_lost == 0,
        zero_rollbacks: rolled_back == 0,
        better_p95: p95.iter().filter(|(b, a)| a <= b).count(),
        lower_error_rate: err.iter().filter(|(b, a)| a <= b).count(),
        compared: p95.len().min(err.len()),
        rollouts,
        trend,
    }
}

fn trend(newest_first: &[Entry]) -> Trend {
    let oldest_first: Vec<&Entry> = newest_first.iter().rev().collect();
    let (older, newer) = oldest_first.split_at(oldest_first.len() / 2);
    let rollbacks = |h: &[&Entry]| h.iter().filter(|e| e.state == State::RolledBack).count();
    let mean_after = |h: &[&Entry], f: fn(&Figures) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> =
            h.iter().filter(|e| e.state == State::Promoted).filter_map(|e| f(e.after.as_ref()?)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let both = |f: fn(&Figures) -> Option<f64>| Some((mean_after(older, f)?, mean_after(newer, f)?));
    Trend {
        p95_ms: both(|f| f.p95_ms),
        error_rate: both(|f| f.error_rate),
        rollbacks: (rollbacks(older), rollbacks(newer), older.len(), newer.len()),
    }
}

/// The summary as text for a terminal.
pub fn text(s: &Summary) -> String {
    let mut t = String::new();
    let n = s.rollouts.len();
    let _ = writeln!(
        t,
        "Rollouts: the last {n}: {} promoted, {} rolled back, {} in progress",
        s.promoted, s.rolled_back, s.in_progress
    );
    let replayed: u64 = s.rollouts.iter().map(|e| e.replayed_on_stable).sum();
    let _ = writeln!(
        t,
        "Requests lost: {} of {} canary requests{} ({} more failures replayed on stable, unseen)",
        s.requests_lost,
        s.canary_requests,
        pct_of(s.requests_lost, s.canary_requests),
        replayed
    );
    let _ = writeln!(
        t,
        "Zero downtime: {}   Zero rollbacks: {}",
        yes_no(s.zero_downtime, s.requests_lost),
        yes_no(s.zero_rollbacks, s.rolled_back as u64)
    );
    let _ = writeln!(
        t,
        "Promotions with a p95 no worse than before: {} of {}; with an error rate no higher: {} of {}",
        s.better_p95, s.compared, s.lower_error_rate, s.compared
    );
    let _ = writeln!(t, "Trend (older half -> newer half): {}", trend_line(&s.trend));
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:>4}  {:<20}  {:<11}  {:>9}  {:>9}  {:>6}  {:>17}  {:>15}",
        "id",
        "started",
        "outcome",
        "duration",
        "canary rq",
        "lost",
        "p95 before->after",
        "err% before->after"
    );
    for e in &s.rollouts {
        let _ = writeln!(
            t,
            "{:>4}  {:<20}  {:<11}  {:>8.0}s  {:>9}  {:>6}  {:>17}  {:>15}",
            e.id,
            e.started,
            e.state,
            e.duration_seconds,
            e.canary_requests,
            e.requests_lost,
            change(e.before.and_then(|f| f.p95_ms), e.after.and_then(|f| f.p95_ms), "ms"),
            change(e.before.and_then(|f| f.error_rate), e.after.and_then(|f| f.error_rate), "%"),
        );
    }
    t
}

fn trend_line(tr: &Trend) -> String {
    let dir = |(a, b): (f64, f64)| {
        if b < a * 0.95 {
            "better"
        } else if b > a * 1.05 {
            "worse"
        } else {
            "level"
        }
    };
    let mut parts = Vec::new();
    match tr.p95_ms {
        Some(p) => parts.push(format!("p95 after promotion {:.1} -> {:.1} ms ({})", p.0, p.1, dir(p))),
        None => parts.push("p95: too few promotions to compare".into()),
    }
    if let Some(e) = tr.error_rate {
        parts.push(format!("error rate {:.2}% -> {:.2}% ({})", e.0, e.1, dir(e)));
    }
    let (a, b, na, nb) = tr.rollbacks;
    parts.push(format!("rollbacks {a} of {na} -> {b} of {nb}"));
    parts.join("; ")
}

fn change(before: Option<f64>, after: Option<f64>, unit: &str) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    format!("{} -> {} {unit}", f(before), f(after))
}

fn pct_of(part: u64, whole: u64) -> String {
    if whole == 0 { String::new() } else { format!(" ({:.3}%)", part as f64 * 100.0 / whole as f64) }
}

fn yes_no(ok: bool, n: u64) -> String {
    if ok { "yes".into() } else { format!("no ({n})") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: i64, state: State, lost: u64, before: (f64, f64), after: (f64, f64)) -> Entry {
        let f = |(p95, err): (f64, f64)| {
            Some(Figures { p95_ms: Some(p95), error_rate: Some(err), requests: 100 })
        };
        Entry {
            id,
            canary: String::new(),
            state,
            started: String::new(),
            duration_seconds: 60.0,
            canary_requests: 1000,
            requests_lost: lost,
            replayed_on_stable: 0,
            before: f(before),
            after: f(after),
        }
    }

    #[test]
    fn totals_indicators_and_trend_over_the_rollouts() {
        // Newest first: two good promotions, a rollback, two older promotions.
        let s = summarize(vec![
            e(5, State::Promoted, 0, (100.0, 0.5), (80.0, 0.2)),
            e(4, State::Promoted, 0, (100.0, 0.5), (90.0, 0.6)),
            e(3, State::RolledBack, 7, (100.0, 0.5), (900.0, 12.0)),
            e(2, State::Promoted, 0, (120.0, 0.4), (130.0, 0.3)),
            e(1, State::Promoted, 0, (120.0, 0.4), (150.0, 0.4)),
        ]);
        assert_eq!((s.promoted, s.rolled_back, s.in_progress), (4, 1, 0));
        assert_eq!((s.requests_lost, s.zero_downtime, s.zero_rollbacks), (7, false, false));
        assert_eq!((s.better_p95, s.lower_error_rate, s.compared), (2, 3, 4));
        // Older half = rollouts 1, 2; newer half = 3, 4, 5 (promotions 4 and 5).
        assert_eq!(s.trend.p95_ms, Some((140.0, 85.0)));
        assert_eq!(s.trend.rollbacks, (0, 1, 2, 3));
        let text = text(&s);
        assert!(text.contains("p95 after promotion 140.0 -> 85.0 ms (better)"), "{text}");
        assert!(text.contains("Zero downtime: no (7)"), "{text}");
    }

    #[test]
    fn one_rollout_has_no_trend_and_no_rollouts_is_not_an_error() {
        let s = summarize(vec![e(1, State::Promoted, 0, (100.0, 0.5), (90.0, 0.4))]);
        assert_eq!((s.trend.p95_ms, s.zero_downtime), (None, true));
        assert!(text(&s).contains("too few promotions"));
        let s = summarize(Vec::new());
        assert_eq!((s.promoted, s.compared, s.zero_rollbacks), (0, 0, true));
    }
}
