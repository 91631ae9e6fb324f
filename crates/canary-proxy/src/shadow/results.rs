//! What the copies came to, per route: the tally the controller judges
//! (see `canary_core::shadow::tally`), a few example pairs for each
//! difference, and the canary's latency on copies. Examples are kept with
//! secrets redacted: the query's and JSON bodies' values under a secret's
//! name, and only the compared headers.

use bytes::Bytes;
use canary_core::shadow::diff::Difference;
use canary_core::shadow::tally::{RouteTally, TallyWire};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// Examples kept per difference.
const EXAMPLES: usize = 3;

/// Differences per route that keep examples.
const EXAMPLED: usize = 32;

/// The most routes kept; copies of others are counted under `other`.
const MAX_ROUTES: usize = 256;

/// The longest body excerpt an example keeps, in bytes.
const EXCERPT: usize = 2048;

/// Names whose values are never shown (compared case-insensitively), in
/// queries and JSON bodies, besides those configured.
pub const SECRET_NAMES: [&str; 8] =
    ["authorization", "cookie", "set-cookie", "password", "token", "access_token", "api_key", "secret"];

/// One side of an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The status.
    pub status: u16,
    /// The compared headers it had.
    pub headers: BTreeMap<String, String>,
    /// The body, redacted and trimmed.
    pub body: String,
    /// Whether the body was cut to the excerpt's length.
    pub trimmed: bool,
}

/// One request whose answers differed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query, redacted, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Stable's answer.
    pub stable: Side,
    /// The canary's answer.
    pub canary: Side,
    /// Everything that differed.
    pub differences: Vec<Difference>,
}

/// One route's results, as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteResults {
    /// The route label.
    pub route: String,
    /// The tally.
    pub tally: TallyWire,
    /// Example pairs, per difference.
    pub examples: Vec<(Difference, Vec<Example>)>,
    /// The canary's latency on copies: p50, p95, p99 in ms, and how many.
    pub latency_ms: [f64; 3],
    /// Copies timed.
    pub timed: u64,
}

#[derive(Debug, Default)]
struct Route {
    tally: RouteTally,
    examples: BTreeMap<Difference, Vec<Example>>,
    /// Microseconds up to a minute, two significant figures; made at the
    /// first copy timed.
    latency: Option<hdrhistogram::Histogram<u64>>,
}

/// Every route's results since the shadow step began.
#[derive(Debug, Default)]
pub struct Results {
    routes: Mutex<(u64, BTreeMap<String, Route>)>,
}

/// The outcome of one copy, for [`Results::record`].
pub struct Outcome<'a> {
    /// The step it was sent in (see [`Results::epoch`]).
    pub epoch: u64,
    /// The route.
    pub route: &'a str,
    /// Whether the canary failed it (a 5xx, or no answer).
    pub failed: bool,
    /// The canary's time to answer, in microseconds, if it answered.
    pub latency_us: Option<u64>,
    /// The differences from stable's answer, if compared.
    pub differences: Option<BTreeSet<Difference>>,
    /// Stable's differences from its own second answer, if asked twice.
    pub noise: Option<BTreeSet<Difference>>,
    /// Makes the example, when one is wanted.
    pub example: &'a dyn Fn() -> Example,
}

impl Results {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<String, Route>)> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current step's number: a copy sent in an earlier one is not
    /// counted in this one.
    pub fn epoch(&self) -> u64 {
        self.lock().0
    }

    /// Forgets everything: a new shadow step starts.
    pub fn reset(&self) {
        let mut g = self.lock();
        g.0 += 1;
        g.1.clear();
    }

    /// Counts one copy's outcome.
    pub fn record(&self, o: Outcome<'_>) {
        let mut g = self.lock();
        if g.0 != o.epoch {
            return;
        }
        let full = g.1.len() >= MAX_ROUTES && !g.1.contains_key(o.route);
        let r = g.1.entry(if full { "other".into() } else { o.route.to_string() }).or_default();
        r.tally.copies += 1;
        r.tally.copy_errors += u64::from(o.failed);
        if let Some(us) = o.latency_us {
            if r.latency.is_none() {
                r.latency = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 2).ok();
            }
            if let Some(h) = r.latency.as_mut() {
                // Past a minute it is saturated; the timeout is shorter anyway.
                let _ = h.record(us.clamp(1, 60_000_000));
            }
        }
        if let Some(n) = &o.noise {
            r.tally.noise.learn(n);
        }
        let Some(found) = o.differences else { return };
        let wanted = found
            .iter()
            .find(|d| r.examples.get(*d).map_or(r.examples.len() < EXAMPLED, |v| v.len() < EXAMPLES));
        if let Some(d) = wanted.cloned() {
            r.examples.entry(d).or_default().push((o.example)());
        }
        r.tally.record(found);
    }

    /// Every route's tally, without the examples: what the judge reads
    /// four times a second and `/metrics` on each scrape.
    pub fn tallies(&self) -> Vec<(String, RouteTally)> {
        self.lock().1.iter().map(|(route, r)| (route.clone(), r.tally.clone())).collect()
    }

    /// Every route's results.
    pub fn read(&self) -> Vec<RouteResults> {
        let g = self.lock();
        g.1.iter()
            .map(|(route, r)| RouteResults {
                route: route.clone(),
                tally: TallyWire::from(&r.tally),
                examples: r.examples.iter().map(|(d, v)| (d.clone(), v.clone())).collect(),
                latency_ms: [0.5, 0.95, 0.99]
                    .map(|q| r.latency.as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)),
                timed: r.latency.as_ref().map_or(0, |h| h.len()),
            })
            .collect()
    }
}

/// A side of an example: the compared headers, the body redacted and cut.
pub fn side(
    status: u16,
    headers: &http::HeaderMap,
    body: &Bytes,
    compared: &[String],
    secrets: &[String],
) -> Side {
    let headers = compared
        .iter()
        .filter_map(|h| {
            headers.get(h.as_str()).map(|v| (h.clone(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        })
        .collect();
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_json(&mut v, secrets);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let trimmed = text.len() > EXCERPT;
    let mut body = text;
    if trimmed {
        let mut end = EXCERPT;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    Side { status, headers, body, trimmed }
}

fn is_secret(name: &str, secrets: &[String]) -> bool {
    SECRET_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
        || secrets.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Replaces the value of every field named as a secret, at any depth.
fn redact_json(v: &mut Value, secrets: &[String]) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret(k, secrets) {
                    *x = Value::String("[redacted]".into());
                } else {
                    redact_json(x, secrets);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_json(x, secrets)),
        _ => {}
    }
}

/// The query with the values of secret parameters replaced.
pub fn redact_query(q: &str, secrets: &[String]) -> String {
    q.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret(k, secrets) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::shadow::diff::Kind;

    #[test]
    fn secrets_are_redacted_in_queries_and_json_and_bodies_are_trimmed() {
        assert_eq!(redact_query("a=1&token=abc&Secret=x&b", &[]), "a=1&token=[redacted]&Secret=[redacted]&b");
        assert_eq!(redact_query("email=a@b", &["email".into()]), "email=[redacted]");
        let body = Bytes::from(r#"{"user":{"password":"p","name":"n"},"list":[{"api_key":"k"}]}"#);
        let s = side(200, &http::HeaderMap::new(), &body, &[], &[]);
        assert_eq!(
            s.body,
            r#"{"list":[{"api_key":"[redacted]"}],"user":{"name":"n","password":"[redacted]"}}"#
        );
        let long = Bytes::from("é".repeat(EXCERPT));
        let s = side(200, &http::HeaderMap::new(), &long, &[], &[]);
        assert!(s.trimmed && s.body.len() <= EXCERPT);
    }

    #[test]
    fn a_new_step_forgets_and_copies_of_an_older_one_are_not_counted() {
        let r = Results::default();
        let example = || Example {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            stable: side(200, &http::HeaderMap::new(), &Bytes::new(), &[], &[]),
            canary: side(200, &http::HeaderMap::new(), &Bytes::new(), &[], &[]),
            differences: vec![],
        };
        let d: BTreeSet<_> = [Difference { at: "$.a".into(), kind: Kind::Type }].into();
        let out = |epoch| Outcome {
            epoch,
            route: "/a",
            failed: false,
            latency_us: Some(1000),
            differences: Some(d.clone()),
            noise: None,
            example: &example,
        };
        for _ in 0..5 {
            r.record(out(0));
        }
        let read = r.read();
        assert_eq!((read[0].tally.copies, read[0].examples[0].1.len()), (5, EXAMPLES));
        r.reset();
        r.record(out(0));
        assert!(r.read().is_empty(), "a copy of the step before is not counted");
        r.record(out(1));
        assert_eq!(r.read()[0].tally.copies, 1);
    }
}
