//! A minimal service with canary-probe's endpoints:
//!
//! ```sh
//! cargo run -p canary-probe --example service          # listens on 127.0.0.1:3000
//! curl -s localhost:3000/api/v2/hello
//! curl -s localhost:3000/api/v2/metrics | jq '.response_time'
//! canary health http://127.0.0.1:3000
//! ```

use axum::Router;
use axum::routing::get;
use canary_probe::{DbStatus, Probe};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The database callback: report the pool you really have; here, a fixed one.
    let probe = Probe::new(env!("CARGO_PKG_VERSION"))
        .with_db_check(|| Ok(DbStatus { in_use: 2, max: 20, latency_ms: 0.4 }));
    let app: Router = Router::new()
        .route("/api/v2/hello", get(|| async { "hello" }))
        .route("/api/v2/items/{id}", get(|| async { "an item" }))
        .route_layer(probe.layer())
        .merge(probe.router());
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
