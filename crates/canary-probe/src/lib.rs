//! canary-probe: gives a Rust HTTP service the health and metrics endpoints
//! that canary and the seed's scripts read, in one line:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use canary_probe::Probe;
//!
//! # async fn run() {
//! let probe = Probe::new("v2.1.0");
//! let app: Router = Router::new()
//!     .route("/api/v2/rooms", get(|| async { "[]" }))
//!     .route_layer(probe.layer())      // measures every routed request
//!     .merge(probe.router());          // /api/v2/health, /health/db, /health/memory, /metrics
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! # Layout
//! - [`probe`]: [`Probe`], the shared state and the database callback.
//! - [`layer`]: the tower layer that measures requests.
//! - [`stats`]: a one-minute sliding window of per-second slots.
//! - [`process`]: this process's memory and CPU use, from /proc on Linux.
//! - [`endpoints`]: the axum router and the JSON it serves.

pub mod endpoints;
pub mod layer;
pub mod probe;
pub mod process;
pub mod stats;

pub use layer::ProbeLayer;
pub use probe::{DbStatus, Probe};
