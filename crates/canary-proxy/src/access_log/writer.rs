//! The access log's writer thread: every [`TICK`] it takes what the
//! workers' shelves hold, orders it by time, makes the lines into a buffer
//! and writes it; a line reaches the file within moments of its request.
//! It opens the path again when asked (SIGUSR1, after logrotate's rename),
//! and ends, after a last write, once the log is dropped.

use super::AccessLog;
use super::line::{self, Clock};
use crate::requests::entry::Entry;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the writer takes the shelves.
const TICK: Duration = Duration::from_millis(20);

/// Where lines go.
#[derive(Debug)]
pub enum Sink {
    /// A file, appended to.
    File(File),
    /// Standard output.
    Stdout,
}

impl Sink {
    /// Opens `path` for appending (created if missing), or stdout for `None`.
    pub fn open(path: Option<&Path>) -> std::io::Result<Sink> {
        match path {
            Some(p) => OpenOptions::new().create(true).append(true).open(p).map(Sink::File),
            None => Ok(Sink::Stdout),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(buf),
            Sink::Stdout => std::io::stdout().lock().write_all(buf),
        }
    }
}

/// Starts the thread.
pub fn spawn(log: Arc<AccessLog>, sink: Sink) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut w = Writer { sink, buf: Vec::new(), clock: Clock::default() };
    std::thread::Builder::new().name("canary-access-log".into()).spawn(move || w.run(&log))
}

struct Writer {
    sink: Sink,
    buf: Vec<u8>,
    clock: Clock,
}

impl Writer {
    fn run(&mut self, log: &Arc<AccessLog>) {
        let mut runs = Vec::new();
        loop {
            std::thread::sleep(TICK);
            crate::clock::refresh();
            // Held by this thread alone: the server is gone, and no worker
            // can put anything more on a shelf. One last write, and done.
            let last = log.closing() || Arc::strong_count(log) == 1;
            if log.reopen_asked() {
                self.reopen(log);
            }
            log.take_all(&mut runs);
            self.write(log, &runs);
            if last {
                return;
            }
        }
    }

    /// Writes the workers' runs as one, in time order (each run is nearly in
    /// order already; what is sorted is references, not the entries). Lines
    /// a failed write loses are counted, not kept: a full disk must not
    /// grow the process.
    fn write(&mut self, log: &AccessLog, runs: &[Vec<Entry>]) {
        let mut all: Vec<&Entry> = runs.iter().flatten().collect();
        if all.is_empty() {
            return;
        }
        all.sort_by_key(|e| e.time);
        self.buf.clear();
        all.iter().for_each(|e| line::write(&mut self.buf, e, &mut self.clock));
        let n = all.len() as u64;
        match self.sink.write_all(&self.buf) {
            Ok(()) => log.counts.written.fetch_add(n, Ordering::Relaxed),
            Err(_) => log.counts.dropped_write_failed.fetch_add(n, Ordering::Relaxed),
        };
    }

    fn reopen(&mut self, log: &AccessLog) {
        let Some(path) = &log.options.path else { return };
        match Sink::open(Some(path)) {
            Ok(s) => {
                self.sink = s;
                log.counts.reopened.fetch_add(1, Ordering::Relaxed);
            }
            // The old file stays in use: lines are not lost to a bad rotation.
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot reopen the access log; writing on to the file already open")
            }
        }
    }
}
