//! The controller's request and status shapes: what the admin API accepts and
//! answers, and what the CLI sends and prints.

use crate::live::Live;
use canary_core::judge::Verdict;
use canary_core::rollout::Rollout;
use canary_core::time::UnixMs;
use serde::{Deserialize, Serialize};

/// `POST /api/rollout/deploy`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The first share, percent.
    pub share: f64,
    /// The canary's URL.
    pub canary: String,
    /// Steps such as "10,25,50,75,100" (default: the configured plan).
    #[serde(default)]
    pub steps: Option<String>,
    /// Watching time per step, e.g. "10m".
    #[serde(default)]
    pub bake: Option<String>,
    /// Watching time at 100%, e.g. "30m".
    #[serde(default)]
    pub final_watch: Option<String>,
    /// Wait for `promote` after each step.
    #[serde(default)]
    pub manual: bool,
    /// A shadow step before the first share, e.g. "10m" (`--shadow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
    /// Deploy even outside the deployment windows (needs `reason`).
    #[serde(default)]
    pub force: bool,
    /// Why a forced deploy is needed; recorded.
    #[serde(default)]
    pub reason: Option<String>,
    /// Manual checklist items a person confirms, by name.
    #[serde(default)]
    pub confirm: Vec<String>,
}

/// `GET /api/rollout`: the contract scripts rely on is the top-level `state`
/// (idle, progressing, paused, holding, promoted, rolled_back) and `share`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Where things stand.
    pub state: String,
    /// The canary's share now, percent.
    pub share: f64,
    /// The stable upstream now.
    pub stable: String,
    /// The canary upstream now, if any.
    pub canary: Option<String>,
    /// The latest rollout, if any.
    pub rollout: Option<RolloutView>,
    /// Why the controller cannot work right now (the state file failing), if so.
    #[serde(default)]
    pub error: Option<String>,
    /// The judge's main thresholds in force (they change with a config reload).
    #[serde(default)]
    pub thresholds: Option<Thresholds>,
    /// With `--etcd`: `{"leader", "replicas": [{"id", "admin", "last_seen_ms"}], "node",
    /// "is_leader", "etcd_error", "unanswered": [{"id", "since_ms"}]}` (on the
    /// leader, the replicas whose totals have not come for over a second);
    /// `null` for a single process.
    #[serde(default)]
    pub cluster: Option<serde_json::Value>,
}

/// The thresholds a person watches: a step passes below the first two, and
/// the canary is rolled back at once above the last two.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    /// The highest error rate a step may show, percent.
    pub error_rate: f64,
    /// The highest p95 a step may show, ms.
    pub p95_ms: f64,
    /// The error rate that rolls back at once, percent.
    pub rollback_error_rate: f64,
    /// The p95 that rolls back at once, ms.
    pub rollback_p95_ms: f64,
    /// The highest memory use a step may show, percent (absent from older servers).
    #[serde(default)]
    pub memory: Option<f64>,
    /// The highest CPU use a step may show, percent.
    #[serde(default)]
    pub cpu: Option<f64>,
    /// The highest share of the database pool a step may use, percent.
    #[serde(default)]
    pub db_connections: Option<f64>,
}

impl Thresholds {
    /// The figures of `p`.
    pub fn of(p: &canary_core::judge::Policy) -> Thresholds {
        Thresholds {
            error_rate: p.max_error_rate,
            p95_ms: p.max_p95_ms,
            rollback_error_rate: p.rollback_error_rate,
            rollback_p95_ms: p.rollback_p95_ms,
            memory: Some(p.max_memory),
            cpu: Some(p.max_cpu),
            db_connections: Some(p.max_db_connections),
        }
    }

    /// The judge's policy with these thresholds; the seed's for anything not given.
    pub fn policy(&self) -> canary_core::judge::Policy {
        let seed = canary_core::judge::Policy::default();
        canary_core::judge::Policy {
            max_error_rate: self.error_rate,
            max_p95_ms: self.p95_ms,
            rollback_error_rate: self.rollback_error_rate,
            rollback_p95_ms: self.rollback_p95_ms,
            max_memory: self.memory.unwrap_or(seed.max_memory),
            max_cpu: self.cpu.unwrap_or(seed.max_cpu),
            max_db_connections: self.db_connections.unwrap_or(seed.max_db_connections),
            ..seed
        }
    }
}

/// A rollout as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutView {
    /// Its number.
    pub id: i64,
    /// Its canary URL.
    pub canary: String,
    /// The step, 1-based.
    pub step: usize,
    /// How many steps.
    pub steps: usize,
    /// The plan's shares.
    pub plan: Vec<f64>,
    /// Watching time left at this step, seconds.
    pub time_left_seconds: f64,
    /// Why it is paused, holding or rolled back.
    pub reason: Option<String>,
    /// A manual step waiting for `promote`.
    pub awaiting_promote: bool,
    /// When it started / ended, ms since the epoch.
    pub started_ms: UnixMs,
    /// When it ended.
    pub ended_ms: Option<UnixMs>,
    /// The latest step verdict.
    pub verdict: Option<Verdict>,
    /// The latest immediate-rollback check.
    pub rollback_check: Option<Verdict>,
    /// In the shadow step before the first share: copies are compared and
    /// no user is routed to the canary (`step` is then the first share's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadowing: bool,
}

impl Status {
    /// The status of `r` (the latest rollout) against the live router.
    pub fn of(r: Option<&Rollout>, live: &Live) -> Status {
        let ups = live.upstreams();
        Status {
            state: r.map_or("idle", |r| r.state.as_str()).to_string(),
            share: live.routing().share.percent(),
            stable: ups.stable.url().to_string(),
            canary: ups.canary.as_ref().map(|c| c.url().to_string()),
            rollout: r.map(view),
            error: None,
            thresholds: None,
            cluster: None,
        }
    }
}

fn view(r: &Rollout) -> RolloutView {
    RolloutView {
        id: r.id,
        canary: r.canary.clone(),
        step: r.step + 1,
        steps: r.plan.steps.len(),
        plan: r.plan.steps.iter().map(|s| s.percent()).collect(),
        time_left_seconds: if r.is_active() { r.time_left_ms() as f64 / 1000.0 } else { 0.0 },
        reason: r.reason.clone(),
        awaiting_promote: r.awaiting_promote,
        started_ms: r.started_ms,
        ended_ms: r.ended_ms,
        verdict: r.step_verdict.clone(),
        rollback_check: r.fast_verdict.clone(),
        shadowing: r.shadowing,
    }
}
