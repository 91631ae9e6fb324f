//! The `Date` header a response gets when its upstream sent none (as hyper's
//! server adds it): formatted once a second per worker thread, not per response.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` is 29 bytes.
const LEN: usize = 29;

struct Cached {
    second: u64,
    text: [u8; LEN],
}

thread_local! {
    static NOW: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [b' '; LEN] }) };
}

/// Appends the current date in HTTP's form (RFC 9110 section 5.6.7).
pub fn extend(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    NOW.with_borrow_mut(|c| {
        if c.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LEN {
                c.text.copy_from_slice(text.as_bytes());
                c.second = second;
            }
        }
        out.extend_from_slice(&c.text);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_an_http_date() {
        let mut out = Vec::new();
        super::extend(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}
