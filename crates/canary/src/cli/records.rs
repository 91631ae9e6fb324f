//! `canary report` (a rollout's deployment report) and `canary check` (the
//! pre-deploy checklist, run on the server).

use super::AdminArgs;
use super::client::{Admin, answered};
use crate::exit::{Exit, fail};
use http::Method;
use serde_json::{Value, json};

/// `canary report [ROLLOUT] [--json]`
pub fn report(rollout: Option<&str>, as_json: bool, a: &AdminArgs) -> Exit {
    let id = rollout.unwrap_or("latest");
    let path = format!("/api/rollouts/{id}/report{}", if as_json { "?format=json" } else { "" });
    match Admin::from(a).call(Method::GET, &path, None) {
        Ok((404, _)) => fail(Exit::BadInput, "report", format!("no rollout `{id}` (see `canary history`)")),
        call => match answered("report", call) {
            Ok(Value::String(md)) => {
                crate::say!("{md}");
                Exit::Done
            }
            Ok(v) => {
                crate::say!("{v}");
                Exit::Done
            }
            Err(exit) => exit,
        },
    }
}

/// `canary report --summary [--last N] [--json]`: success indicators across rollouts.
pub fn summary(last: usize, as_json: bool, a: &AdminArgs) -> Exit {
    let path = format!("/api/rollouts/summary?last={last}{}", if as_json { "" } else { "&format=text" });
    match answered("report", Admin::from(a).call(Method::GET, &path, None)) {
        Ok(Value::String(text)) => {
            crate::say!("{}", text.trim_end());
            Exit::Done
        }
        Ok(v) => {
            crate::say!("{v}");
            Exit::Done
        }
        Err(exit) => exit,
    }
}

/// `canary check [--confirm NAME]... [--json]`: runs the configured checklist on the server.
pub fn check(confirm: &[String], as_json: bool, a: &AdminArgs) -> Exit {
    let call = Admin::from(a).call(Method::POST, "/api/checklist/run", Some(json!({"confirm": confirm})));
    let v = match answered("check", call) {
        Ok(v) => v,
        Err(exit) => return exit,
    };
    if as_json {
        crate::say!("{v}");
    } else {
        print_items(&v);
    }
    let passed = v["passed"].as_bool() == Some(true);
    if !passed {
        // The table says which; stderr says why the exit is not 0.
        eprintln!("canary check: not every item passed");
    }
    Exit::answer(passed)
}

fn print_items(v: &Value) {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        crate::say!("no checklist configured (`[[checklist]]` in the config)");
    }
    for i in &items {
        let mark = if i["passed"].as_bool() == Some(true) { "[x]" } else { "[ ]" };
        crate::say!(
            "{mark} {:<40} {:>6.1}s  {}",
            i["name"].as_str().unwrap_or(""),
            i["seconds"].as_f64().unwrap_or(0.0),
            i["detail"].as_str().unwrap_or("")
        );
    }
}
