//! The proxy's own short replies: 413, 502, 504 and friends, each with a small
//! JSON body that says what happened, so clients and logs can tell a proxy
//! error from an upstream's.

use super::body::ProxyBody;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

/// A JSON error reply with `status`, a machine-readable `error` and a message.
pub fn error(status: StatusCode, error: &str, message: &str) -> Response<ProxyBody> {
    let body = json!({"error": error, "message": message, "status": status.as_u16()}).to_string();
    let mut r = Response::new(ProxyBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
