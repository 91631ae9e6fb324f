//! Keys and values: `get` (`/v3/kv/range`), `put` (`/v3/kv/put`) and
//! `delete` (`/v3/kv/deleterange`), their options and answers, and the
//! [`KeyValue`] and [`ResponseHeader`] every answer carries.

use crate::client::Client;
use crate::error::Result;
use crate::wire::{DeleteRangeRequest, PutRequest, RangeRequest, b64, int};
use serde::Deserialize;

/// The header of every answer: where and at which revision etcd answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ResponseHeader {
    #[serde(with = "int")]
    cluster_id: u64,
    #[serde(with = "int")]
    member_id: u64,
    #[serde(with = "int")]
    revision: i64,
    #[serde(with = "int")]
    raft_term: u64,
}

impl ResponseHeader {
    /// The store's revision when the call was served (for a write, the
    /// revision it created).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The id of the member that answered.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The Raft term when the call was served.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }
}

/// A key and its value, with the revisions that made them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    #[serde(with = "b64")]
    key: Vec<u8>,
    #[serde(with = "b64")]
    value: Vec<u8>,
    #[serde(with = "int")]
    create_revision: i64,
    #[serde(with = "int")]
    mod_revision: i64,
    #[serde(with = "int")]
    version: i64,
    #[serde(with = "int")]
    lease: i64,
}

impl KeyValue {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key as text, if it is UTF-8.
    pub fn key_str(&self) -> std::result::Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }

    /// The value (empty when only keys were asked for).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as text, if it is UTF-8.
    pub fn value_str(&self) -> std::result::Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.value)
    }

    /// The revision that created the key (since it was last absent).
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }

    /// The revision of the key's last change.
    pub fn mod_revision(&self) -> i64 {
        self.mod_revision
    }

    /// How many times the key was written since created (1 after the first put).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The lease the key is held by (0: none).
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The key and the value.
    pub fn into_key_value(self) -> (Vec<u8>, Vec<u8>) {
        (self.key, self.value)
    }
}

/// What a ranged `get` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortTarget {
    /// The key, bytewise.
    Key,
    /// The key's version.
    Version,
    /// The revision that created the key.
    Create,
    /// The revision of the key's last change.
    Mod,
    /// The value, bytewise.
    Value,
}

/// Which way a ranged `get` sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// No sorting (key order).
    None,
    /// Smallest first.
    Ascend,
    /// Largest first.
    Descend,
}

impl SortTarget {
    fn name(self) -> &'static str {
        match self {
            SortTarget::Key => "KEY",
            SortTarget::Version => "VERSION",
            SortTarget::Create => "CREATE",
            SortTarget::Mod => "MOD",
            SortTarget::Value => "VALUE",
        }
    }
}

impl SortOrder {
    fn name(self) -> &'static str {
        match self {
            SortOrder::None => "NONE",
            SortOrder::Ascend => "ASCEND",
            SortOrder::Descend => "DESCEND",
        }
    }
}

/// The end of the range of keys starting with `key`: `key` with its last
/// byte below 0xff incremented and what follows dropped; `\0` (to the end of
/// the keyspace) when there is no such byte.
pub(crate) fn prefix_end(key: &[u8]) -> Vec<u8> {
    match key.iter().rposition(|b| *b < 0xff) {
        Some(i) => {
            let mut end = key[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// `key` and the range end that `prefix` asks for (a whole keyspace for an
/// empty prefix).
pub(crate) fn range(key: Vec<u8>, prefix: bool) -> (Vec<u8>, Vec<u8>) {
    match (prefix, key.is_empty()) {
        (false, _) => (key, Vec::new()),
        (true, true) => (vec![0], vec![0]),
        (true, false) => {
            let end = prefix_end(&key);
            (key, end)
        }
    }
}

/// Options of a `get`, shaped like `etcd_client::GetOptions`.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    req: RangeRequest,
    prefix: bool,
}

impl GetOptions {
    /// No options: the one key, at the newest revision.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key starting with the given key.
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// Only how many keys match (the answer's [`GetResponse::count`]), no keys.
    pub fn with_count_only(mut self) -> Self {
        self.req.count_only = true;
        self
    }

    /// Keys without their values.
    pub fn with_keys_only(mut self) -> Self {
        self.req.keys_only = true;
        self
    }

    /// At most `limit` keys (0: no limit).
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.req.limit = limit;
        self
    }

    /// The keys as they were at `revision` (0: the newest).
    pub fn with_revision(mut self, revision: i64) -> Self {
        self.req.revision = revision;
        self
    }

    /// Sorted by `target` in `order`.
    pub fn with_sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.req.sort_target = Some(target.name());
        self.req.sort_order = Some(order.name());
        self
    }

    /// The request for `key`.
    pub(crate) fn request(self, key: Vec<u8>) -> RangeRequest {
        let (key, range_end) = range(key, self.prefix);
        RangeRequest { key, range_end, ..self.req }
    }
}

/// The answer to a `get`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GetResponse {
    header: Option<ResponseHeader>,
    kvs: Vec<KeyValue>,
    more: bool,
    #[serde(with = "int")]
    count: i64,
}

impl GetResponse {
    /// The answer's header (its revision).
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// The keys found, in the order asked for.
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }

    /// The keys found, taken out.
    pub fn take_kvs(&mut self) -> Vec<KeyValue> {
        std::mem::take(&mut self.kvs)
    }

    /// Whether more keys matched than the limit let through.
    pub fn more(&self) -> bool {
        self.more
    }

    /// How many keys matched (the limit aside).
    pub fn count(&self) -> i64 {
        self.count
    }
}

/// Options of a `put`, shaped like `etcd_client::PutOptions`.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    lease: i64,
}

impl PutOptions {
    /// No options: a key held by no lease.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key is held by `lease`: it goes when the lease does.
    pub fn with_lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }

    /// The request putting `value` at `key`.
    pub(crate) fn request(self, key: Vec<u8>, value: Vec<u8>) -> PutRequest {
        PutRequest { key, value, lease: self.lease }
    }
}

/// The answer to a `put`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PutResponse {
    header: Option<ResponseHeader>,
}

impl PutResponse {
    /// The answer's header (the revision the put created).
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }
}

/// Options of a `delete`, shaped like `etcd_client::DeleteOptions`.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    prefix: bool,
}

impl DeleteOptions {
    /// No options: the one key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key starting with the given key.
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// The request deleting `key`.
    pub(crate) fn request(self, key: Vec<u8>) -> DeleteRangeRequest {
        let (key, range_end) = range(key, self.prefix);
        DeleteRangeRequest { key, range_end }
    }
}

/// The answer to a `delete`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeleteResponse {
    header: Option<ResponseHeader>,
    #[serde(with = "int")]
    deleted: i64,
}

impl DeleteResponse {
    /// The answer's header.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }
}

impl Client {
    /// Reads `key` (or, with options, a range of keys).
    pub async fn get(&self, key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Result<GetResponse> {
        let req = options.unwrap_or_default().request(key.into());
        self.call("/v3/kv/range", &req).await
    }

    /// Writes `value` at `key`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        let req = options.unwrap_or_default().request(key.into(), value.into());
        self.call("/v3/kv/put", &req).await
    }

    /// Deletes `key` (or, with options, every key under a prefix).
    pub async fn delete(
        &self,
        key: impl Into<Vec<u8>>,
        options: Option<DeleteOptions>,
    ) -> Result<DeleteResponse> {
        let req = options.unwrap_or_default().request(key.into());
        self.call("/v3/kv/deleterange", &req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_past_its_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(range(Vec::new(), true), (vec![0], vec![0]));
        assert_eq!(range(b"k".to_vec(), false), (b"k".to_vec(), Vec::new()));
    }

    #[test]
    fn an_answer_reads_with_zero_fields_left_out() {
        let text = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"1","revision":"2",
            "raft_term":"2"},"kvs":[{"key":"L2EvYg==","create_revision":"2","mod_revision":"2",
            "version":"1","value":"eyJ4Ijoiw6kifQ=="}],"count":"1"}"#;
        let r: GetResponse = serde_json::from_str(text).unwrap();
        assert_eq!(r.header().unwrap().revision(), 2);
        let kv = &r.kvs()[0];
        assert_eq!((kv.key_str().unwrap(), kv.value_str().unwrap()), ("/a/b", "{\"x\":\"é\"}"));
        assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()), (2, 2, 1, 0));
        assert_eq!((r.count(), r.more()), (1, false));
        let empty: GetResponse = serde_json::from_str(r#"{"header":{"revision":"9"}}"#).unwrap();
        assert!(empty.kvs().is_empty());
    }

    #[test]
    fn options_make_their_request() {
        let opts =
            GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Descend).with_limit(3);
        let json = serde_json::to_value(opts.request(b"/e/".to_vec())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"key": "L2Uv", "range_end": "L2Uw", "limit": "3",
                "sort_order": "DESCEND", "sort_target": "CREATE"})
        );
    }
}
