//! One request as `canary logs` shows it: a typed record, made only for the
//! requests kept (every failure, and a sample of the rest), never for the
//! others. Field names follow Envoy's access log where it has one
//! (`response_flags` as `flags`, `request_id`, `duration`), so tools that
//! read it read this without glue.

use canary_core::Version;
use canary_core::time::UnixMs;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request failed or ended early, in the manner of Envoy's response
/// flags ([`Cause::flag`] gives the flag itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// No connection to the upstream could be had: refused, unreachable,
    /// the TLS or HTTP handshake failed (Envoy's UF).
    ConnectFailed,
    /// No response head within the response timeout (UT).
    Timeout,
    /// The upstream closed or reset the exchange before its answer ended (UC).
    Reset,
    /// The upstream answered with a 5xx.
    #[serde(rename = "upstream_5xx")]
    Upstream5xx,
    /// A gRPC call ended with a `grpc-status` counted as an error.
    GrpcError,
    /// The upstream answered against the protocol (UPE): a 101 unasked.
    ProtocolError,
    /// The client left before its answer ended (DC).
    ClientGone,
    /// The client's request body stalled, broke off or was over the limit.
    ClientBody,
    /// A cause named by a newer replica; kept as unknown.
    #[serde(other)]
    Other,
}

impl Cause {
    /// The name used in log lines and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ConnectFailed => "connect_failed",
            Cause::Timeout => "timeout",
            Cause::Reset => "reset",
            Cause::Upstream5xx => "upstream_5xx",
            Cause::GrpcError => "grpc_error",
            Cause::ProtocolError => "protocol_error",
            Cause::ClientGone => "client_gone",
            Cause::ClientBody => "client_body",
            Cause::Other => "other",
        }
    }

    /// Envoy's response flag for the cause, `-` where Envoy has none.
    pub fn flag(self) -> &'static str {
        match self {
            Cause::ConnectFailed => "UF",
            Cause::Timeout => "UT",
            Cause::Reset => "UC",
            Cause::ProtocolError => "UPE",
            Cause::ClientGone => "DC",
            Cause::Upstream5xx | Cause::GrpcError | Cause::ClientBody | Cause::Other => "-",
        }
    }

    /// Whether the cause is the version's failure (the word `ERROR` in a
    /// log line), not the client's.
    pub fn is_error(self) -> bool {
        !matches!(self, Cause::ClientGone | Cause::ClientBody)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request went to the version it went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No canary upstream is configured.
    NoCanary,
    /// The canary was rolled back: nobody reaches it.
    Blocked,
    /// The path is excluded from the canary.
    Excluded,
    /// The client asked for a version (`x-canary`).
    Forced,
    /// The user's sticky bucket against the share.
    Bucket,
    /// The canary failed the request and stable served it instead.
    Fallback,
    /// A reason named by a newer replica.
    #[serde(other)]
    Other,
}

impl Reason {
    /// The name used in log lines and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoCanary => "no_canary",
            Reason::Blocked => "blocked",
            Reason::Excluded => "excluded",
            Reason::Forced => "forced",
            Reason::Bucket => "bucket",
            Reason::Fallback => "fallback",
            Reason::Other => "other",
        }
    }
}

/// One kept request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the request ended, in milliseconds since the Unix epoch.
    pub time_ms: UnixMs,
    /// Unique within the replica that kept it, rising: how `--follow` tells
    /// a record already shown from a new one.
    pub seq: u64,
    /// The replica that served it (in a cluster; filled by the admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The version that was tried.
    pub version: Version,
    /// The request method.
    pub method: String,
    /// The request path, without its query (queries carry tokens), cut to
    /// [`MAX_PATH`] bytes.
    pub path: String,
    /// The route label it is measured under.
    pub route: String,
    /// The status the upstream answered, or the proxy's own answer when the
    /// upstream gave none and stable did not serve it instead.
    pub status: Option<u16>,
    /// From the request's arrival to the end of its answer (to its head
    /// for gRPC), in microseconds.
    pub duration_us: u64,
    /// The user key's keyed hash, 16 hex digits (see `requests::user`).
    pub user: String,
    /// The client's `x-request-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why it went to `version`.
    pub reason: Reason,
    /// The user's bucket (0..10000) when `reason` is the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u16>,
    /// Whether stable served the client after the canary failed this request.
    pub fallback: bool,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The failure in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The client's protocol: `HTTP/1.1`, `HTTP/2`, `gRPC` or `WebSocket`.
    pub protocol: String,
    /// The client's address.
    pub client: String,
}

/// Whether the version failed a request that ended with `status` and
/// `cause`: a 5xx, an upstream failure or a gRPC error. Such lines carry
/// the word `ERROR`.
pub fn is_error(status: Option<u16>, cause: Option<Cause>) -> bool {
    status.is_some_and(|s| s >= 500) || cause.is_some_and(Cause::is_error)
}

/// The log level word: `ERROR` for a failure of the version, `WARN` for a
/// 4xx or an early end (the client's doing), `INFO` otherwise.
pub fn level(status: Option<u16>, cause: Option<Cause>) -> &'static str {
    if is_error(status, cause) {
        "ERROR"
    } else if status.is_some_and(|s| (400..500).contains(&s)) || cause.is_some() {
        "WARN"
    } else {
        "INFO"
    }
}

/// The longest path a record keeps, in bytes.
pub const MAX_PATH: usize = 256;

impl Record {
    /// Whether the version failed the request (see [`is_error`]).
    pub fn is_error(&self) -> bool {
        is_error(self.status, self.cause)
    }

    /// The log level word (see [`level`]).
    pub fn level(&self) -> &'static str {
        level(self.status, self.cause)
    }

    /// Roughly the memory the record holds, for the log's bound in bytes.
    pub fn size(&self) -> usize {
        let strings = [&self.method, &self.path, &self.route, &self.user, &self.protocol, &self.client];
        let optional = [&self.replica, &self.request_id, &self.detail];
        std::mem::size_of::<Record>()
            + strings.iter().map(|s| s.capacity()).sum::<usize>()
            + optional.iter().filter_map(|s| s.as_ref()).map(String::capacity).sum::<usize>()
    }
}

/// A string cut to at most `max` bytes, on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let end = (0..=s.len().min(max)).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[..end]
}

/// A record of a canary GET for tests, with this status and cause.
#[cfg(test)]
pub(crate) fn test_record(status: Option<u16>, cause: Option<Cause>) -> Record {
    Record {
        time_ms: UnixMs::from_millis(1_000),
        seq: 1,
        replica: None,
        version: Version::Canary,
        method: "GET".into(),
        path: "/api/v2/rooms".into(),
        route: "/api/v2/rooms".into(),
        status,
        duration_us: 1_500,
        user: "0123456789abcdef".into(),
        request_id: None,
        reason: Reason::Bucket,
        bucket: Some(42),
        fallback: false,
        cause,
        detail: None,
        protocol: "HTTP/1.1".into(),
        client: "127.0.0.1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_the_version_are_errors_and_the_clients_own_are_not() {
        assert_eq!(test_record(Some(500), Some(Cause::Upstream5xx)).level(), "ERROR");
        assert_eq!(test_record(None, Some(Cause::ConnectFailed)).level(), "ERROR");
        assert_eq!(test_record(Some(200), Some(Cause::GrpcError)).level(), "ERROR");
        assert_eq!(test_record(Some(499), Some(Cause::ClientGone)).level(), "WARN");
        assert_eq!(test_record(Some(404), None).level(), "WARN");
        assert_eq!(test_record(Some(200), None).level(), "INFO");
    }

    #[test]
    fn a_cause_a_newer_replica_names_is_read_as_other() {
        let mut v = serde_json::to_value(test_record(Some(502), Some(Cause::Reset))).unwrap();
        v["cause"] = "quantum_failure".into();
        let r: Record = serde_json::from_value(v).unwrap();
        assert_eq!(r.cause, Some(Cause::Other));
        assert!(r.is_error(), "an unknown cause is taken as the version's failure");
    }

    #[test]
    fn json_names_causes_and_reasons_as_log_lines_do() {
        let causes = [
            Cause::ConnectFailed,
            Cause::Timeout,
            Cause::Reset,
            Cause::Upstream5xx,
            Cause::GrpcError,
            Cause::ProtocolError,
            Cause::ClientGone,
            Cause::ClientBody,
            Cause::Other,
        ];
        for c in causes {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str(), "{c:?}");
        }
        let reasons = [
            Reason::NoCanary,
            Reason::Blocked,
            Reason::Excluded,
            Reason::Forced,
            Reason::Bucket,
            Reason::Fallback,
            Reason::Other,
        ];
        for r in reasons {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str(), "{r:?}");
        }
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
