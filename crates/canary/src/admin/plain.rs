//! Errors axum answers on its own, before a handler runs: a query string or
//! path segment it cannot parse (plain text), a method the route does not
//! take (405, empty). Turned into the API's JSON shape, `{"error",
//! "message"}`, so every refusal reads the same to scripts and the CLI.
//! Bodies never get here: `body` refuses them in that shape already.

use super::error;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

/// The longest plain-text error kept as the message.
const MAX_TEXT: usize = 4096;

/// The middleware.
pub async fn as_json(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    if status == StatusCode::METHOD_NOT_ALLOWED && resp.headers().get(header::CONTENT_TYPE).is_none() {
        let allowed =
            resp.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let msg = format!("{method} is not taken by {path}; it takes {allowed}");
        return error(status, "method_not_allowed", msg);
    }
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() && plain) {
        return resp;
    }
    let text = match http_body_util::Limited::new(resp.into_body(), MAX_TEXT).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => "the request was refused".to_string(),
    };
    error(status, "invalid", format!("{method} {path}: {text}"))
}
