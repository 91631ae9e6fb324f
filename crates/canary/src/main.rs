//! The `canary` binary: raw arguments -> validated config -> run -> exit code.
//! Exit codes: 0 success, 1 a runtime failure, 2 bad input (flags or config),
//! 3 refused in the current state, 4 unauthorized (see `rollout_cli`).

use canary::cli::{Cli, Command, ServeArgs};
use canary::{config, demo, rollout_cli, server};
use clap::Parser;
use serde_json::json;
use std::process::ExitCode;

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
        Command::Demo { bad_canary } => demo::run::run(bad_canary),
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
    println!("canary: proxy listening on {}, admin API on {}", running.proxy_addr, running.admin_addr);
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
