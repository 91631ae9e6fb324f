//! Where workers leave their requests' entries for a thread that writes
//! them out (the access log's writer, the span exporter): one shelf per
//! worker, under a lock only it and that thread take, briefly. A worker
//! never waits and never wakes the thread: the thread comes by every few
//! milliseconds. A full shelf drops the entry and counts it.

use super::entry::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// One worker's entries waiting.
#[derive(Debug)]
pub struct Shelf {
    // Not boxed: a box the worker allocated and the writer freed would
    // send every allocation of the worker down the allocator's slow path.
    entries: Mutex<Vec<Entry>>,
    cap: usize,
    dropped: Arc<AtomicU64>,
}

impl Shelf {
    /// Puts `e` on the shelf, or drops and counts it if the shelf is full.
    /// It comes boxed and is copied once, from its box to the shelf.
    pub fn put(&self, e: Box<Entry>) {
        let mut v = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if v.len() < self.cap {
            v.push(*e);
        } else {
            drop(v);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves everything on the shelf to `into` (which must be empty),
    /// leaving `into`'s room on the shelf.
    fn take(&self, into: &mut Vec<Entry>) {
        std::mem::swap(&mut *self.entries.lock().unwrap_or_else(PoisonError::into_inner), into);
    }
}

/// Every worker's shelf for one reader, and the reader's thread.
#[derive(Debug)]
pub struct Shelves {
    list: Mutex<Vec<Arc<Shelf>>>,
    cap: usize,
    dropped: Arc<AtomicU64>,
    /// Set by [`Shelves::close`]: the reader takes what is left and ends.
    closing: AtomicBool,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl Shelves {
    /// No shelf yet; each will hold at most `cap` entries.
    pub fn new(cap: usize) -> Shelves {
        Shelves {
            list: Mutex::new(Vec::new()),
            cap: cap.max(1),
            dropped: Arc::default(),
            closing: AtomicBool::new(false),
            reader: Mutex::new(None),
        }
    }

    /// A new shelf, for one worker.
    pub fn shelf(&self) -> Arc<Shelf> {
        let s = Arc::new(Shelf {
            entries: Mutex::new(Vec::new()),
            cap: self.cap,
            dropped: Arc::clone(&self.dropped),
        });
        self.list.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&s));
        s
    }

    /// Takes every shelf's entries: one run per shelf, into `runs` (whose
    /// emptied vectors go back to the shelves, so none is allocated anew).
    pub fn take_all(&self, runs: &mut Vec<Vec<Entry>>) {
        let shelves = self.list.lock().unwrap_or_else(PoisonError::into_inner).clone();
        runs.resize_with(shelves.len(), Vec::new);
        for (s, run) in shelves.iter().zip(runs.iter_mut()) {
            run.clear();
            s.take(run);
        }
    }

    /// Entries dropped because a shelf was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Notes the reader's thread, for [`Shelves::close`] to wait for.
    pub fn attach(&self, reader: JoinHandle<()>) {
        *self.reader.lock().unwrap_or_else(PoisonError::into_inner) = Some(reader);
    }

    /// Tells the reader to take what is left and end, and waits for it: at
    /// shutdown, once the workers are done, so nothing they left is lost.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(r) = reader {
            let _ = r.join();
        }
    }

    /// Whether the reader should take what is left and end.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }
}
