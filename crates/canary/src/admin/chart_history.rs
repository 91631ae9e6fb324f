//! The charts' past, for a page opened mid-rollout: one point per 5-second
//! slot of the last ten minutes (what the metrics keep), each version's
//! rate, error rate and latency percentiles, with the share in force then
//! (from the routing events). So the page draws the step so far, and the
//! moments the share moved, not only what arrives after it opened. Also
//! the one shape of a version's figures on the charts, live or past ([`arm`]).

use super::AdminState;
use crate::store::Event;
use canary_core::Version;
use canary_core::time::UnixMs;
use canary_proxy::metrics::ArmStats;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How far back the charts' past goes: what the metrics keep.
const BACK: Duration = Duration::from_secs(600);

/// Events read to find the share at each point. Events of every kind are
/// read, so a busy log (flags changing every few seconds) may not reach ten
/// minutes back; the points before the oldest change read show what it
/// changed from.
const EVENTS: usize = 500;

/// How long the page's first frame waits for the events: the store may be
/// etcd, cut off exactly when an operator opens the page. Past that, every
/// point shows the share now.
const EVENTS_WITHIN: Duration = Duration::from_millis(300);

/// The points, oldest first, in the stream's shape (`t`, `share`, `stable`, `canary`).
pub async fn points(s: &AdminState) -> Vec<Value> {
    let now = SystemTime::now();
    // Off the async threads: it takes each worker's shard lock in turn and
    // merges up to 120 slots' histograms.
    let metrics = Arc::clone(&s.metrics);
    let slots = tokio::task::spawn_blocking(move || {
        metrics.slots(now.checked_sub(BACK).unwrap_or(now), Instant::now())
    });
    let live = Arc::clone(&s.live);
    let events = tokio::task::spawn_blocking(move || live.store().events(EVENTS));
    let events = tokio::time::timeout(EVENTS_WITHIN, events).await;
    let moves = moves(events.ok().and_then(Result::ok).and_then(Result::ok).unwrap_or_default());
    let slots = slots.await.unwrap_or_default();
    let current = s.live.routing().share.percent();
    slots
        .into_iter()
        .map(|(end, snap)| {
            let t = UnixMs::from(end);
            json!({
                "t": t,
                "share": share_at(&moves, t, current),
                "stable": arm(snap.arm(Version::Stable)),
                "canary": arm(snap.arm(Version::Canary)),
            })
        })
        .collect()
}

/// A version's figures over a window, as the charts take them.
pub fn arm(a: &ArmStats) -> Value {
    json!({"rps": a.rps(), "error_rate": (a.counts.requests > 0).then(|| a.error_rate()), "p50": a.quantile_ms(0.5), "p95": a.quantile_ms(0.95), "p99": a.quantile_ms(0.99)})
}

/// Each share change as `(when, from, to)`, oldest first.
fn moves(events: Vec<Event>) -> Vec<(UnixMs, f64, f64)> {
    let mut m: Vec<(UnixMs, f64, f64)> = events
        .into_iter()
        .filter_map(|e| {
            let (from, to) = (e.detail["from"]["share"].as_f64()?, e.detail["to"]["share"].as_f64()?);
            (from != to).then_some((e.at_ms, from, to))
        })
        .collect();
    m.sort_by_key(|(at, _, _)| *at);
    m
}

/// The share in force at `t`: the last change before it, else the first
/// change after it (what it changed from), else the share now.
fn share_at(moves: &[(UnixMs, f64, f64)], t: UnixMs, now: f64) -> f64 {
    match moves.iter().rev().find(|(at, _, _)| *at <= t) {
        Some((_, _, to)) => *to,
        None => moves.first().map_or(now, |(_, from, _)| *from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_at_a_moment_is_the_last_change_before_it() {
        let at = UnixMs::from_millis;
        let moves = [(at(100), 0.0, 10.0), (at(200), 10.0, 25.0)];
        assert_eq!(share_at(&moves, at(50), 25.0), 0.0);
        assert_eq!(share_at(&moves, at(150), 25.0), 10.0);
        assert_eq!(share_at(&moves, at(250), 25.0), 25.0);
        assert_eq!(share_at(&[], at(250), 40.0), 40.0);
    }
}
