//! Integration tests for `canary serve`: real sockets, real upstream servers,
//! the real binary where a process boundary matters (exit codes, kill -9).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_log;
mod admin;
mod admin_input;
mod admin_tls;
mod checks;
mod cli;
mod cli_commands;
mod client_wire;
mod clock;
mod cluster;
mod config_cli;
mod dashboard;
mod dashboards;
mod demo;
mod disconnect;
mod disk;
mod durability;
mod fail_closed;
mod fallback;
mod flags;
mod fleet;
mod grpc;
mod grpc_upstream;
mod hostile;
mod judge;
mod load;
mod logs;
mod ops;
mod partition;
mod prometheus;
mod proxy;
mod relay;
mod reload;
mod rollout;
mod routing;
mod runbook;
mod shadow;
mod shutdown;
mod support;
mod tls;
mod tls_dates;
mod traces;
mod upgrade;
mod upstream_ca;
mod upstream_wire;
mod websocket;
mod windows;
mod wire_compat;
