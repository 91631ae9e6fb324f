//! An upgraded connection after its 101: bytes copied both ways between the
//! client and the upstream until either side closes, nothing parsed. The
//! close is passed on (a FIN), the other direction gets a few seconds to
//! finish (a closing handshake), then both connections are closed.
//!
//! It also ends when no byte has moved either way for the idle timeout
//! (`[proxy] upgraded_idle_timeout_ms`), and, for a canary connection with
//! `[routing] upgraded_on_rollback = "close"`, when the canary is rolled back:
//! a rollback means the version is bad, and a WebSocket can live for hours,
//! so its users would otherwise stay on it long after everyone else left.
//! Closing makes them reconnect, and the new handshake is routed to stable.
//! A change of share never closes anything: the router only decides where
//! new requests go.
//!
//! Both sockets are simply closed; the tunnel cannot add a protocol's own
//! goodbye (a WebSocket close frame) without parsing the stream it carries.

use crate::metrics::UpgradedGuard;
use crate::routes::Routes;
use crate::upstream::stream::Stream;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// One upgraded connection, ready to run.
#[derive(Debug)]
pub struct Tunnel {
    /// The client's side, handed over by hyper once the 101 is written.
    pub client: OnUpgrade,
    /// The upstream's socket.
    pub upstream: Stream,
    /// What the upstream sent right after its 101, for the client first.
    pub early: Bytes,
    /// The longest time with no byte either way.
    pub idle: Duration,
    /// Close on the canary's rollback, if this is a canary connection to close.
    pub rollback: Option<Rollback>,
    /// Counts the connection as open while the tunnel lives.
    pub open: UpgradedGuard,
}

/// What a canary tunnel watches to close on a rollback.
#[derive(Debug)]
pub struct Rollback {
    /// Changes on every rollback after it was subscribed.
    pub rx: watch::Receiver<u64>,
    /// For the one rollback that may have come before the subscription.
    pub routes: Arc<Routes>,
}

/// How long the other direction may go on after one side closed its end
/// (finishing a closing handshake, say) before both are closed.
const LINGER: Duration = Duration::from_secs(5);

/// Runs the tunnel to its end.
pub async fn run(t: Tunnel) {
    let Tunnel { client, upstream, early, idle, rollback, open: _open } = t;
    let client = match client.await {
        Ok(c) => TokioIo::new(c),
        Err(e) => return tracing::debug!(error = %e, "the client left before the upgrade"),
    };
    let activity = Activity::new();
    let (client_read, mut client_write) = tokio::io::split(client);
    let (upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let mut from_client = Tracked { io: client_read, activity: &activity };
    let mut from_upstream = Tracked { io: upstream_read, activity: &activity };
    let up = pipe(&mut from_client, &mut upstream_write);
    let down = async {
        client_write.write_all(&early).await?;
        pipe(&mut from_upstream, &mut client_write).await
    };
    tokio::pin!(up, down);
    let end = tokio::select! {
        r = &mut up => finish(r, down, "the client closed").await,
        r = &mut down => finish(r, up, "the upstream closed").await,
        () = activity.idle_for(idle) => "idle",
        () = rolled_back(rollback) => "the canary was rolled back",
    };
    tracing::debug!(end, "upgraded connection ended");
}

/// Copies one direction until its reader ends, then passes the end on.
async fn pipe<R, W>(from: &mut R, to: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy(from, to).await?;
    to.shutdown().await
}

/// After one direction ended cleanly, lets the other finish for a moment:
/// a side that closed has nothing more to say, and a half-open tunnel would
/// otherwise be held until the idle timeout.
async fn finish(
    first: io::Result<()>,
    other: impl std::future::Future<Output = io::Result<()>>,
    why: &'static str,
) -> &'static str {
    if first.is_err() {
        return "failed";
    }
    let _ = tokio::time::timeout(LINGER, other).await;
    why
}

/// Completes when the canary is rolled back; never without a [`Rollback`].
async fn rolled_back(r: Option<Rollback>) {
    let Some(Rollback { mut rx, routes }) = r else { return std::future::pending().await };
    // Routed to the canary means it was not blocked then; blocked now means
    // a rollback came between the decision and the subscription.
    if routes.routing().canary_blocked {
        return;
    }
    if rx.changed().await.is_err() {
        // The routing state is gone (shutting down): no rollback can come.
        std::future::pending::<()>().await;
    }
}

/// When a byte last moved, either way.
#[derive(Debug)]
struct Activity {
    since: Instant,
    /// Milliseconds after `since`.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { since: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`. Sleeps to the deadline
    /// the last activity set, rather than waking on every byte.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let deadline = self.since + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A reader that notes each read that brought bytes.
struct Tracked<'a, R> {
    io: R,
    activity: &'a Activity,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tracked<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idleness_is_measured_from_the_last_byte() {
        let a = Activity::new();
        tokio::time::sleep(Duration::from_millis(150)).await;
        a.touch();
        let touched = Instant::now();
        a.idle_for(Duration::from_millis(200)).await;
        let waited = touched.elapsed();
        assert!(waited >= Duration::from_millis(190), "a whole idle period after the touch: {waited:?}");
    }
}
