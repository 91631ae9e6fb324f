//! The rollout commands that act (`deploy`, `adjust`, `promote`, `pause`,
//! `resume`, `rollback`): check the input locally, call the admin API, print
//! the state it answers with.
//!
//! Exits: done; failed (the admin API could not be reached or failed); bad
//! input (nothing was sent or nothing changed); refused in the current state
//! (e.g. `promote` with nothing to promote); unauthorized.

use super::client::{Admin, answered};
use super::status::print_status;
use super::{AdminArgs, DeployArgs};
use crate::controller::api::DeployRequest;
use crate::exit::{Exit, fail};
use canary_core::Share;
use canary_core::plan::{Plan, parse_duration_ms};
use canary_core::upstream::Upstream;
use http::Method;
use serde_json::{Value, json};

/// `canary deploy`
pub fn deploy(a: &DeployArgs) -> Exit {
    let share = match a.percent.parse::<Share>() {
        Ok(s) if s > Share::ZERO => s,
        Ok(_) => return fail(Exit::BadInput, "deploy", "the first share must be above 0"),
        Err(e) => return fail(Exit::BadInput, "deploy", format!("percent: {e}")),
    };
    if let Err(e) = Upstream::parse(&a.canary_url) {
        return fail(Exit::BadInput, "deploy", format!("canary URL: {e}"));
    }
    if let Err(e) = check_plan(a) {
        return fail(Exit::BadInput, "deploy", e);
    }
    let req = DeployRequest {
        share: share.percent(),
        canary: a.canary_url.clone(),
        steps: a.steps.clone(),
        bake: a.bake.clone(),
        final_watch: a.final_watch.clone(),
        manual: a.manual,
        shadow: a.shadow.clone(),
        force: a.force,
        reason: a.reason.clone(),
        confirm: a.confirm.clone(),
    };
    act(&a.admin, "deploy", "/api/rollout/deploy", json!(req))
}

/// The plan's flags, checked here so that a typo is named with its flag and
/// nothing is sent (the server checks them again, for other clients).
fn check_plan(a: &DeployArgs) -> Result<(), String> {
    if let Some(s) = &a.steps {
        Plan::parse_steps(s).map_err(|e| format!("--steps {s}: {e}; e.g. --steps 10,25,50,75,100"))?;
    }
    for (flag, value) in [("--bake", &a.bake), ("--final-watch", &a.final_watch), ("--shadow", &a.shadow)] {
        if let Some(v) = value {
            parse_duration_ms(v).map_err(|e| format!("{flag} {v}: {e}"))?;
        }
    }
    Ok(())
}

/// `canary adjust PERCENT [--force]`
pub fn adjust(percent: &str, force: bool, a: &AdminArgs) -> Exit {
    let share = match percent.parse::<Share>() {
        Ok(s) => s,
        Err(e) => return fail(Exit::BadInput, "adjust", format!("percent: {e}")),
    };
    let mut body = json!({"share": share.percent()});
    // Only when asked for: a plain adjust keeps the body every server takes.
    if force {
        body["force"] = json!(true);
    }
    act(a, "adjust", "/api/rollout/adjust", body)
}

/// `canary promote`, `pause`, `resume`, `rollback`.
pub fn simple(cmd: &str, body: Value, a: &AdminArgs) -> Exit {
    act(a, cmd, &format!("/api/rollout/{cmd}"), body)
}

fn act(a: &AdminArgs, cmd: &str, path: &str, body: Value) -> Exit {
    match answered(cmd, Admin::from(a).call(Method::POST, path, Some(body))) {
        Ok(v) => {
            print_status(&v);
            Exit::Done
        }
        Err(exit) => exit,
    }
}
