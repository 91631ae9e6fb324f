//! One worker's pool of HTTP/1.1 connections to the upstreams, plain or TLS,
//! and its HTTP/2 connections (see `h2.rs`).
//!
//! A connection is checked out for one request and comes back when its response
//! body has been read to the end (see `body.rs`), so a connection is never
//! shared by two requests. Connecting is a separate step from sending, which
//! lets the proxy see that the canary refused the connection while it still
//! holds the request, and send it to stable instead. For an `https://`
//! upstream the TLS handshake is part of connecting, so a canary whose
//! certificate does not verify is refused like a canary that is down.

use super::connect_error::ConnectError;
use super::h1;
use super::h2;
use super::request_body::UpstreamReqBody;
use super::stream::Stream;
use canary_core::upstream::{Protocol, Upstream};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;

/// A connection's sending half.
pub type Sender = SendRequest<UpstreamReqBody>;

/// Idle connections of one kind, by upstream URL (Fx-hashed: looked up twice
/// per request, with keys that come from the config, not from clients).
type Idle<T> = Mutex<FxHashMap<Arc<str>, Vec<T>>>;

/// Idle connections by upstream URL: hyper's, for requests with a body, and
/// plain sockets for the in-task exchange of body-less requests (see `h1`).
#[derive(Debug)]
pub struct Pool {
    idle: Idle<Sender>,
    h1: Idle<h1::Conn>,
    connect_timeout: Duration,
    max_idle: usize,
    /// Offers HTTP/1.1 only by ALPN: for the HTTP/1.1 paths.
    tls: Arc<ClientConfig>,
    /// Offers h2 and HTTP/1.1: for the connection that learns which one an
    /// `https://` upstream speaks.
    tls_h2: Arc<ClientConfig>,
    h2: h2::Conns,
}

/// A connection checked out of the pool; [`Pool::put`] it back when done.
#[derive(Debug)]
pub struct Checkout {
    /// The sender to use.
    pub sender: Sender,
    /// The upstream URL it belongs to.
    pub key: Arc<str>,
}

impl Pool {
    /// An empty pool; `tls` connects to `https://` upstreams (its ALPN list
    /// is replaced: HTTP/1.1 for the HTTP/1.1 paths, h2 and HTTP/1.1 to
    /// learn what an upstream speaks); HTTP/2 response heads are limited to
    /// `max_head` bytes.
    pub fn new(connect_timeout: Duration, max_idle: usize, tls: &ClientConfig, max_head: u32) -> Arc<Pool> {
        let alpn = |protocols: &[&[u8]]| {
            let mut c = tls.clone();
            c.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Arc::new(c)
        };
        Arc::new(Pool {
            idle: Idle::default(),
            h1: Idle::default(),
            connect_timeout,
            max_idle,
            tls: alpn(&[b"http/1.1"]),
            tls_h2: alpn(&[b"h2", b"http/1.1"]),
            h2: h2::Conns::new(max_head),
        })
    }

    /// Whether requests to `up` go over HTTP/2 now: always for `h2c://`,
    /// never for `http://`, and for `https://` unless it recently picked
    /// HTTP/1.1 (see `h2.rs`).
    pub fn speaks_h2(&self, up: &Upstream) -> bool {
        match up.protocol() {
            Protocol::Http1 => false,
            Protocol::H2c => true,
            Protocol::Https => !self.h2.picked_http1(up),
        }
    }

    /// The shared HTTP/2 connection to `up`, made if needed; `None` when an
    /// `https://` upstream picked HTTP/1.1 instead (its connection then waits
    /// in the HTTP/1.1 pool).
    pub async fn h2(&self, up: &Upstream) -> Result<Option<h2::Sender>, ConnectError> {
        let got = self.h2.get(up, || self.dial(up, &self.tls_h2)).await?;
        match got {
            h2::Got::H2(sender) => Ok(Some(sender)),
            h2::Got::Http1(stream) => {
                self.put_h1(up.url_arc(), h1::Conn::new(stream));
                Ok(None)
            }
        }
    }

    /// An idle connection to `up` that is ready, else a new one.
    pub async fn checkout(&self, up: &Upstream) -> Result<Checkout, ConnectError> {
        while let Some(mut sender) = take(&self.idle, up.url()) {
            // A connection goes back to the pool as its response ends; the
            // connection task may need a moment to become ready again.
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(Checkout { sender, key: up.url_arc() });
            }
        }
        // Boxed: connecting is rare, and its future would otherwise make every
        // request's future (moved on each poll setup) larger.
        Box::pin(self.connect(up)).await
    }

    /// A new connection to `up`, bypassing idle ones.
    pub async fn connect(&self, up: &Upstream) -> Result<Checkout, ConnectError> {
        let stream = self.dial(up, &self.tls).await?;
        let (sender, conn) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(source) => return Err(ConnectError::Handshake { upstream: up.url().to_string(), source }),
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(Checkout { sender, key: up.url_arc() })
    }

    /// An idle plain connection to `up` that is still open, else a new one.
    pub async fn checkout_h1(&self, up: &Upstream) -> Result<h1::Conn, ConnectError> {
        while let Some(mut conn) = take(&self.h1, up.url()) {
            if conn.looks_alive() {
                return Ok(conn);
            }
        }
        Box::pin(self.connect_h1(up)).await
    }

    /// A new plain connection to `up`, bypassing idle ones.
    pub async fn connect_h1(&self, up: &Upstream) -> Result<h1::Conn, ConnectError> {
        Ok(h1::Conn::new(self.dial(up, &self.tls).await?))
    }

    /// TCP, then TLS with `tls` for an https upstream, both within the
    /// connect timeout.
    async fn dial(&self, up: &Upstream, tls: &Arc<ClientConfig>) -> Result<Stream, ConnectError> {
        match tokio::time::timeout(self.connect_timeout, self.dial_now(up, tls)).await {
            Ok(got) => got,
            Err(_) => {
                Err(ConnectError::Timeout { upstream: up.url().to_string(), after: self.connect_timeout })
            }
        }
    }

    async fn dial_now(&self, up: &Upstream, tls: &Arc<ClientConfig>) -> Result<Stream, ConnectError> {
        let stream = TcpStream::connect((up.host(), up.port()))
            .await
            .map_err(|source| ConnectError::Io { upstream: up.url().to_string(), source })?;
        // Small request/response exchanges must not wait on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let Some(name) = up.tls_name() else { return Ok(Stream::Plain(stream)) };
        match TlsConnector::from(Arc::clone(tls)).connect(name.clone(), stream).await {
            Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
            Err(source) => Err(ConnectError::Tls { upstream: up.url().to_string(), source }),
        }
    }

    /// Returns a connection whose exchange finished cleanly.
    pub fn put(&self, c: Checkout) {
        if !c.sender.is_closed() {
            put(&self.idle, c.key, c.sender, self.max_idle);
        }
    }

    /// Returns a plain connection whose body was read to its end.
    pub fn put_h1(&self, key: Arc<str>, conn: h1::Conn) {
        put(&self.h1, key, conn, self.max_idle);
    }
}

fn take<T>(idle: &Idle<T>, key: &str) -> Option<T> {
    lock(idle).get_mut(key)?.pop()
}

fn put<T>(idle: &Idle<T>, key: Arc<str>, conn: T, max: usize) {
    let mut idle = lock(idle);
    let list = idle.entry(key).or_default();
    if list.len() < max {
        list.push(conn);
    }
}

fn lock<T>(idle: &Idle<T>) -> std::sync::MutexGuard<'_, FxHashMap<Arc<str>, Vec<T>>> {
    // The map holds only connections; a panic elsewhere cannot leave it torn.
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}
