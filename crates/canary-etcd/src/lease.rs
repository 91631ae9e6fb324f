//! Leases: grant (`/v3/lease/grant`), renew once (`/v3/lease/keepalive`)
//! and revoke (`/v3/lease/revoke`).
//!
//! gRPC keeps a lease alive over one bidirectional stream: a request sent
//! on it each time, an answer read back. The gateway maps that stream onto
//! one HTTP/1.1 request whose body carries the requests while its answer
//! carries the renewals; but Go's HTTP/1.1 server, which etcd's gateway runs
//! on, does not promise the request body stays readable once the answer has
//! begun, so a long-lived renewal stream over it is not dependable. Here a
//! renewal is one request carrying one keep-alive message: the gateway
//! answers the one renewal and ends. [`Client::lease_keep_alive_once`] is
//! that call; a caller renews in a loop (canary renews every 500 ms: a few
//! hundred bytes each time).

use crate::client::Client;
use crate::error::Result;
use crate::kv::ResponseHeader;
use crate::wire::{LeaseGrantRequest, LeaseId, int};
use serde::Deserialize;

/// Options of a lease grant, shaped like `etcd_client::LeaseGrantOptions`.
#[derive(Debug, Clone, Default)]
pub struct LeaseGrantOptions {
    id: i64,
}

impl LeaseGrantOptions {
    /// No options: etcd picks the lease's id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for the lease to have `id`.
    pub fn with_id(mut self, id: i64) -> Self {
        self.id = id;
        self
    }
}

/// The answer to a lease grant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeaseGrantResponse {
    header: Option<ResponseHeader>,
    #[serde(rename = "ID", with = "int")]
    id: i64,
    #[serde(rename = "TTL", with = "int")]
    ttl: i64,
}

impl LeaseGrantResponse {
    /// The answer's header.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// The lease's id: what puts and compares name it by.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The lease's time to live, in seconds, as granted.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

/// The answer to a lease revoke.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeaseRevokeResponse {
    header: Option<ResponseHeader>,
}

impl LeaseRevokeResponse {
    /// The answer's header.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }
}

/// A renewal's answer: the lease's new time to live (absent: gone).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeepAliveForm {
    #[serde(rename = "TTL", with = "int")]
    ttl: i64,
}

impl Client {
    /// Grants a lease of `ttl` seconds.
    pub async fn lease_grant(
        &self,
        ttl: i64,
        options: Option<LeaseGrantOptions>,
    ) -> Result<LeaseGrantResponse> {
        let id = options.unwrap_or_default().id;
        self.call("/v3/lease/grant", &LeaseGrantRequest { ttl, id }).await
    }

    /// Renews lease `id` once; returns its time to live from now, in
    /// seconds: 0 when the lease has expired or was revoked (its keys are
    /// gone). Call again before that time runs out to keep it alive.
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<i64> {
        let answer: KeepAliveForm = self.call_once("/v3/lease/keepalive", &LeaseId { id }).await?;
        Ok(answer.ttl)
    }

    /// Revokes lease `id`: the keys it holds are deleted at once.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse> {
        self.call("/v3/lease/revoke", &LeaseId { id }).await
    }
}
