//! The command line: `canary <command> ...`, parsed by clap into the
//! validated configuration each command runs with.

use crate::config::Overrides;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// canary: put a new version of an HTTP API in front of a slice of users,
/// watch it, and promote it or pull it back.
#[derive(Debug, Parser)]
#[command(name = "canary", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the traffic-splitting proxy and its admin API.
    Serve(ServeArgs),
}

/// `canary serve` flags; each overrides the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The values that override the file.
    #[command(flatten)]
    pub overrides: Overrides,
}
