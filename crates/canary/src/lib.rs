//! canary: a progressive-delivery tool for HTTP APIs. This crate is the
//! control plane and the binary: the rollout controller, the state file, the
//! cluster, the admin API and the command line, around `canary-core` (the pure
//! decisions) and `canary-proxy` (the data plane, which it starts and feeds a
//! routing snapshot).
//!
//! # Layout
//! - [`cli`]: the command line: every command's definition, dispatch and the
//!   client-side commands (rollout, health, monitor, window).
//! - [`config`]: defaults, TOML file and flags merged and validated.
//! - [`server`]: starts and stops everything `canary serve` runs.
//! - [`controller`]: the rollout driver: state machine + clock + router + state file.
//! - [`demo`]: the demo service and `canary demo`.
//! - [`exit`]: how a command ends: the exit codes scripts rely on.
//! - [`feature_flags`]: feature flags from env, file and API.
//! - [`analysis`]: a team's own checks: Prometheus queries and webhook gates.
//! - [`ops`]: hooks, incident records, release tags and reports, after the fact.
//! - [`live`]: the routing state the workers read and the API changes.
//! - [`store`]: the state: the SQLite file, or etcd with `--etcd`, and the event log.
//! - [`cluster`]: several replicas on etcd: registration, leader election,
//!   the fleet's metrics and forwarding to the leader.
//! - [`dynamic`]: the watched dynamic config file (S16).
//! - [`reload`]: SIGHUP re-reads the TOML config file.
//! - [`admin`]: the admin HTTP API.
//! - [`tls`]: the admin listener's TLS, and TLS files kept in service.
//! - [`windows`]: deployment windows: config, timezone, next allowed time.

/// Prints a line to stdout, ignoring a closed pipe (`canary status | head -1`):
/// a command's output cut short by its reader is not an error worth a panic.
#[macro_export]
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod admin;
pub mod analysis;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod demo;
pub mod dynamic;
pub mod exit;
pub mod feature_flags;
pub mod live;
pub mod ops;
pub mod reload;
pub mod server;
pub mod store;
pub mod tls;
pub mod windows;
