//! The sticky bucket: where a user falls on the 0..10000 line.
//!
//! `murmur3_32("{rollout}:{key}")`, scaled onto 0..10000 basis points. A user is in
//! the canary when their bucket is below the share, so a user never changes
//! bucket as the share moves: raising the share only adds users. Including the
//! rollout name means each rollout draws a different slice of users, so the same
//! early adopters do not take every risk.

use mur3::Hasher32;
use std::hash::Hasher;

/// The number of buckets: one per basis point.
pub const BUCKETS: u32 = 10_000;

/// The bucket (0..10000) of `key` in the rollout named `rollout`.
pub fn bucket_of(rollout: &str, key: &[u8]) -> u16 {
    let mut h = Hasher32::with_seed(0);
    h.write(rollout.as_bytes());
    h.write(b":");
    h.write(key);
    scale(h.finish32())
}

/// Maps a 32-bit hash onto 0..10000 without the bias of a modulo.
fn scale(hash: u32) -> u16 {
    // (hash * 10000) >> 32 is below 10000 for every u32, so it fits in u16.
    ((u64::from(hash) * u64::from(BUCKETS)) >> 32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_murmur3_of_joined_string() {
        // The streamed hash must equal the one-shot hash of "rollout:key", so
        // other tools (and services using the same flags) compute the same bucket.
        let joined = mur3::murmurhash3_x86_32(b"v2-api-canary:user-42", 0);
        assert_eq!(bucket_of("v2-api-canary", b"user-42"), scale(joined));
    }

    #[test]
    fn known_murmur3_vector() {
        // Reference vector for MurmurHash3_x86_32("hello", seed 0).
        assert_eq!(mur3::murmurhash3_x86_32(b"hello", 0), 0x248b_fa47);
    }

    #[test]
    fn scale_covers_the_whole_range() {
        assert_eq!(scale(0), 0);
        assert_eq!(scale(u32::MAX), 9999);
    }

    #[test]
    fn buckets_spread_evenly() {
        let mut below_ten_percent = 0;
        for i in 0..10_000 {
            if bucket_of("r", format!("u{i}").as_bytes()) < 1000 {
                below_ten_percent += 1;
            }
        }
        // Binomial(10000, 0.1): sd = 30; 5 sd either side.
        assert!((850..=1150).contains(&below_ten_percent), "{below_ten_percent}");
    }
}
