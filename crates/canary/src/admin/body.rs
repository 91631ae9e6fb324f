//! The admin API's request bodies: read within [`LIMIT`], parsed as JSON
//! into the endpoint's type, and every refusal in the API's error shape
//! (`{"error", "message"}`) naming the field at fault and the body expected.
//!
//! axum's own extractors answer a bad body in plain text, with a 422 for a
//! wrong type and without the field's name; these answer 400 (413 past the
//! limit, 415 when the body is not said to be JSON) before the handler runs,
//! so a refused body changes nothing.

use super::error;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;

/// The largest body an admin call takes. The biggest real ones (a deploy, a
/// list of excludes) are a few hundred bytes; this leaves room for long
/// lists without letting a caller make the API buffer megabytes.
pub const LIMIT: usize = 64 * 1024;

/// What an endpoint's body looks like, for its error messages.
pub trait Example {
    /// A body the endpoint takes, as JSON.
    const EXAMPLE: &'static str;
}

/// A required JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: none at all (or only whitespace) is `None`; one
/// that is there must be good. A body sent without any `Content-Type` is
/// read if it is JSON and ignored if not, as these endpoints always did: a
/// rollback is never refused over how its reason was sent.
#[derive(Debug)]
pub struct MaybeJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned + Example> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        match read::<T>(req, false).await? {
            Some(v) => Ok(JsonBody(v)),
            None => Err(invalid(format!("the body is empty; send {}", T::EXAMPLE))),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Example> FromRequest<S> for MaybeJsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        read::<T>(req, true).await.map(MaybeJsonBody)
    }
}

/// The body as `T`; `None` when empty. `optional`: a body without a
/// `Content-Type` that is not good JSON is taken as none.
async fn read<T: DeserializeOwned + Example>(req: Request, optional: bool) -> Result<Option<T>, Response> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > LIMIT as u64) {
        return Err(too_large());
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or(""));
    let untyped = content_type.is_none();
    let is_json = content_type.is_some_and(json_type);
    let bytes = axum::body::to_bytes(req.into_body(), LIMIT).await.map_err(|e| {
        if caused_by_limit(&e) { too_large() } else { invalid(format!("the body could not be read: {e}")) }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if optional && untyped {
        return Ok(parse(&bytes).ok());
    }
    if !is_json {
        let msg = format!("send the body as JSON with `Content-Type: application/json`: {}", T::EXAMPLE);
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", msg));
    }
    parse(&bytes).map(Some).map_err(invalid)
}

/// `application/json`, or a `+json` type, with any parameters.
fn json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as `T`, or why not, naming the field at fault.
fn parse<T: DeserializeOwned + Example>(bytes: &[u8]) -> Result<T, String> {
    // serde would read a list as the fields in order (`[25]` as `{"share":
    // 25}`): every body is an object, named fields only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(format!("the body is a JSON list; send an object: {}", T::EXAMPLE));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| describe(&e, T::EXAMPLE))?;
    // Anything after the value ("{...} {...}", "{...}x") is not one JSON body.
    de.end().map_err(|e| format!("the body is not valid JSON ({e}); send {}", T::EXAMPLE))?;
    Ok(value)
}

fn describe(e: &serde_path_to_error::Error<serde_json::Error>, example: &str) -> String {
    let inner = e.inner();
    if matches!(inner.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof) {
        return format!("the body is not valid JSON ({inner}); send {example}");
    }
    // serde's words for the types, in the API's.
    let mut what = inner
        .to_string()
        .replace("expected f64", "expected a number")
        .replace("a sequence", "a list")
        .replace("type: sequence", "type: list")
        .replace("type: map", "type: object");
    if let Some(i) = what.find("expected struct ") {
        what.truncate(i);
        what.push_str("expected an object");
    }
    match e.path().to_string().as_str() {
        // Missing and unknown fields name themselves; a body that is not an
        // object has no field to name.
        _ if what.starts_with("unknown field") => format!("{what}; send {example}"),
        "." => format!("{what}; send {example}"),
        field => format!("{field}: {what}; send {example}"),
    }
}

fn caused_by_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        src = s.source();
    }
    false
}

/// A 400 `invalid`.
pub fn invalid(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

/// The 413 for a body past [`LIMIT`].
pub fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the admin API's limit of {LIMIT} bytes; send a smaller one"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        share: f64,
        #[serde(default)]
        tags: Vec<String>,
    }

    impl Example for Body {
        const EXAMPLE: &'static str = r#"{"share": 25}"#;
    }

    fn message(body: &str) -> String {
        let e = serde_path_to_error::deserialize::<_, Body>(&mut serde_json::Deserializer::from_str(body))
            .expect_err(body);
        describe(&e, Body::EXAMPLE)
    }

    #[test]
    fn each_refusal_names_the_field_and_the_body_expected() {
        let cases = [
            (r#"{"share": 25"#, "the body is not valid JSON (EOF while parsing"),
            (r#"{"share": "ten"}"#, r#"share: invalid type: string "ten", expected a number"#),
            (r#"{"share": 5, "tags": "a"}"#, r#"tags: invalid type: string "a", expected a list"#),
            (r#"{"share": 5, "tags": [1]}"#, "tags[0]: invalid type: integer `1`, expected a string"),
            (r#"{}"#, "missing field `share`"),
            (r#"{"share": 5, "shar": 1}"#, "unknown field `shar`, expected `share` or `tags`"),
            (r#"25"#, "invalid type: integer `25`, expected an object; send"),
        ];
        for (body, want) in cases {
            let got = message(body);
            assert!(got.starts_with(want), "{body}: {got}");
            assert!(got.ends_with(r#"send {"share": 25}"#), "{body}: {got}");
        }
    }

    #[test]
    fn a_list_is_not_a_body() {
        let err = parse::<Body>(b" [25]").unwrap_err();
        assert!(err.starts_with("the body is a JSON list"), "{err}");
        assert!(parse::<Body>(br#"{"share": 25}"#).is_ok());
        assert!(parse::<Body>(br#"{"share": 25} {}"#).is_err(), "one value only");
    }

    #[test]
    fn json_types_are_recognised() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge+json",
        ] {
            assert!(json_type(ct), "{ct}");
        }
        for ct in ["text/plain", "application/x-www-form-urlencoded", "", "application/jsonp"] {
            assert!(!json_type(ct), "{ct}");
        }
    }
}
