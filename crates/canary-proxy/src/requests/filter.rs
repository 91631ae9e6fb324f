//! Which records a reader asks for: `canary logs`' filters, checked once
//! when read from the query so that a bad one is named before anything is
//! searched.

use super::record::Record;
use canary_core::Version;
use canary_core::time::UnixMs;
use std::fmt;

/// A status filter: `5xx`, `4xx` (a class) or `500` (one status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every status of the class (4 for 4xx); `5xx` also takes the
    /// failures the upstream gave no status for.
    Class(u16),
    /// This status only.
    Exact(u16),
}

impl Status {
    /// Reads `5xx`, `4xx`, `2xx`... or a status such as `503`.
    pub fn parse(s: &str) -> Result<Status, String> {
        let t = s.trim().to_ascii_lowercase();
        let bad =
            || format!("status `{s}`: expected a class such as `5xx` or `4xx`, or a status such as `503`");
        if let Some(c) = t.strip_suffix("xx") {
            return match c.parse::<u16>() {
                Ok(c @ 1..=5) => Ok(Status::Class(c)),
                _ => Err(bad()),
            };
        }
        match t.parse::<u16>() {
            Ok(code @ 100..=599) => Ok(Status::Exact(code)),
            _ => Err(bad()),
        }
    }

    fn matches(self, r: &Record) -> bool {
        match (self, r.status) {
            (Status::Exact(code), s) => s == Some(code),
            (Status::Class(c), Some(s)) => s / 100 == c,
            // No status: the upstream failed to answer, a server-side failure.
            (Status::Class(c), None) => c == 5 && r.is_error(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Class(c) => write!(f, "{c}xx"),
            Status::Exact(s) => write!(f, "{s}"),
        }
    }
}

/// What a reader asks for; every filter given must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Records that ended at or after this instant.
    pub since: Option<UnixMs>,
    /// Records kept after this one (`seq`), for a reader following along.
    pub after_seq: Option<u64>,
    /// One version's.
    pub version: Option<Version>,
    /// By status.
    pub status: Option<Status>,
    /// One route label's.
    pub route: Option<String>,
    /// One path's (without its query).
    pub path: Option<String>,
    /// One user's: the user key's keyed hash (see `requests::user`).
    pub user: Option<String>,
    /// One request's `x-request-id`.
    pub request_id: Option<String>,
    /// Failures of the version only (the `ERROR` lines).
    pub errors: bool,
}

impl Filter {
    /// Whether `r` is asked for.
    pub fn matches(&self, r: &Record) -> bool {
        self.since.is_none_or(|t| r.time_ms >= t)
            && self.after_seq.is_none_or(|s| r.seq > s)
            && self.version.is_none_or(|v| r.version == v)
            && self.status.is_none_or(|s| s.matches(r))
            && self.route.as_ref().is_none_or(|x| &r.route == x)
            && self.path.as_ref().is_none_or(|x| &r.path == x)
            && self.user.as_ref().is_none_or(|u| &r.user == u)
            && self.request_id.as_ref().is_none_or(|id| r.request_id.as_ref() == Some(id))
            && (!self.errors || r.is_error())
    }

    /// Whether only failures can match, so the sample of the others need
    /// not be read.
    pub fn failures_only(&self) -> bool {
        self.errors || matches!(self.status, Some(Status::Class(5)) | Some(Status::Exact(500..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::record::{Cause, test_record};

    #[test]
    fn classes_and_statuses_are_read_and_nonsense_is_named() {
        assert_eq!(Status::parse("5xx"), Ok(Status::Class(5)));
        assert_eq!(Status::parse("4XX"), Ok(Status::Class(4)));
        assert_eq!(Status::parse("503"), Ok(Status::Exact(503)));
        for bad in ["6xx", "50x", "error", "99", "700"] {
            let e = Status::parse(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")) && e.contains("5xx"), "{e}");
        }
    }

    #[test]
    fn five_xx_takes_failures_without_a_status_but_not_a_client_gone() {
        let five = Filter { status: Some(Status::Class(5)), ..Filter::default() };
        assert!(five.matches(&test_record(Some(503), Some(Cause::Upstream5xx))));
        assert!(five.matches(&test_record(None, Some(Cause::ConnectFailed))));
        assert!(!five.matches(&test_record(Some(499), Some(Cause::ClientGone))));
        assert!(!five.matches(&test_record(Some(200), None)));
        let exact = Filter { status: Some(Status::Exact(503)), ..Filter::default() };
        assert!(!exact.matches(&test_record(Some(500), None)));
    }

    #[test]
    fn every_filter_given_must_match() {
        let mut r = test_record(Some(500), Some(Cause::Upstream5xx));
        r.request_id = Some("abc".into());
        let f = Filter {
            version: Some(Version::Canary),
            route: Some("/api/v2/rooms".into()),
            request_id: Some("abc".into()),
            since: Some(UnixMs::from_millis(1_000)),
            ..Filter::default()
        };
        assert!(f.matches(&r));
        assert!(!Filter { version: Some(Version::Stable), ..f.clone() }.matches(&r));
        assert!(!Filter { request_id: Some("abd".into()), ..f.clone() }.matches(&r));
        assert!(!Filter { since: Some(UnixMs::from_millis(1_001)), ..f.clone() }.matches(&r));
        assert!(!Filter { after_seq: Some(1), ..f }.matches(&r));
    }
}
