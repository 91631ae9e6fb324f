//! The leader's readings of the fleet, round by round: each replica's
//! latest totals (this one's own among them) with the round that fetched
//! them, the peers whose fetches fail, and the gate the controller holds.
//!
//! A round's results are kept together, once all of them are in, so the
//! controller never counts half a round. The controller opens the gate when
//! it takes the lead, saying where the previous leader's count stopped, and
//! closes it when it stops leading; each opening or closing starts a new
//! epoch, and a round begun in an earlier one is dropped: no reading of one
//! term is counted in another.

use super::wire::WireSnapshot;
use canary_core::rollout::{CountedTo, Look};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The readings, shared by the fetching task and the controller.
#[derive(Debug, Default)]
pub struct Peers(Mutex<Readings>);

#[derive(Debug, Default)]
struct Readings {
    /// Each replica's latest totals and the number of the round that read them.
    latest: BTreeMap<String, (u64, WireSnapshot)>,
    /// Since when each replica whose last fetch failed has been failing.
    failing: BTreeMap<String, Instant>,
    /// The latest round whose results are all in.
    round: Option<Look>,
    epoch: u64,
    /// Open (`Some`) while the controller leads, with where the previous
    /// leader's count stopped (`None`: nowhere to go on from).
    from: Option<Option<CountedTo>>,
}

/// A round's result for one replica: its reading, or `None` (not answered).
pub type RoundResult = (String, Option<WireSnapshot>);

/// A registered peer whose totals have not come lately: the judge counts
/// none of its traffic since (it will, once they come).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unanswered {
    /// Its node id.
    pub id: String,
    /// Milliseconds since its fetches began to fail.
    pub since_ms: u64,
}

impl Peers {
    fn lock(&self) -> MutexGuard<'_, Readings> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The controller took the lead, its saved count stopping at `from`:
    /// rounds begin, from fresh readings.
    pub fn open(&self, from: Option<CountedTo>) {
        let mut g = self.lock();
        let epoch = g.epoch + 1;
        *g = Readings { epoch, from: Some(from), ..Readings::default() };
    }

    /// The controller stopped leading: no rounds, no readings.
    pub fn close(&self) {
        let mut g = self.lock();
        let epoch = g.epoch + 1;
        *g = Readings { epoch, ..Readings::default() };
    }

    /// While open: the epoch a round begun now belongs to, and where the
    /// previous leader's count stopped.
    pub fn gate(&self) -> Option<(u64, Option<CountedTo>)> {
        let g = self.lock();
        g.from.clone().map(|from| (g.epoch, from))
    }

    /// Keeps round `look`'s results, all at once, unless the gate was
    /// opened or closed since it began (`epoch`).
    pub fn put_round(&self, epoch: u64, look: Look, results: Vec<RoundResult>) {
        let mut g = self.lock();
        if g.epoch != epoch {
            return;
        }
        for (id, reading) in results {
            match reading {
                Some(s) => {
                    g.failing.remove(&id);
                    g.latest.insert(id, (look.n, s));
                }
                None => {
                    g.failing.entry(id).or_insert_with(Instant::now);
                }
            }
        }
        g.round = Some(look);
    }

    /// Whether a reading of `id` is kept.
    pub fn has(&self, id: &str) -> bool {
        self.lock().latest.contains_key(id)
    }

    /// Forgets the replicas no longer registered.
    pub fn retain(&self, alive: &[String]) {
        let mut g = self.lock();
        g.latest.retain(|id, _| alive.contains(id));
        g.failing.retain(|id, _| alive.contains(id));
    }

    /// The peers whose fetches have failed for longer than `late`.
    pub fn unanswered(&self, late: Duration) -> Vec<Unanswered> {
        let g = self.lock();
        g.failing
            .iter()
            .filter(|(_, since)| since.elapsed() > late)
            .map(|(id, since)| Unanswered { id: id.clone(), since_ms: since.elapsed().as_millis() as u64 })
            .collect()
    }

    /// The latest round finished, with every replica's latest reading and
    /// the number of the round that read it; `None` before the first.
    pub fn latest(&self) -> Option<(Look, Vec<(u64, WireSnapshot)>)> {
        let g = self.lock();
        Some((g.round?, g.latest.values().cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::time::UnixMs;

    fn look(n: u64) -> Look {
        Look { term: 5, n, at: UnixMs::from_millis(n) }
    }

    fn reading(node: &str) -> Option<WireSnapshot> {
        Some(WireSnapshot { node: node.into(), ..WireSnapshot::default() })
    }

    #[test]
    fn a_round_begun_before_the_gate_moved_is_dropped_whole() {
        let p = Peers::default();
        assert!(p.gate().is_none(), "closed until the controller leads");
        p.open(None);
        let (epoch, _) = p.gate().unwrap();
        p.put_round(epoch, look(1), vec![("a".into(), reading("a")), ("b".into(), None)]);
        let (round, readings) = p.latest().unwrap();
        assert_eq!((round.n, readings.len()), (1, 1));
        assert!(p.unanswered(Duration::ZERO).iter().any(|u| u.id == "b"));
        p.close();
        p.open(None);
        p.put_round(epoch, look(2), vec![("a".into(), reading("a"))]);
        assert!(p.latest().is_none() && !p.has("a"), "a reading of another term was kept");
    }

    #[test]
    fn a_replica_that_missed_a_round_keeps_the_round_it_was_read_in() {
        let p = Peers::default();
        p.open(None);
        let (epoch, _) = p.gate().unwrap();
        p.put_round(epoch, look(1), vec![("a".into(), reading("a")), ("b".into(), reading("b"))]);
        p.put_round(epoch, look(2), vec![("a".into(), reading("a")), ("b".into(), None)]);
        let (round, readings) = p.latest().unwrap();
        let rounds: Vec<(u64, String)> = readings.into_iter().map(|(n, r)| (n, r.node)).collect();
        assert_eq!(round.n, 2);
        assert_eq!(rounds, vec![(2, "a".to_string()), (1, "b".to_string())]);
    }
}
