//! The rollout's lines in `/metrics`: its state, step and time left, each
//! criterion's latest figure, threshold and outcome (of the step's verdict
//! and of the immediate-rollback check), and the rollbacks this process
//! decided, by cause. What a dashboard and alert rules need from the
//! controller (dist/grafana, dist/prometheus); the traffic's own lines are
//! the proxy's.
//!
//! States and outcomes are one series per possible value, 1 for the one in
//! force and 0 for the others (kube-state-metrics' way): a query or an
//! alert matches a value by label, and a state's series is always there.
//! A criterion's series exist while the latest rollout has a verdict, on
//! the replica that leads.

use super::api::Status;
use canary_core::judge::{Outcome, Verdict};
use canary_proxy::metrics::prometheus::{escape, gauge};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// Every state `status` can say.
const STATES: [&str; 6] = ["idle", "progressing", "paused", "holding", "promoted", "rolled_back"];

/// Every outcome a criterion or a verdict can have.
const OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Pass, "pass"),
    (Outcome::Fail, "fail"),
    (Outcome::Inconclusive, "inconclusive"),
    (Outcome::NotReported, "not_reported"),
];

/// The rollbacks this process's controller decided, by [`CAUSES`].
/// Shared with the admin API.
pub type Rollbacks = Arc<Mutex<BTreeMap<String, u64>>>;

/// Every cause a rollback is counted under: the judge's criteria by name
/// (a route's as `route`, a team's own check as `check`), `verdict` for a
/// failed verdict with no failing line, `operator` for a person's. A fixed
/// set, so the label stays small and each series starts at 0: a counter
/// series born at 1 hides its first rollback from `increase()`.
pub const CAUSES: [&str; 18] = [
    "error_rate",
    "p95_ms",
    "5xx_surge_vs_stable",
    "error_rate_vs_stable",
    "p95_vs_stable",
    "p50_ms",
    "p99_ms",
    "uptime",
    "success_rate",
    "routes",
    "route",
    "health",
    "memory_percent",
    "cpu_percent",
    "db_connections_percent",
    "check",
    "verdict",
    "operator",
];

/// Every cause at zero.
pub fn rollbacks() -> Rollbacks {
    Arc::new(Mutex::new(CAUSES.iter().map(|c| (c.to_string(), 0)).collect()))
}

/// The cause a rolled-back event's detail names: the first failing
/// criterion of its `verdict`; `operator` when no verdict decided it.
pub fn cause(detail: &serde_json::Value) -> String {
    let Some(v) = detail.get("verdict").and_then(|v| serde_json::from_value::<Verdict>(v.clone()).ok())
    else {
        return "operator".into();
    };
    let Some(failed) = v.criteria.iter().find(|c| c.outcome == Outcome::Fail) else {
        return "verdict".into();
    };
    let name = failed.name.as_str();
    let cause = match name {
        n if CAUSES.contains(&n) => n,
        n if n.starts_with("route ") => "route",
        _ => "check",
    };
    cause.to_string()
}

/// Counts one rollback for `cause`.
pub fn count(rollbacks: &Rollbacks, cause: String) {
    *rollbacks.lock().unwrap_or_else(PoisonError::into_inner).entry(cause).or_default() += 1;
}

/// The lines for `st` (the controller's status) and `rollbacks`.
pub fn render(st: &Status, rollbacks: &Rollbacks) -> String {
    let mut out = String::with_capacity(2048);
    gauge(
        &mut out,
        "canary_rollout_state",
        "1 for the latest rollout's state (idle: none yet; a finished one stays promoted or rolled_back), 0 for the others.",
    );
    for s in STATES {
        let _ = writeln!(out, "canary_rollout_state{{state=\"{s}\"}} {}", u8::from(st.state == s));
    }
    let r = st.rollout.as_ref();
    let lines = [
        ("canary_rollout_id", "The latest rollout's number (0: none yet).", r.map_or(0.0, |r| r.id as f64)),
        (
            "canary_rollout_step",
            "The latest rollout's step, from 1 (0: none).",
            r.map_or(0.0, |r| r.step as f64),
        ),
        ("canary_rollout_steps", "The latest rollout's number of steps.", r.map_or(0.0, |r| r.steps as f64)),
        (
            "canary_rollout_step_time_left_seconds",
            "Watching time left at the step (0 when none is watched).",
            r.map_or(0.0, |r| r.time_left_seconds),
        ),
    ];
    for (name, help, value) in lines {
        gauge(&mut out, name, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let checks = [
        ("step", r.and_then(|r| r.verdict.as_ref())),
        ("rollback", r.and_then(|r| r.rollback_check.as_ref())),
    ];
    verdicts(&mut out, &checks);
    criteria(&mut out, &checks);
    counted(&mut out, rollbacks);
    out
}

/// Each check's overall outcome.
fn verdicts(out: &mut String, checks: &[(&str, Option<&Verdict>)]) {
    let name = "canary_rollout_verdict";
    gauge(
        out,
        name,
        "1 for each check's latest outcome (step: the step's verdict; rollback: the immediate check), 0 for the others.",
    );
    for (check, v) in checks {
        let Some(v) = v else { continue };
        for (o, word) in OUTCOMES {
            let _ =
                writeln!(out, "{name}{{check=\"{check}\",outcome=\"{word}\"}} {}", u8::from(v.outcome == o));
        }
    }
}

/// Each criterion's figure, threshold and outcome, per check.
fn criteria(out: &mut String, checks: &[(&str, Option<&Verdict>)]) {
    let all = || {
        checks
            .iter()
            .filter_map(|(check, v)| v.map(|v| (*check, v)))
            .flat_map(|(check, v)| v.criteria.iter().map(move |c| (check, c)))
    };
    gauge(out, "canary_rollout_criterion_value", "A criterion's latest figure (absent while it has none).");
    for (check, c) in all() {
        if let Some(v) = c.value.filter(|v| v.is_finite()) {
            let _ = writeln!(
                out,
                "canary_rollout_criterion_value{{check=\"{check}\",criterion=\"{}\"}} {v}",
                escape(&c.name)
            );
        }
    }
    gauge(out, "canary_rollout_criterion_threshold", "A criterion's threshold (while it has a figure).");
    for (check, c) in all().filter(|(_, c)| c.value.is_some()) {
        let _ = writeln!(
            out,
            "canary_rollout_criterion_threshold{{check=\"{check}\",criterion=\"{}\"}} {}",
            escape(&c.name),
            c.threshold
        );
    }
    let name = "canary_rollout_criterion_outcome";
    gauge(out, name, "1 for a criterion's latest outcome, 0 for the others.");
    for (check, c) in all() {
        for (o, word) in OUTCOMES {
            let label = escape(&c.name);
            let _ = writeln!(
                out,
                "{name}{{check=\"{check}\",criterion=\"{label}\",outcome=\"{word}\"}} {}",
                u8::from(c.outcome == o)
            );
        }
    }
}

fn counted(out: &mut String, rollbacks: &Rollbacks) {
    let name = "canary_rollbacks_total";
    let _ = writeln!(
        out,
        "# HELP {name} Rollbacks this process's controller decided, by cause (a criterion, or operator)."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for (cause, n) in rollbacks.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let _ = writeln!(out, "{name}{{cause=\"{}\"}} {n}", escape(cause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::judge::Criterion;

    fn verdict(outcome: Outcome, failing: &str) -> Verdict {
        let c = |name: &str, outcome| Criterion {
            name: name.into(),
            value: Some(12.5),
            threshold: 5.0,
            outcome,
            note: String::new(),
        };
        let criteria = vec![c("p95_ms", Outcome::Pass), c(failing, Outcome::Fail)];
        Verdict { outcome, criteria, versions: Vec::new() }
    }

    #[test]
    fn a_rollback_is_counted_under_its_first_failing_criterion_or_the_operator() {
        let of = |failing: &str| {
            let v = serde_json::to_value(verdict(Outcome::Fail, failing)).unwrap();
            cause(&serde_json::json!({"verdict": v}))
        };
        assert_eq!(of("error_rate"), "error_rate");
        assert_eq!(of("route /api/v2/pay"), "route");
        assert_eq!(of("qa-gate"), "check");
        assert_eq!(cause(&serde_json::json!({"verdict": null, "reason": "by hand"})), "operator");
        let r = rollbacks();
        count(&r, "error_rate".into());
        let st = Status {
            state: "idle".into(),
            share: 0.0,
            stable: String::new(),
            canary: None,
            rollout: None,
            error: None,
            thresholds: None,
            cluster: None,
        };
        let text = render(&st, &r);
        assert!(text.contains("canary_rollbacks_total{cause=\"error_rate\"} 1\n"), "{text}");
        assert!(text.contains("canary_rollbacks_total{cause=\"operator\"} 0\n"), "{text}");
        assert!(text.contains("canary_rollbacks_total{cause=\"route\"} 0\n"), "every cause from 0: {text}");
        assert!(text.contains("canary_rollout_state{state=\"idle\"} 1\n"), "{text}");
        assert!(text.contains("canary_rollout_state{state=\"paused\"} 0\n"), "{text}");
        assert!(!text.contains("canary_rollout_criterion_outcome{"), "no rollout, no criteria: {text}");
    }
}
