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
    /// The stable upstream, e.g. http://127.0.0.1:3000.
    #[arg(long, value_name = "URL")]
    pub stable: Option<String>,
    /// The canary upstream, e.g. http://127.0.0.1:3001.
    #[arg(long, value_name = "URL")]
    pub canary: Option<String>,
    /// Where the proxy listens [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where the admin API listens [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// The SQLite state file [default: ./canary.db].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The dynamic config JSON file, watched for changes.
    #[arg(long, value_name = "FILE")]
    pub flags: Option<PathBuf>,
    /// A TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The canary's starting share in percent, used when the state file has none.
    #[arg(long, value_name = "PERCENT")]
    pub share: Option<String>,
    /// A path glob that always goes to stable (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// The rollout's name, mixed into every user's bucket [default: v2-api-canary].
    #[arg(long, value_name = "NAME")]
    pub rollout: Option<String>,
}

impl ServeArgs {
    /// The flags as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            stable: self.stable.clone(),
            canary: self.canary.clone(),
            listen: self.listen.clone(),
            admin: self.admin.clone(),
            state: self.state.clone(),
            flags: self.flags.clone(),
            share: self.share.clone(),
            exclude: self.exclude.clone(),
            rollout: self.rollout.clone(),
        }
    }
}
