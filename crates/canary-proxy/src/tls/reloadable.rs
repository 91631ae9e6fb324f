//! What a rotation keeps in service: files read together and put in service
//! from the next connection on. The data plane's TLS pieces (a listener's
//! pair, the upstreams' trusted CAs) implement it; the control plane's
//! rotation reads the files, calls it and records the outcome.

use std::path::Path;

/// Something made of files and kept in service: a listener's pair, or the
/// upstreams' trusted CAs.
pub trait Reloadable: Send + Sync + std::fmt::Debug {
    /// The files, read together in this order, each with what it holds
    /// ("TLS certificate", "CA file (upstreams.ca_file)"...) for errors.
    fn files(&self) -> Vec<(&Path, &'static str)>;

    /// Puts the files' content (in the order of [`Reloadable::files`]) in
    /// service from the next connection on, or says why it cannot.
    fn install(&self, content: &[Vec<u8>]) -> Result<(), super::TlsError>;

    /// What it is, for the log: "TLS certificate /etc/tls.crt (proxy listener)".
    fn name(&self) -> String;

    /// The event kinds of a reload (done, refused) and the detail both carry.
    fn event(&self) -> (&'static str, &'static str, serde_json::Value);

    /// Asked at every check: what is in service has gone bad while served
    /// (a certificate past its date), said once per content: the event kind
    /// and the reason.
    fn lapsed(&self, _now: jiff::Timestamp) -> Option<(&'static str, String)> {
        None
    }
}
