//! Graceful shutdown of client connections: when the worker stops accepting,
//! every connection is told to finish the request it is serving (if any) and
//! close, and the worker waits until all have.
//!
//! hyper-util's `GracefulShutdown` does the same for hyper's connections only;
//! the fast HTTP/1.1 path (`client::h1_fast`) is not one, so both kinds use this.

use tokio::sync::watch;

/// The worker's side: signals shutdown and waits for the connections.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<()>,
}

/// A connection's side: held for as long as the connection lives.
#[derive(Debug, Clone)]
pub struct Watch {
    rx: watch::Receiver<()>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

impl Drain {
    /// No connections yet.
    pub fn new() -> Drain {
        Drain { tx: watch::channel(()).0 }
    }

    /// A handle for one new connection.
    pub fn watch(&self) -> Watch {
        Watch { rx: self.tx.subscribe() }
    }

    /// Signals every connection, then waits until each has dropped its handle.
    pub async fn shutdown(self) {
        let _ = self.tx.send(());
        self.tx.closed().await;
    }
}

impl Watch {
    /// Resolves once shutdown has begun.
    pub async fn signalled(&mut self) {
        // An error means the worker is gone altogether: as good as a signal.
        let _ = self.rx.changed().await;
    }

    /// Whether shutdown has begun.
    pub fn is_signalled(&self) -> bool {
        self.rx.has_changed().unwrap_or(true)
    }
}
