//! The probe's shared state: when the service started, what it is measuring,
//! and how to ask the service about its database.

use crate::process::CpuMeter;
use crate::stats::{ErrorRecord, Window};
use serde::Serialize;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the service says about its database.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DbStatus {
    /// Connections in use.
    pub in_use: u32,
    /// The pool's size.
    pub max: u32,
    /// How long the check took, ms.
    pub latency_ms: f64,
}

type DbCheck = dyn Fn() -> Result<DbStatus, String> + Send + Sync;

/// The probe: clone it freely, every clone shares the same figures.
#[derive(Clone)]
pub struct Probe {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) version: String,
    pub(crate) started: Instant,
    pub(crate) in_flight: AtomicI64,
    window: Mutex<Window>,
    pub(crate) db: Option<Box<DbCheck>>,
    pub(crate) cpu: CpuMeter,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("version", &self.inner.version).finish()
    }
}

impl Probe {
    /// A probe for a service reporting `version`.
    pub fn new(version: &str) -> Probe {
        Probe::build(version, None)
    }

    /// Adds the database check behind `/api/v2/health/db` and the pool figures in metrics.
    pub fn with_db_check(
        self,
        check: impl Fn() -> Result<DbStatus, String> + Send + Sync + 'static,
    ) -> Probe {
        Probe::build(&self.inner.version, Some(Box::new(check)))
    }

    fn build(version: &str, db: Option<Box<DbCheck>>) -> Probe {
        let inner = Inner {
            version: version.to_string(),
            started: Instant::now(),
            in_flight: AtomicI64::new(0),
            window: Mutex::new(Window::default()),
            db,
            cpu: CpuMeter::default(),
        };
        Probe { inner: Arc::new(inner) }
    }

    pub(crate) fn window(&self) -> MutexGuard<'_, Window> {
        // Counts stay valid numbers whatever a panicking holder did.
        self.inner.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn second(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    pub(crate) fn begin(&self) {
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self, route: &str, method: &str, path: &str, status: u16, latency_us: u64) {
        self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
        let second = self.second();
        let mut w = self.window();
        w.record(second, route, status, latency_us);
        if status >= 500 {
            let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            w.record_error(ErrorRecord { timestamp, endpoint: format!("{method} {path}"), status });
        }
    }
}
