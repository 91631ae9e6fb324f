//! Replicas of different releases in one fleet, as during canary's own
//! rolling upgrade.
//!
//! What crosses between replicas carries the version of its format,
//! [`WIRE`]: each registration (and the leader key) names the replica's
//! wire and release, the totals and windows say their wire, and a command
//! forwarded to the leader carries [`WIRE_HEADER`].
//!
//! The rule: **the newest wire leads.** A replica reads every older wire
//! (a format only grows within a wire; a change an older reader would get
//! wrong takes a new one), but cannot know a newer one. So a replica that
//! sees a registered peer speaking a newer wire, and able to lead (it says
//! so in its registration), does not campaign, and hands the leadership
//! over if it holds it (said in `status` as
//! `declines_to_lead`); the newer replica leads and judges everyone's
//! traffic. A leader refuses a forwarded command from a newer wire rather
//! than drop options it does not know. A release from before wires
//! existed reads as wire 1 and knows none of this: while it leads, the
//! newer replicas keep their totals readable by it.

use super::Cluster;
use serde::{Deserialize, Serialize};

/// This release's wire: 2 added the wire itself, the release in the
/// registration and the forwarded commands' header (1: none of it).
pub const WIRE: u32 = 2;

/// This release, as `canary --version` names it.
pub const RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CANARY_COMMIT"), ")");

/// The header on a forwarded command: the forwarding replica's wire.
pub const WIRE_HEADER: &str = "x-canary-wire";

/// The wire of a payload that names none: a release from before wires.
pub fn unnamed() -> u32 {
    1
}

/// A registration's value (and the leader key's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The node id.
    pub id: String,
    /// Its admin API address.
    pub admin: String,
    /// The wire it speaks.
    #[serde(default = "unnamed")]
    pub wire: u32,
    /// Its release (none before wires).
    #[serde(default)]
    pub release: Option<String>,
    /// Whether it would lead (false while it cannot read the state): only
    /// a newer replica that may lead is left to lead.
    #[serde(default = "may")]
    pub may_lead: bool,
}

fn may() -> bool {
    true
}

impl Registration {
    /// This replica's, saying whether it `may_lead`.
    pub fn of(cluster: &Cluster, may_lead: bool) -> String {
        let me = Registration {
            id: cluster.node_id.clone(),
            admin: cluster.admin.clone(),
            wire: WIRE,
            release: Some(RELEASE.to_string()),
            may_lead,
        };
        // Cannot fail: strings, a number and a bool, all of which JSON holds.
        serde_json::to_string(&me).unwrap_or_default()
    }

    /// From a key's value; `None` when it is not one.
    pub fn parse(value: &[u8]) -> Option<Registration> {
        serde_json::from_slice(value).ok()
    }
}

/// Why a replica that speaks `own` leaves leading to another, given the
/// registered replicas that may lead, as `(id, wire, release)`: the newest
/// among those newer than `own`, if any.
pub fn outranked<'a>(
    own: u32,
    replicas: impl Iterator<Item = (&'a str, u32, Option<&'a str>)>,
) -> Option<String> {
    let (id, wire, release) = replicas.filter(|(_, w, _)| *w > own).max_by_key(|(_, w, _)| *w)?;
    Some(format!(
        "replica {id} runs a newer canary ({}, wire {wire}; this one speaks wire {own}): the newest \
         wire leads, so this replica leaves leading to it until it is gone",
        release.unwrap_or("release unknown")
    ))
}

impl Cluster {
    /// Why this replica does not lead now: a registered peer speaks a newer
    /// wire (see the module's doc).
    pub fn declines_to_lead(&self) -> Option<String> {
        let v = self.lock();
        let able = v.replicas.iter().filter(|(_, m)| m.may_lead);
        outranked(WIRE, able.map(|(id, m)| (id.as_str(), m.wire, m.release.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_wire_leads_and_an_unnamed_one_is_the_oldest() {
        let old = Registration::parse(br#"{"id":"a","admin":"127.0.0.1:1"}"#).unwrap();
        assert_eq!((old.wire, old.release, old.may_lead), (1, None, true));
        let peers = [("a", 1, None), ("b", WIRE, Some("x")), ("c", WIRE + 1, Some("0.9 (abc)"))];
        assert_eq!(outranked(WIRE + 1, peers.iter().copied()), None);
        let why = outranked(WIRE, peers.iter().copied()).unwrap();
        assert!(why.contains("replica c") && why.contains("0.9 (abc)"), "{why}");
        assert!(outranked(1, peers[..2].iter().copied()).unwrap().contains("replica b"));
    }

    #[test]
    fn a_registration_round_trips_with_its_wire_and_release() {
        let c = Cluster::new("n1", "127.0.0.1:9", std::time::Duration::from_secs(3));
        let back = Registration::parse(Registration::of(&c, false).as_bytes()).unwrap();
        assert_eq!((back.id.as_str(), back.may_lead), ("n1", false));
        assert_eq!(back.wire, WIRE);
        assert_eq!(back.release.as_deref(), Some(RELEASE));
    }
}
