//! Shadow traffic: while the routing table says so, stable serves every
//! user and copies of real requests go to the canary, whose answers are
//! compared with stable's (see `canary_core::shadow`).
//!
//! On the request path only a choice is made ([`pick`]): is the request
//! one to copy (a safe method, or one an operator allowed; no upgrade; a
//! body within the limit), does the sampling draw and the rate cap let it
//! through. A chosen request's stable answer is captured as it streams to
//! the client ([`tee`]), and only once the client has it whole is the job
//! queued, never waited for: a full queue, or too many bytes held, drops
//! it and counts why. A thread of its own ([`sender`]) sends the copy to
//! the canary (and for a sample of safe requests, to stable again, to learn
//! stable's noise), compares the answers and keeps the tallies and examples
//! ([`results`]) the controller judges and `canary diff` shows.

pub mod pick;
pub mod results;
pub mod sender;
pub mod tee;

use crate::routes::Routes;
use canary_core::exclude::Excludes;
use canary_core::shadow::diff::Compare;
use http::{HeaderName, Method};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// What is copied, how much, and how copies are compared.
#[derive(Debug, Clone)]
pub struct Options {
    /// Methods besides GET, HEAD and OPTIONS copied on these paths (a
    /// copied write is a second write: only where an operator says so).
    pub allow: Vec<(Method, Excludes)>,
    /// The largest request body copied, in bytes.
    pub max_body: usize,
    /// The largest answer compared (either side), in bytes.
    pub max_compare: usize,
    /// The share of eligible requests copied (0 to 1).
    pub sample: f64,
    /// The most copies sent a second, over the whole process.
    pub max_rate: u32,
    /// The share of copies of safe requests also sent to stable again, to
    /// learn which fields stable itself changes.
    pub noise_sample: f64,
    /// The header every copy carries, so a service can tell a copy.
    pub header: HeaderName,
    /// What is compared besides status and body.
    pub compare: Compare,
    /// Places never compared, on every route (`None`) or on one route.
    pub ignore: Vec<(Option<String>, String)>,
    /// Query parameters and JSON fields whose values examples never show,
    /// besides `results::SECRET_NAMES`.
    pub redact: Vec<String>,
    /// The most bytes of copies and answers held at once.
    pub max_memory: usize,
    /// Copies in flight at once.
    pub concurrency: usize,
    /// How long a copy's answer may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            allow: Vec::new(),
            max_body: 64 << 10,
            max_compare: 1 << 20,
            sample: 1.0,
            max_rate: 500,
            noise_sample: 0.25,
            header: HeaderName::from_static("x-canary-shadow"),
            compare: Compare::default(),
            ignore: Vec::new(),
            redact: Vec::new(),
            max_memory: 64 << 20,
            concurrency: 64,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// Whether `method` is copied on `path`.
    pub fn copies(&self, method: &Method, path: &str) -> bool {
        pick::is_safe(method) || self.allow.iter().any(|(m, paths)| m == method && paths.matches(path))
    }

    /// The ignore rules for `route`.
    pub fn ignored_on(&self, route: &str) -> Vec<String> {
        let on = |r: &Option<String>| r.as_deref().is_none_or(|r| r == route);
        self.ignore.iter().filter(|(r, _)| on(r)).map(|(_, f)| f.clone()).collect()
    }
}

/// Why a request was not copied, or a copy not compared: the counts
/// `/metrics` and `canary diff` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A method not copied on that path.
    Method,
    /// A request body over the limit, or of unknown length.
    Body,
    /// An upgrade (WebSocket).
    Upgrade,
    /// Server-sent events: a stream, not an answer.
    EventStream,
    /// An answer over the compare limit.
    TooLarge,
    /// Left out by the sampling draw.
    Sampled,
    /// Over the copies-per-second cap.
    Rate,
    /// The queue was full, or too many bytes were held.
    QueueFull,
    /// Stable's answer did not complete (the client left, it broke off).
    Incomplete,
}

impl Skip {
    /// Every reason, in the order counts are shown.
    pub const ALL: [Skip; 9] = [
        Skip::Method,
        Skip::Body,
        Skip::Upgrade,
        Skip::EventStream,
        Skip::TooLarge,
        Skip::Sampled,
        Skip::Rate,
        Skip::QueueFull,
        Skip::Incomplete,
    ];

    /// The name in JSON and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Method => "method",
            Skip::Body => "body",
            Skip::Upgrade => "upgrade",
            Skip::EventStream => "event_stream",
            Skip::TooLarge => "too_large",
            Skip::Sampled => "sampled",
            Skip::Rate => "rate",
            Skip::QueueFull => "queue_full",
            Skip::Incomplete => "incomplete",
        }
    }
}

/// The shadow machinery one process runs: its options, its queue to the
/// sender thread, and what it counts.
#[derive(Debug)]
pub struct Shadow {
    /// What it was told.
    pub options: Options,
    queue: tokio::sync::mpsc::Sender<tee::Job>,
    skipped: [AtomicU64; Skip::ALL.len()],
    /// Bytes of copies and answers held (queued or in flight).
    held: AtomicUsize,
    /// The copies-per-second cap: the current second and copies in it,
    /// packed (second << 32 | count).
    rate: AtomicU64,
    /// Tallies, examples and copy counts, per route.
    pub results: results::Results,
}

impl Shadow {
    /// Starts the sender thread, which sends to `routes`' upstreams with
    /// `tls` for https ones.
    pub fn start(
        options: Options,
        routes: Arc<Routes>,
        tls: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Arc<Shadow>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let shadow = Arc::new(Shadow {
            options,
            queue: tx,
            skipped: Default::default(),
            held: AtomicUsize::new(0),
            rate: AtomicU64::new(0),
            results: results::Results::default(),
        });
        sender::spawn(Arc::clone(&shadow), rx, routes, tls)?;
        Ok(shadow)
    }

    /// Counts a request not copied, or a copy not compared.
    pub fn skip(&self, why: Skip) {
        self.skipped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// What was skipped, by reason.
    pub fn skipped(&self) -> Vec<(Skip, u64)> {
        Skip::ALL.iter().map(|s| (*s, self.skipped[*s as usize].load(Ordering::Relaxed))).collect()
    }

    /// Takes a place under the copies-per-second cap, `now_s` the second.
    fn admit(&self, now_s: u64) -> bool {
        let cap = u64::from(self.options.max_rate);
        let mut cur = self.rate.load(Ordering::Relaxed);
        loop {
            let (sec, n) = (cur >> 32, cur & 0xffff_ffff);
            let next = if sec == now_s & 0xffff_ffff {
                if n >= cap {
                    return false;
                }
                cur + 1
            } else {
                (now_s << 32) | 1
            };
            match self.rate.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Queues a finished job unless the queue is full or too much is held.
    pub fn enqueue(&self, job: tee::Job) {
        let size = job.size();
        if self.held.fetch_add(size, Ordering::Relaxed) + size > self.options.max_memory {
            self.held.fetch_sub(size, Ordering::Relaxed);
            return self.skip(Skip::QueueFull);
        }
        if self.queue.try_send(job).is_err() {
            self.held.fetch_sub(size, Ordering::Relaxed);
            self.skip(Skip::QueueFull);
        }
    }

    /// Its counts in Prometheus' text format: copies by what became of
    /// them, and per route the comparisons that found any difference
    /// (noise included: which of them count is the judge's business).
    pub fn exposition(&self) -> String {
        use std::fmt::Write;
        let routes = self.results.tallies();
        let mut out = String::from(
            "# HELP canary_shadow_copies_total Requests copied to the canary in a shadow step, or not, by result.\n\
             # TYPE canary_shadow_copies_total counter\n",
        );
        let compared: u64 = routes.iter().map(|(_, t)| t.signatures.values().sum::<u64>()).sum();
        let failed: u64 = routes.iter().map(|(_, t)| t.copy_errors).sum();
        let _ = writeln!(out, "canary_shadow_copies_total{{result=\"compared\"}} {compared}");
        let _ = writeln!(out, "canary_shadow_copies_total{{result=\"failed\"}} {failed}");
        for (why, n) in self.skipped() {
            let _ = writeln!(out, "canary_shadow_copies_total{{result=\"skipped_{}\"}} {n}", why.as_str());
        }
        out.push_str(
            "# HELP canary_shadow_differences_total Comparisons in which the canary's answer differed from stable's, by route.\n\
             # TYPE canary_shadow_differences_total counter\n",
        );
        for (route, t) in &routes {
            let differing: u64 = t.signatures.iter().filter(|(s, _)| !s.is_empty()).map(|(_, n)| n).sum();
            let route = crate::metrics::prometheus::escape(route);
            let _ = writeln!(out, "canary_shadow_differences_total{{route=\"{route}\"}} {differing}");
        }
        out
    }

    /// A job of `size` bytes is done with.
    fn release(&self, size: usize) {
        self.held.fetch_sub(size, Ordering::Relaxed);
    }
}
