//! Traces: one span per proxied request, exported over OTLP/HTTP to a
//! collector (`[tracing] otlp = "http://collector:4318"`).
//!
//! - [`context`]: `traceparent` read, and made for a request without one;
//! - [`span`]: a request's span, made from its entry;
//! - [`exporter`]: the thread that sends them, with `opentelemetry-otlp`.
//!
//! The request path decides at routing whether a request is traced (its
//! parent's sampled flag, else the sampling ratio) and, for a traced one,
//! puts its entry on the worker's shelf (see `requests::shelf`): making the
//! span and sending it happen on the exporter's thread.

pub mod context;
pub mod exporter;
pub mod span;

use crate::requests::shelf::{Shelf, Shelves};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What tracing is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The collector: its base URL or its traces URL, `http://` or
    /// `https://`.
    pub endpoint: String,
    /// The CA certificates (PEM) an `https://` collector's certificate is
    /// checked against, instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The share of requests without a sampled parent that are traced (0 to 1).
    pub ratio: f64,
    /// Whether a request without `traceparent` is given one (sent upstream).
    pub make: bool,
    /// `service.name` of the spans.
    pub service: String,
    /// Entries waiting per worker, at most; past it they are dropped.
    pub queue: usize,
}

/// Spans sent and lost, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counts {
    /// Spans the collector took.
    pub exported: AtomicU64,
    /// Spans in batches the collector did not take.
    pub failed: AtomicU64,
}

/// Tracing: its options, the workers' shelves and counts.
#[derive(Debug)]
pub struct Tracing {
    /// What it was told.
    pub options: Options,
    /// Its counts.
    pub counts: Counts,
    /// The threshold a draw is compared with: the ratio.
    threshold: u64,
    shelves: Shelves,
}

impl Tracing {
    /// Builds the exporter (a bad endpoint is refused here, at start) and
    /// starts its thread.
    pub fn start(options: Options) -> Result<Arc<Tracing>, String> {
        let exporter = exporter::build(&options)?;
        let tracing = Arc::new(Tracing {
            threshold: crate::requests::threshold(options.ratio),
            shelves: Shelves::new(options.queue),
            counts: Counts::default(),
            options,
        });
        let handle = exporter::spawn(Arc::clone(&tracing), exporter)
            .map_err(|e| format!("cannot start the span exporter: {e}"))?;
        tracing.shelves.attach(handle);
        Ok(tracing)
    }

    /// Sends what the shelves hold and stops the exporter, waiting for it
    /// (each export bounded by its timeout): at shutdown.
    pub fn close(&self) {
        self.shelves.close();
    }

    /// Whether the exporter should send what is left and end.
    fn closing(&self) -> bool {
        self.shelves.closing()
    }

    /// A new shelf, for one worker.
    pub fn shelf(&self) -> Arc<Shelf> {
        self.shelves.shelf()
    }

    /// Whether a trace without a sampled parent is traced, by its id: the
    /// same trace is traced or not whichever replica decides.
    pub fn samples(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        u64::from_be_bytes(low) < self.threshold || self.threshold == u64::MAX
    }

    /// Its counts in Prometheus' text format, for `/metrics`.
    pub fn exposition(&self) -> String {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        format!(
            "# HELP canary_trace_spans_total Spans of proxied requests, by what became of them.\n\
             # TYPE canary_trace_spans_total counter\n\
             canary_trace_spans_total{{outcome=\"exported\"}} {}\n\
             canary_trace_spans_total{{outcome=\"failed\"}} {}\n\
             canary_trace_spans_total{{outcome=\"dropped\"}} {}\n",
            get(&self.counts.exported),
            get(&self.counts.failed),
            self.shelves.dropped()
        )
    }
}
