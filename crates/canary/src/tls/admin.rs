//! The admin API over TLS: an axum [`Listener`] that hands axum only
//! connections whose handshake is done.
//!
//! Handshakes run in tasks of their own, each bounded by [`HANDSHAKE`], so a
//! client that connects and says nothing never holds up the next accept; at
//! most [`MAX_PENDING`] run at once, and past that accepting waits. The
//! server config is the proxy listener's kind (a [`super::listener::CertSlot`]
//! behind it), so the admin pair rotates the same way.

use axum::serve::Listener;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The longest a client may take to finish its handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Handshakes in progress at most; the admin API has few clients.
const MAX_PENDING: usize = 256;

type Handshake = Option<(TlsStream<TcpStream>, SocketAddr)>;

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    pending: JoinSet<Handshake>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("tcp", &self.tcp).field("pending", &self.pending.len()).finish()
    }
}

impl TlsListener {
    /// Serves `config`'s TLS on `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener { tcp, acceptor: TlsAcceptor::from(config), pending: JoinSet::new() }
    }

    fn start(&mut self, sock: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        self.pending.spawn(async move {
            match tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "admin API: TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "admin API: TLS handshake timed out");
                    None
                }
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Both branches are cancel-safe (axum drops this future at shutdown):
    // a connection accepted or a handshake finished is kept in `self`.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.pending.len() < MAX_PENDING;
            tokio::select! {
                got = self.tcp.accept(), if room => match got {
                    Ok((sock, peer)) => self.start(sock, peer),
                    Err(e) => {
                        // Out of descriptors, most likely: let some close.
                        tracing::warn!(error = %e, "admin API: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
