//! Watches (`/v3/watch`): a key's or a prefix's changes as they happen, or
//! from a past revision on.
//!
//! The gateway answers a watch request with an HTTP answer that never ends
//! while the watch lasts: one JSON object per message (`{"result": ...}`,
//! or `{"error": {...}}` when etcd ends the stream with an error), each
//! followed by a newline. The first message confirms the watch was created;
//! [`Client::watch`] waits for it (within the per-try timeout) so that once
//! it returns, no change after the start revision can be missed. A watch
//! whose start revision was compacted away is created, then canceled at
//! once: [`WatchResponse::canceled`] with [`WatchResponse::compact_revision`]
//! set. Dropping the [`WatchStream`] closes its connection, which cancels
//! the watch on etcd.

use crate::client::{self, Client};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::frame::Frames;
use crate::kv::{KeyValue, ResponseHeader, range};
use crate::wire::{StreamItem, WatchCreateRequest, WatchRequest, int};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Deserializer};

/// Options of a watch, shaped like `etcd_client::WatchOptions`.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    prefix: bool,
    start_revision: i64,
}

impl WatchOptions {
    /// No options: the one key, from the next change on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key starting with the given key.
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// Changes from `revision` on, the past ones first (0: from now).
    pub fn with_start_revision(mut self, revision: i64) -> Self {
        self.start_revision = revision;
        self
    }

    fn request(self, key: Vec<u8>) -> WatchRequest {
        let (key, range_end) = range(key, self.prefix);
        WatchRequest {
            create_request: WatchCreateRequest { key, range_end, start_revision: self.start_revision },
        }
    }
}

/// What a change did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventType {
    /// The key was written.
    #[default]
    Put,
    /// The key was deleted (or its lease ended).
    Delete,
}

/// The event type as the gateway writes it: by name, or by number; absent for a put.
fn event_type<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<EventType, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if s == "DELETE" => Ok(EventType::Delete),
        serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(EventType::Delete),
        _ => Ok(EventType::Put),
    }
}

/// One change to one key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "type", deserialize_with = "event_type")]
    kind: EventType,
    kv: Option<KeyValue>,
}

impl Event {
    /// A put or a delete.
    pub fn event_type(&self) -> EventType {
        self.kind
    }

    /// The key after the change: for a delete, the key with the deleting
    /// revision as its `mod_revision` and no value.
    pub fn kv(&self) -> Option<&KeyValue> {
        self.kv.as_ref()
    }
}

/// One message of a watch: events, or a change in the watch itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WatchResponse {
    header: Option<ResponseHeader>,
    #[serde(with = "int")]
    watch_id: i64,
    created: bool,
    canceled: bool,
    #[serde(with = "int")]
    compact_revision: i64,
    cancel_reason: String,
    events: Vec<Event>,
}

impl WatchResponse {
    /// The message's header.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// The watch's id on its stream.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// Whether this message confirms the watch's creation.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Whether etcd ended the watch: no message follows.
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// When the watch was canceled because its start revision was
    /// compacted: the oldest revision still kept (0 otherwise).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Why etcd canceled the watch, if it said.
    pub fn cancel_reason(&self) -> &str {
        &self.cancel_reason
    }

    /// The changes, in revision order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

/// A watch's messages as they come; the watch ends when this is dropped.
#[derive(Debug)]
pub struct WatchStream {
    endpoint: String,
    body: Incoming,
    frames: Frames,
    /// A message read while the watch was being opened, not yet handed out.
    pending: Option<WatchResponse>,
    /// The stream has ended (canceled, failed, or closed by etcd).
    done: bool,
}

impl WatchStream {
    /// The next message: `Ok(None)` once the watch has ended (after a
    /// canceled message, or when etcd closed the stream); an error when the
    /// connection broke or etcd ended the stream with one. Cancel-safe: a
    /// call dropped before it returns (say, by a timeout) loses no message.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>> {
        if let Some(r) = self.pending.take() {
            return Ok(Some(r));
        }
        while !self.done {
            if let Some(r) = self.buffered()? {
                return Ok(Some(r));
            }
            self.receive().await?;
        }
        Ok(None)
    }

    /// A whole message already received, if any.
    fn buffered(&mut self) -> Result<Option<WatchResponse>> {
        let item = self.frames.next::<StreamItem<WatchResponse>>().map_err(|e| self.decode(e.to_string()))?;
        match item {
            None => Ok(None),
            Some(StreamItem { error: Some(e), .. }) => {
                self.done = true;
                Err(e.into_error(&self.endpoint))
            }
            Some(StreamItem { result: Some(r), .. }) => {
                self.done = r.canceled;
                Ok(Some(r))
            }
            Some(_) => Err(self.decode("a message with neither result nor error".into())),
        }
    }

    /// Waits for more bytes; marks the end of the stream.
    async fn receive(&mut self) -> Result<()> {
        match self.body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.frames.push(&data);
                }
                Ok(())
            }
            Some(Err(e)) => {
                self.done = true;
                Err(Error::Transport {
                    endpoint: self.endpoint.clone(),
                    detail: format!("watch stream: {}", client::causes(&e)),
                })
            }
            None if self.frames.has_partial() => {
                self.done = true;
                Err(self.decode("the stream ended inside a message".into()))
            }
            None => {
                self.done = true;
                Ok(())
            }
        }
    }

    fn decode(&self, detail: String) -> Error {
        Error::Decode { endpoint: self.endpoint.clone(), detail }
    }
}

impl Client {
    /// Watches `key` (or, with options, a prefix, from a revision). Returns
    /// once etcd has confirmed the watch.
    pub async fn watch(&self, key: impl Into<Vec<u8>>, options: Option<WatchOptions>) -> Result<WatchStream> {
        let body = client::encode(&options.unwrap_or_default().request(key.into()))?;
        self.failover(|c, i| {
            let body = body.clone();
            async move {
                let ep = c.endpoint(i);
                c.within_try(ep, c.open_watch(ep, body)).await
            }
        })
        .await
    }

    /// One try on `ep`: the stream, once its first message has come. That
    /// message is kept for [`WatchStream::message`] unless it only confirms
    /// the creation.
    async fn open_watch(&self, ep: &Endpoint, body: Bytes) -> Result<WatchStream> {
        let resp = self.open(ep, "/v3/watch", body).await?;
        let mut stream = WatchStream {
            endpoint: ep.name().into(),
            body: resp.into_body(),
            frames: Frames::default(),
            pending: None,
            done: false,
        };
        let first = loop {
            if let Some(r) = stream.buffered()? {
                break r;
            }
            if stream.done {
                let detail = "the watch stream ended before etcd confirmed the watch".into();
                return Err(Error::Transport { endpoint: ep.name().into(), detail });
            }
            stream.receive().await?;
        };
        if first.canceled() || !first.events().is_empty() || !first.created() {
            stream.pending = Some(first);
        }
        Ok(stream)
    }
}
