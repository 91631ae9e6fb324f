//! What the data plane is told at start: where to listen, its limits, how
//! users are keyed and requests labelled. The control plane builds it from
//! its configuration; nothing here is read from a file.

use crate::requests::user::UserKeySecret;
use canary_core::grpc_codes::Codes;
use canary_core::proxy_config::{OnRollback, ProxyConfig, UserKey};
use canary_core::route_label::RouteTemplates;
use std::net::SocketAddr;

/// The data plane's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The listen address; every worker binds it with `SO_REUSEPORT`.
    pub listen: SocketAddr,
    /// Limits, timeouts and workers.
    pub proxy: ProxyConfig,
    /// Where a request's user key is read from.
    pub user_key: UserKey,
    /// Whether responses carry `x-canary-version`.
    pub version_header: bool,
    /// What a rollback does to the canary's open upgraded connections.
    pub upgraded_on_rollback: OnRollback,
    /// How requests are labelled for per-route metrics.
    pub routes: RouteTemplates,
    /// The `grpc-status` codes that count as errors.
    pub grpc_errors: Codes,
    /// The key of the hash users are shown as in the request log.
    pub user_secret: UserKeySecret,
    /// The access log, when one is written.
    pub access_log: Option<std::sync::Arc<crate::access_log::AccessLog>>,
    /// Tracing, when spans are exported.
    pub tracing: Option<std::sync::Arc<crate::traces::Tracing>>,
    /// Shadow traffic's machinery (it copies only while the routing table
    /// says so).
    pub shadow: Option<std::sync::Arc<crate::shadow::Shadow>>,
}
