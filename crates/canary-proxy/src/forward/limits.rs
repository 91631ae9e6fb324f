//! The limits phase: a request body declared over the limit is answered 413
//! before anything is sent, and one that grows past it, or stalls, while it
//! streams is cut off (see `upstream::request_body`).

use crate::body::ProxyBody;
use crate::reply;
use crate::settings::Settings;
use crate::upstream::request_body::{ClientBody, UpstreamReqBody};
use http::{Request, Response, StatusCode, header};
use http_body_util::Limited;
use hyper::body::Incoming;

/// The 413 for a request whose declared length is over the limit.
pub(super) fn too_large(cfg: &Settings, req: &Request<Incoming>) -> Option<Response<ProxyBody>> {
    let len = req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
    (len > cfg.proxy.max_body_bytes).then(|| {
        let msg =
            format!("request body of {len} bytes exceeds the limit of {} bytes", cfg.proxy.max_body_bytes);
        reply::error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &msg)
    })
}

/// The client's body as it goes upstream: cut off past `limit` bytes and
/// after a pause longer than `idle`.
pub(super) fn limited(body: Incoming, limit: u64, idle: std::time::Duration) -> UpstreamReqBody {
    // Limited counts bytes as they stream, catching chunked bodies that grow
    // past the limit without declaring a length.
    let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    UpstreamReqBody::Client(ClientBody::new(body, idle))
}
