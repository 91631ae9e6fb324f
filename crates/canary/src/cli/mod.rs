//! The command line: the clap definitions of every command, the dispatch from
//! a parsed command to the code that runs it, and the client-side commands
//! that talk to a running `canary serve` or to any service's endpoints.
//!
//! # Layout
//! - [`args`]: the clap definitions (`Cli`, `Command` and their flags).
//! - [`run`]: one parsed command -> the function that runs it.
//! - [`serve`]: `canary serve` in the foreground until SIGTERM or Ctrl-C.
//! - [`client`]: the admin API client and a plain GET for any service.
//! - [`rollout`]: `deploy`, `adjust`, `promote`, `pause`, `resume`, `rollback`,
//!   `status`, `history`, `report`, `check`, `flags`.
//! - [`health`], [`monitor`]: `canary health` (S8) and `canary monitor` (S9).
//! - [`window`]: `canary window`.

pub mod args;
pub mod client;
pub mod health;
pub mod monitor;
pub mod rollout;
pub mod run;
pub mod serve;
pub mod window;

pub use args::*;
