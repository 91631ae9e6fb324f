//! Transactions (`/v3/kv/txn`): compares on keys, the operations to run
//! when all hold and those to run otherwise, and the answer of each.
//! Shaped like `etcd_client`'s `Txn`, `Compare`, `TxnOp` and `TxnResponse`.

use crate::client::Client;
use crate::error::Result;
use crate::kv::{
    DeleteOptions, DeleteResponse, GetOptions, GetResponse, PutOptions, PutResponse, ResponseHeader,
};
use crate::wire::{CompareForm, RequestOp, TargetUnion, TxnRequest};
use serde::Deserialize;

/// How a compare holds a key's field to its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// The field equals the value.
    Equal,
    /// The field is greater than the value.
    Greater,
    /// The field is less than the value.
    Less,
    /// The field differs from the value.
    NotEqual,
}

impl CompareOp {
    fn name(self) -> &'static str {
        match self {
            CompareOp::Equal => "EQUAL",
            CompareOp::Greater => "GREATER",
            CompareOp::Less => "LESS",
            CompareOp::NotEqual => "NOT_EQUAL",
        }
    }
}

/// A condition on one key. An absent key has version, revisions and lease 0.
#[derive(Debug, Clone)]
pub struct Compare(CompareForm);

impl Compare {
    fn new(key: impl Into<Vec<u8>>, op: CompareOp, target: &'static str, union: TargetUnion) -> Self {
        Compare(CompareForm { result: op.name(), target, key: key.into(), union })
    }

    /// On the key's version (how many writes since it was created).
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Self {
        Self::new(key, op, "VERSION", TargetUnion::Version(version))
    }

    /// On the revision that created the key (0: absent).
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Self {
        Self::new(key, op, "CREATE", TargetUnion::CreateRevision(revision))
    }

    /// On the revision of the key's last change (0: absent).
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Self {
        Self::new(key, op, "MOD", TargetUnion::ModRevision(revision))
    }

    /// On the key's value, bytewise.
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Self::new(key, op, "VALUE", TargetUnion::Value(value.into()))
    }

    /// On the lease holding the key (0: none).
    pub fn lease(key: impl Into<Vec<u8>>, op: CompareOp, lease: i64) -> Self {
        Self::new(key, op, "LEASE", TargetUnion::Lease(lease))
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub struct TxnOp(RequestOp);

impl TxnOp {
    /// Writes `value` at `key`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, options: Option<PutOptions>) -> Self {
        TxnOp(RequestOp::Put(options.unwrap_or_default().request(key.into(), value.into())))
    }

    /// Reads `key` (or, with options, a range).
    pub fn get(key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Self {
        TxnOp(RequestOp::Range(options.unwrap_or_default().request(key.into())))
    }

    /// Deletes `key` (or, with options, a prefix).
    pub fn delete(key: impl Into<Vec<u8>>, options: Option<DeleteOptions>) -> Self {
        TxnOp(RequestOp::DeleteRange(options.unwrap_or_default().request(key.into())))
    }
}

/// A transaction: `when` every compare holds, `and_then` runs, else `or_else`.
#[derive(Debug, Clone, Default)]
pub struct Txn(TxnRequest);

impl Txn {
    /// An empty transaction (no compares: `and_then` runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The compares, all of which must hold.
    pub fn when(mut self, compares: impl Into<Vec<Compare>>) -> Self {
        self.0.compare = compares.into().into_iter().map(|c| c.0).collect();
        self
    }

    /// The operations run when every compare holds.
    pub fn and_then(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.0.success = ops.into().into_iter().map(|o| o.0).collect();
        self
    }

    /// The operations run otherwise.
    pub fn or_else(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.0.failure = ops.into().into_iter().map(|o| o.0).collect();
        self
    }
}

/// The answer of one operation of a transaction.
#[derive(Debug, Clone)]
pub enum TxnOpResponse {
    /// A `put`'s.
    Put(PutResponse),
    /// A `get`'s.
    Get(GetResponse),
    /// A `delete`'s.
    Delete(DeleteResponse),
}

/// A transaction's answer as the gateway writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TxnForm {
    header: Option<ResponseHeader>,
    succeeded: bool,
    responses: Vec<ResponseOpForm>,
}

/// `etcdserverpb.ResponseOp`: one field, named by the operation's kind.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResponseOpForm {
    response_range: Option<GetResponse>,
    response_put: Option<PutResponse>,
    response_delete_range: Option<DeleteResponse>,
}

impl ResponseOpForm {
    fn into_op(self) -> Option<TxnOpResponse> {
        let get = self.response_range.map(TxnOpResponse::Get);
        get.or(self.response_put.map(TxnOpResponse::Put))
            .or(self.response_delete_range.map(TxnOpResponse::Delete))
    }
}

/// The answer to a transaction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "TxnForm")]
pub struct TxnResponse {
    header: Option<ResponseHeader>,
    succeeded: bool,
    ops: Vec<TxnOpResponse>,
}

impl From<TxnForm> for TxnResponse {
    fn from(f: TxnForm) -> Self {
        let ops = f.responses.into_iter().filter_map(ResponseOpForm::into_op).collect();
        TxnResponse { header: f.header, succeeded: f.succeeded, ops }
    }
}

impl TxnResponse {
    /// The answer's header (for a transaction that wrote, the revision it created).
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// Whether every compare held (so `and_then` ran, not `or_else`).
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// The answers of the operations that ran, in order.
    pub fn op_responses(&self) -> Vec<TxnOpResponse> {
        self.ops.clone()
    }
}

impl Client {
    /// Runs `txn` atomically.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.call("/v3/kv/txn", &txn.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_writes_the_gateway_form() {
        let txn = Txn::new()
            .when([
                Compare::create_revision("k", CompareOp::Equal, 0),
                Compare::value("k", CompareOp::NotEqual, "v"),
            ])
            .and_then([TxnOp::put("k", "v", Some(PutOptions::new().with_lease(7)))])
            .or_else([TxnOp::get("k", None), TxnOp::delete("d", Some(DeleteOptions::new().with_prefix()))]);
        let json = serde_json::to_value(&txn.0).unwrap();
        let want = serde_json::json!({
            "compare": [
                {"result": "EQUAL", "target": "CREATE", "key": "aw==", "create_revision": "0"},
                {"result": "NOT_EQUAL", "target": "VALUE", "key": "aw==", "value": "dg=="},
            ],
            "success": [{"request_put": {"key": "aw==", "value": "dg==", "lease": "7"}}],
            "failure": [
                {"request_range": {"key": "aw=="}},
                {"request_delete_range": {"key": "ZA==", "range_end": "ZQ=="}},
            ],
        });
        assert_eq!(json, want);
    }

    #[test]
    fn an_answer_reads_each_operation() {
        let text = r#"{"header":{"revision":"4"},"responses":[{"response_range":{"header":{"revision":"4"},
            "kvs":[{"key":"aw==","create_revision":"2","mod_revision":"2","version":"1","value":"dg=="}],
            "count":"1"}},{"response_delete_range":{"header":{"revision":"4"}}},{"response_put":{}}]}"#;
        let r: TxnResponse = serde_json::from_str(text).unwrap();
        assert!(!r.succeeded());
        let ops = r.op_responses();
        assert!(matches!(&ops[0], TxnOpResponse::Get(g) if g.kvs()[0].value() == b"v"));
        assert!(matches!(&ops[1], TxnOpResponse::Delete(d) if d.deleted() == 0));
        assert!(matches!(&ops[2], TxnOpResponse::Put(_)));
    }
}
