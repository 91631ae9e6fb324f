//! gRPC calls through the proxy: how they are recognised, labelled and judged.
//!
//! A gRPC call is a POST whose `content-type` is `application/grpc` (or
//! `application/grpc+proto` and the like). Its route label is its method
//! path, `/package.Service/Method`. Its outcome is its `grpc-status`, which
//! an HTTP status cannot tell (a failed call is still a 200): in the trailers
//! at the end of the response body, or in the headers of a trailers-only
//! response. A status in the configured set ([`Codes`]) counts as an error
//! for the metrics and the judge, recorded when the status arrives; a 200
//! response that ends without any `grpc-status` is what gRPC clients see as
//! UNKNOWN, and counts as such.

use canary_core::grpc_codes::{Codes, NAMES};
use http::{HeaderMap, Method, header};

/// UNKNOWN: what a call without a `grpc-status` amounts to.
const UNKNOWN: u32 = 2;

/// The longest method path used as a route label; longer ones get the
/// ordinary path label.
const MAX_LABEL: usize = 200;

/// Whether a request is a gRPC call.
pub fn is_call(method: &Method, headers: &HeaderMap) -> bool {
    // The method first: most requests are not POSTs, and it costs no lookup.
    *method == Method::POST
        && headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The route label of a call to `path`: the path itself when it has the
/// shape of a method, `/package.Service/Method`.
pub fn label(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let fine = !service.is_empty() && !method.is_empty() && !method.contains('/') && path.len() <= MAX_LABEL;
    fine.then_some(path)
}

/// The `grpc-status` in `headers`, if there is one (an unreadable value
/// reads as UNKNOWN, as clients take it).
pub fn status(headers: &HeaderMap) -> Option<u32> {
    let v = headers.get("grpc-status")?;
    Some(std::str::from_utf8(v.as_bytes()).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(UNKNOWN))
}

/// A counted failure, for the recent errors list.
pub fn describe(code: u32, headers: Option<&HeaderMap>) -> String {
    let name = NAMES.get(code as usize).copied().unwrap_or("unknown code");
    let message = headers.and_then(|h| h.get("grpc-message")).and_then(|m| m.to_str().ok());
    match (headers, message) {
        (None, _) => format!("the call ended without a grpc-status (read as {UNKNOWN} UNKNOWN)"),
        (Some(_), Some(m)) if !m.is_empty() => format!("grpc-status {code} {name}: {m}"),
        (Some(_), _) => format!("grpc-status {code} {name}"),
    }
}

/// A call whose response is streaming: its status is still to come.
#[derive(Debug)]
pub struct Pending {
    /// The codes that count.
    pub codes: Codes,
    /// The method path, for the error record.
    pub path: Box<str>,
}

impl Pending {
    /// The error to count, if the call ended with one; `trailers` is `None`
    /// when the body ended without any.
    pub fn ended(&self, trailers: Option<&HeaderMap>) -> Option<String> {
        let code = trailers.and_then(status).unwrap_or(UNKNOWN);
        // Trailers without a grpc-status are no status at all.
        let trailers = trailers.filter(|t| t.contains_key("grpc-status"));
        self.codes.counts(code).then(|| describe(code, trailers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::grpc_codes::CodeName;
    use http::HeaderValue;

    #[test]
    fn codes_by_number_or_name_and_the_default_set() {
        let d = Codes::default();
        assert!([2, 4, 8, 13, 14, 15].iter().all(|&c| d.counts(c)));
        assert!(![0, 1, 3, 5, 12, 16, 40].iter().any(|&c| d.counts(c)));
        let c = Codes::parse(&[CodeName::Number(14), CodeName::Name("internal".into())]).unwrap();
        assert!(c.counts(14) && c.counts(13) && !c.counts(2));
        for bad in [CodeName::Number(0), CodeName::Number(17), CodeName::Name("NOPE".into())] {
            assert!(Codes::parse(&[bad]).is_err());
        }
    }

    #[test]
    fn calls_are_grpc_posts_labelled_by_method() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
        assert!(is_call(&Method::POST, &h));
        assert!(!is_call(&Method::GET, &h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_call(&Method::POST, &h));
        assert_eq!(label("/shop.Cart/Add"), Some("/shop.Cart/Add"));
        assert_eq!(label("/a/b/c"), None);
        assert_eq!(label("/onlyone"), None);
    }

    #[test]
    fn the_status_comes_from_trailers_or_is_unknown() {
        let p = Pending { codes: Codes::default(), path: "/a.B/C".into() };
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(p.ended(Some(&t)), None);
        t.insert("grpc-status", HeaderValue::from_static("14"));
        t.insert("grpc-message", HeaderValue::from_static("try later"));
        assert_eq!(p.ended(Some(&t)).unwrap(), "grpc-status 14 UNAVAILABLE: try later");
        t.insert("grpc-status", HeaderValue::from_static("5"));
        assert_eq!(p.ended(Some(&t)), None, "NOT_FOUND is the caller's");
        assert!(p.ended(None).unwrap().contains("without a grpc-status"));
        assert!(p.ended(Some(&HeaderMap::new())).unwrap().contains("without a grpc-status"));
    }
}
