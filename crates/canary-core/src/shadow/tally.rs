//! What one route's copies came to: comparisons counted by the set of
//! differences they found (their signature), stable's noise learned from
//! asking it twice, and the canary's errors on copies. Counting signatures
//! rather than verdicts lets a comparison made before the noise was known
//! be judged by the noise known now: a timestamp that differed in the first
//! copy is excused once stable is seen to change it too.

use super::diff::Difference;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most signatures a route keeps; comparisons past it are counted as
/// differing, which errs towards failing, never towards passing.
pub const MAX_SIGNATURES: usize = 256;

/// One route's copies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTally {
    /// Comparisons by the differences they found (an empty set: the same
    /// answer).
    pub signatures: BTreeMap<BTreeSet<Difference>, u64>,
    /// Comparisons whose signature did not fit under [`MAX_SIGNATURES`].
    pub unsorted: u64,
    /// Stable asked twice: how often each difference showed.
    pub noise: Noise,
    /// Copies sent to the canary that it answered or failed.
    pub copies: u64,
    /// Of those, copies it failed (a 5xx, or no answer).
    pub copy_errors: u64,
}

/// Differences between two answers of stable to the same request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Noise {
    /// Requests stable answered twice.
    pub samples: u64,
    /// How many of those showed each difference.
    pub seen: BTreeMap<Difference, u64>,
}

impl Noise {
    /// Learns from one pair of stable's answers.
    pub fn learn(&mut self, found: &BTreeSet<Difference>) {
        self.samples += 1;
        for d in found {
            *self.seen.entry(d.clone()).or_default() += 1;
        }
    }

    /// The share of samples in which stable itself showed `d`, if sampled.
    pub fn share(&self, d: &Difference) -> Option<f64> {
        (self.samples > 0).then(|| *self.seen.get(d).unwrap_or(&0) as f64 / self.samples as f64)
    }

    /// Adds another replica's noise.
    pub fn merge(&mut self, other: &Noise) {
        self.samples += other.samples;
        for (d, n) in &other.seen {
            *self.seen.entry(d.clone()).or_default() += n;
        }
    }
}

impl RouteTally {
    /// Counts one comparison of the canary's answer with stable's.
    pub fn record(&mut self, found: BTreeSet<Difference>) {
        self.add(found, 1);
    }

    fn add(&mut self, found: BTreeSet<Difference>, n: u64) {
        let fits = self.signatures.len() < MAX_SIGNATURES || self.signatures.contains_key(&found);
        if fits {
            *self.signatures.entry(found).or_default() += n;
        } else {
            self.unsorted += n;
        }
    }

    /// Comparisons made.
    pub fn compared(&self) -> u64 {
        self.signatures.values().sum::<u64>() + self.unsorted
    }

    /// Adds another replica's tally of the same route.
    pub fn merge(&mut self, other: &RouteTally) {
        for (sig, n) in &other.signatures {
            self.add(sig.clone(), *n);
        }
        self.unsorted += other.unsorted;
        self.noise.merge(&other.noise);
        self.copies += other.copies;
        self.copy_errors += other.copy_errors;
    }
}

/// Serialised form of a tally (JSON maps want string keys): what crosses
/// between replicas and into the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TallyWire {
    /// Signatures and their counts.
    pub signatures: Vec<(Vec<Difference>, u64)>,
    /// See [`RouteTally::unsorted`].
    #[serde(default)]
    pub unsorted: u64,
    /// Stable's pairs.
    pub noise_samples: u64,
    /// Differences seen between stable's pairs.
    pub noise: Vec<(Difference, u64)>,
    /// Copies answered or failed.
    pub copies: u64,
    /// Copies failed.
    pub copy_errors: u64,
}

impl From<&RouteTally> for TallyWire {
    fn from(t: &RouteTally) -> TallyWire {
        TallyWire {
            signatures: t.signatures.iter().map(|(s, n)| (s.iter().cloned().collect(), *n)).collect(),
            unsorted: t.unsorted,
            noise_samples: t.noise.samples,
            noise: t.noise.seen.iter().map(|(d, n)| (d.clone(), *n)).collect(),
            copies: t.copies,
            copy_errors: t.copy_errors,
        }
    }
}

impl From<TallyWire> for RouteTally {
    fn from(w: TallyWire) -> RouteTally {
        let mut t = RouteTally {
            unsorted: w.unsorted,
            copies: w.copies,
            copy_errors: w.copy_errors,
            ..Default::default()
        };
        for (sig, n) in w.signatures {
            t.add(sig.into_iter().collect(), n);
        }
        t.noise = Noise { samples: w.noise_samples, seen: w.noise.into_iter().collect() };
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::diff::Kind;

    fn sig(ats: &[(&str, Kind)]) -> BTreeSet<Difference> {
        ats.iter().map(|(at, kind)| Difference { at: at.to_string(), kind: *kind }).collect()
    }

    #[test]
    fn comparisons_are_counted_by_signature_and_bounded() {
        let mut t = RouteTally::default();
        t.record(sig(&[]));
        t.record(sig(&[("$.a", Kind::Value)]));
        t.record(sig(&[("$.a", Kind::Value)]));
        assert_eq!((t.compared(), t.signatures.len()), (3, 2));
        for i in 0..MAX_SIGNATURES + 10 {
            t.record(sig(&[(&format!("$.k{i}"), Kind::Added)]));
        }
        assert_eq!(t.signatures.len(), MAX_SIGNATURES);
        assert_eq!(t.compared(), 3 + MAX_SIGNATURES as u64 + 10);
        assert!(t.unsorted >= 10);
    }

    #[test]
    fn a_tally_survives_its_wire_form_and_merges_by_adding() {
        let mut t = RouteTally { copies: 5, copy_errors: 1, ..Default::default() };
        t.record(sig(&[("$.ts", Kind::Value), ("$.id", Kind::Type)]));
        t.noise.learn(&sig(&[("$.ts", Kind::Value)]));
        let json = serde_json::to_string(&TallyWire::from(&t)).unwrap();
        let back = RouteTally::from(serde_json::from_str::<TallyWire>(&json).unwrap());
        assert_eq!(back, t);
        let mut sum = back.clone();
        sum.merge(&t);
        assert_eq!((sum.compared(), sum.copies, sum.copy_errors, sum.noise.samples), (2, 10, 2, 2));
        assert_eq!(sum.noise.share(&Difference { at: "$.ts".into(), kind: Kind::Value }), Some(1.0));
    }
}
