//! The JSON forms etcd's gateway reads and writes, as grpc-gateway maps
//! etcd's protobuf messages: `bytes` fields (keys, values) in base64, 64-bit
//! integers as JSON strings, enums by name, zero and empty fields left out.
//! Also the envelope of a streamed answer (`{"result": ...}` or
//! `{"error": {...}}`) and the error bodies of a failed call.

use crate::error::{CODE_DEADLINE_EXCEEDED, CODE_UNAVAILABLE, Error};
use serde::{Deserialize, Serialize};

/// `bytes` fields: base64 (standard alphabet, padded) both ways.
pub(crate) mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as base64.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads base64 (null reads as empty).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// 64-bit integers: written as strings (as the gateway does), read from a
/// string or a number.
pub(crate) mod int {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    /// Writes `v` as a JSON string.
    pub(crate) fn serialize<S: Serializer, T: Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads a JSON string or number (null reads as the default).
    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr + Default,
        T::Err: Display,
    {
        let text = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => return Ok(T::default()),
            other => return Err(serde::de::Error::custom(format!("expected an integer, found {other}"))),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether an integer field is left out (protobuf's zero value).
pub(crate) fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Whether a boolean field is left out.
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

/// `etcdserverpb.RangeRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RangeRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_zero")]
    pub limit: i64,
    #[serde(with = "int", skip_serializing_if = "is_zero")]
    pub revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_target: Option<&'static str>,
    #[serde(skip_serializing_if = "is_false")]
    pub keys_only: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub count_only: bool,
}

/// `etcdserverpb.PutRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PutRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64")]
    pub value: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_zero")]
    pub lease: i64,
}

/// `etcdserverpb.DeleteRangeRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct DeleteRangeRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
}

/// The value a compare holds its key to: protobuf's `target_union`, one
/// field named after the target. Always written, zero included.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetUnion {
    Version(#[serde(with = "int")] i64),
    CreateRevision(#[serde(with = "int")] i64),
    ModRevision(#[serde(with = "int")] i64),
    Value(#[serde(with = "b64")] Vec<u8>),
    Lease(#[serde(with = "int")] i64),
}

/// `etcdserverpb.Compare`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompareForm {
    pub result: &'static str,
    pub target: &'static str,
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(flatten)]
    pub union: TargetUnion,
}

/// `etcdserverpb.RequestOp`: one operation of a transaction.
#[derive(Debug, Clone, Serialize)]
pub(crate) enum RequestOp {
    #[serde(rename = "request_range")]
    Range(RangeRequest),
    #[serde(rename = "request_put")]
    Put(PutRequest),
    #[serde(rename = "request_delete_range")]
    DeleteRange(DeleteRangeRequest),
}

/// `etcdserverpb.TxnRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct TxnRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<CompareForm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<RequestOp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<RequestOp>,
}

/// `etcdserverpb.LeaseGrantRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct LeaseGrantRequest {
    #[serde(rename = "TTL", with = "int")]
    pub ttl: i64,
    #[serde(rename = "ID", with = "int", skip_serializing_if = "is_zero")]
    pub id: i64,
}

/// A request naming a lease: `LeaseKeepAliveRequest`, `LeaseRevokeRequest`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeaseId {
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
}

/// `etcdserverpb.WatchRequest` carrying a `WatchCreateRequest`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WatchRequest {
    pub create_request: WatchCreateRequest,
}

/// `etcdserverpb.WatchCreateRequest`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct WatchCreateRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_zero")]
    pub start_revision: i64,
}

/// One message of a streamed answer (watch, lease keep-alive).
#[derive(Debug, Deserialize)]
pub(crate) struct StreamItem<T> {
    pub result: Option<T>,
    pub error: Option<StreamError>,
}

/// The error a streamed answer ends with.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StreamError {
    pub grpc_code: i32,
    pub http_code: u16,
    pub message: String,
}

impl StreamError {
    /// As this crate's error, from `endpoint`.
    pub(crate) fn into_error(self, endpoint: &str) -> Error {
        Error::Status {
            endpoint: endpoint.into(),
            code: self.grpc_code,
            message: self.message,
            http_status: self.http_code,
        }
    }
}

/// The error a failed call answers: `{"error": "...", "code": N, "message": "..."}`
/// for a unary call, `{"error": {"grpc_code": N, "message": ...}}` for a stream;
/// a body that is neither (say, a proxy's page) is named by its HTTP status.
pub(crate) fn error_from_body(endpoint: &str, http_status: u16, body: &[u8]) -> Error {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let inner = if v["error"].is_object() { &v["error"] } else { &v };
    let code = inner["code"].as_i64().or_else(|| inner["grpc_code"].as_i64());
    let message = inner["message"].as_str().or_else(|| inner["error"].as_str());
    let fallback = || String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
    Error::Status {
        endpoint: endpoint.into(),
        code: code.map_or_else(|| code_of_http(http_status), |c| c as i32),
        message: message.map_or_else(fallback, str::to_string),
        http_status,
    }
}

/// The gRPC code grpc-gateway maps to an HTTP status, for bodies without one.
fn code_of_http(status: u16) -> i32 {
    match status {
        503 => CODE_UNAVAILABLE,
        504 => CODE_DEADLINE_EXCEEDED,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_write_bytes_in_base64_and_integers_as_strings() {
        let r = RangeRequest { key: b"/a".to_vec(), limit: 5, count_only: true, ..Default::default() };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json, serde_json::json!({"key": "L2E=", "limit": "5", "count_only": true}));
    }

    #[test]
    fn a_compare_writes_its_target_even_when_zero() {
        let c = CompareForm {
            result: "EQUAL",
            target: "CREATE",
            key: b"k".to_vec(),
            union: TargetUnion::CreateRevision(0),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"result": "EQUAL", "target": "CREATE", "key": "aw==", "create_revision": "0"})
        );
    }

    #[test]
    fn transaction_operations_are_named_by_kind() {
        let t = TxnRequest {
            success: vec![RequestOp::Put(PutRequest { key: b"k".to_vec(), ..Default::default() })],
            ..Default::default()
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json, serde_json::json!({"success": [{"request_put": {"key": "aw==", "value": ""}}]}));
    }

    #[derive(Deserialize)]
    struct Ints {
        #[serde(default, with = "int")]
        a: i64,
        #[serde(default, with = "int")]
        b: u64,
        #[serde(default, with = "int")]
        c: i64,
        #[serde(default, with = "b64")]
        d: Vec<u8>,
    }

    #[test]
    fn integers_read_from_strings_or_numbers_and_absent_is_zero() {
        let v: Ints = serde_json::from_str(r#"{"a": "-7", "b": 15118495548433857066, "d": "eA=="}"#).unwrap();
        assert_eq!((v.a, v.b, v.c, v.d), (-7, 15118495548433857066, 0, b"x".to_vec()));
    }

    #[test]
    fn both_error_bodies_read() {
        let unary = br#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#;
        let e = error_from_body("http://e", 503, unary);
        assert_eq!((e.code(), e.is_transient()), (Some(14), true));
        assert!(e.to_string().contains("etcdserver: no leader"));
        let stream = br#"{"error":{"grpc_code":5,"http_code":404,"message":"lease not found","http_status":"Not Found"}}"#;
        let e = error_from_body("http://e", 404, stream);
        assert_eq!(e.code(), Some(5));
        assert!(e.to_string().contains("lease not found"));
        let e = error_from_body("http://e", 503, b"<html>busy</html>");
        assert_eq!((e.code(), e.is_transient()), (Some(14), true));
        assert!(e.to_string().contains("<html>busy</html>"));
    }
}
