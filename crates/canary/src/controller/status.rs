//! `status` while the controller may be busy: a look or a command holds the
//! controller while it writes the state, and a shared store that does not
//! answer (etcd cut off, or slow) holds it for up to `CALL_TIMEOUT`, exactly
//! when an operator asks what is going on. The controller publishes its
//! status after each look and command; a status request waits a moment for
//! the controller, then answers from what was published, with what can be
//! read without it (the router's table, the cluster's view) read now.

use super::Controller;
use super::api::Status;
use crate::cluster::Cluster;
use crate::live::Live;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a status request waits for a busy controller before it answers
/// with the status of the controller's last look (see [`status_now`]).
const STATUS_WAIT: Duration = Duration::from_millis(500);

/// The controller's own status as of its last look (without the cluster's
/// view, which is read fresh), readable while the controller is busy.
pub type Published = Arc<Mutex<Option<Status>>>;

/// The cluster's view (who leads, etcd's health) on `st`, read now.
pub(super) fn with_cluster(st: &mut Status, cluster: Option<&Cluster>) {
    st.cluster = cluster.map(|c| c.describe());
    if let Some(why) = cluster.and_then(|c| c.etcd_error()).filter(|_| st.error.is_none()) {
        st.error = Some(format!(
            "{why}; the rollout holds until etcd answers (routing goes on with the last table)"
        ));
    }
}

/// Where things stand, for `status`, without waiting long on the controller.
/// A look or a command holds the controller while it writes the state, and
/// a shared store that does not answer (etcd cut off, or slow) holds it for
/// up to `CALL_TIMEOUT`: exactly when an operator asks what is going on. So
/// after [`STATUS_WAIT`] the answer is the controller's status as of its
/// last look, with what can be read without it (the router's table and the
/// cluster's view) read now, and the wait named in `error`.
pub fn status_now(
    c: &Mutex<Controller>,
    published: &Published,
    live: &Live,
    cluster: Option<&Cluster>,
) -> Status {
    let deadline = std::time::Instant::now() + STATUS_WAIT;
    loop {
        match c.try_lock() {
            Ok(mut g) => {
                g.catch_up();
                return g.status();
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let mut g = p.into_inner();
                g.catch_up();
                return g.status();
            }
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(std::sync::TryLockError::WouldBlock) => break,
        }
    }
    let last = published.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let now = Status::of(None, live);
    let mut st = match last {
        Some(last) => Status { share: now.share, stable: now.stable, canary: now.canary, ..last },
        None => now,
    };
    with_cluster(&mut st, cluster);
    let busy = format!(
        "the controller has been busy for over {} ms (a write to the state that does not answer); \
         the rollout is shown as of its last look",
        STATUS_WAIT.as_millis()
    );
    st.error = Some(st.error.map_or(busy.clone(), |e| format!("{e}; {busy}")));
    st
}
