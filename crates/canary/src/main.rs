//! The `canary` binary: raw arguments -> a parsed command -> run -> exit code.
//! Everything but logging and the allocator lives in the library's `cli`.

use canary::cli::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

// The proxy allocates a few small objects per request (header maps, futures);
// the profile showed the system allocator at about 8% of instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; its logs would only interleave.
    init_logging(if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" });
    // The one place an outcome becomes an exit status.
    ExitCode::from(canary::cli::run::run(cli.command))
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CANARY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
