//! `canary window [--at TIME]`: may a deploy start at that time (default now),
//! and why, by the config's `[windows]` policy or, without one, the seed's rules.
//! Exit 0 allowed, 1 refused, 2 a TIME or config it cannot read.

use super::exit::{Exit, fail};
use crate::config;
use crate::windows::parse_at;
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
    let (answer, local) = windows.check(t);
    let next = if answer.allowed() { None } else { windows.next_allowed(t) };
    if as_json {
        let next = next.as_ref().map(|(z, rule)| json!({"at": z.to_string(), "rule": rule}));
        let rule = match &answer {
            canary_core::calendar::Answer::Allowed(r) | canary_core::calendar::Answer::Refused(r) => {
                r.clone()
            }
        };
        crate::say!(
            "{}",
            json!({"allowed": answer.allowed(), "at": local.to_string(), "timezone": windows.tz_name, "rule": rule, "next_allowed": next, "enforced": windows.enabled})
        );
    } else {
        crate::say!("{local}: {answer}");
        if let Some((z, rule)) = next {
            crate::say!("next allowed: {z} ({rule})");
        }
        if !windows.enabled {
            crate::say!("(not enforced on deploy: set `[windows] enabled = true` in the config to enforce)");
        }
    }
    Exit::answer(answer.allowed())
}
