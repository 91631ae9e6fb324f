//! One parsed command -> the function that runs it, and the few checks of a
//! command's arguments that clap cannot express.

use super::{AdminArgs, Command, health, monitor, rollout, serve, window};
use crate::demo;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// Runs `command`; returns its exit code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve::run(&args),
        Command::Deploy(args) => rollout::deploy(&args),
        Command::Adjust { percent, admin } => rollout::adjust(&percent, &admin),
        Command::Promote { full, admin } => rollout::simple("promote", json!({"full": full}), &admin),
        Command::Pause { reason, admin } => rollout::simple("pause", json!({"reason": reason}), &admin),
        Command::Resume { admin } => rollout::simple("resume", json!({}), &admin),
        Command::Rollback { reason, admin } => rollout::simple("rollback", json!({"reason": reason}), &admin),
        Command::Status { watch, json, admin } => rollout::status(&admin, watch, json),
        Command::History { json, admin } => rollout::history(&admin, json),
        Command::Flags { args, user, json, admin } => rollout::flags(&args, user.as_deref(), json, &admin),
        Command::Check { confirm, json, admin } => rollout::check(&confirm, json, &admin),
        Command::Report { rollout, json, admin } => rollout::report(rollout.as_deref(), json, &admin),
        Command::Demo { bad_canary } => demo::run::run(bad_canary),
        Command::Window { at, config, json } => window::run(at.as_deref(), config.as_deref(), json),
        Command::Health { url, json, timeout, retries } => health_cmd(&url, json, timeout, retries),
        Command::Monitor { args, interval, json, admin } => monitor_cmd(&args, interval, json, &admin),
        Command::DemoService(args) => demo::service::serve(&args),
    }
}

fn health_cmd(url: &str, json: bool, timeout: f64, retries: u32) -> ExitCode {
    if !(timeout > 0.0 && timeout < 3600.0) {
        eprintln!("canary health: --timeout {timeout}: give seconds above 0");
        return ExitCode::from(2);
    }
    health::run(url, json, Duration::from_secs_f64(timeout), retries)
}

fn monitor_cmd(args: &[String], interval: f64, json: bool, admin: &AdminArgs) -> ExitCode {
    let (target, minutes) = match args {
        [minutes] => (
            monitor::Target {
                url: format!("{}/api/v2/metrics?window=1m", admin.admin.trim_end_matches('/')),
                pointer: "/versions/canary".into(),
            },
            minutes,
        ),
        [url, minutes] => (
            monitor::Target {
                url: format!("{}/api/v2/metrics", url.trim_end_matches('/')),
                pointer: String::new(),
            },
            minutes,
        ),
        _ => return ExitCode::from(2),
    };
    let Ok(minutes) = minutes.parse::<f64>() else {
        eprintln!("canary monitor: minutes `{minutes}` is not a number (e.g. 10 or 0.5)");
        return ExitCode::from(2);
    };
    if !(interval > 0.0 && interval <= 3600.0) {
        eprintln!("canary monitor: --interval {interval}: give seconds above 0");
        return ExitCode::from(2);
    }
    monitor::run(&target, minutes, Duration::from_secs_f64(interval), json)
}
