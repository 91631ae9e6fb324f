//! The upstream side: connections to stable and the canary, and the
//! exchanges on them.
//!
//! # Layout
//! - [`pool`]: a worker's idle connections, by upstream; connecting is a step
//!   of its own, so a refused connection is seen while the request is in hand.
//! - [`h1`]: the in-task HTTP/1.1 exchange for requests without a body.
//! - [`h2`]: the shared HTTP/2 connections to `h2c://` and h2 `https://` upstreams.
//! - [`stream`]: a connection's bytes, plain TCP or TLS.
//! - [`request_body`]: the body a request carries upstream.
//! - [`connect_error`]: why no connection could be had.
//!
//! Requests with a body go through hyper's HTTP/1.1 client, on connections
//! from the same pool.

pub mod connect_error;
pub mod h1;
pub mod h2;
pub mod pool;
pub mod request_body;
pub mod stream;
