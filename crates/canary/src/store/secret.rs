//! The secret users are hashed with in the request log (see
//! `canary_proxy::requests::user`): made from the kernel's randomness at a
//! deployment's first start and kept in its state, so the hash of a user
//! stays the same across restarts and on every replica of a fleet, and the
//! logs cannot be matched against guessed ids by anyone without the state.

use super::Store;
use canary_proxy::requests::user::UserKeySecret;
use serde_json::json;
use std::io::Read;

/// The state's key for the secret.
const KEY: &str = "log_user_secret";

/// The deployment's secret, made and kept at the first call. When the state
/// cannot keep it (it could not be read), a secret of this process's own
/// is used, and said: hashes then differ across restarts until it can.
pub fn user_secret(store: &Store) -> Result<UserKeySecret, String> {
    let fresh = random()?;
    let hex: String = fresh.0.iter().map(|b| format!("{b:02x}")).collect();
    match store.kv_create(KEY, &json!(hex)) {
        Ok(v) => parse(&v).ok_or_else(|| format!("the state's `{KEY}` is not 32 hex digits: {v}")),
        Err(e) => {
            tracing::warn!(error = %e.message, "the request log's user hashes use a secret of this process: the state cannot keep one");
            Ok(fresh)
        }
    }
}

fn parse(v: &serde_json::Value) -> Option<UserKeySecret> {
    let s = v.as_str().filter(|s| s.len() == 32)?;
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(UserKeySecret(out))
}

fn random() -> Result<UserKeySecret, String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot read /dev/urandom for the request log's secret: {e}"))?;
    Ok(UserKeySecret(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let first = user_secret(&Store::open(&path, false).unwrap()).unwrap();
        let again = user_secret(&Store::open(&path, false).unwrap()).unwrap();
        assert_eq!(first, again, "a restart keeps the hashes");
        let other = dir.path().join("other.db");
        assert_ne!(first, user_secret(&Store::open(&other, false).unwrap()).unwrap());
    }

    #[test]
    fn only_32_hex_digits_are_taken() {
        assert!(parse(&json!("00112233445566778899aabbccddeeff")).is_some());
        assert!(parse(&json!("0011")).is_none());
        assert!(parse(&json!("zz112233445566778899aabbccddeeff")).is_none());
    }
}
