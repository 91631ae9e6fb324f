//! A user's identity as records show it: a keyed hash of the user key, so
//! `canary logs --user ID` finds a user's requests while the logs never hold
//! the id (or the client address it falls back to). The key is a secret
//! kept in the state, one per deployment, so every replica writes the same
//! hash for the same user and nobody without the state can test a guess.
//!
//! SipHash-1-3 is a keyed pseudo-random function made for short inputs, and
//! its output is fixed by its definition (unlike std's `DefaultHasher`), so
//! replicas of different builds agree.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// The secret the hash is keyed with.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct UserKeySecret(pub [u8; 16]);

impl std::fmt::Debug for UserKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed: it would let a reader test guesses against the logs.
        f.write_str("UserKeySecret(..)")
    }
}

impl UserKeySecret {
    /// The keyed hash of a user key.
    pub fn hash(&self, key: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_key(&self.0);
        h.write(key);
        h.finish()
    }

    /// The hash as records write it: 16 hex digits.
    pub fn show(hash: u64) -> String {
        String::from_utf8_lossy(&hex16(hash)).into_owned()
    }
}

/// `n` as 16 lowercase hex digits, without the formatting machinery (ids
/// and hashes are written for every request while the access log is on).
pub fn hex16(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    for (i, d) in b.iter_mut().enumerate() {
        *d = DIGITS[((n >> ((15 - i) * 4)) & 0xf) as usize];
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_user_hashes_alike_and_another_key_hashes_otherwise() {
        let a = UserKeySecret([7; 16]);
        let b = UserKeySecret([8; 16]);
        assert_eq!(a.hash(b"user-42"), a.hash(b"user-42"));
        assert_ne!(a.hash(b"user-42"), a.hash(b"user-43"));
        assert_ne!(a.hash(b"user-42"), b.hash(b"user-42"));
        assert_eq!(UserKeySecret::show(0xab), "00000000000000ab");
    }

    #[test]
    fn the_hash_is_siphash_1_3_as_defined() {
        // Computed by a separate implementation of the paper's definition
        // (c = 1, d = 3), itself checked against the SipHash-2-4 reference
        // vector: every build of every replica must write the same hash.
        let k = UserKeySecret(std::array::from_fn(|i| i as u8));
        assert_eq!(k.hash(b""), 0xabac_0158_050f_c4dc);
        assert_eq!(k.hash(b"user-42"), 0xf6f8_7828_7cd6_899c);
    }
}
