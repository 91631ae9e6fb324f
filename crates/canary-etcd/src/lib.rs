//! A small etcd v3 client that speaks etcd's HTTP/JSON gateway, for
//! canary's cluster support: several replicas sharing state in etcd.
//!
//! # Why the JSON gateway, not gRPC
//!
//! etcd's native API is gRPC. Rust's gRPC clients (`etcd-client`, over
//! tonic and prost) compile etcd's protobuf files at build time, which needs
//! `protoc` on the build machine; that is why canary's cluster support was
//! an opt-in feature. etcd also serves the same API as HTTP/JSON on its
//! client port (grpc-gateway: `POST /v3/kv/range` and so on), documented by
//! etcd and shipped in every release since 3.3 (under `/v3/` since 3.4;
//! 3.3 used `/v3beta/`). This crate speaks that gateway over hyper, which
//! canary already has: no protoc, no tonic, no prost, no build script, and
//! a leaner build.
//!
//! The costs, all small at canary's few calls a second:
//! - every key and value goes as base64 inside JSON, and every answer is
//!   parsed as JSON (64-bit integers arrive as strings);
//! - a lease is kept alive by repeated calls, one per renewal, rather than
//!   one long-lived stream (see [`lease`] for why);
//! - one HTTP/1.1 connection per call in flight and per watch, where gRPC
//!   multiplexes them over one HTTP/2 connection.
//!
//! # Scope
//!
//! The API covers what canary uses and is shaped like the matching part of
//! `etcd-client`, so code moves over by changing its imports: [`Client::get`],
//! [`Client::put`], [`Client::delete`], [`Client::txn`],
//! [`Client::lease_grant`], [`Client::lease_keep_alive_once`],
//! [`Client::lease_revoke`] and [`Client::watch`]. Unlike `etcd-client`, the
//! calls take `&self`: a [`Client`] is cheap to clone and its clones share
//! connections.
//!
//! # Porting from `etcd-client`
//!
//! - `etcd_client::{Client, ConnectOptions, GetOptions, PutOptions,
//!   DeleteOptions, SortTarget, SortOrder, Txn, TxnOp, TxnOpResponse,
//!   Compare, CompareOp, WatchOptions, EventType, KeyValue}`: the same names
//!   here, with the same constructors and `with_*` methods.
//! - `let mut c = client.clone(); c.get(..)`: `let c = ...` (calls take `&self`).
//! - `lease_keep_alive(id)` (a keeper and a stream): call
//!   [`Client::lease_keep_alive_once`] each time a renewal is due; it
//!   returns the new TTL, 0 when the lease is gone.
//! - `watch(key, opts)` and `stream.message()`: the same; the stream ends
//!   (`Ok(None)`) after a canceled message, and dropping it cancels the watch.
//! - Matching `etcd_client::Error::{TransportError, GRpcStatus}` and tonic
//!   codes to decide on a retry: [`Error::is_transient`].
//! - `with_keep_alive(interval, timeout)` sets TCP keep-alive (HTTP/1.1 has
//!   no pings).
//!
//! Plain HTTP only: canary's etcd endpoints are `http://`. An `https://`
//! endpoint is refused by [`Client::connect`] with an error naming it. No
//! authentication either.
//!
//! # Several endpoints
//!
//! A call goes to the endpoint that last answered. When it cannot connect,
//! gets no answer within the per-try timeout ([`ConnectOptions::with_timeout`]),
//! or gets a passing error (no leader, unavailable), it is tried on the next
//! endpoint, each at most once per call; a caller with an overall deadline
//! wraps the call in a timeout and retries while [`Error::is_transient`].
//! A write that timed out may still have been applied by the member it went
//! to, and is then applied again elsewhere: writes that must not repeat
//! belong in a transaction whose compare would fail the second time.
//!
//! # Requiring a leader
//!
//! [`ConnectOptions::with_require_leader`] sends the header
//! `Grpc-Metadata-hasleader: true`, which the gateway turns into the gRPC
//! metadata `hasleader: true`: a member that has lost its leader then fails
//! a call at once with gRPC code 14, "etcdserver: no leader" (HTTP 503),
//! where without it a read waits for etcd's own request timeout (about 7 s)
//! and then fails with "etcdserver: request timed out".

pub mod client;
pub mod error;
pub mod kv;
pub mod lease;
pub mod txn;
pub mod watch;

mod endpoint;
mod frame;
mod wire;

pub use client::{Client, ConnectOptions};
pub use error::{Error, Result};
pub use kv::{
    DeleteOptions, DeleteResponse, GetOptions, GetResponse, KeyValue, PutOptions, PutResponse,
    ResponseHeader, SortOrder, SortTarget,
};
pub use lease::{LeaseGrantOptions, LeaseGrantResponse, LeaseRevokeResponse};
pub use txn::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse, TxnResponse};
pub use watch::{Event, EventType, WatchOptions, WatchResponse, WatchStream};
