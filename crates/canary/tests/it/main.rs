//! Integration tests for `canary serve`: real sockets, real upstream servers,
//! the real binary where a process boundary matters (exit codes, kill -9).

mod admin;
mod config_cli;
mod durability;
mod proxy;
mod routing;
mod support;
