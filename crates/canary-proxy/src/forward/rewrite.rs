//! The request as the upstream gets it: hop-by-hop headers gone,
//! `x-forwarded-*` set, the upstream's path prefix and `Host`, and for an
//! HTTP/2 upstream its pseudo-headers.

use super::ctx::Peer;
use super::limits;
use crate::headers::{set_forwarded, strip_present};
use crate::settings::Settings;
use crate::upstream::request_body::UpstreamReqBody;
use canary_core::upstream::Upstream;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Uri, header};
use hyper::body::Incoming;

/// A client's request made ready to forward; `hop`: whether it has
/// hop-by-hop headers (`headers::has_hop_by_hop`).
pub(super) fn prepare(
    req: Request<Incoming>,
    peer: &Peer,
    hop: bool,
    cfg: &Settings,
) -> Request<UpstreamReqBody> {
    let (mut parts, body) = req.into_parts();
    if hop {
        strip_present(&mut parts.headers);
    }
    add_forwarded(&mut parts, peer);
    let body = limits::limited(body, cfg.proxy.max_body_bytes, cfg.proxy.body_read_timeout);
    Request::from_parts(parts, body)
}

/// Sets `x-forwarded-*` on a request from `peer`.
pub(super) fn add_forwarded(parts: &mut http::request::Parts, peer: &Peer) {
    // HTTP/2 carries the host in the `:authority` pseudo-header, not `Host`.
    // (The upstream's own `Host` replaces the client's later, in `retarget`.)
    let client_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    set_forwarded(&mut parts.headers, peer.ip(), client_host);
}

/// Points the request at `up`: its path prefix and its `Host`.
pub(super) fn retarget(req: &mut Request<UpstreamReqBody>, up: &Upstream) {
    // A request line in origin form (`/path?query`) is already what the
    // upstream needs when there is no prefix: leave it, saving a parse.
    let origin_form = req.uri().scheme().is_none() && req.uri().authority().is_none();
    if !(origin_form && up.base_path().is_empty()) {
        let pq = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        if let Ok(uri) = Uri::try_from(format!("{}{}", up.base_path(), pq)) {
            *req.uri_mut() = uri;
        }
    }
    req.headers_mut().insert(header::HOST, up.host_header().clone());
}

/// An HTTP/2 request names its target in the `:scheme` and `:authority`
/// pseudo-headers, which hyper takes from an absolute URI, instead of `Host`.
pub(super) fn to_h2(req: &mut Request<UpstreamReqBody>, up: &Upstream, te_trailers: bool) {
    let pq = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri =
        Uri::builder().scheme(up.h2_scheme()).authority(up.authority().clone()).path_and_query(pq).build();
    if let Ok(uri) = uri {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = http::Version::HTTP_2;
    req.headers_mut().remove(header::HOST);
    if te_trailers {
        req.headers_mut().insert(header::TE, HeaderValue::from_static("trailers"));
    }
}
