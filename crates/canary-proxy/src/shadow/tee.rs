//! A copied request and stable's answer to it, captured as the answer
//! streams to the client: its head when it arrives, each body chunk as it
//! passes (a reference to the same bytes, not a copy). The job is handed
//! to the sender only when the client has had the whole answer.

use super::{Shadow, Skip};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use std::sync::Arc;

/// The request to send again, as the canary will get it.
#[derive(Debug)]
pub struct Copy {
    /// The route label it is measured and compared under.
    pub route: Arc<str>,
    /// The method.
    pub method: Method,
    /// The path and query, as the client sent them.
    pub uri: Uri,
    /// The client's headers, hop-by-hop ones and `Host` removed, the shadow
    /// header added.
    pub headers: HeaderMap,
    /// The body: none, or the client's as it is sent up to stable.
    pub body: Body,
    /// Whether stable is asked again too, to learn its noise.
    pub noise: bool,
}

/// A copy's body.
#[derive(Debug, Clone)]
pub enum Body {
    /// Known whole (empty for most).
    Ready(Bytes),
    /// Being captured as it goes up to stable.
    Captured(Arc<Captured>),
}

/// A request body captured as it streams up, complete once it holds the
/// declared length.
#[derive(Debug)]
pub struct Captured {
    want: usize,
    chunks: std::sync::Mutex<(Vec<Bytes>, usize)>,
}

impl Captured {
    /// A capture of a body of `want` bytes (its `Content-Length`).
    pub fn new(want: usize) -> Arc<Captured> {
        Arc::new(Captured { want, chunks: std::sync::Mutex::new((Vec::new(), 0)) })
    }

    /// Keeps a chunk (a reference to the same bytes).
    pub fn push(&self, data: &Bytes) {
        let mut g = self.chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1 += data.len();
        if g.1 <= self.want {
            g.0.push(data.clone());
        }
    }

    /// The whole body, once all of it went up.
    fn whole(&self) -> Option<Bytes> {
        let g = self.chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (g.1 == self.want).then(|| concat(&g.0, g.1))
    }
}

/// Chunks as one `Bytes` (the one chunk itself when there is one).
fn concat(chunks: &[Bytes], len: usize) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        _ => {
            let mut all = Vec::with_capacity(len);
            chunks.iter().for_each(|c| all.extend_from_slice(c));
            Bytes::from(all)
        }
    }
}

impl Body {
    /// The bytes, if whole.
    pub fn whole(&self) -> Option<Bytes> {
        match self {
            Body::Ready(b) => Some(b.clone()),
            Body::Captured(c) => c.whole(),
        }
    }
}

/// Stable's answer, whole.
#[derive(Debug, Default)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A copy and stable's answer: what the sender sends and compares.
#[derive(Debug)]
pub struct Job {
    /// The request (shared with the request's context: made once).
    pub copy: Arc<Copy>,
    /// Its body, whole.
    pub body: Bytes,
    /// Stable's answer to the user.
    pub stable: Answer,
}

impl Job {
    /// Roughly the bytes it holds, for the bound on memory.
    pub fn size(&self) -> usize {
        let head = |h: &HeaderMap| h.iter().map(|(k, v)| k.as_str().len() + v.len() + 32).sum::<usize>();
        self.body.len() + self.stable.body.len() + head(&self.copy.headers) + head(&self.stable.headers) + 256
    }
}

/// Stable's answer being captured.
#[derive(Debug)]
pub struct Tee {
    shadow: Arc<Shadow>,
    copy: Arc<Copy>,
    status: StatusCode,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    len: usize,
}

/// Whether a content type is server-sent events: a stream, never compared.
fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

impl Tee {
    /// Starts capturing stable's answer with `status` and `headers` to
    /// `copy`, unless it is one not compared (counted why).
    pub fn begin(
        shadow: &Arc<Shadow>,
        copy: Arc<Copy>,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Box<Tee>> {
        if is_event_stream(headers) {
            shadow.skip(Skip::EventStream);
            return None;
        }
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > shadow.options.max_compare) {
            shadow.skip(Skip::TooLarge);
            return None;
        }
        // Only what is compared (content-type is how a JSON body is known):
        // the rest would be copied for nothing.
        let mut kept = HeaderMap::new();
        let names = shadow.options.compare.headers.iter().map(String::as_str);
        for name in names.chain(std::iter::once("content-type")) {
            if let Some(v) = headers.get(name).filter(|_| !kept.contains_key(name)) {
                if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
                    kept.insert(n, v.clone());
                }
            }
        }
        let headers = kept;
        Some(Box::new(Tee { shadow: Arc::clone(shadow), copy, status, headers, chunks: Vec::new(), len: 0 }))
    }

    /// Adds a chunk of the body; `false` once the answer is over the limit
    /// (the capture is then to be dropped, and was counted).
    pub fn push(&mut self, data: &Bytes) -> bool {
        self.len += data.len();
        if self.len > self.shadow.options.max_compare {
            self.shadow.skip(Skip::TooLarge);
            return false;
        }
        self.chunks.push(data.clone());
        true
    }

    /// The answer ended whole: the job is queued, if the request's body
    /// went up whole too (an upstream may answer before reading it all).
    pub fn complete(self) {
        let Tee { shadow, copy, status, headers, chunks, len } = self;
        let Some(sent) = copy.body.whole() else { return shadow.skip(Skip::Incomplete) };
        let body = concat(&chunks, len);
        shadow.enqueue(Job { copy, body: sent, stable: Answer { status, headers, body } });
    }

    /// The answer did not complete: nothing to compare.
    pub fn abandon(self) {
        self.shadow.skip(Skip::Incomplete);
    }
}
