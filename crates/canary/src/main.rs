//! The `canary` binary: raw arguments -> validated config -> run -> exit code.
//! Exit codes: 0 success, 1 a runtime failure, 2 bad input (flags or config),
//! 3 refused in the current state, 4 unauthorized (see `rollout_cli`).

use canary::cli::AdminArgs;
use canary::cli::{Cli, Command, ServeArgs};
use canary::{config, demo, health_cli, monitor_cli, rollout_cli, server, window_cli};
use clap::Parser;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

// The proxy allocates a few small objects per request (header maps, futures);
// the profile showed the system allocator at about 8% of instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; its logs would only interleave.
    init_logging(if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" });
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Deploy(args) => rollout_cli::deploy(&args),
        Command::Adjust { percent, admin } => rollout_cli::adjust(&percent, &admin),
        Command::Promote { full, admin } => rollout_cli::simple("promote", json!({"full": full}), &admin),
        Command::Pause { reason, admin } => rollout_cli::simple("pause", json!({"reason": reason}), &admin),
        Command::Resume { admin } => rollout_cli::simple("resume", json!({}), &admin),
        Command::Rollback { reason, admin } => {
            rollout_cli::simple("rollback", json!({"reason": reason}), &admin)
        }
        Command::Status { watch, json, admin } => rollout_cli::status(&admin, watch, json),
        Command::History { json, admin } => rollout_cli::history(&admin, json),
        Command::Flags { args, user, json, admin } => {
            rollout_cli::flags(&args, user.as_deref(), json, &admin)
        }
        Command::Check { confirm, json, admin } => rollout_cli::check(&confirm, json, &admin),
        Command::Report { json, summary: true, last, admin, .. } => rollout_cli::summary(last, json, &admin),
        Command::Report { rollout, json, admin, .. } => rollout_cli::report(rollout.as_deref(), json, &admin),
        Command::Demo { bad_canary } => demo::run::run(bad_canary),
        Command::Window { at, config, json } => window_cli::run(at.as_deref(), config.as_deref(), json),
        Command::Health { url, json, timeout, retries } => health(&url, json, timeout, retries),
        Command::Monitor { args, interval, json, admin } => monitor(&args, interval, json, &admin),
        Command::DemoService(args) => demo::service::serve(&args),
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CANARY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn serve(args: &ServeArgs) -> ExitCode {
    let cfg = match config::load(args.config.as_deref(), &args.overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("canary serve: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match server::start(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("canary serve: {e}");
            return ExitCode::from(match e {
                server::StartError::Config(_) => 2,
                server::StartError::Io(_) => 1,
            });
        }
    };
    // Scripts and tests read this line to learn the bound addresses.
    canary::say!("canary: proxy listening on {}, admin API on {}", running.proxy_addr, running.admin_addr);
    wait_for_stop_signal();
    tracing::info!("stopping: finishing in-flight requests");
    running.shutdown();
    ExitCode::SUCCESS
}

fn wait_for_stop_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::error!(error = %e, "cannot wait for signals"),
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
            else {
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    });
}

fn health(url: &str, json: bool, timeout: f64, retries: u32) -> ExitCode {
    if !(timeout > 0.0 && timeout < 3600.0) {
        eprintln!("canary health: --timeout {timeout}: give seconds above 0");
        return ExitCode::from(2);
    }
    health_cli::run(url, json, Duration::from_secs_f64(timeout), retries)
}

fn monitor(args: &[String], interval: f64, json: bool, admin: &AdminArgs) -> ExitCode {
    let (target, minutes) = match args {
        [minutes] => (
            monitor_cli::Target {
                url: format!("{}/api/v2/metrics?window=1m", admin.admin.trim_end_matches('/')),
                pointer: "/versions/canary".into(),
            },
            minutes,
        ),
        [url, minutes] => (
            monitor_cli::Target {
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
    monitor_cli::run(&target, minutes, Duration::from_secs_f64(interval), json)
}
