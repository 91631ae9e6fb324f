//! canary's data plane: listeners, worker threads and the per-request
//! service, the upstream connections, TLS and the measurements.
//!
//! Its surface is small: [`start`] takes the [`Settings`], a [`Routes`]
//! snapshot to route by, the [`Metrics`] to record outcomes in and the TLS
//! configs, and runs the workers until shutdown. It knows nothing of the
//! controller, the admin API, the state file or the cluster: the crate does
//! not depend on them, so the request path cannot reach them.
//!
//! # Layout
//! - [`settings`]: what the data plane is told at start.
//! - [`routes`]: the routing table and upstreams the workers read.
//! - [`metrics`]: per-version, per-route measurements and their windows.
//! - [`tls`]: rustls configs for the listener and `https://` upstreams.
//! - [`listener`]: binds one `SO_REUSEPORT` socket per worker on the same address.
//! - [`client`]: the client side: the fast HTTP/1.1 path for plain
//!   connections, and hyper's server for TLS, HTTP/2 and what it hands over;
//!   [`drain`]: their graceful shutdown; [`deadline`]: waits cut off by a
//!   timer kept with the connection.
//! - [`forward`]: one request's phases (limits, route, forward, respond) and
//!   the one forwarding policy every request path follows.
//! - [`upstream`]: the pool of upstream connections, the in-task HTTP/1.1
//!   exchange and the shared HTTP/2 connections.
//! - [`grpc`]: gRPC calls: their route label and their outcome (`grpc-status`).
//! - [`body`]: the streamed response body that records the outcome at its end.
//! - [`in_flight`]: a request in flight until its outcome is in hand, counted
//!   once even when its client leaves first.
//! - [`headers`]: hop-by-hop and `x-forwarded-*` handling.
//! - [`reply`]: the proxy's own JSON error replies.
//! - [`clock`]: the wall clock outcomes are stamped with.
//!
//! Each worker is a thread with a single-threaded tokio runtime, its own
//! listening socket (the kernel spreads connections between them), its own
//! upstream pool and its own metrics shard: nginx's model, which keeps the hot
//! path free of cross-thread locks and cache-line traffic.

pub mod access_log;
mod body;
mod client;
mod clock;
mod deadline;
mod drain;
mod forward;
mod grpc;
mod headers;
mod listener;
pub mod metrics;
mod reply;
pub mod requests;
pub mod routes;
pub mod settings;
pub mod shadow;
pub mod tls;
pub mod traces;
mod upstream;

use drain::{Drain, Watch};
use forward::ctx::{Peer, RequestIds, Worker};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
pub use metrics::Metrics;
pub use routes::{Routes, Upstreams};
pub use settings::Settings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_util::sync::CancellationToken;
use upstream::pool::Pool;

/// The data plane's TLS: to `https://` upstreams, and on the listener when
/// it terminates TLS.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The client config every upstream connection is made with.
    pub upstreams: Arc<ClientConfig>,
    /// The listener's config; plain HTTP without one.
    pub listener: Option<Arc<ServerConfig>>,
}

/// The streams an HTTP/2 client may have open on one connection (hyper's
/// default, written out since it is a limit the proxy relies on).
const H2_MAX_STREAMS: u32 = 200;

/// A random prefix for worker `i`'s request ids: std's hasher is keyed
/// from the kernel's randomness once per process.
fn random_prefix(i: usize) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((i, std::time::SystemTime::now()))
}

/// How long in-flight requests may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Starts the workers; returns the bound address and the worker threads.
pub fn start(
    cfg: Arc<Settings>,
    routes: Arc<Routes>,
    metrics: &Metrics,
    tls: &Tls,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let sockets = listener::bind_reuseport(cfg.listen, cfg.proxy.workers)?;
    let addr = sockets.first().map(|s| s.local_addr()).transpose()?.unwrap_or(cfg.listen);
    let mut threads = Vec::with_capacity(sockets.len());
    for (i, sock) in sockets.into_iter().enumerate() {
        let worker = Arc::new(Worker {
            routes: Arc::clone(&routes),
            cfg: Arc::clone(&cfg),
            shard: metrics.shard(i),
            pool: Pool::new(
                cfg.proxy.connect_timeout,
                cfg.proxy.max_idle_per_upstream,
                &tls.upstreams,
                forward::send::MAX_RESPONSE_HEAD as u32,
            ),
            ids: RequestIds::new(random_prefix(i), random_prefix(i + 1_000)),
            shelf: cfg.access_log.as_ref().map(|a| a.shelf()),
            spans: cfg.tracing.as_ref().map(|t| t.shelf()),
        });
        let stop = shutdown.clone();
        let acceptor = tls.listener.clone().map(TlsAcceptor::from);
        let t = std::thread::Builder::new()
            .name(format!("canary-worker-{i}"))
            .spawn(move || run(worker, sock, acceptor, stop))?;
        threads.push(t);
    }
    Ok((addr, threads))
}

fn run(
    worker: Arc<Worker>,
    sock: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker runtime");
            return;
        }
    };
    rt.block_on(serve(worker, sock, tls, shutdown));
}

async fn serve(
    worker: Arc<Worker>,
    sock: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let listener = match TcpListener::from_std(sock) {
        Ok(l) => l,
        Err(e) => return tracing::error!(error = %e, "cannot register the listener"),
    };
    let builder = Arc::new(builder(&worker.cfg));
    let drain = Drain::new();
    let anchor = tokio::spawn(timer_anchor(anchor_period(&worker.cfg)));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (worker, builder) = (Arc::clone(&worker), Arc::clone(&builder));
                    let (peer, watch) = (Peer::new(peer), drain.watch());
                    if let Some(acceptor) = &tls {
                        tokio::spawn(serve_tls(acceptor.clone(), stream, worker, peer, builder, watch));
                    } else {
                        tokio::spawn(client::h1_fast::serve(client::h1_fast::Client { stream, worker, peer, builder, watch }));
                    }
                }
                // Out of file descriptors and the like: back off briefly rather
                // than spin, and keep serving the connections already open.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, drain.shutdown()).await.is_err() {
        tracing::warn!("some connections were still busy after {DRAIN:?}; closing them");
    }
    anchor.abort();
}

/// One client connection over TLS: the handshake in the connection's own task
/// (a slow client never holds up the accept loop), bounded like a request
/// head by the header read timeout, then HTTP on the general path.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    worker: Arc<Worker>,
    peer: Arc<Peer>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watch: Watch,
) {
    let limit = worker.cfg.proxy.header_read_timeout;
    let stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake with a client failed"),
        Err(_) => return tracing::debug!("TLS handshake with a client timed out after {limit:?}"),
    };
    client::hyper::serve(stream, builder, worker, peer, watch).await;
}

/// Keeps a timer due within `period` at all times.
///
/// tokio's timer driver wakes its own thread through an eventfd whenever a new
/// timer is due before the earliest one it knows of. Every request arms one
/// (the response timeout), and the earliest pending timer is usually a longer
/// one (an idle connection's header read timeout), so without this each
/// request cost an extra `write` system call. With a timer always due sooner
/// than any request's, no new timer is ever the earliest.
async fn timer_anchor(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Half the shortest per-request timeout, so a request's timer is always due
/// after the anchor's next tick.
fn anchor_period(cfg: &Settings) -> Duration {
    let p = &cfg.proxy;
    let shortest = [p.response_timeout, p.header_read_timeout, p.body_read_timeout, p.connect_timeout]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1));
    (shortest / 2).max(Duration::from_millis(1))
}

fn builder(cfg: &Settings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.proxy.header_read_timeout)
        .max_buf_size(cfg.proxy.max_header_bytes)
        .keep_alive(true);
    // HTTP/2 clients: a stream is a request, so the streams one connection
    // may open at once are bounded as HTTP/1.1's pipelining never needed;
    // streams reset before they were answered (the "rapid reset" flood) and
    // streams the client makes the proxy reset are bounded too, past which
    // hyper ends the connection; a client that vanished without a FIN is
    // found by pings.
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.proxy.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    // HTTP/2 is recognised by its connection preface (prior knowledge, as
    // behind a TLS-terminating balancer); without it, HTTP/1.1 is served with
    // no detection step at all.
    if cfg.proxy.http2 { b } else { b.http1_only() }
}
