//! A future cut off at a deadline by a timer the caller keeps, for waits
//! that recur on one connection (the next request head, each response head).
//!
//! `tokio::time::timeout` makes a new timer for every wait: registered in
//! the runtime's timer wheel when first polled and taken out again when
//! dropped, a few hundred instructions each time, twice a request. A timer
//! kept with the connection and reset instead is moved later in place, an
//! atomic store, while it has not fired (see `tokio::time::Sleep::reset`); a
//! kept timer that fires while its connection idles wakes that connection's
//! task once, for nothing.

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
#[cfg(test)]
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// `fut`'s output, or `None` when `limit` passed first; `timer` is reset to
/// the new deadline now.
// A future of its own rather than an async fn: an async fn would hold `fut`
// twice (its argument, then the pinned local), and the wait for the next
// request head is most of what an idle connection holds.
pub fn within<'t, F: Future>(mut timer: Pin<&'t mut Sleep>, limit: Duration, fut: F) -> Within<'t, F> {
    timer.as_mut().reset(Instant::now() + limit);
    Within { fut, timer }
}

pin_project! {
    /// See [`within`].
    pub struct Within<'t, F> {
        #[pin]
        fut: F,
        timer: Pin<&'t mut Sleep>,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The work first, as `tokio::time::timeout` does: a timer that has
        // just passed never hides an answer that is there.
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        this.timer.as_mut().poll(cx).map(|()| None)
    }
}

/// A timer for [`within`], not yet set.
pub fn timer() -> Sleep {
    // A deadline long past: the first `within` resets it before any poll.
    tokio::time::sleep(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(100);
    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_kept_timer_cuts_each_wait_from_its_own_start() {
        let mut t = pin!(timer());
        assert_eq!(within(t.as_mut(), SHORT, async { 7 }).await, Some(7), "ready work is never cut");
        let start = Instant::now();
        assert_eq!(within(t.as_mut(), SHORT, std::future::pending::<()>()).await, None);
        assert!(start.elapsed() >= SHORT, "not before its limit");
        // Reset after it fired, it counts afresh: a wait shorter than the new
        // limit is not cut, however long the ones before took.
        let nap = tokio::time::sleep(SHORT * 2);
        assert_eq!(within(t.as_mut(), LONG, nap).await, Some(()));
        // Moved earlier than a deadline still pending, it fires at the new one.
        let start = Instant::now();
        assert_eq!(within(t.as_mut(), SHORT, std::future::pending::<()>()).await, None);
        assert!(start.elapsed() < LONG);
    }
}
