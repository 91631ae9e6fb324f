//! `canary status` and `canary history`: where the rollout stands (state,
//! share, step, time left, the verdict tables) and past rollouts.

use super::AdminArgs;
use super::client::{Admin, answered};
use crate::controller::api::Status;
use crate::exit::Exit;
use canary_core::judge::{Outcome, Verdict};
use canary_core::rollout::State;
use http::Method;
use serde_json::Value;

/// `canary status [--watch] [--json]`
pub fn status(a: &AdminArgs, watch: bool, as_json: bool) -> Exit {
    loop {
        let v = match answered("status", Admin::from(a).call(Method::GET, "/api/rollout", None)) {
            Ok(v) => v,
            Err(exit) => return exit,
        };
        if as_json {
            crate::say!("{v}");
        } else {
            if watch {
                print!("\x1b[2J\x1b[H");
            }
            print_status(&v);
        }
        let active = v["state"].as_str().and_then(State::parse).is_some_and(State::is_active);
        if !watch || !active {
            return Exit::Done;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// `canary history [--json]`
pub fn history(a: &AdminArgs, as_json: bool) -> Exit {
    let v = match answered("history", Admin::from(a).call(Method::GET, "/api/rollouts", None)) {
        Ok(v) => v,
        Err(exit) => return exit,
    };
    if as_json {
        crate::say!("{v}");
        return Exit::Done;
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
    Exit::Done
}

/// Prints a `GET /api/rollout` answer for a person (as is when it is not one).
pub fn print_status(v: &Value) {
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
    if let Some(c) = &s.cluster {
        print_cluster(c);
    }
    let Some(r) = s.rollout else { return };
    let plan: Vec<String> = r.plan.iter().map(|p| format!("{p}")).collect();
    if r.shadowing {
        // No user meets the canary yet: `canary diff` shows what the copies found.
        crate::say!(
            "rollout {}: shadow step before step 1 (plan {}), {} left; `canary diff` for the comparisons",
            r.id,
            plan.join(" -> "),
            mmss(r.time_left_seconds)
        );
    } else {
        crate::say!(
            "rollout {}: step {}/{} (plan {}), {} left",
            r.id,
            r.step,
            r.steps,
            plan.join(" -> "),
            mmss(r.time_left_seconds)
        );
    }
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

/// One line per replica, the leader marked: `replica b (127.0.0.1:9091) leader, seen 120 ms ago`.
fn print_cluster(c: &Value) {
    let leader = c["leader"].as_str();
    // Without etcd this replica cannot know who leads: "none" would read as
    // an election that ends on its own.
    let nobody = match c["etcd_error"].is_string() {
        true => "unknown (this replica cannot reach etcd; it does not lead)",
        false => "none (election under way)",
    };
    crate::say!(
        "cluster: answered by {}, leader {}",
        c["node"].as_str().unwrap_or("?"),
        leader.unwrap_or(nobody)
    );
    if let Some(why) = c["declines_to_lead"].as_str() {
        crate::say!("  this replica declines to lead: {why}");
    }
    let replicas = c["replicas"].as_array().map_or(&[][..], Vec::as_slice);
    // Releases are named only while the fleet mixes them (an upgrade under way).
    let mixed = replicas.iter().any(|r| r["release"] != replicas[0]["release"]);
    for r in replicas {
        let id = r["id"].as_str().unwrap_or("?");
        let seen = r["last_seen_ms"]
            .as_u64()
            .map_or("not yet heard from".to_string(), |ms| format!("seen {ms} ms ago"));
        let mark = if Some(id) == leader { " leader," } else { "" };
        let stuck = c["unanswered"].as_array().into_iter().flatten().find(|u| u["id"] == id);
        let stuck = stuck.and_then(|u| u["since_ms"].as_u64()).map_or(String::new(), |ms| {
            format!("; no totals from it for {ms} ms: its traffic is not judged until they come")
        });
        let release = match (mixed, r["release"].as_str()) {
            (false, _) => String::new(),
            (true, Some(rel)) => format!(" canary {rel},"),
            (true, None) => " an older canary (wire 1),".to_string(),
        };
        crate::say!("  replica {id} ({}){mark}{release} {seen}{stuck}", r["admin"].as_str().unwrap_or("?"));
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
