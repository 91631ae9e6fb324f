//! A team's own analysis beside the built-in judge (`[analysis]`): PromQL
//! queries against their Prometheus, held to a `max` or `min`, and webhooks
//! whose 2xx answer passes. Each check runs on its own interval while a
//! rollout is active, and its latest answer is a line of the step's verdict
//! table, so a failing one fails the step like any criterion.
//!
//! A check that has not answered yet in this rollout, or whose source is
//! unreachable or returns no data, is *inconclusive*: the step holds, it never
//! passes on a check that did not run.

pub mod config;
mod run;

pub use run::{Context, Current, spawn};

use canary_core::judge::{Criterion, Outcome};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The checks' latest lines, for one rollout.
#[derive(Debug, Default)]
pub struct Results {
    /// The configured checks' names, in config order.
    names: Vec<String>,
    /// The rollout the lines are about.
    rollout: Option<i64>,
    lines: BTreeMap<String, Criterion>,
}

/// Shared between the checks' tasks and the controller.
pub type Shared = Arc<Mutex<Results>>;

/// Results for the checks named `names`, none answered yet.
pub fn shared(names: Vec<String>) -> Shared {
    Arc::new(Mutex::new(Results { names, ..Results::default() }))
}

/// Records `line` as the latest answer of its check in `rollout`.
pub fn record(s: &Shared, rollout: i64, line: Criterion) {
    let mut r = s.lock().unwrap_or_else(PoisonError::into_inner);
    if r.rollout != Some(rollout) {
        // A new rollout: nothing said about the previous one counts.
        r.lines.clear();
        r.rollout = Some(rollout);
    }
    r.lines.insert(line.name.clone(), line);
}

/// One line per configured check for `rollout`: its latest answer, or
/// inconclusive while it has not answered in this rollout.
pub fn read(s: &Shared, rollout: i64) -> Vec<Criterion> {
    let r = s.lock().unwrap_or_else(PoisonError::into_inner);
    r.names
        .iter()
        .map(|n| match r.lines.get(n).filter(|_| r.rollout == Some(rollout)) {
            Some(l) => l.clone(),
            None => Criterion {
                name: n.clone(),
                value: None,
                threshold: 0.0,
                outcome: Outcome::Inconclusive,
                note: "no answer yet in this rollout".into(),
            },
        })
        .collect()
}
