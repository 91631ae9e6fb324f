//! The incident record after a rollback (S7): when, why (the failing criteria
//! with values and thresholds), the timeline of shares and verdicts, who forced
//! what, and whom to call (S20). Markdown, in the incidents folder.

use super::config::{OpsConfig, folder};
use super::report::{fmt_ms, table_of, timeline};
use crate::live::Live;
use serde_json::Value;
use std::fmt::Write;
use std::path::PathBuf;

/// Writes the record; returns its path.
pub fn write(cfg: &OpsConfig, live: &Live, rollout: &Value) -> Result<PathBuf, String> {
    let text = render(cfg, live, rollout)?;
    let dir = folder(&cfg.incidents.dir, &live.store().path(), "incidents");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let id = rollout["id"].as_i64().unwrap_or(0);
    let day = fmt_ms(rollout["ended_ms"].as_u64().unwrap_or(0)).chars().take(10).collect::<String>();
    let path = dir.join(format!("{day}-rollback-rollout-{id}.md"));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The record's markdown.
pub fn render(cfg: &OpsConfig, live: &Live, r: &Value) -> Result<String, String> {
    let id = r["id"].as_i64().unwrap_or(0);
    let events = live.store().rollout_events(id).map_err(|e| e.to_string())?;
    let mut md = String::new();
    let _ = writeln!(md, "# [Rollback] {} rollout {id}\n", cfg.rollout_name);
    let _ = writeln!(md, "- **Rolled back at:** {}", fmt_ms(r["ended_ms"].as_u64().unwrap_or(0)));
    let _ = writeln!(
        md,
        "- **Share at the time:** step {} of {}",
        r["step"].as_u64().unwrap_or(0) + 1,
        r["plan"]["steps"].as_array().map_or(0, Vec::len)
    );
    let _ = writeln!(
        md,
        "- **Canary:** {}  **Stable:** {}",
        r["canary"].as_str().unwrap_or("?"),
        r["previous_stable"].as_str().unwrap_or("?")
    );
    let _ = writeln!(md, "- **Cause:** {}\n", r["reason"].as_str().unwrap_or("unknown"));
    let failing = events
        .iter()
        .rev()
        .find(|e| e.kind == "rolled_back")
        .map(|e| e.detail["verdict"].clone())
        .unwrap_or(Value::Null);
    if failing.is_object() {
        let _ = writeln!(md, "## The verdict that decided it\n\n{}", table_of(&failing));
    }
    let _ = writeln!(md, "## Timeline\n\n{}", timeline(&events));
    let overrides: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "window_overridden" | "adjusted" | "paused" | "resumed"))
        .collect();
    let _ = writeln!(md, "## Overrides and manual actions\n");
    if overrides.is_empty() {
        let _ = writeln!(md, "None.\n");
    }
    for e in overrides {
        let why = e.detail["reason"].as_str().unwrap_or("");
        let _ = writeln!(md, "- {} {} {why}", fmt_ms(e.at_ms as u64), e.kind);
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
