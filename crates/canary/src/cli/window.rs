//! `canary window [--at TIME]`: may a deploy start at that time (default now),
//! and why, by the config's `[windows]` policy or, without one, the seed's rules
//! (with South Korea's public holidays in Asia/Seoul, named when they refuse).
//! Exit 0 allowed, 1 refused, 2 a TIME or config it cannot read.

use crate::config;
use crate::exit::{Exit, fail};
use crate::windows::{Judgement, Windows, parse_at};
use canary_core::calendar::Answer;
use serde_json::json;
use std::path::Path;

/// Runs the command.
pub fn run(at: Option<&str>, config_file: Option<&Path>, as_json: bool) -> Exit {
    let windows = match config::load_windows(config_file) {
        Ok(w) => w,
        Err(e) => return fail(Exit::BadInput, "window", e),
    };
    let t = match at.map(parse_at).transpose() {
        Ok(t) => t.unwrap_or_else(jiff::Timestamp::now),
        Err(e) => return fail(Exit::BadInput, "window", format!("--at {e}")),
    };
    let j = windows.judge(t);
    if as_json {
        crate::say!("{}", as_json_value(&windows, &j));
    } else {
        crate::say!("{}: {}", j.local, j.answer);
        if let Some((z, rule)) = &j.next {
            crate::say!("next allowed: {z} ({rule})");
        }
        if let Some(note) = &j.note {
            crate::say!("note: {note}");
        }
        if !windows.enabled {
            crate::say!("(not enforced on deploy: set `[windows] enabled = true` in the config to enforce)");
        }
    }
    Exit::answer(j.answer.allowed())
}

/// The `--json` answer: the fields scripts already read, then the day's
/// holiday (`{"date", "name"}`, the name null for a day the config lists), the
/// built-in table in use and the note on its years.
fn as_json_value(windows: &Windows, j: &Judgement) -> serde_json::Value {
    let next = j.next.as_ref().map(|(z, rule)| json!({"at": z.to_string(), "rule": rule}));
    let (Answer::Allowed(rule) | Answer::Refused(rule)) = &j.answer;
    let holiday = j.holiday.map(|h| {
        let (y, m, d) = h.date;
        json!({"date": format!("{y:04}-{m:02}-{d:02}"), "name": h.name})
    });
    json!({
        "allowed": j.answer.allowed(),
        "at": j.local.to_string(),
        "timezone": windows.tz_name,
        "rule": rule,
        "next_allowed": next,
        "enforced": windows.enabled,
        "holiday": holiday,
        "builtin_holidays": windows.calendar.builtin.as_str(),
        "note": j.note,
    })
}
