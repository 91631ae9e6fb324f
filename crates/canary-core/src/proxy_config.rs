//! The proxy's settings that the configuration reads and the data plane
//! follows: where a user key comes from, what a rollback does to upgraded
//! connections, and the limits and timeouts. Here, below both, so the
//! configuration does not depend on the data plane nor the data plane on
//! the configuration.

use http::HeaderName;
use std::time::Duration;

/// Where a request's user key is read from, before falling back to the client address.
#[derive(Debug, Clone, PartialEq)]
pub enum UserKey {
    /// A request header (default `x-user-id`).
    Header(HeaderName),
    /// A cookie.
    Cookie(String),
}

/// What a rollback does to the upgraded connections (WebSockets...) open on
/// the canary (`[routing] upgraded_on_rollback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRollback {
    /// Close them, so their users reconnect and land on stable (the default).
    Close,
    /// Leave them open until either side ends them.
    Keep,
}

/// Limits and timeouts of the proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Time to open a connection to an upstream before answering 502.
    pub connect_timeout: Duration,
    /// Time for an upstream to send its response head before answering 504.
    pub response_timeout: Duration,
    /// Time for a client to send a whole request head; it also bounds how long
    /// an idle keep-alive connection is kept (as nginx's client_header_timeout
    /// and keepalive_timeout do). Default 60 s.
    pub header_read_timeout: Duration,
    /// The longest pause in a request body before it is answered 408.
    pub body_read_timeout: Duration,
    /// The largest request head accepted, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// The largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: u64,
    /// Worker threads, each with its own listener socket and upstream pool.
    pub workers: usize,
    /// Idle upstream connections kept per upstream per worker.
    pub max_idle_per_upstream: usize,
    /// Serve HTTP/2 (prior knowledge) to clients besides HTTP/1.1.
    pub http2: bool,
    /// How long an upgraded connection may carry no byte either way before
    /// it is closed. Default 1 hour.
    pub upgraded_idle_timeout: Duration,
}
