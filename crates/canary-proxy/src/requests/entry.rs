//! A request as the data plane holds it at its end: typed, no text made
//! yet. The request path makes one only for a request that is written or
//! kept (every request while the access log is on, else a failure or a
//! sampled one); its text is made off the request path, by the access log's
//! writer, or when it is kept in the request log ([`Entry::record`]).

use super::record::{Cause, MAX_PATH, Reason, Record, cut};
use super::user::UserKeySecret;
use canary_core::Version;
use canary_core::time::UnixMs;
use http::{HeaderValue, Method};
use std::net::IpAddr;
use std::sync::Arc;

/// The client's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// A gRPC call (over HTTP/2).
    Grpc,
    /// A WebSocket, at its 101.
    WebSocket,
    /// Another HTTP/1.1 upgrade, at its 101.
    Upgrade,
}

impl Protocol {
    /// The name lines and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
            Protocol::Grpc => "gRPC",
            Protocol::WebSocket => "WebSocket",
            Protocol::Upgrade => "HTTP/1.1 upgrade",
        }
    }
}

/// A request's id: the `x-request-id` it came with, or one the proxy made
/// (32 hex digits, kept as bytes: made for every request while the access
/// log is on, it is never a heap value unless a header map needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    /// As the client (or a proxy before) sent it.
    Sent(HeaderValue),
    /// Made by this proxy, sent on to the upstream.
    Made([u8; 32]),
}

impl RequestId {
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RequestId::Sent(v) => v.as_bytes(),
            RequestId::Made(b) => b,
        }
    }

    /// As a header value.
    pub fn to_header(&self) -> HeaderValue {
        match self {
            RequestId::Sent(v) => v.clone(),
            // Hex digits are always a valid header value.
            RequestId::Made(b) => HeaderValue::from_bytes(b).unwrap_or(HeaderValue::from_static("-")),
        }
    }
}

/// The longest path an entry keeps, in bytes.
pub const MAX_ENTRY_PATH: usize = 2048;

/// One request at its end.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it ended.
    pub time: UnixMs,
    /// The version that was tried.
    pub version: Version,
    /// The method.
    pub method: Method,
    /// The path, without its query, cut to [`MAX_ENTRY_PATH`] bytes: a copy,
    /// not a view of the request's head, which an entry waiting on a
    /// stalled log would keep whole.
    pub path: Box<str>,
    /// The route label it is measured under.
    pub route: Arc<str>,
    /// The status: the upstream's, or the proxy's own answer when the
    /// upstream gave none and stable did not serve the client instead.
    pub status: Option<u16>,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<u16>,
    /// From the request's arrival to the end of its answer (to its head
    /// for gRPC), microseconds.
    pub duration_us: u64,
    /// From the request's arrival to the upstream's response head.
    pub upstream_us: Option<u64>,
    /// Who sent it: the user key's keyed hash (see `requests::user`).
    pub user: u64,
    /// The user key as sent, kept only when the access log is configured
    /// to show it.
    pub user_key: Option<Box<str>>,
    /// Its `x-request-id`, as sent or as made by the proxy.
    pub request_id: Option<RequestId>,
    /// Why it went to `version`.
    pub reason: Reason,
    /// The user's bucket, when `reason` is the bucket.
    pub bucket: Option<u16>,
    /// Whether stable served the client after the canary failed this request.
    pub fallback: bool,
    /// What went wrong, if anything.
    pub cause: Option<Cause>,
    /// The failure in words.
    pub detail: Option<Box<str>>,
    /// The client's protocol.
    pub protocol: Protocol,
    /// The client's address.
    pub client: IpAddr,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// Whether the request log keeps it though it succeeded (the sampling
    /// draw picked it).
    pub sampled: bool,
    /// Its place in a trace, while tracing is on.
    pub trace: Option<crate::traces::context::TraceContext>,
    /// The upstream it was sent to, while tracing is on (a span names it).
    pub upstream: Option<std::sync::Arc<str>>,
}

impl Entry {
    /// Whether the version failed the request, or it ended early: such an
    /// entry is always kept in the request log.
    pub fn is_failure(&self) -> bool {
        self.cause.is_some() || self.status.is_some_and(|s| s >= 500)
    }

    /// The request's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the request log keeps it.
    pub fn kept(&self) -> bool {
        self.sampled || self.is_failure()
    }

    /// The request log's record of it.
    pub fn record(&self) -> Record {
        Record {
            time_ms: self.time,
            seq: 0,
            replica: None,
            version: self.version,
            method: self.method.as_str().into(),
            path: cut(self.path(), MAX_PATH).into(),
            route: self.route.to_string(),
            status: self.status,
            duration_us: self.duration_us,
            user: UserKeySecret::show(self.user),
            request_id: self
                .request_id
                .as_ref()
                .map(|id| cut(&String::from_utf8_lossy(id.as_bytes()), MAX_PATH).into()),
            reason: self.reason,
            bucket: self.bucket,
            fallback: self.fallback,
            cause: self.cause,
            detail: self.detail.as_deref().map(str::to_string),
            protocol: self.protocol.as_str().into(),
            // Unspecified: not known (see `forward::journal::undrafted`).
            client: if self.client.is_unspecified() { "-".into() } else { self.client.to_string() },
        }
    }
}
