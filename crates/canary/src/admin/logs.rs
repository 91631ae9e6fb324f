//! `GET /api/v2/logs`: the request log (see `canary_proxy::requests`), as
//! `canary logs` reads it: every failure and a sample of the rest, oldest
//! first, filtered.
//!
//! Query: `since=30m` (or `since_ms=<unix ms>`), `version=canary|stable`,
//! `status=5xx|4xx|503`, `route=R`, `path=P`, `user=ID` (hashed here with the
//! deployment's secret) or `user_hash=H`, `request_id=ID`, `errors=true`
//! (the failures of a version only), `limit=N` (the newest N, default and
//! most [`MAX_LIMIT`]).
//!
//! In a cluster the answer is the fleet's (every replica's records merged
//! by time, each naming its `replica`, and `replicas` saying which
//! answered); `scope=node` answers for this replica alone. With
//! `follow=true` `logs_follow` answers instead, with server-sent events.

use super::{AdminState, error};
use crate::cluster::fleet_window::{self, Coverage};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canary_core::Version;
use canary_core::plan::parse_duration_ms;
use canary_core::request::bounded_key;
use canary_core::time::UnixMs;
use canary_proxy::requests::filter::Status;
use canary_proxy::requests::record::{MAX_PATH, cut};
use canary_proxy::requests::user::UserKeySecret;
use canary_proxy::requests::{Filter, Found};
use serde::Deserialize;
use serde_json::json;

/// The most records one answer lists.
pub const MAX_LIMIT: usize = 10_000;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    since: Option<String>,
    since_ms: Option<UnixMs>,
    version: Option<String>,
    status: Option<String>,
    route: Option<String>,
    path: Option<String>,
    user: Option<String>,
    user_hash: Option<String>,
    request_id: Option<String>,
    errors: Option<bool>,
    limit: Option<usize>,
    scope: Option<String>,
    /// Answer with server-sent events (see `logs_follow`).
    pub follow: Option<bool>,
}

/// A query read and checked.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The records asked for.
    pub filter: Filter,
    /// The newest this many.
    pub limit: usize,
    /// The fleet's (in a cluster), or this replica's alone.
    pub fleet: bool,
}

/// The query read at this instant, or the refusal naming what is wrong.
pub fn asked(s: &AdminState, q: &LogsQuery) -> Result<Asked, String> {
    read(q, &s.secret, UnixMs::from(std::time::SystemTime::now()))
}

/// The answer to a query that could not be read.
pub fn refuse(msg: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", msg)
}

/// The answer to `GET /api/v2/logs` without `follow`.
pub async fn answer(s: &AdminState, asked: &Asked) -> Response {
    let (found, coverage) = gather(s, asked).await;
    let mut body = json!({
        "records": found.records,
        "truncated": found.truncated,
        "dropped": found.dropped,
        "scope": if coverage.is_some() { "fleet" } else { "node" },
    });
    if let Some(cov) = coverage {
        body["replicas"] = json!(cov);
    }
    Json(body).into_response()
}

/// `GET /internal/v1/logs`: this replica's records, for the replica
/// gathering the fleet's.
pub async fn internal(State(s): State<AdminState>, Query(q): Query<LogsQuery>) -> Response {
    match asked(&s, &q) {
        Ok(a) => Json(local(&s, &a)).into_response(),
        Err(msg) => refuse(msg),
    }
}

/// The records `asked` names: this replica's, or in a cluster the fleet's
/// with whom they cover.
pub async fn gather(s: &AdminState, asked: &Asked) -> (Found, Option<Coverage>) {
    let mut found = local(s, asked);
    let Some(c) = s.cluster.as_ref().filter(|_| asked.fleet) else { return (found, None) };
    let token = s.cfg.admin_token.as_deref().or(s.cfg.viewer_token.as_deref());
    let path = format!("{}?{}", crate::cluster::LOGS_PATH, peer_query(asked));
    let answers = fleet_window::ask::<Found>(c, &path, token).await;
    let mut cov = Coverage { answered: 1, of: answers.len() + 1, missing: Vec::new() };
    for (id, answer) in answers {
        match answer {
            Some(mut theirs) => {
                theirs.records.iter_mut().for_each(|r| r.replica = Some(id.clone()));
                found.add(theirs);
                cov.answered += 1;
            }
            None => cov.missing.push(id),
        }
    }
    found.finish(asked.limit);
    (found, Some(cov))
}

/// This replica's records, each naming it in a cluster.
fn local(s: &AdminState, asked: &Asked) -> Found {
    let now = UnixMs::from(std::time::SystemTime::now());
    let mut found = s.metrics.requests(&asked.filter, now, asked.limit);
    if let Some(c) = &s.cluster {
        found.records.iter_mut().for_each(|r| r.replica = Some(c.node_id.clone()));
    }
    found
}

/// Reads the query at `now`; the error names the parameter and what it takes.
pub fn read(q: &LogsQuery, secret: &UserKeySecret, now: UnixMs) -> Result<Asked, String> {
    let since = match (&q.since, q.since_ms) {
        (Some(_), Some(_)) => return Err("give `since` or `since_ms`, not both".into()),
        (Some(d), None) => {
            let ms = parse_duration_ms(d).map_err(|e| format!("since `{d}`: {e} (write it like `30m`)"))?;
            Some(UnixMs::from_millis(now.as_millis().saturating_sub(ms)))
        }
        (None, ms) => ms,
    };
    let version = match q.version.as_deref() {
        None => None,
        Some("canary") => Some(Version::Canary),
        Some("stable") => Some(Version::Stable),
        Some(v) => return Err(format!("version `{v}`: expected `canary` or `stable`")),
    };
    let user = match (&q.user, &q.user_hash) {
        (Some(_), Some(_)) => return Err("give `user` or `user_hash`, not both".into()),
        // Cut as the proxy cuts a key before hashing it.
        (Some(id), None) => Some(UserKeySecret::show(secret.hash(bounded_key(id.as_bytes())))),
        (None, h) => h.clone(),
    };
    let fleet = match q.scope.as_deref() {
        None | Some("fleet") => true,
        Some("node") => false,
        Some(other) => return Err(format!("scope `{other}`: expected `fleet` (the default) or `node`")),
    };
    let filter = Filter {
        since,
        after_seq: None,
        version,
        status: q.status.as_deref().map(Status::parse).transpose()?,
        route: q.route.clone(),
        path: q.path.clone(),
        user,
        request_id: q.request_id.as_deref().map(|id| cut(id, MAX_PATH).to_string()),
        errors: q.errors.unwrap_or(false),
    };
    let limit = q.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    Ok(Asked { filter, limit, fleet })
}

/// The query a peer is asked: the same filter, the user already hashed.
fn peer_query(a: &Asked) -> String {
    let f = &a.filter;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", &a.limit.to_string());
    if let Some(t) = f.since {
        q.append_pair("since_ms", &t.to_string());
    }
    if let Some(v) = f.version {
        q.append_pair("version", v.as_str());
    }
    if let Some(st) = f.status {
        q.append_pair("status", &st.to_string());
    }
    let pairs =
        [("route", &f.route), ("path", &f.path), ("user_hash", &f.user), ("request_id", &f.request_id)];
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    if f.errors {
        q.append_pair("errors", "true");
    }
    q.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &str) -> LogsQuery {
        let uri: axum::http::Uri = format!("/api/v2/logs?{pairs}").parse().unwrap();
        Query::<LogsQuery>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn a_query_is_read_and_a_bad_one_named() {
        let secret = UserKeySecret([1; 16]);
        let now = UnixMs::from_millis(10_000_000);
        let a = read(&q("since=30m&version=canary&status=5xx&user=u1"), &secret, now).unwrap();
        assert_eq!(a.filter.since, Some(UnixMs::from_millis(10_000_000 - 1_800_000)));
        assert_eq!(a.filter.version, Some(Version::Canary));
        assert_eq!(a.filter.status, Some(Status::Class(5)));
        assert_eq!(a.filter.user, Some(UserKeySecret::show(secret.hash(b"u1"))));
        assert!(a.fleet);
        for (bad, names) in [
            ("since=soon", "since `soon`"),
            ("version=beta", "version `beta`"),
            ("status=9xx", "status `9xx`"),
            ("scope=galaxy", "scope `galaxy`"),
            ("user=a&user_hash=b", "`user` or `user_hash`"),
        ] {
            let e = read(&q(bad), &secret, now).unwrap_err();
            assert!(e.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn a_peer_is_asked_the_same_with_the_user_hashed() {
        let secret = UserKeySecret([1; 16]);
        let now = UnixMs::from_millis(10_000_000);
        let query = "since=1m&status=503&user=u1&route=%2Fapi%2Fv2%2Frooms&path=%2Fa%20b&errors=true";
        let a = read(&q(query), &secret, now).unwrap();
        assert_eq!(a.filter.path.as_deref(), Some("/a b"));
        let again = read(&q(&peer_query(&a)), &UserKeySecret([9; 16]), now).unwrap();
        assert_eq!(again.filter, a.filter, "a peer with another secret still filters on this one's hash");
        assert_eq!(again.limit, a.limit);
    }
}
