//! canary-etcd against a real etcd (Debian's etcd-server), started by each test.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod endpoints;
mod kv;
mod lease;
mod support;
mod txn;
mod watch;
