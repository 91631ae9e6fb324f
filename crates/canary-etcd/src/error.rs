//! What can go wrong talking to etcd, and which of it another try may not
//! meet ([`Error::is_transient`]). Every message names the endpoint.

use std::time::Duration;

/// gRPC's code for "unavailable": a member stopping, no leader, a leader
/// change, a request that timed out inside etcd.
pub const CODE_UNAVAILABLE: i32 = 14;

/// gRPC's code for "deadline exceeded".
pub const CODE_DEADLINE_EXCEEDED: i32 = 4;

/// The result of a call to etcd.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from a call to etcd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No endpoint was given to [`crate::Client::connect`].
    #[error("no etcd endpoint given")]
    NoEndpoints,

    /// An endpoint this client cannot use (a bad URL, or `https://`).
    #[error("etcd endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// An argument etcd would refuse, caught before sending.
    #[error("invalid argument: {0}")]
    InvalidArgs(String),

    /// No connection could be made (refused, unreachable, connect timeout).
    #[error("etcd {endpoint}: cannot connect: {detail}")]
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// What the connection attempt met.
        detail: String,
    },

    /// The endpoint did not answer within the per-try timeout.
    #[error("etcd {endpoint}: no answer within {} ms", .timeout.as_millis())]
    Timeout {
        /// The endpoint tried.
        endpoint: String,
        /// The per-try timeout that ran out.
        timeout: Duration,
    },

    /// The connection failed while the request or its answer was under way
    /// (reset, closed early).
    #[error("etcd {endpoint}: connection failed: {detail}")]
    Transport {
        /// The endpoint tried.
        endpoint: String,
        /// What happened.
        detail: String,
    },

    /// etcd answered with an error (a gRPC status, carried by the gateway as
    /// an HTTP error status and a JSON body).
    #[error("etcd {endpoint}: {message} (gRPC code {code}, HTTP {http_status})")]
    Status {
        /// The endpoint that answered.
        endpoint: String,
        /// The gRPC status code (14: unavailable).
        code: i32,
        /// etcd's message, such as "etcdserver: no leader".
        message: String,
        /// The HTTP status the gateway answered with.
        http_status: u16,
    },

    /// An answer that is not the JSON etcd's gateway sends.
    #[error("etcd {endpoint}: unreadable answer: {detail}")]
    Decode {
        /// The endpoint that answered.
        endpoint: String,
        /// What could not be read.
        detail: String,
    },
}

impl Error {
    /// Whether another try, perhaps on another member, may succeed: the
    /// member was unreachable or slow, or etcd reported a passing condition
    /// (no leader, a leader change, a request timed out inside etcd).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Status { code, message, .. } => transient_status(*code, message),
            _ => false,
        }
    }

    /// The gRPC status code etcd answered with, if it answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A status another try may not meet.
fn transient_status(code: i32, message: &str) -> bool {
    const PASSING: [&str; 4] = ["no leader", "leader changed", "request timed out", "not leader"];
    code == CODE_UNAVAILABLE || code == CODE_DEADLINE_EXCEEDED || PASSING.iter().any(|p| message.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i32, message: &str) -> Error {
        Error::Status { endpoint: "http://e".into(), code, message: message.into(), http_status: 503 }
    }

    #[test]
    fn unavailable_and_leader_troubles_are_transient() {
        assert!(status(14, "etcdserver: no leader").is_transient());
        assert!(status(14, "etcdserver: request timed out").is_transient());
        assert!(status(2, "etcdserver: leader changed").is_transient());
        assert!(status(4, "context deadline exceeded").is_transient());
    }

    #[test]
    fn refusals_are_permanent() {
        assert!(!status(5, "etcdserver: requested lease not found").is_transient());
        assert!(!status(3, "etcdserver: key is not provided").is_transient());
        assert!(!Error::InvalidArgs("x".into()).is_transient());
        let e = Error::Decode { endpoint: "http://e".into(), detail: "x".into() };
        assert!(!e.is_transient());
    }

    #[test]
    fn messages_name_the_endpoint() {
        let e = Error::Timeout { endpoint: "http://127.0.0.1:1".into(), timeout: Duration::from_millis(300) };
        assert_eq!(e.to_string(), "etcd http://127.0.0.1:1: no answer within 300 ms");
        assert_eq!(
            status(14, "etcdserver: no leader").to_string(),
            "etcd http://e: etcdserver: no leader (gRPC code 14, HTTP 503)"
        );
    }
}
