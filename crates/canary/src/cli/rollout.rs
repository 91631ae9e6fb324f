//! The rollout commands (`deploy`, `adjust`, `promote`, `pause`, `resume`,
//! `rollback`, `status`, `history`): check the input locally, call the admin
//! API, print the outcome.
//!
//! Exit codes: 0 done; 1 the admin API could not be reached or failed;
//! 2 bad input (nothing was sent or nothing changed); 3 refused in the current
//! state (e.g. `promote` with nothing to promote); 4 unauthorized.

use super::client::Admin;
use super::{AdminArgs, DeployArgs};
use crate::controller::api::{DeployRequest, Status};
use crate::upstream::Upstream;
use canary_core::Share;
use canary_core::judge::{Outcome, Verdict};
use http::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

fn admin(a: &AdminArgs) -> Admin {
    Admin { url: a.admin.clone(), token: a.token.clone() }
}

fn usage(cmd: &str, msg: &str) -> ExitCode {
    eprintln!("canary {cmd}: {msg}");
    ExitCode::from(2)
}

/// `canary deploy`
pub fn deploy(a: &DeployArgs) -> ExitCode {
    let share = match a.percent.parse::<Share>() {
        Ok(s) if s > Share::ZERO => s,
        Ok(_) => return usage("deploy", "the first share must be above 0"),
        Err(e) => return usage("deploy", &format!("percent: {e}")),
    };
    if let Err(e) = Upstream::parse(&a.canary_url) {
        return usage("deploy", &format!("canary URL: {e}"));
    }
    let req = DeployRequest {
        share: share.percent(),
        canary: a.canary_url.clone(),
        steps: a.steps.clone(),
        bake: a.bake.clone(),
        final_watch: a.final_watch.clone(),
        manual: a.manual,
        force: a.force,
        reason: a.reason.clone(),
        confirm: a.confirm.clone(),
    };
    act(&a.admin, "deploy", "/api/rollout/deploy", json!(req))
}

/// `canary adjust`
pub fn adjust(percent: &str, a: &AdminArgs) -> ExitCode {
    match percent.parse::<Share>() {
        Ok(s) => act(a, "adjust", "/api/rollout/adjust", json!({"share": s.percent()})),
        Err(e) => usage("adjust", &format!("percent: {e}")),
    }
}

/// `canary promote`, `pause`, `resume`, `rollback`.
pub fn simple(cmd: &str, body: Value, a: &AdminArgs) -> ExitCode {
    act(a, cmd, &format!("/api/rollout/{cmd}"), body)
}

fn act(a: &AdminArgs, cmd: &str, path: &str, body: Value) -> ExitCode {
    match admin(a).call(Method::POST, path, Some(body)) {
        Ok((200, v)) => {
            print_status(&v);
            ExitCode::SUCCESS
        }
        Ok((status, v)) => refused(cmd, status, &v),
        Err(e) => {
            eprintln!("canary {cmd}: {e}");
            ExitCode::from(1)
        }
    }
}

fn refused(cmd: &str, status: u16, v: &Value) -> ExitCode {
    let msg = v.get("message").and_then(Value::as_str).map_or_else(|| v.to_string(), str::to_string);
    eprintln!("canary {cmd}: refused ({status}): {msg}");
    ExitCode::from(match status {
        400 | 422 => 2,
        409 => 3,
        401 | 403 => 4,
        _ => 1,
    })
}

/// `canary status`
pub fn status(a: &AdminArgs, watch: bool, as_json: bool) -> ExitCode {
    loop {
        let v = match admin(a).call(Method::GET, "/api/rollout", None) {
            Ok((200, v)) => v,
            Ok((s, v)) => return refused("status", s, &v),
            Err(e) => {
                eprintln!("canary status: {e}");
                return ExitCode::from(1);
            }
        };
        if as_json {
            crate::say!("{v}");
        } else {
            if watch {
                print!("\x1b[2J\x1b[H");
            }
            print_status(&v);
        }
        let active = matches!(v["state"].as_str(), Some("progressing" | "holding" | "paused"));
        if !watch || !active {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// `canary history`
pub fn history(a: &AdminArgs, as_json: bool) -> ExitCode {
    let v = match admin(a).call(Method::GET, "/api/rollouts", None) {
        Ok((200, v)) => v,
        Ok((s, v)) => return refused("history", s, &v),
        Err(e) => {
            eprintln!("canary history: {e}");
            return ExitCode::from(1);
        }
    };
    if as_json {
        crate::say!("{v}");
        return ExitCode::SUCCESS;
    }
    crate::say!("{:<4} {:<12} {:<40} {:<8} reason", "id", "state", "canary", "share");
    for r in v["rollouts"].as_array().into_iter().flatten() {
        crate::say!(
            "{:<4} {:<12} {:<40} {:<8} {}",
            r["id"],
            r["state"].as_str().unwrap_or("?"),
            r["canary"].as_str().unwrap_or("?"),
            format!("{}%", r["share"]),
            r["reason"].as_str().unwrap_or("")
        );
    }
    ExitCode::SUCCESS
}

fn print_status(v: &Value) {
    let Ok(s) = serde_json::from_value::<Status>(v.clone()) else {
        crate::say!("{v}");
        return;
    };
    crate::say!(
        "state: {}   share: {}%   stable: {}   canary: {}",
        s.state,
        s.share,
        s.stable,
        s.canary.as_deref().unwrap_or("-")
    );
    if let Some(e) = &s.error {
        crate::say!("PROBLEM: {e}");
    }
    let Some(r) = s.rollout else { return };
    let plan: Vec<String> = r.plan.iter().map(|p| format!("{p}")).collect();
    crate::say!(
        "rollout {}: step {}/{} (plan {}), {} left",
        r.id,
        r.step,
        r.steps,
        plan.join(" -> "),
        mmss(r.time_left_seconds)
    );
    if let Some(why) = &r.reason {
        crate::say!("why: {why}");
    }
    if let Some(v) = &r.verdict {
        print_verdict("step verdict", v);
    }
    if let Some(v) = &r.rollback_check {
        print_verdict("rollback check (recent requests)", v);
    }
}

fn print_verdict(title: &str, v: &Verdict) {
    crate::say!("{title}: {}", word(v.outcome));
    crate::say!("  {:<24} {:>10} {:>10}  {:<13} how", "criterion", "value", "threshold", "result");
    for c in &v.criteria {
        let value = c.value.map_or("-".to_string(), |x| format!("{x:.2}"));
        crate::say!(
            "  {:<24} {:>10} {:>10.2}  {:<13} {}",
            c.name,
            value,
            c.threshold,
            word(c.outcome),
            c.note
        );
    }
}

fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Inconclusive => "inconclusive",
        Outcome::NotReported => "not reported",
    }
}

fn mmss(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}m{:02}s", s / 60, s % 60)
}

/// `canary report [ROLLOUT] [--json]`
pub fn report(rollout: Option<&str>, as_json: bool, a: &AdminArgs) -> ExitCode {
    let id = rollout.unwrap_or("latest");
    let path = format!("/api/rollouts/{id}/report{}", if as_json { "?format=json" } else { "" });
    match admin(a).call(Method::GET, &path, None) {
        Ok((200, Value::String(md))) => {
            crate::say!("{md}");
            ExitCode::SUCCESS
        }
        Ok((200, v)) => {
            crate::say!("{v}");
            ExitCode::SUCCESS
        }
        Ok((404, _)) => {
            eprintln!("canary report: no rollout `{id}` (see `canary history`)");
            ExitCode::from(2)
        }
        Ok((s, v)) => refused("report", s, &v),
        Err(e) => {
            eprintln!("canary report: {e}");
            ExitCode::from(1)
        }
    }
}

/// `canary check [--confirm NAME]... [--json]`: runs the configured checklist on the server.
pub fn check(confirm: &[String], as_json: bool, a: &AdminArgs) -> ExitCode {
    let (status, v) =
        match admin(a).call(Method::POST, "/api/checklist/run", Some(json!({"confirm": confirm}))) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("canary check: {e}");
                return ExitCode::from(1);
            }
        };
    if status != 200 {
        return refused("check", status, &v);
    }
    if as_json {
        crate::say!("{v}");
    } else {
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
    ExitCode::from(if v["passed"].as_bool() == Some(true) { 0 } else { 1 })
}

/// `canary flags [set NAME VALUE | unset NAME] [--user ID] [--json]`
pub fn flags(args: &[String], user: Option<&str>, as_json: bool, a: &AdminArgs) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let call = match words.as_slice() {
        [] => match user {
            Some(u) => admin(a).call(Method::GET, &format!("/api/flags?user={}", encode(u)), None),
            None => admin(a).call(Method::GET, "/api/flags", None),
        },
        ["set", name, value] => {
            if let Err(e) = canary_core::flags::parse_value(value) {
                return usage("flags", &format!("value `{value}`: {e}"));
            }
            admin(a).call(Method::PUT, &format!("/api/flags/{}", encode(name)), Some(json!({"value": value})))
        }
        ["unset", name] => admin(a).call(Method::DELETE, &format!("/api/flags/{}", encode(name)), None),
        _ => return usage("flags", "expected nothing, `set NAME on|off|25%`, or `unset NAME`"),
    };
    let v = match call {
        Ok((200, v)) => v,
        Ok((s, v)) => return refused("flags", s, &v),
        Err(e) => {
            eprintln!("canary flags: {e}");
            return ExitCode::from(1);
        }
    };
    if as_json {
        crate::say!("{v}");
    } else if let Some(map) = v["flags"].as_object() {
        for (k, on) in map {
            crate::say!("{k:<32} {}", if on.as_bool() == Some(true) { "on" } else { "off" });
        }
    } else {
        for f in v["flags"].as_array().into_iter().flatten() {
            let pct = f["percentage"].as_f64().and_then(|p| canary_core::Share::from_percent(p).ok());
            let state = if f["enabled"].as_bool() == Some(true) {
                format!("on for {}", pct.map_or("?".into(), |s| s.to_string()))
            } else {
                "off".into()
            };
            crate::say!(
                "{:<32} {:<14} from {}",
                f["name"].as_str().unwrap_or(""),
                state,
                f["source"].as_str().unwrap_or("")
            );
        }
    }
    ExitCode::SUCCESS
}

/// Percent-encodes what is not safe in a URL path or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
