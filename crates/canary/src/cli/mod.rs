//! The command line: the clap definitions of every command, the dispatch from
//! a parsed command to the code that runs it, and the client-side commands
//! that talk to a running `canary serve` or to any service's endpoints.
//!
//! # Layout
//! - [`args`]: the clap definitions (`Cli`, `Command` and their flags).
//! - [`Exit`] (in `crate::exit`): every command's outcome and its exit status.
//! - [`run`]: one parsed command -> the function that runs it.
//! - [`serve`]: `canary serve` in the foreground until SIGTERM or Ctrl-C.
//! - [`client`]: the admin API client and a plain GET for any service.
//! - [`tls`]: their HTTP client, for https:// URLs too (`--ca-file`).
//! - [`rollout`]: `deploy`, `adjust`, `promote`, `pause`, `resume`, `rollback`.
//! - [`status`]: `status` and `history`.
//! - [`records`]: `report` and `check`.
//! - [`flags`]: `canary flags`, feature flags on the server.
//! - [`health`], [`monitor`]: `canary health` (S8) and `canary monitor` (S9).
//! - [`policy`]: the thresholds `monitor` judges by, and where they came from.
//! - [`logs`]: `canary logs`, the request log; [`sse`] reads its `--follow`.
//! - [`window`]: `canary window`.
//! - [`packaging`]: `canary completions` and `canary man`, from the definitions.

pub mod args;
pub mod client;
pub mod diff;
pub mod flags;
pub mod health;
pub mod logs;
pub mod monitor;
pub mod packaging;
pub mod policy;
pub mod records;
pub mod rollout;
pub mod run;
pub mod serve;
pub mod sse;
pub mod status;
pub mod tls;
pub mod window;

pub use crate::exit::Exit;
pub use args::*;
