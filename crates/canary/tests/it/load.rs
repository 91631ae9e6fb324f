//! Client load for the fault tests that accounts for every request: each one
//! ends ok, failed (with its status or error) or timed out after a stated
//! deadline, and the tally is taken only once every request has ended. A
//! request that hangs is therefore seen (as timed out), never silently left
//! out of a "nothing failed".

use crate::support::client;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;

/// How long one request may take, body included, before it counts as timed
/// out: far above anything loopback shows on a loaded machine, far below a
/// test's own deadline.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// How every request of a load ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Requests started.
    pub sent: u64,
    /// Answered 2xx with the whole body read.
    pub ok: u64,
    /// Answered otherwise, or failed on the wire.
    pub failed: u64,
    /// Not ended within [`REQUEST_DEADLINE`].
    pub timed_out: u64,
    /// Failures and time-outs by cause (`status 503`, `error: ...`, `timed out`).
    pub causes: BTreeMap<String, u64>,
}

/// One request's end.
pub enum Outcome {
    Ok,
    Failed(String),
    TimedOut,
}

impl Tally {
    /// Counts one request that ended as `o` (`sent` counts it too).
    pub fn count(&mut self, o: Outcome) {
        self.sent += 1;
        self.add(o);
    }

    fn add(&mut self, o: Outcome) {
        let cause = match o {
            Outcome::Ok => {
                self.ok += 1;
                return;
            }
            Outcome::Failed(why) => {
                self.failed += 1;
                why
            }
            Outcome::TimedOut => {
                self.timed_out += 1;
                format!("timed out after {REQUEST_DEADLINE:?}")
            }
        };
        *self.causes.entry(cause).or_default() += 1;
    }

    /// Every request accounted for: each one sent ended in exactly one way.
    pub fn assert_accounted(&self, what: &str) {
        assert_eq!(
            self.sent,
            self.ok + self.failed + self.timed_out,
            "{what}: requests unaccounted for: {self:?}"
        );
    }

    /// No request hung: each one ended, answered or failed, within its deadline
    /// (for loads against a canary that fails on purpose).
    pub fn assert_no_hang(&self, what: &str) {
        self.assert_accounted(what);
        assert!(self.sent > 0, "{what}: no request was sent");
        assert_eq!(self.timed_out, 0, "{what}: requests hung: {self:?}");
    }

    /// Nothing lost: every request answered 2xx within its deadline.
    pub fn assert_none_lost(&self, what: &str) {
        self.assert_accounted(what);
        assert!(self.sent > 0, "{what}: no request was sent");
        assert_eq!((self.failed, self.timed_out), (0, 0), "{what}: requests failed or hung: {self:?}");
    }

    /// The tally of several loads together.
    pub fn sum(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        let mut all = Tally::default();
        for t in tallies {
            all.sent += t.sent;
            all.ok += t.ok;
            all.failed += t.failed;
            all.timed_out += t.timed_out;
            for (cause, n) in t.causes {
                *all.causes.entry(cause).or_default() += n;
            }
        }
        all
    }
}

/// Sends GETs of `/api/v2/rooms` from many distinct users at about `rps`
/// until `stop` is set, then waits for every request to end.
pub fn spawn_load(addr: SocketAddr, rps: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Tally> {
    spawn_load_with(addr, rps, stop, |_| "/api/v2/rooms".to_string())
}

/// As [`spawn_load`], request `i` going to `path(i)`.
pub fn spawn_load_with(
    addr: SocketAddr,
    rps: u64,
    stop: Arc<AtomicBool>,
    path: impl Fn(u64) -> String + Send + 'static,
) -> tokio::task::JoinHandle<Tally> {
    tokio::spawn(async move {
        let c = client();
        let mut tally = Tally::default();
        let mut running = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps.max(1)));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            tally.sent += 1;
            let req = Request::get(format!("http://{addr}{}", path(tally.sent)))
                .header("x-user-id", format!("load-user-{}", tally.sent))
                .body(Full::new(Bytes::new()))
                .expect("a GET of a valid path");
            let c = c.clone();
            running.spawn(async move {
                match tokio::time::timeout(REQUEST_DEADLINE, exchange(&c, req)).await {
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err(why)) => Outcome::Failed(why),
                    Err(_) => Outcome::TimedOut,
                }
            });
            // Ended requests are counted as they end, so the set stays small.
            while let Some(done) = running.try_join_next() {
                tally.add(joined(done));
            }
        }
        while let Some(done) = running.join_next().await {
            tally.add(joined(done));
        }
        tally
    })
}

/// One request, its whole body read: `Err` names the status or the error.
async fn exchange(
    c: &hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<(), String> {
    let resp = c.request(req).await.map_err(|e| format!("error: {}", chain(&e)))?;
    let status = resp.status();
    resp.into_body().collect().await.map_err(|e| format!("body: {}", chain(&e)))?;
    match status.is_success() {
        true => Ok(()),
        false => Err(format!("status {}", status.as_u16())),
    }
}

fn joined(r: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    r.unwrap_or_else(|e| Outcome::Failed(format!("request task: {e}")))
}

/// An error with its causes, e.g. `client error (Connect): tcp connect error: Connection refused`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
