//! The client: its endpoints and options, and how one call finds a member
//! that answers. A call starts at the endpoint that last answered; one that
//! cannot connect, does not answer within the per-try timeout, or answers a
//! passing error (no leader, unavailable) is tried on the next endpoint, each
//! endpoint at most once per call. A caller with an overall budget wraps the
//! call in its own timeout and calls again while the error is transient.

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::frame::Frames;
use crate::wire::{self, StreamItem};
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The header grpc-gateway turns into the gRPC metadata `hasleader: true`:
/// a member without a leader then fails the call at once (code 14, "etcdserver:
/// no leader") instead of holding it until etcd's own request timeout.
const REQUIRE_LEADER: &str = "grpc-metadata-hasleader";

type Http = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// How the client connects, shaped like `etcd_client::ConnectOptions`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    connect_timeout: Duration,
    timeout: Duration,
    keep_alive: Option<(Duration, Duration)>,
    require_leader: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            keep_alive: None,
            require_leader: false,
        }
    }
}

impl ConnectOptions {
    /// The defaults: 2 s to connect, 5 s per try, no TCP keep-alive, no
    /// leader required.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest a TCP connection may take to open.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest one try (one endpoint) may take, connecting included;
    /// for a watch, until etcd confirms it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// TCP keep-alive: probes after `interval` idle, every `interval`, for
    /// about `timeout`, so a member that vanished without closing its
    /// connections (a partition) breaks a quiet watch. gRPC's HTTP/2 pings
    /// are not there over HTTP/1.1; this is their counterpart.
    pub fn with_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keep_alive = Some((interval, timeout));
        self
    }

    /// Whether etcd must refuse calls while the member has no leader (see
    /// the crate doc: the `Grpc-Metadata-hasleader` header).
    pub fn with_require_leader(mut self, require_leader: bool) -> Self {
        self.require_leader = require_leader;
        self
    }

    /// The HTTP connector these options describe.
    fn connector(&self) -> HttpConnector {
        let mut c = HttpConnector::new();
        c.set_connect_timeout(Some(self.connect_timeout));
        c.set_nodelay(true);
        if let Some((interval, timeout)) = self.keep_alive {
            let probes = timeout.as_millis().div_ceil(interval.as_millis().max(1)).max(1);
            c.set_keepalive(Some(interval));
            c.set_keepalive_interval(Some(interval));
            c.set_keepalive_retries(Some(u32::try_from(probes).unwrap_or(u32::MAX)));
        }
        c
    }
}

/// How a call's answer is read.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// One JSON object.
    Whole,
    /// The first message of a stream.
    FirstMessage,
}

/// A client of an etcd cluster through its JSON gateway. Cheap to clone:
/// clones share connections and the endpoint last answered.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<Endpoint>,
    http: Http,
    options: ConnectOptions,
    /// The index of the endpoint that last answered: calls start there.
    current: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.inner.endpoints.iter().map(Endpoint::name).collect();
        f.debug_struct("Client").field("endpoints", &names).finish()
    }
}

impl Client {
    /// A client of the members at `endpoints` (`http://host:port`, or
    /// `host:port`). Like `etcd_client::Client::connect` it checks the
    /// endpoints but contacts none: the first call does.
    pub async fn connect<E: AsRef<str>, S: AsRef<[E]>>(
        endpoints: S,
        options: Option<ConnectOptions>,
    ) -> Result<Client> {
        let endpoints: Vec<Endpoint> =
            endpoints.as_ref().iter().map(|e| Endpoint::parse(e.as_ref())).collect::<Result<_>>()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let options = options.unwrap_or_default();
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(options.connector());
        let inner = Inner { endpoints, http, options, current: AtomicUsize::new(0) };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// The endpoint that answered last (where the next call starts), as
    /// `http://host:port`.
    pub fn current_endpoint(&self) -> &str {
        self.endpoint(self.inner.current.load(Ordering::Relaxed)).name()
    }

    /// The endpoint at `i` (in the order given to [`Client::connect`]).
    pub(crate) fn endpoint(&self, i: usize) -> &Endpoint {
        &self.inner.endpoints[i % self.inner.endpoints.len()]
    }

    /// A unary call: `req` posted to `path`, its JSON answer read.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp> {
        self.post(path, req, Answer::Whole).await
    }

    /// A call whose answer is a stream of which only the first message is
    /// wanted (a single lease renewal): the request's body ends after one
    /// message, so etcd ends the answer after one.
    pub(crate) async fn call_once<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp> {
        self.post(path, req, Answer::FirstMessage).await
    }

    /// `req` posted to `path` on each endpoint in turn, `answer` read.
    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        answer: Answer,
    ) -> Result<Resp> {
        let body = encode(req)?;
        self.failover(|c, i| {
            let (body, path) = (body.clone(), path.to_owned());
            async move {
                let ep = c.endpoint(i);
                match answer {
                    Answer::Whole => c.within_try(ep, c.unary(ep, &path, body)).await,
                    Answer::FirstMessage => c.within_try(ep, c.first_of_stream(ep, &path, body)).await,
                }
            }
        })
        .await
    }

    /// Runs `try_one` on each endpoint in turn (given a client and the
    /// endpoint's index), from the one that last answered, until one
    /// succeeds or fails for good; a transient failure moves on. Returns the
    /// last endpoint's error when all failed.
    ///
    /// The tries own what they use (a client clone, the index): a future
    /// borrowing the endpoint would not be `Send` for every lifetime, and
    /// callers spawn these calls on multi-threaded runtimes.
    pub(crate) async fn failover<T, F, Fut>(&self, try_one: F) -> Result<T>
    where
        F: Fn(Client, usize) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let n = self.inner.endpoints.len();
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut last = Error::NoEndpoints;
        for i in (0..n).map(|k| (start + k) % n) {
            // Until this try answers, the next call starts past this
            // endpoint: a try its caller's own timeout cuts short (a member
            // that accepts and never answers) leaves it behind too.
            self.inner.current.store((i + 1) % n, Ordering::Relaxed);
            match try_one(self.clone(), i).await {
                Err(e) if e.is_transient() => last = e,
                result => {
                    if result.is_ok() || matches!(result, Err(Error::Status { .. })) {
                        self.inner.current.store(i, Ordering::Relaxed);
                    }
                    return result;
                }
            }
        }
        Err(last)
    }

    /// `attempt` bounded by the per-try timeout.
    pub(crate) async fn within_try<T>(
        &self,
        ep: &Endpoint,
        attempt: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.inner.options.timeout;
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| Error::Timeout { endpoint: ep.name().into(), timeout })?
    }

    /// One unary try on `ep`.
    async fn unary<Resp: DeserializeOwned>(&self, ep: &Endpoint, path: &str, body: Bytes) -> Result<Resp> {
        let resp = self.open(ep, path, body).await?;
        let bytes = resp.into_body().collect().await.map_err(|e| transport(ep, &e))?.to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| decode(ep, &e))
    }

    /// One try on `ep` of a streamed answer's first message.
    async fn first_of_stream<Resp: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        path: &str,
        body: Bytes,
    ) -> Result<Resp> {
        let resp = self.open(ep, path, body).await?;
        let bytes = resp.into_body().collect().await.map_err(|e| transport(ep, &e))?.to_bytes();
        let mut frames = Frames::default();
        frames.push(&bytes);
        match frames.next::<StreamItem<Resp>>().map_err(|e| decode(ep, &e))? {
            Some(StreamItem { result: Some(r), .. }) => Ok(r),
            Some(StreamItem { error: Some(e), .. }) => Err(e.into_error(ep.name())),
            _ => Err(Error::Decode {
                endpoint: ep.name().into(),
                detail: "the answer holds no message".into(),
            }),
        }
    }

    /// Posts `body` to `path` on `ep`; the answer once its status is a
    /// success, else the error its body tells.
    pub(crate) async fn open(&self, ep: &Endpoint, path: &str, body: Bytes) -> Result<Response<Incoming>> {
        let mut req = Request::post(ep.uri(path)?).header(header::CONTENT_TYPE, "application/json");
        if self.inner.options.require_leader {
            req = req.header(REQUIRE_LEADER, "true");
        }
        let req = req.body(Full::new(body)).map_err(|e| Error::InvalidArgs(e.to_string()))?;
        let resp = self.inner.http.request(req).await.map_err(|e| request_error(ep, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| transport(ep, &e))?.to_bytes();
        Err(wire::error_from_body(ep.name(), status, &bytes))
    }
}

/// `req` as a request body.
pub(crate) fn encode<Req: Serialize>(req: &Req) -> Result<Bytes> {
    serde_json::to_vec(req).map(Bytes::from).map_err(|e| Error::InvalidArgs(e.to_string()))
}

/// A failed request: no connection, or one that broke.
fn request_error(ep: &Endpoint, e: &hyper_util::client::legacy::Error) -> Error {
    match e.is_connect() {
        true => Error::Connect { endpoint: ep.name().into(), detail: causes(e) },
        false => Error::Transport { endpoint: ep.name().into(), detail: causes(e) },
    }
}

/// A connection that broke while the answer came.
pub(crate) fn transport(ep: &Endpoint, e: &hyper::Error) -> Error {
    Error::Transport { endpoint: ep.name().into(), detail: causes(e) }
}

/// An answer that is not the expected JSON.
pub(crate) fn decode(ep: &Endpoint, e: &serde_json::Error) -> Error {
    Error::Decode { endpoint: ep.name().into(), detail: e.to_string() }
}

/// `e` and its causes, as "outer: inner: innermost".
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
