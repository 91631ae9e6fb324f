//! HTTP/2 upstreams: `h2c://` ones, and `https://` ones that pick h2 by ALPN.
//!
//! Each worker keeps one multiplexed connection per such upstream, shared by
//! all its requests to it (hyper's HTTP/2 client drives it from a task of its
//! own), instead of a connection per request as HTTP/1.1 needs. When the
//! connection dies (the upstream restarted, a GOAWAY, a failed keep-alive
//! ping) the next request makes a new one; connecting is serialised per
//! upstream, so a burst of requests after a death opens one connection, not
//! one each.
//!
//! An `https://` upstream is asked for h2 and HTTP/1.1 by ALPN. When it picks
//! HTTP/1.1, that connection goes to the HTTP/1.1 pool and the upstream is
//! spoken to in HTTP/1.1 (no ALPN round) for [`RECHECK`], after which the
//! next new connection asks again, so an upstream that starts offering h2
//! is noticed without a restart.

use super::connect_error::ConnectError;
use super::request_body::UpstreamReqBody;
use super::stream::Stream;
use canary_core::upstream::Upstream;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A shared HTTP/2 connection's sending half (cheap to clone).
pub type Sender = http2::SendRequest<UpstreamReqBody>;

/// How long an `https://` upstream that picked HTTP/1.1 is taken at its word.
pub const RECHECK: Duration = Duration::from_secs(60);

/// How often an HTTP/2 connection with streams open is pinged, and how long
/// the answer may take: an upstream that vanished without a reset (a host
/// gone, a silent firewall) fails its streams instead of leaving them hanging.
const PING_INTERVAL: Duration = Duration::from_secs(20);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What connecting for HTTP/2 gave.
#[derive(Debug)]
pub enum Got {
    /// A ready HTTP/2 connection.
    H2(Sender),
    /// An `https://` upstream that picked HTTP/1.1: its connection, to use
    /// as one.
    Http1(Stream),
}

/// One connection slot per upstream; the async lock serialises connecting.
type Slot = tokio::sync::Mutex<Option<Sender>>;

/// One worker's HTTP/2 upstream connections.
#[derive(Debug)]
pub struct Conns {
    slots: Mutex<FxHashMap<Arc<str>, Arc<Slot>>>,
    /// `https://` upstreams that picked HTTP/1.1, and when.
    http1: Mutex<FxHashMap<Arc<str>, Instant>>,
    builder: http2::Builder<TokioExecutor>,
}

impl Conns {
    /// No connections yet; response heads are limited to `max_head` bytes.
    pub fn new(max_head: u32) -> Conns {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(max_head)
            .keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_TIMEOUT)
            // An upstream whose protocol errors make the proxy reset streams
            // this many times is broken or hostile: the connection is ended
            // (GOAWAY, ENHANCE_YOUR_CALM) and the next request makes a new one.
            .max_local_error_reset_streams(Some(1024));
        Conns { slots: Mutex::default(), http1: Mutex::default(), builder }
    }

    /// Whether an `https://` upstream picked HTTP/1.1 within [`RECHECK`].
    pub fn picked_http1(&self, up: &Upstream) -> bool {
        lock(&self.http1).get(up.url()).is_some_and(|at| at.elapsed() < RECHECK)
    }

    /// The upstream's connection, made with `dial` if there is none alive.
    pub async fn get<F, Fut>(&self, up: &Upstream, dial: F) -> Result<Got, ConnectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Stream, ConnectError>>,
    {
        let slot = Arc::clone(lock(&self.slots).entry(up.url_arc()).or_default());
        let mut held = slot.lock().await;
        if let Some(sender) = held.as_ref().filter(|s| !s.is_closed()) {
            return Ok(Got::H2(sender.clone()));
        }
        *held = None;
        let stream = dial().await?;
        if matches!(&stream, Stream::Tls(_)) && !stream.alpn_h2() {
            lock(&self.http1).insert(up.url_arc(), Instant::now());
            return Ok(Got::Http1(stream));
        }
        let (sender, conn) = match self.builder.handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(source) => return Err(ConnectError::Handshake { upstream: up.url().to_string(), source }),
        };
        let url = up.url_arc();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, upstream = %url, "HTTP/2 upstream connection ended with an error");
            }
        });
        *held = Some(sender.clone());
        Ok(Got::H2(sender))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold only connections and instants; a panic elsewhere cannot
    // leave them torn.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
