//! A one-minute sliding window of per-second slots: requests, errors, latency
//! histogram and per-route latency, plus a bounded list of recent errors.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Seconds kept.
pub const WINDOW_SECS: u64 = 60;
/// Recent errors kept.
pub const RECENT_ERRORS: usize = 20;
/// Distinct routes kept; more count as `other`.
pub const MAX_ROUTES: usize = 100;

#[derive(Debug)]
struct Slot {
    second: u64,
    requests: u64,
    errors: u64,
    latency: Option<Histogram<u32>>,
    routes: BTreeMap<String, (u64, u64)>,
}

impl Slot {
    fn reset(&mut self, second: u64) {
        self.second = second;
        self.requests = 0;
        self.errors = 0;
        if let Some(h) = self.latency.as_mut() {
            h.reset();
        }
        self.routes.clear();
    }
}

/// One recent error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Method and path.
    pub endpoint: String,
    /// The status sent.
    pub status: u16,
}

/// The window.
#[derive(Debug)]
pub struct Window {
    slots: Vec<Slot>,
    errors: VecDeque<ErrorRecord>,
}

/// Figures over the window.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Requests.
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// Latency quantiles in ms (p50, p95, p99), if any requests.
    pub quantiles_ms: Option<(f64, f64, f64)>,
    /// Mean latency per route, ms.
    pub routes: BTreeMap<String, f64>,
    /// Seconds with any requests.
    pub busy_seconds: u64,
    /// Of those, seconds in which at least one request got a non-5xx answer.
    pub up_seconds: u64,
}

impl Default for Window {
    fn default() -> Window {
        let slots = (0..WINDOW_SECS)
            .map(|_| Slot {
                second: u64::MAX,
                requests: 0,
                errors: 0,
                latency: None,
                routes: BTreeMap::new(),
            })
            .collect();
        Window { slots, errors: VecDeque::new() }
    }
}

impl Window {
    /// Records one request finished at `second` (since start).
    pub fn record(&mut self, second: u64, route: &str, status: u16, latency_us: u64) {
        let slot = &mut self.slots[(second % WINDOW_SECS) as usize];
        if slot.second != second {
            slot.reset(second);
        }
        slot.requests += 1;
        slot.errors += u64::from(status >= 500);
        if slot.latency.is_none() {
            slot.latency = Histogram::new_with_bounds(1, 3_600_000_000, 2).ok();
        }
        if let Some(h) = slot.latency.as_mut() {
            h.saturating_record(latency_us.max(1));
        }
        let known = slot.routes.len() < MAX_ROUTES || slot.routes.contains_key(route);
        let e = slot.routes.entry(if known { route.to_string() } else { "other".to_string() }).or_default();
        e.0 += 1;
        e.1 += latency_us;
    }

    /// Remembers an error, dropping the oldest past the bound.
    pub fn record_error(&mut self, e: ErrorRecord) {
        if self.errors.len() == RECENT_ERRORS {
            self.errors.pop_front();
        }
        self.errors.push_back(e);
    }

    /// The recent errors, newest first.
    pub fn recent_errors(&self) -> Vec<ErrorRecord> {
        self.errors.iter().rev().cloned().collect()
    }

    /// Figures over the seconds up to `now_second`.
    pub fn summary(&self, now_second: u64) -> Summary {
        let live =
            |s: &&Slot| s.second != u64::MAX && s.second + WINDOW_SECS > now_second && s.second <= now_second;
        let mut out = Summary::default();
        let mut hist: Option<Histogram<u32>> = None;
        let mut routes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for s in self.slots.iter().filter(live) {
            out.requests += s.requests;
            out.errors += s.errors;
            out.busy_seconds += u64::from(s.requests > 0);
            out.up_seconds += u64::from(s.requests > s.errors);
            if let Some(h) = &s.latency {
                match hist.as_mut() {
                    Some(acc) => {
                        let _ = acc.add(h);
                    }
                    None => hist = Some(h.clone()),
                }
            }
            for (k, (n, sum)) in &s.routes {
                let e = routes.entry(k.clone()).or_default();
                e.0 += n;
                e.1 += sum;
            }
        }
        out.quantiles_ms = hist.filter(|h| !h.is_empty()).map(|h| {
            let q = |x| h.value_at_quantile(x) as f64 / 1000.0;
            (q(0.5), q(0.95), q(0.99))
        });
        out.routes =
            routes.into_iter().map(|(k, (n, sum))| (k, sum as f64 / n.max(1) as f64 / 1000.0)).collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_what_is_older_than_the_window() {
        let mut w = Window::default();
        w.record(0, "/a", 200, 1000);
        w.record(30, "/a", 500, 3000);
        assert_eq!(w.summary(30).requests, 2);
        let later = w.summary(65);
        assert_eq!((later.requests, later.errors), (1, 1));
        assert_eq!(later.routes["/a"], 3.0);
    }
}
