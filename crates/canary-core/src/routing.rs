//! The routing decision for one request, made in a fixed order:
//! 1. no canary configured, or the canary rolled back (blocked) -> stable;
//! 2. an excluded path -> stable;
//! 3. an explicit override (`x-canary` header or cookie) -> as asked;
//! 4. the user's sticky bucket below the share -> canary, else stable.
//!
//! The proxy reads the facts off the request, calls [`decide`], and sends the
//! request where the [`Decision`] says; the reason is kept for logs and tests.

use crate::bucket::bucket_of;
use crate::exclude::Excludes;
use crate::request::Override;
use crate::share::Share;
use crate::version::Version;

/// Everything the routing decision depends on besides the request itself. The
/// proxy holds one behind an atomic pointer and replaces it whole on a change,
/// so a request sees either the old table or the new one, never a mix.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingTable {
    /// The rollout's name, mixed into every bucket.
    pub rollout: String,
    /// The canary's share of bucketed traffic.
    pub share: Share,
    /// Paths that always go to stable.
    pub excludes: Excludes,
    /// Whether a canary upstream exists at all.
    pub has_canary: bool,
    /// The canary was rolled back: nothing reaches it, overrides included,
    /// until the next deploy (or a person forces a share on it).
    pub canary_blocked: bool,
    /// A shadow step: the canary serves no user by share, and copies of
    /// requests stable serves are sent to it and compared.
    pub shadow: bool,
}

/// Why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No canary upstream is configured.
    NoCanary,
    /// The canary was rolled back.
    Blocked,
    /// The path matched an exclude pattern.
    Excluded,
    /// The client asked for a version.
    Forced,
    /// The user's bucket against the share.
    Bucket(u16),
}

/// Where one request goes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Decision {
    /// The version that serves the request.
    pub version: Version,
    /// Why.
    pub reason: Reason,
}

/// The facts of one request that routing reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The path, without the query string.
    pub path: &'a str,
    /// The `x-canary` override, from header or cookie.
    pub forced: Option<Override>,
    /// The user key: a user id from a header or cookie, else the client address.
    pub user_key: &'a [u8],
}

/// Decides which version serves a request.
pub fn decide(table: &RoutingTable, req: &RequestFacts<'_>) -> Decision {
    let stable = |reason| Decision { version: Version::Stable, reason };
    if !table.has_canary {
        return stable(Reason::NoCanary);
    }
    if table.canary_blocked {
        return stable(Reason::Blocked);
    }
    if table.excludes.matches(req.path) {
        return stable(Reason::Excluded);
    }
    match req.forced {
        Some(Override::Always) => return Decision { version: Version::Canary, reason: Reason::Forced },
        Some(Override::Never) => return stable(Reason::Forced),
        None => {}
    }
    let bucket = bucket_of(&table.rollout, req.user_key);
    let version = if bucket < table.share.basis_points() { Version::Canary } else { Version::Stable };
    Decision { version, reason: Reason::Bucket(bucket) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(share: f64) -> RoutingTable {
        RoutingTable {
            rollout: "v2-api-canary".into(),
            share: Share::from_percent(share).unwrap(),
            excludes: Excludes::new(&["/api/admin/*"]).unwrap(),
            has_canary: true,
            canary_blocked: false,
            shadow: false,
        }
    }

    fn facts<'a>(path: &'a str, forced: Option<Override>, key: &'a [u8]) -> RequestFacts<'a> {
        RequestFacts { path, forced, user_key: key }
    }

    #[test]
    fn excluded_beats_override() {
        let d = decide(&table(100.0), &facts("/api/admin/x", Some(Override::Always), b"u"));
        assert_eq!(d, Decision { version: Version::Stable, reason: Reason::Excluded });
    }

    #[test]
    fn override_beats_bucket() {
        let d = decide(&table(0.0), &facts("/api/v2/rooms", Some(Override::Always), b"u"));
        assert_eq!(d.version, Version::Canary);
        let d = decide(&table(100.0), &facts("/api/v2/rooms", Some(Override::Never), b"u"));
        assert_eq!(d.version, Version::Stable);
    }

    #[test]
    fn no_canary_means_stable_even_when_forced() {
        let mut t = table(100.0);
        t.has_canary = false;
        let d = decide(&t, &facts("/", Some(Override::Always), b"u"));
        assert_eq!(d.reason, Reason::NoCanary);
    }

    #[test]
    fn a_blocked_canary_gets_nobody_even_when_forced() {
        let mut t = table(100.0);
        t.canary_blocked = true;
        for i in 0..2000 {
            let key = format!("user-{i}");
            let d = decide(&t, &facts("/api/v2/rooms", Some(Override::Always), key.as_bytes()));
            assert_eq!(d, Decision { version: Version::Stable, reason: Reason::Blocked });
        }
    }

    #[test]
    fn raising_the_share_only_adds_users() {
        let steps = [10.0, 25.0, 50.0, 75.0, 100.0];
        for i in 0..5000 {
            let key = format!("user-{i}");
            let mut was_canary = false;
            for s in steps {
                let now = decide(&table(s), &facts("/api/v2/rooms", None, key.as_bytes())).version
                    == Version::Canary;
                assert!(!was_canary || now, "{key} left the canary at {s}%");
                was_canary = now;
            }
            assert!(was_canary, "{key} not in the canary at 100%");
        }
    }

    #[test]
    fn zero_share_sends_nobody() {
        let t = table(0.0);
        for i in 0..2000 {
            let key = format!("user-{i}");
            assert_eq!(decide(&t, &facts("/", None, key.as_bytes())).version, Version::Stable);
        }
    }
}
