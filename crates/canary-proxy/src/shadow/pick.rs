//! The request path's part of shadowing: whether a request stable serves
//! is copied, and the copy. Every check is a comparison or a draw; the
//! copy (a header map and the body's bytes) is made only for a request
//! chosen.

use super::tee::{Body, Copy};
use super::{Shadow, Skip};
use crate::headers::{X_CANARY, strip_hop_by_hop};
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::sync::Arc;

/// GET, HEAD and OPTIONS: copied on every route, and the only methods
/// stable is asked twice for (a second write to stable is never made).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A request's facts the choice reads.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its normalised path.
    pub path: &'a str,
    /// Whether it asks for an upgrade.
    pub upgrade: bool,
    /// Its body's length, if known (`Some(0)`: none).
    pub body: Option<u64>,
}

/// Whether the request is copied (and whether stable is asked again too),
/// or why not. `draw` is a uniform random number, `now_s` the second.
pub fn choose(s: &Shadow, f: &Facts<'_>, draw: u64, now_s: u64) -> Result<bool, Skip> {
    let o = &s.options;
    if f.upgrade {
        return Err(Skip::Upgrade);
    }
    if !o.copies(f.method, f.path) {
        return Err(Skip::Method);
    }
    if f.body.is_none_or(|n| n > o.max_body as u64) {
        return Err(Skip::Body);
    }
    if draw > crate::requests::threshold(o.sample) {
        return Err(Skip::Sampled);
    }
    if !s.admit(now_s) {
        return Err(Skip::Rate);
    }
    Ok(is_safe(f.method) && draw.rotate_left(32) <= crate::requests::threshold(o.noise_sample))
}

/// The copy of a chosen request: its headers as the client sent them,
/// less hop-by-hop ones, `Host` (the canary's is its own) and the
/// override, plus the shadow header.
pub fn copy(
    s: &Shadow,
    route: Arc<str>,
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Body,
    noise: bool,
) -> Arc<Copy> {
    let mut h = headers;
    strip_hop_by_hop(&mut h);
    h.remove(http::header::HOST);
    h.remove(X_CANARY);
    h.remove(http::header::EXPECT);
    h.insert(s.options.header.clone(), HeaderValue::from_static("1"));
    let uri = uri.path_and_query().map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    Arc::new(Copy { route, method: method.clone(), uri, headers: h, body, noise })
}
