//! The request log `canary logs` reads: every failure, and a sample of the
//! other requests, kept per worker in memory.
//!
//! - [`record`]: one request, typed;
//! - [`ring`]: a run of records bounded by age, count and bytes;
//! - [`filter`]: what a reader asks for;
//! - [`user`]: the keyed hash a user is shown as.
//!
//! A record is made only for a request that is kept, so the common request
//! pays for a sampling draw and nothing else. Failures and the sample have
//! rings of their own: a flood of successes never pushes a failure out.
//! Each worker's log is its own, under a lock only its worker writes.

pub mod entry;
pub mod filter;
pub mod record;
pub mod ring;
pub mod shelf;
pub mod user;

pub use filter::Filter;
pub use record::{Cause, Reason, Record};
pub use ring::{Dropped, Limits};

use canary_core::time::UnixMs;
use ring::Ring;
use serde::{Deserialize, Serialize};

/// How much the request log keeps, for the whole replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keep {
    /// Failures: at most this old, many and large.
    pub failures: Limits,
    /// The share of other requests kept (0 to 1).
    pub sample: f64,
}

impl Default for Keep {
    /// 30 minutes, 100,000 failures and 64 MB, and 1% of the rest.
    fn default() -> Keep {
        Keep { failures: Limits { age_ms: 30 * 60_000, records: 100_000, bytes: 64 << 20 }, sample: 0.01 }
    }
}

impl Keep {
    /// One worker's part of the bounds, for `workers` workers. The sample
    /// gets a tenth of the failures' room: it shows what normal looks like,
    /// and needs no more.
    pub fn per_worker(&self, workers: usize) -> [Limits; 2] {
        let n = workers.max(1);
        let f = self.failures;
        let failures =
            Limits { age_ms: f.age_ms, records: f.records.div_ceil(n), bytes: f.bytes.div_ceil(n) };
        let tenth = |n: usize| (n / 10).max(n.min(1));
        let sample = Limits { records: tenth(failures.records), bytes: tenth(failures.bytes), ..failures };
        [failures, sample]
    }
}

/// One worker's request log.
#[derive(Debug)]
pub struct Log {
    failures: Ring,
    sample: Ring,
    seq: u64,
    /// Added to `seq` so records of different workers never share one.
    worker: u64,
    workers: u64,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The records asked for, oldest first.
    pub records: Vec<Record>,
    /// Records that matched but were left out, past the limit asked for
    /// (the oldest are left out).
    pub truncated: u64,
    /// Failures dropped for room while still within the age bound: the
    /// reader may be missing some.
    pub dropped: Dropped,
}

impl Log {
    /// An empty log for worker `worker` of `workers`.
    pub fn new(keep: &Keep, worker: usize, workers: usize) -> Log {
        let [failures, sample] = keep.per_worker(workers);
        Log {
            failures: Ring::new(failures),
            sample: Ring::new(sample),
            seq: 0,
            worker: worker as u64,
            workers: workers.max(1) as u64,
        }
    }

    /// Keeps `r`, giving it its sequence number.
    pub fn push(&mut self, mut r: Record) {
        self.seq += 1;
        r.seq = self.seq * self.workers + self.worker;
        if r.is_error() || r.cause.is_some() { self.failures.push(r) } else { self.sample.push(r) }
    }

    /// Adds the records `f` asks for, as of `now`, to `out`.
    pub fn read(&mut self, f: &Filter, now: UnixMs, out: &mut Found) {
        self.failures.expire(now);
        self.sample.expire(now);
        let d = self.failures.dropped();
        if d.records > 0 && f.since.is_none_or(|since| d.newest_ms.is_some_and(|t| t >= since)) {
            out.dropped.records += d.records;
            out.dropped.newest_ms = out.dropped.newest_ms.max(d.newest_ms);
        }
        out.records.extend(self.failures.iter().filter(|r| f.matches(r)).cloned());
        if !f.failures_only() {
            out.records.extend(self.sample.iter().filter(|r| f.matches(r)).cloned());
        }
    }
}

impl Found {
    /// Orders the records by time and keeps the newest `limit`.
    pub fn finish(&mut self, limit: usize) {
        self.records.sort_by_key(|r| (r.time_ms, r.seq));
        let over = self.records.len().saturating_sub(limit);
        self.records.drain(..over);
        self.truncated += over as u64;
    }

    /// Adds another replica's (or worker's) findings.
    pub fn add(&mut self, other: Found) {
        self.records.extend(other.records);
        self.truncated += other.truncated;
        self.dropped.records += other.dropped.records;
        self.dropped.newest_ms = self.dropped.newest_ms.max(other.dropped.newest_ms);
    }
}

/// A sampling threshold for a share `p` of requests: a uniform draw below
/// it keeps the request.
pub fn threshold(p: f64) -> u64 {
    if p >= 1.0 { u64::MAX } else { (p.max(0.0) * u64::MAX as f64) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use record::test_record;

    #[test]
    fn failures_and_the_sample_are_kept_apart_and_read_in_order() {
        let keep = Keep::default();
        let mut log = Log::new(&keep, 1, 2);
        let mut ok = test_record(Some(200), None);
        ok.time_ms = UnixMs::from_millis(2_000);
        log.push(ok);
        log.push(test_record(Some(500), None));
        let mut found = Found::default();
        log.read(&Filter::default(), UnixMs::from_millis(3_000), &mut found);
        found.finish(10);
        let statuses: Vec<_> = found.records.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![Some(500), Some(200)]);
        let seqs: Vec<_> = found.records.iter().map(|r| r.seq % 2).collect();
        assert_eq!(seqs, vec![1, 1], "worker 1's numbers");
        let only_failures = Filter { errors: true, ..Filter::default() };
        let mut found = Found::default();
        log.read(&only_failures, UnixMs::from_millis(3_000), &mut found);
        assert_eq!(found.records.len(), 1);
    }

    #[test]
    fn past_the_limit_the_oldest_are_left_out_and_counted() {
        let mut found = Found::default();
        for t in [3, 1, 2] {
            let mut r = test_record(Some(500), None);
            r.time_ms = UnixMs::from_millis(t);
            found.records.push(r);
        }
        found.finish(2);
        let times: Vec<_> = found.records.iter().map(|r| r.time_ms.as_millis()).collect();
        assert_eq!(times, vec![2, 3]);
        assert_eq!(found.truncated, 1);
    }

    #[test]
    fn a_drop_is_reported_only_to_a_reader_reaching_back_to_it() {
        let keep = Keep { failures: Limits { age_ms: 60_000, records: 1, bytes: usize::MAX }, sample: 0.0 };
        let mut log = Log::new(&keep, 0, 1);
        for t in [1_000, 2_000] {
            let mut r = test_record(Some(500), None);
            r.time_ms = UnixMs::from_millis(t);
            log.push(r);
        }
        let read = |since: u64, log: &mut Log| {
            let mut found = Found::default();
            let f = Filter { since: Some(UnixMs::from_millis(since)), ..Filter::default() };
            log.read(&f, UnixMs::from_millis(3_000), &mut found);
            found.dropped
        };
        assert_eq!(read(500, &mut log), Dropped { records: 1, newest_ms: Some(UnixMs::from_millis(1_000)) });
        assert_eq!(read(1_500, &mut log), Dropped::default());
    }

    #[test]
    fn the_bounds_are_shared_among_workers_and_the_sample_gets_a_tenth() {
        let [f, s] = Keep::default().per_worker(2);
        assert_eq!((f.records, f.bytes), (50_000, 32 << 20));
        assert_eq!((s.records, s.bytes), (5_000, (32 << 20) / 10));
        assert_eq!(threshold(1.0), u64::MAX);
        assert_eq!(threshold(0.0), 0);
    }
}
