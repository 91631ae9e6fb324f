//! The incident record after a rollback (S7): when, why (the failing criteria
//! with values and thresholds), the timeline of shares and verdicts, who forced
//! what, and whom to call (S20). Markdown, in the incidents folder.

use super::config::{OpsConfig, folder};
use super::error::RecordError;
use super::report::{fmt_ms, table_of, timeline};
use crate::live::Live;
use canary_core::event::EventKind;
use canary_core::rollout::Rollout;
use canary_core::time::UnixMs;
use serde_json::Value;
use std::fmt::Write;
use std::path::PathBuf;

/// Writes the record; returns its path.
pub fn write(cfg: &OpsConfig, live: &Live, rollout: &Rollout) -> Result<PathBuf, RecordError> {
    let text = render(cfg, live, rollout)?;
    let dir = folder(&cfg.incidents.dir, &live.store().path(), "incidents");
    std::fs::create_dir_all(&dir).map_err(|source| RecordError::Folder { path: dir.clone(), source })?;
    let id = rollout.id;
    let day = fmt_ms(rollout.ended_ms.unwrap_or(UnixMs::EPOCH)).chars().take(10).collect::<String>();
    let path = dir.join(format!("{day}-rollback-rollout-{id}.md"));
    std::fs::write(&path, text).map_err(|source| RecordError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// The record's markdown.
pub fn render(cfg: &OpsConfig, live: &Live, r: &Rollout) -> Result<String, RecordError> {
    let id = r.id;
    let events = live.store().rollout_events(id)?;
    let mut md = String::new();
    let _ = writeln!(md, "# [Rollback] {} rollout {id}\n", cfg.rollout_name);
    let _ = writeln!(md, "- **Rolled back at:** {}", fmt_ms(r.ended_ms.unwrap_or(UnixMs::EPOCH)));
    let rolled_back = events.iter().rev().find(|e| e.kind == EventKind::RolledBack);
    let _ = writeln!(md, "- **Share at the time:** {}", share_at_failure(r, rolled_back.map(|e| &e.detail)));
    let _ = writeln!(md, "- **Canary:** {}  **Stable:** {}", r.canary, r.previous_stable);
    let _ = writeln!(md, "- **Cause:** {}\n", r.reason.as_deref().unwrap_or("unknown"));
    let detail = rolled_back.map_or(&Value::Null, |e| &e.detail);
    if detail["verdict"].is_object() {
        let _ = writeln!(md, "## The verdict that decided it\n\n{}", table_of(&detail["verdict"]));
    } else if detail["step_verdict"].is_object() {
        let _ = writeln!(
            md,
            "## The step's figures when it was rolled back\n\n{}",
            table_of(&detail["step_verdict"])
        );
    }
    let _ = writeln!(md, "## Timeline\n\n{}", timeline(&events));
    let overrides: Vec<_> = events
        .iter()
        .filter(|e| {
            e.detail["by_hand"].is_string()
                || matches!(
                    e.kind,
                    EventKind::WindowOverridden
                        | EventKind::Adjusted
                        | EventKind::Paused
                        | EventKind::Resumed
                )
        })
        .collect();
    let _ = writeln!(md, "## Overrides and manual actions\n");
    if overrides.is_empty() {
        let _ = writeln!(md, "None.\n");
    }
    for e in overrides {
        let why = e.detail["reason"].as_str().unwrap_or("");
        let share = e.detail["share"].as_f64().unwrap_or_default();
        let how = match (e.detail["by_hand"].as_str(), e.detail["forced"].as_bool()) {
            (Some(cmd), Some(true)) => {
                format!("by `canary {cmd}` to {share}%, forced past a failing verdict")
            }
            (Some(cmd), _) => format!("by `canary {cmd}` to {share}%"),
            _ => String::new(),
        };
        let _ = writeln!(md, "- {} {} {how}{why}", fmt_ms(e.at_ms), e.kind);
    }
    let _ = writeln!(md, "\n## Contacts\n");
    if cfg.contacts.is_empty() {
        let _ =
            writeln!(md, "No contacts configured (`[[contacts]]` in the config: role, person, priority).");
    } else {
        let _ = writeln!(md, "| priority | role | person | reach |\n|---|---|---|---|");
        let mut contacts = cfg.contacts.clone();
        contacts.sort_by_key(|c| c.priority);
        for c in contacts {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                c.priority,
                c.role,
                c.person,
                c.reach.as_deref().unwrap_or("")
            );
        }
    }
    Ok(md)
}

/// "50% (step 3 of 5)": the share in force when the failure was seen, from
/// the rollback's event (the rollout itself is at 0% by then).
fn share_at_failure(r: &Rollout, detail: Option<&Value>) -> String {
    let steps = r.plan.steps.len();
    let Some(d) = detail.filter(|d| d["at_share"].is_number()) else {
        // A record written before rollbacks kept their share: the step only.
        return format!("step {} of {steps}", r.step + 1);
    };
    let share = d["at_share"].as_f64().unwrap_or(0.0);
    match (d["at_step"].as_u64(), d["planned_share"].as_f64()) {
        (None, _) => format!("{share}% (after the promotion: the previous stable was restored)"),
        (Some(k), Some(p)) if p != share => {
            format!("{share}%, set by hand (the plan's step {k} of {steps} is {p}%)")
        }
        (Some(k), _) => format!("{share}% (step {k} of {steps})"),
    }
}
