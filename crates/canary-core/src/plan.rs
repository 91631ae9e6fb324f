//! A rollout plan: the shares to go through, how long to watch each, how long
//! to watch at 100% before the canary becomes stable, and whether each step
//! waits for a person. The seed's plan is the default.

use crate::share::Share;
use serde::{Deserialize, Serialize};

/// The plan of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The shares, rising, ending at 100.
    pub steps: Vec<Share>,
    /// Watching time per step below 100%, in ms.
    pub bake_ms: u64,
    /// Watching time at 100% before promotion, in ms.
    pub final_watch_ms: u64,
    /// Wait for `promote` at the end of every step.
    pub manual: bool,
    /// A shadow step before the first share, in ms (0: none): the canary
    /// serves no user, copies of requests are sent to it and compared.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shadow_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for Plan {
    fn default() -> Plan {
        let steps =
            [10.0, 25.0, 50.0, 75.0, 100.0].iter().filter_map(|&p| Share::from_percent(p).ok()).collect();
        Plan { steps, bake_ms: 10 * 60_000, final_watch_ms: 30 * 60_000, manual: false, shadow_ms: 0 }
    }
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A step is not a share.
    #[error("step `{0}`: {1}")]
    BadStep(String, String),
    /// The steps do not rise.
    #[error("steps must rise strictly: {0} does not come after {1}")]
    NotRising(String, String),
    /// The steps do not reach 100.
    #[error("the last step must be 100 (the canary takes all traffic before it becomes stable)")]
    NotFull,
    /// A duration does not parse.
    #[error("duration `{0}`: write a number with a unit, such as 90s, 10m or 1h")]
    BadDuration(String),
    /// A first share that is 0.
    #[error("the first share must be above 0")]
    ZeroStart,
}

impl Plan {
    /// Parses `10,25,50,75,100`.
    pub fn parse_steps(s: &str) -> Result<Vec<Share>, PlanError> {
        let steps = s
            .split(',')
            .map(|t| {
                t.trim().parse::<Share>().map_err(|e| PlanError::BadStep(t.trim().to_string(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_steps(&steps)?;
        Ok(steps)
    }

    /// The plan as started at `first`: `first`, then every planned step above it.
    pub fn starting_at(&self, first: Share) -> Result<Plan, PlanError> {
        if first == Share::ZERO {
            return Err(PlanError::ZeroStart);
        }
        let mut steps = vec![first];
        steps.extend(self.steps.iter().copied().filter(|s| *s > first));
        if steps.last() != Some(&Share::FULL) {
            steps.push(Share::FULL);
        }
        Ok(Plan { steps, ..self.clone() })
    }

    /// The watching time of step `i`.
    pub fn bake_of(&self, i: usize) -> u64 {
        if self.steps.get(i) == Some(&Share::FULL) { self.final_watch_ms } else { self.bake_ms }
    }
}

fn check_steps(steps: &[Share]) -> Result<(), PlanError> {
    for w in steps.windows(2) {
        if w[1] <= w[0] {
            return Err(PlanError::NotRising(w[1].to_string(), w[0].to_string()));
        }
    }
    match steps.last() {
        Some(&Share::FULL) => Ok(()),
        _ => Err(PlanError::NotFull),
    }
}

/// Parses `90s`, `10m`, `1h`, `500ms` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, PlanError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| PlanError::BadDuration(s.to_string()))?;
    let factor = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(PlanError::BadDuration(s.to_string())),
    };
    let ms = n * factor;
    if !ms.is_finite() || ms < 0.0 {
        return Err(PlanError::BadDuration(s.to_string()));
    }
    Ok(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(p: f64) -> Share {
        Share::from_percent(p).unwrap()
    }

    #[test]
    fn default_is_the_seeds_plan() {
        let p = Plan::default();
        assert_eq!(p.steps, [10.0, 25.0, 50.0, 75.0, 100.0].map(pct));
        assert_eq!((p.bake_ms, p.final_watch_ms), (600_000, 1_800_000));
    }

    #[test]
    fn starting_at_keeps_the_higher_steps() {
        let p = Plan::default().starting_at(pct(30.0)).unwrap();
        assert_eq!(p.steps, [30.0, 50.0, 75.0, 100.0].map(pct));
        assert!(Plan::default().starting_at(Share::ZERO).is_err());
    }

    #[test]
    fn steps_and_durations_parse_or_say_why() {
        assert_eq!(Plan::parse_steps("5, 50,100").unwrap(), [5.0, 50.0, 100.0].map(pct));
        assert!(matches!(Plan::parse_steps("10,5,100"), Err(PlanError::NotRising(..))));
        assert!(matches!(Plan::parse_steps("10,50"), Err(PlanError::NotFull)));
        assert!(matches!(Plan::parse_steps("10,x,100"), Err(PlanError::BadStep(..))));
        assert_eq!(parse_duration_ms("10m").unwrap(), 600_000);
        assert_eq!(parse_duration_ms("1.5s").unwrap(), 1_500);
        assert!(parse_duration_ms("10 minutes").is_err());
    }
}
