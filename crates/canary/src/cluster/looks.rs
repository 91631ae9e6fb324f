//! What each replica served at the leader's recent looks, so that a change
//! of leader loses no traffic from the judge's count.
//!
//! The leader numbers its rounds of fetches ([`Look`]) and names the round
//! in each fetch (`?look=TERM.N`); a replica keeps the totals it answered
//! for the last [`KEPT`] rounds. With the rollout, the leader saves where
//! its count stops (`Rollout::counted_to`: its latest round, and for a
//! replica whose fetches failed since, the round it was last read in). A
//! replica that comes to lead asks each peer, in its first fetch, for the
//! totals it served there (`&from=TERM.N`, answered as `base`): the traffic since then is
//! what the old leader counted but did not save, or never saw, and the new
//! leader counts it. A leader's rounds read its own totals too, kept the
//! same way, so that it can answer for them once it no longer leads.
//!
//! Rounds advance only while someone leads, so the ones kept after a
//! leader dies are its last ones, whatever the time the takeover takes
//! (but for fetches of a new leader that time out, each of which a peer
//! records: [`KEPT`] bounds those).

use super::wire::WireTotals;
use canary_core::rollout::Look;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// How many of the latest looks a replica keeps its answers for. The saved
/// look is about a second (four looks while judging) behind the last, but a
/// peer that answers too late for the leader's time-out still records each
/// look it was asked: 64 covers 16 s of that, at a few KB each.
pub const KEPT: usize = 64;

/// A look's term and number, and the totals a replica answered at it.
type Answer = ((i64, u64), [WireTotals; 2]);

/// A replica's answers at the latest looks, oldest first.
#[derive(Debug, Default)]
pub struct Served(Mutex<VecDeque<Answer>>);

impl Served {
    /// Keeps `versions`, this replica's totals as of look `term.n`.
    pub fn record(&self, term: i64, n: u64, versions: [WireTotals; 2]) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|(k, _)| *k != (term, n));
        kept.push_back(((term, n), versions));
        while kept.len() > KEPT {
            kept.pop_front();
        }
    }

    /// The totals this replica served at look `term.n`, or at the latest
    /// before it in that term (a fetch that did not reach it): the reading
    /// the leader had of it then. `None` when none is kept (a replica
    /// started since, or looks long gone).
    pub fn at(&self, term: i64, n: u64) -> Option<[WireTotals; 2]> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().rev().find(|((t, m), _)| *t == term && *m <= n).map(|(_, v)| v.clone())
    }
}

/// `TERM.N` as the query names a look.
pub fn name(look: &Look) -> String {
    format!("{}.{}", look.term, look.n)
}

/// A look's term and number from its name; `None` when it is not one.
pub fn parse(name: &str) -> Option<(i64, u64)> {
    let (t, n) = name.split_once('.')?;
    Some((t.parse().ok()?, n.parse().ok()?))
}

/// The totals endpoint's query for look `look`, asking for the totals
/// served at `from` when given.
pub fn query(look: &Look, from: Option<&Look>) -> String {
    match from {
        Some(f) => format!("look={}&from={}", name(look), name(f)),
        None => format!("look={}", name(look)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::time::UnixMs;

    fn totals(n: u64) -> [WireTotals; 2] {
        let mut t = canary_proxy::metrics::shard::TotalsSnapshot::default();
        t.counts.requests = n;
        [WireTotals::of(&t), WireTotals::default()]
    }

    fn requests(v: &[WireTotals; 2]) -> u64 {
        v[0].snapshot().counts.requests
    }

    #[test]
    fn the_answer_at_a_look_is_the_latest_kept_at_or_before_it_in_its_term() {
        let s = Served::default();
        s.record(7, 1, totals(10));
        s.record(7, 3, totals(30));
        s.record(9, 1, totals(90));
        assert_eq!(s.at(7, 2).map(|v| requests(&v)), Some(10));
        assert_eq!(s.at(7, 5).map(|v| requests(&v)), Some(30));
        assert!(s.at(8, 1).is_none() && s.at(7, 0).is_none());
        for n in 2..=KEPT as u64 + 1 {
            s.record(9, n, totals(n));
        }
        assert!(s.at(7, 3).is_none(), "only the latest {KEPT} are kept");
    }

    #[test]
    fn a_look_is_named_and_read_back() {
        let look = Look { term: 42, n: 7, at: UnixMs::from_millis(1) };
        assert_eq!(parse(&name(&look)), Some((42, 7)));
        assert_eq!(query(&look, Some(&look)), "look=42.7&from=42.7");
        assert_eq!(parse("42"), None);
        assert_eq!(parse("a.1"), None);
    }
}
