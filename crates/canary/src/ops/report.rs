//! The deployment report (S18): each step with its duration and both
//! versions' figures, the verdicts, incidents, overrides; markdown or JSON.
//! Written when a rollout ends, and on demand by `canary report`.

use super::config::{OpsConfig, folder};
use super::error::RecordError;
use crate::live::Live;
use crate::store::{Event, RolloutRecord};
use canary_core::event::EventKind;
use canary_core::rollout::Rollout;
use canary_core::time::UnixMs;
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::PathBuf;

/// An instant as RFC 3339 UTC, to the second.
pub fn fmt_ms(at: UnixMs) -> String {
    at.to_timestamp().map_or_else(
        || at.to_string(),
        |t| t.round(jiff::Unit::Second).map_or_else(|_| t.to_string(), |t| t.to_string()),
    )
}

/// The report as JSON: the rollout, its steps, its events.
pub fn json(live: &Live, id: i64) -> Result<Option<Value>, RecordError> {
    let Some((r, events)) = read(live, id)? else { return Ok(None) };
    Ok(Some(json!({"rollout": r, "steps": steps(&r, &events), "events": events})))
}

/// Rollout `id` and its events; an error when its record cannot be read.
fn read(live: &Live, id: i64) -> Result<Option<(Rollout, Vec<Event>)>, RecordError> {
    let r = match live.store().rollout(id)? {
        None => return Ok(None),
        Some(RolloutRecord::Read(r)) => *r,
        Some(RolloutRecord::Unreadable { problem, .. }) => {
            return Err(RecordError::Unreadable { id, problem });
        }
    };
    let events = live.store().rollout_events(id)?;
    Ok(Some((r, events)))
}

/// One entry per step reached: share, start, duration, and the verdict that ended it.
fn steps(r: &Rollout, events: &[Event]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = r.started_ms;
    let mut share = r.plan.steps.first().map_or(Value::Null, |s| json!(s));
    let ends = [EventKind::StepAdvanced, EventKind::SteppedBack, EventKind::Promoted, EventKind::RolledBack];
    for e in events.iter().filter(|e| ends.contains(&e.kind)) {
        let end = e.at_ms;
        // A rollback by hand has no deciding verdict: the step's own figures then.
        let verdict =
            if e.detail["verdict"].is_object() { &e.detail["verdict"] } else { &e.detail["step_verdict"] };
        let by = e.detail["by_hand"].as_str().map(|c| format!("canary {c}"));
        out.push(json!({"share": share, "started": fmt_ms(start), "duration_seconds": (end - start) as f64 / 1000.0, "ended_by": e.kind, "by_hand": by, "verdict": verdict}));
        start = end;
        share = e.detail["share"].clone();
    }
    if r.ended_ms.is_none() {
        out.push(json!({"share": share, "started": fmt_ms(start), "duration_seconds": null, "ended_by": null, "verdict": r.step_verdict}));
    }
    out
}

/// The report as markdown.
pub fn markdown(live: &Live, id: i64) -> Result<Option<String>, RecordError> {
    let Some((r, events)) = read(live, id)? else { return Ok(None) };
    let steps = steps(&r, &events);
    let mut md = String::new();
    let _ = writeln!(md, "# Deployment report: rollout {id}\n");
    let _ = writeln!(md, "- **Outcome:** {}", r.state);
    let _ = writeln!(md, "- **Canary:** {}  **Stable before:** {}", r.canary, r.previous_stable);
    let _ = writeln!(
        md,
        "- **Started:** {}  **Ended:** {}",
        fmt_ms(r.started_ms),
        r.ended_ms.map_or("still running".into(), fmt_ms)
    );
    if let Some(why) = &r.reason {
        let _ = writeln!(md, "- **Why:** {why}");
    }
    let _ = writeln!(md, "\n## Steps\n");
    let _ = writeln!(
        md,
        "| share | started | duration | ended by | canary req | canary err % | canary p95 ms | stable req | stable err % | stable p95 ms |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for s in &steps {
        let arm = |v: &str, f: &str| {
            s["verdict"]["versions"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["version"] == v))
                .map_or("-".to_string(), |x| num(&x[f]))
        };
        let _ = writeln!(
            md,
            "| {}% | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(&s["share"]),
            s["started"].as_str().unwrap_or(""),
            s["duration_seconds"].as_f64().map_or("-".into(), |d| format!("{d:.0}s")),
            match (s["ended_by"].as_str(), s["by_hand"].as_str()) {
                (Some(k), Some(by)) => format!("{k} ({by})"),
                (k, _) => k.unwrap_or("-").to_string(),
            },
            arm("canary", "requests"),
            arm("canary", "error_rate"),
            arm("canary", "p95_ms"),
            arm("stable", "requests"),
            arm("stable", "error_rate"),
            arm("stable", "p95_ms"),
        );
    }
    for s in steps.iter().filter(|s| s["verdict"].is_object()) {
        let _ = writeln!(
            md,
            "\n### Verdict at {}% ({})\n\n{}",
            num(&s["share"]),
            s["verdict"]["outcome"].as_str().unwrap_or("?"),
            table_of(&s["verdict"])
        );
    }
    let _ = writeln!(md, "\n## Timeline\n\n{}", timeline(&events));
    Ok(Some(md))
}

fn num(v: &Value) -> String {
    v.as_f64()
        .map_or("-".to_string(), |x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}") })
}

/// A verdict as a markdown table.
pub fn table_of(v: &Value) -> String {
    let mut t = String::from("| criterion | value | threshold | result | how |\n|---|---|---|---|---|\n");
    for c in v["criteria"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} |",
            c["name"].as_str().unwrap_or(""),
            num(&c["value"]),
            num(&c["threshold"]),
            c["outcome"].as_str().unwrap_or(""),
            c["note"].as_str().unwrap_or("")
        );
    }
    t
}

/// Events as a markdown table.
pub fn timeline(events: &[Event]) -> String {
    let mut t = String::from("| time | event | share | by |\n|---|---|---|---|\n");
    for e in events {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            fmt_ms(e.at_ms),
            e.kind,
            e.detail["share"].as_f64().map_or("".into(), |s| format!("{s}%")),
            e.source
        );
    }
    t
}

/// Writes the markdown report when a rollout ends; returns its path.
pub fn write(cfg: &OpsConfig, live: &Live, rollout: &Rollout) -> Result<PathBuf, RecordError> {
    let id = rollout.id;
    let md = markdown(live, id)?.ok_or(RecordError::Missing(id))?;
    let dir = folder(&cfg.reports_dir, &live.store().path(), "reports");
    std::fs::create_dir_all(&dir).map_err(|source| RecordError::Folder { path: dir.clone(), source })?;
    let path = dir.join(format!("rollout-{id}.md"));
    std::fs::write(&path, md).map_err(|source| RecordError::Write { path: path.clone(), source })?;
    Ok(path)
}
