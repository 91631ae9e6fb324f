//! A bounded run of records, oldest first: past its age, count or bytes the
//! oldest go, and those dropped while still young enough to be asked for
//! are counted, so a reader is told what it is missing.

use super::record::Record;
use canary_core::time::UnixMs;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How much a ring keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Records older than this (milliseconds) go.
    pub age_ms: u64,
    /// At most this many records.
    pub records: usize,
    /// At most about this many bytes.
    pub bytes: usize,
}

/// Records dropped for room while still younger than the age bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// How many.
    pub records: u64,
    /// The newest of them, in milliseconds since the Unix epoch.
    pub newest_ms: Option<UnixMs>,
}

/// A bounded run of records.
#[derive(Debug)]
pub struct Ring {
    items: VecDeque<Record>,
    bytes: usize,
    limits: Limits,
    dropped: Dropped,
}

impl Ring {
    /// An empty ring keeping within `limits`.
    pub fn new(limits: Limits) -> Ring {
        Ring { items: VecDeque::new(), bytes: 0, limits, dropped: Dropped::default() }
    }

    /// Adds `r`, the newest, making room for it.
    pub fn push(&mut self, r: Record) {
        if self.limits.records == 0 {
            return;
        }
        self.expire(r.time_ms);
        self.bytes += r.size();
        self.items.push_back(r);
        while self.items.len() > self.limits.records || self.bytes > self.limits.bytes {
            let Some(old) = self.pop() else { break };
            self.dropped.records += 1;
            self.dropped.newest_ms = Some(self.dropped.newest_ms.map_or(old.time_ms, |t| t.max(old.time_ms)));
        }
    }

    /// Drops the records past the age bound at `now`.
    pub fn expire(&mut self, now: UnixMs) {
        let oldest = UnixMs::from_millis(now.as_millis().saturating_sub(self.limits.age_ms));
        while self.items.front().is_some_and(|r| r.time_ms < oldest) {
            self.pop();
        }
        // A drop older than every record still young enough is no longer news.
        if self.dropped.newest_ms.is_some_and(|t| t < oldest) {
            self.dropped = Dropped::default();
        }
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.items.iter()
    }

    /// What was dropped for room.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    fn pop(&mut self) -> Option<Record> {
        let old = self.items.pop_front()?;
        self.bytes = self.bytes.saturating_sub(old.size());
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::record::test_record;

    fn at(ms: u64) -> Record {
        let mut r = test_record(Some(500), None);
        r.time_ms = UnixMs::from_millis(ms);
        r
    }

    fn times(r: &Ring) -> Vec<u64> {
        r.iter().map(|r| r.time_ms.as_millis()).collect()
    }

    #[test]
    fn past_the_count_the_oldest_go_and_are_counted() {
        let mut r = Ring::new(Limits { age_ms: 60_000, records: 2, bytes: usize::MAX });
        (1..=4).for_each(|t| r.push(at(t)));
        assert_eq!(times(&r), vec![3, 4]);
        assert_eq!(r.dropped(), Dropped { records: 2, newest_ms: Some(UnixMs::from_millis(2)) });
    }

    #[test]
    fn past_the_bytes_the_oldest_go() {
        let one = at(0).size();
        let mut r = Ring::new(Limits { age_ms: 60_000, records: 100, bytes: one * 3 });
        (1..=5).for_each(|t| r.push(at(t)));
        assert_eq!(times(&r), vec![3, 4, 5]);
        assert_eq!(r.dropped().records, 2);
    }

    #[test]
    fn past_the_age_records_go_uncounted_and_old_drops_are_forgotten() {
        let mut r = Ring::new(Limits { age_ms: 1_000, records: 1, bytes: usize::MAX });
        r.push(at(1));
        r.push(at(2));
        assert_eq!(r.dropped().records, 1);
        r.push(at(5_000));
        assert_eq!(times(&r), vec![5_000]);
        assert_eq!(r.dropped(), Dropped::default(), "what was dropped is past the age bound anyway");
    }

    #[test]
    fn a_ring_with_no_room_keeps_nothing() {
        let mut r = Ring::new(Limits { age_ms: 1_000, records: 0, bytes: 0 });
        r.push(at(1));
        assert!(times(&r).is_empty());
    }
}
