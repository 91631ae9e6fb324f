//! The access log: one JSON line per request, written off the request path.
//!
//! Each worker puts its requests' [`Entry`]s on a [`Shelf`] of its own
//! (see `requests::shelf`) and goes on; it never waits for the disk. A thread of its own
//! ([`writer`]) takes everything off the shelves every few milliseconds,
//! makes the lines ([`line`]) and writes them. A full shelf (the disk is
//! slower than the traffic) drops the entry and counts it; a write that
//! fails (a full disk) drops its lines and counts them.
//! [`AccessLog::reopen`] (on SIGUSR1) makes the writer open the path again,
//! after logrotate renamed it.

pub mod line;
pub mod writer;

use crate::requests::entry::Entry;
use crate::requests::shelf::{Shelf, Shelves};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the access log is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The file, or `None` for stdout.
    pub path: Option<PathBuf>,
    /// Entries waiting to be written per worker, at most; past it they are
    /// dropped.
    pub queue: usize,
    /// Whether a request without `x-request-id` is given one (sent to the
    /// upstream too, so its own logs can be matched).
    pub request_ids: bool,
    /// Whether users are written as the user key itself rather than its
    /// keyed hash.
    pub plain_users: bool,
}

/// Lines written, dropped and reopenings, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counts {
    /// Lines written.
    pub written: AtomicU64,
    /// Lines lost because a write failed.
    pub dropped_write_failed: AtomicU64,
    /// Times the file was opened again on request.
    pub reopened: AtomicU64,
}

/// The access log: its options, counts, and the workers' shelves.
#[derive(Debug)]
pub struct AccessLog {
    /// What it was told.
    pub options: Options,
    /// Its counts.
    pub counts: Arc<Counts>,
    reopen: AtomicBool,
    shelves: Shelves,
}

impl AccessLog {
    /// Opens the file (a bad path is refused here, at start) and starts
    /// the writer thread, which ends (after writing what is left) once
    /// nothing but it holds the log.
    pub fn start(options: Options) -> std::io::Result<Arc<AccessLog>> {
        let sink = writer::Sink::open(options.path.as_deref())?;
        let options_queue = options.queue;
        let log = Arc::new(AccessLog {
            options,
            counts: Arc::default(),
            reopen: AtomicBool::new(false),
            shelves: Shelves::new(options_queue),
        });
        log.shelves.attach(writer::spawn(Arc::clone(&log), sink)?);
        Ok(log)
    }

    /// Writes what the shelves hold and stops the writer, waiting for it:
    /// at shutdown, once the workers are done, so no line is lost.
    pub fn close(&self) {
        self.shelves.close();
    }

    /// Whether the writer should write what is left and end.
    fn closing(&self) -> bool {
        self.shelves.closing()
    }

    /// A new shelf, for one worker.
    pub fn shelf(&self) -> Arc<Shelf> {
        self.shelves.shelf()
    }

    /// Asks the writer to open the path again (logrotate renamed it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Its counts in Prometheus' text format, for `/metrics`.
    pub fn exposition(&self) -> String {
        let c = &self.counts;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        format!(
            "# HELP canary_access_log_lines_total Access log lines written.\n\
             # TYPE canary_access_log_lines_total counter\n\
             canary_access_log_lines_total {}\n\
             # HELP canary_access_log_dropped_total Access log lines lost, by why: a worker's queue was full (the disk is slower than the traffic) or a write failed (a full disk).\n\
             # TYPE canary_access_log_dropped_total counter\n\
             canary_access_log_dropped_total{{reason=\"queue_full\"}} {}\n\
             canary_access_log_dropped_total{{reason=\"write_failed\"}} {}\n\
             # HELP canary_access_log_reopened_total Times the access log was opened again (SIGUSR1).\n\
             # TYPE canary_access_log_reopened_total counter\n\
             canary_access_log_reopened_total {}\n",
            get(&c.written),
            self.shelves.dropped(),
            get(&c.dropped_write_failed),
            get(&c.reopened)
        )
    }

    /// Takes every worker's entries, one run per worker.
    fn take_all(&self, runs: &mut Vec<Vec<Entry>>) {
        self.shelves.take_all(runs);
    }

    /// Whether a reopening was asked for since the last call.
    fn reopen_asked(&self) -> bool {
        self.reopen.swap(false, Ordering::Relaxed)
    }
}
