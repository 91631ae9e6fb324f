//! The pure core of canary: every decision that can be made without I/O.
//!
//! Nothing in this crate reads a clock, opens a socket or touches a file. The
//! server (`canary` crate) hands it facts and carries out what it decides, so the
//! rules can be tested exhaustively and quickly.
//!
//! # Layout
//! - [`calendar`]: deployment windows, holidays and freezes (S19).
//! - [`holidays`], [`holidays_kr`]: built-in public holidays (South Korea's, 2025-2030).
//! - [`share`]: the canary's share of traffic, 0..=100% in basis points.
//! - [`bucket`]: the sticky bucket of a user (murmur3 of rollout name and key).
//! - [`exclude`]: path globs that always go to stable.
//! - [`routing`]: the routing decision for one request, in its fixed order.
//! - [`path`]: path normalisation, so excludes cannot be spelled around.
//! - [`request`]: reading overrides, cookies and user keys out of raw header values.
//! - [`route_label`]: the bounded label a request's path is measured under.
//! - [`dynamic`]: the seed's dynamic JSON config (`{"v2-api-canary": {...}}`).
//! - [`event`]: what an event in the log says happened ([`event::EventKind`]).
//! - [`plan`]: a rollout's steps and watching times.
//! - [`flags`]: feature flags, evaluated with the same sticky bucket.
//! - [`grpc_codes`]: gRPC status codes and the set that counts as failures.
//! - [`upstream`]: an upstream's URL, parsed once (scheme, address, base path).
//! - [`proxy_config`]: the proxy's settings the configuration reads and the
//!   data plane follows (user key, limits, timeouts).
//! - [`judge`]: policy plus both versions' statistics -> a verdict table.
//! - [`stats`]: the Wilson interval, for the figures reports show.
//! - [`sequential`]: tests that stay honest under repeated looks (mixture
//!   likelihood ratios, CUSUM) behind every repeated decision of the judge.
//! - [`shadow`]: comparing the canary's answers to copies with stable's, beyond
//!   stable's own noise, and judging them.
//! - [`rollout`]: the rollout state machine (time passed in, decisions out).
//! - [`sim`]: a seeded traffic model driving rollouts in simulated time.
//! - [`time`]: [`time::UnixMs`], the one type of instants, and its conversions.
//! - [`window`]: the sample-sized recent window for rollback checks.
//! - [`version`]: stable or canary.

pub mod bucket;
pub mod calendar;
pub mod dynamic;
pub mod event;
pub mod exclude;
pub mod flags;
pub mod grpc_codes;
pub mod holidays;
pub mod holidays_kr;
pub mod judge;
pub mod path;
pub mod plan;
pub mod proxy_config;
pub mod request;
pub mod rollout;
pub mod route_label;
pub mod routing;
pub mod sequential;
pub mod shadow;
pub mod share;
pub mod sim;
pub mod stats;
pub mod time;
pub mod upstream;
pub mod version;
pub mod window;

pub use bucket::bucket_of;
pub use exclude::Excludes;
pub use routing::{Decision, Reason, RoutingTable, decide};
pub use share::Share;
pub use version::Version;
