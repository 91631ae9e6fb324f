//! The general client-side path: hyper's server, for TLS clients, HTTP/2,
//! and every plain HTTP/1.1 connection the fast path (`h1_fast`) hands over
//! (a request with a body, an upgrade, anything unusual or malformed). It
//! keeps the connection from then on.

use crate::drain::Watch;
use crate::forward::{
    self,
    ctx::{Peer, Worker},
};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Serves `io` with hyper until the client leaves or shutdown has it finish.
pub async fn serve<I>(
    io: I,
    builder: Arc<auto::Builder<TokioExecutor>>,
    worker: Arc<Worker>,
    peer: Arc<Peer>,
    mut watch: Watch,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| forward::handle(Arc::clone(&worker), Arc::clone(&peer), req));
    // With upgrades: after a 101, hyper hands the connection over (see
    // `upgrade`); other requests are unaffected.
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = watch.signalled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}
