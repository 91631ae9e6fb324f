//! Reading routing facts out of raw header values: the `x-canary` override, cookies,
//! and the user key. Pure functions over bytes, so the proxy can hand over header
//! values without copying them.

/// An explicit request to be served by one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    /// `x-canary: always`: serve this request from the canary.
    Always,
    /// `x-canary: never`: serve this request from stable.
    Never,
}

impl Override {
    /// Parses `always` or `never` (any case, surrounding spaces ignored);
    /// anything else is no override, so a stray value cannot break routing.
    pub fn parse(value: &[u8]) -> Option<Override> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"always") {
            Some(Override::Always)
        } else if v.eq_ignore_ascii_case(b"never") {
            Some(Override::Never)
        } else {
            None
        }
    }
}

/// The value of cookie `name` in one `Cookie` header value, if present.
pub fn cookie_value<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        (k == name.as_bytes()).then(|| strip_quotes(v))
    })
}

fn strip_quotes(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// The longest user key used for bucketing. Longer keys are cut, which keeps
/// hashing cheap and bounded whatever a client sends; keys this long are not
/// real user ids anyway.
pub const MAX_USER_KEY: usize = 256;

/// Cuts an over-long key to [`MAX_USER_KEY`] bytes.
pub fn bounded_key(key: &[u8]) -> &[u8] {
    &key[..key.len().min(MAX_USER_KEY)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_values() {
        assert_eq!(Override::parse(b"always"), Some(Override::Always));
        assert_eq!(Override::parse(b" NEVER "), Some(Override::Never));
        assert_eq!(Override::parse(b"sometimes"), None);
    }

    #[test]
    fn finds_cookies() {
        let h = b"a=1; x-canary=always; uid=\"u-7\"";
        assert_eq!(cookie_value(h, "x-canary"), Some(&b"always"[..]));
        assert_eq!(cookie_value(h, "uid"), Some(&b"u-7"[..]));
        assert_eq!(cookie_value(h, "missing"), None);
        assert_eq!(cookie_value(b"novalue; =x", "novalue"), None);
    }

    #[test]
    fn bounds_keys() {
        let long = vec![b'a'; 10_000];
        assert_eq!(bounded_key(&long).len(), MAX_USER_KEY);
        assert_eq!(bounded_key(b"short"), b"short");
    }
}
