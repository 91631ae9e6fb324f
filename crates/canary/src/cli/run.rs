//! One parsed command -> the function that runs it. Every command returns an
//! [`Exit`]; `main` turns it into the process's exit status.

use super::{
    Command, diff, flags, health, logs, monitor, packaging, records, rollout, serve, status, window,
};
use crate::demo;
use crate::exit::Exit;
use serde_json::json;

/// Runs `command`; returns how it ended.
pub fn run(command: Command) -> Exit {
    match command {
        Command::Serve(args) => serve::run(&args),
        Command::Deploy(args) => rollout::deploy(&args),
        Command::Adjust { percent, force, admin } => rollout::adjust(&percent, force, &admin),
        Command::Promote { full, admin } => rollout::simple("promote", json!({"full": full}), &admin),
        Command::Pause { reason, admin } => rollout::simple("pause", json!({"reason": reason}), &admin),
        Command::Resume { admin } => rollout::simple("resume", json!({}), &admin),
        Command::Rollback { reason, admin } => rollout::simple("rollback", json!({"reason": reason}), &admin),
        Command::Status { watch, json, admin } => status::status(&admin, watch, json),
        Command::History { json, admin } => status::history(&admin, json),
        Command::Flags { args, user, json, admin } => flags::flags(&args, user.as_deref(), json, &admin),
        Command::Check { confirm, json, admin } => records::check(&confirm, json, &admin),
        Command::Report { json, summary: true, last, admin, .. } => records::summary(last, json, &admin),
        Command::Report { rollout, json, admin, .. } => records::report(rollout.as_deref(), json, &admin),
        Command::Demo { bad_canary } => demo::run::run(bad_canary),
        Command::Window { at, config, json } => window::run(at.as_deref(), config.as_deref(), json),
        Command::Health { url, json, timeout, retries, ca_file } => {
            health::run(&url, json, timeout, retries, ca_file.as_deref())
        }
        Command::Monitor(args) => monitor::command(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::DemoService(args) => demo::service::serve(&args),
        Command::Completions { shell } => packaging::completions(shell),
        Command::Man { command } => packaging::man(command.as_deref()),
    }
}
