//! A request in flight on its version, from the moment it is sent to an
//! upstream until its outcome is in hand, counted once however it ends.
//!
//! hyper's server drops a request's future when its client goes away before
//! the answer (a closed or reset connection, an HTTP/2 stream reset). Code
//! after the upstream's answer never runs then, so the request would stay in
//! the in-flight gauge for good and never be counted. [`InFlight`] closes
//! that gap: dropped unsettled, it records the request as [`CLIENT_CLOSED`],
//! and keeps its record in the request log.

use super::ctx::Ctx;
use super::journal;
use crate::metrics::Outcome;
use crate::requests::Cause;
use canary_core::Version;
use std::time::Instant;

/// The status recorded for a request whose client left before the answer:
/// nginx's "client closed request". A 4xx, so not a failure of the version:
/// a canary is not rolled back because clients gave up waiting.
pub const CLIENT_CLOSED: u16 = 499;

/// A request counted in flight on `version` until settled or dropped.
#[must_use = "settle it once the outcome is in hand, or the drop counts the client as gone"]
pub struct InFlight<'a> {
    ctx: &'a Ctx,
    version: Version,
    settled: bool,
}

impl<'a> InFlight<'a> {
    /// Counts the request of `ctx` as in flight on `version`.
    pub fn begin(ctx: &'a Ctx, version: Version) -> InFlight<'a> {
        ctx.w.shard.begin(version);
        InFlight { ctx, version, settled: false }
    }

    /// The upstream answered or failed: the caller records the outcome (or
    /// hands it to the response body), which ends the request in the gauge.
    pub fn settle(mut self) {
        self.settled = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (ctx, now) = (self.ctx, Instant::now());
        let latency_us = now.duration_since(ctx.start).as_micros() as u64;
        let outcome = Outcome {
            version: self.version,
            route: ctx.route,
            status: Some(CLIENT_CLOSED),
            failure: false,
            grpc_error: false,
            latency_us,
        };
        ctx.w.shard.record(outcome, now);
        ctx.w.shard.end(self.version);
        let why = "the client left before the answer";
        journal::ended(ctx, self.version, Some(CLIENT_CLOSED), Some(Cause::ClientGone), why);
    }
}
