//! The control plane's TLS: the admin API's listener, and the rotation that
//! keeps TLS files (listener pairs, the upstreams' CA file) in service. The
//! configs themselves are the data plane's (`canary_proxy::tls`).
//!
//! # Layout
//! - [`admin`]: the admin API's listener, handshakes done before axum
//!   sees a connection.
//! - [`rotate`]: a listener's pair, or the upstreams' CA file, re-read when
//!   the files change or on SIGHUP; bad content keeps what is in service, and
//!   both outcomes are events.

pub mod admin;
pub mod rotate;
