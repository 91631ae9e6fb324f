//! A certificate's validity dates (`notBefore`, `notAfter`), read from its
//! DER, and the check that a listener's certificate is within them.
//!
//! rustls does not expose the dates, and a full X.509 parser would be a large
//! dependency for two fields, so this walks the few DER elements in front of
//! them (RFC 5280 section 4.1): the certificate and its `tbsCertificate`
//! (sequences), the optional `[0]` version, the serial number, the signature
//! algorithm, the issuer, then the validity sequence of two times. Every
//! length is checked against what is left, so a damaged file is an error,
//! never a panic.

use super::TlsError;
use jiff::Timestamp;
use std::path::Path;

/// The period a certificate is valid in, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: Timestamp,
    /// `notAfter`.
    pub not_after: Timestamp,
}

/// What a refusal of a certificate whose dates have not begun says: the
/// rotation takes it by itself once they have (see `tls::rotate`).
pub const NOT_YET_VALID: &str = "the certificate is not valid yet";

/// Refuses the certificate in `path` (its DER `der`) if `now` is outside its
/// dates, saying which dates and what to do; else its dates.
pub fn check(path: &Path, der: &[u8], now: Timestamp) -> Result<Validity, TlsError> {
    let v = read(der)
        .map_err(|e| TlsError::content(path, format!("cannot read the certificate's dates: {e}")))?;
    let (from, to, now_s) = (v.not_before, v.not_after, now.round(jiff::Unit::Second).unwrap_or(now));
    if now > v.not_after {
        return Err(TlsError::content(
            path,
            format!(
                "the certificate expired on {to} (valid from {from} to {to}; it is now {now_s}); \
                 give a certificate that is valid now"
            ),
        ));
    }
    if now < v.not_before {
        return Err(TlsError::content(
            path,
            format!(
                "{NOT_YET_VALID}: valid from {from} to {to}, and it is now {now_s}; it is taken by \
                 itself once valid; or give a certificate that is valid now, or check this machine's clock"
            ),
        ));
    }
    Ok(v)
}

/// The validity dates of a DER certificate.
pub fn read(der: &[u8]) -> Result<Validity, String> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(cert, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    for tag in [INTEGER, SEQUENCE, SEQUENCE] {
        tbs = element(tbs, tag)?.1; // serial number, signature algorithm, issuer
    }
    let (validity, _) = element(tbs, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Ok(Validity { not_before, not_after })
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The content of the element at the start of `input`, which must have
/// `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    match input.first() {
        Some(&t) if t == tag => {}
        Some(&t) => return Err(format!("expected DER tag {tag:#04x}, found {t:#04x}")),
        None => return Err("the certificate ends early".into()),
    }
    let (len, head) = length(&input[1..])?;
    let body = &input[1 + head..];
    if body.len() < len {
        return Err("an element is longer than the certificate".into());
    }
    Ok(body.split_at(len))
}

/// A DER length: its value and how many bytes it took.
fn length(input: &[u8]) -> Result<(usize, usize), String> {
    let first = *input.first().ok_or("the certificate ends early")?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || input.len() < 1 + n {
        return Err("a length that is not DER".into());
    }
    let len = input[1..=n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, 1 + n))
}

/// A `UTCTime` or `GeneralizedTime` at the start of `input`, and what follows.
fn time(input: &[u8]) -> Result<(Timestamp, &[u8]), String> {
    let tag = *input.first().ok_or("the certificate ends early")?;
    let (body, rest) = element(input, tag)?;
    let text = std::str::from_utf8(body).ok().filter(|t| t.is_ascii()).ok_or("a time that is not ASCII")?;
    let full = match tag {
        // RFC 5280 4.1.2.5.1: two-digit years 50-99 are 19xx, 00-49 20xx.
        UTC_TIME if text.len() == 13 => {
            let century = if text[..2] >= *"50" { "19" } else { "20" };
            format!("{century}{text}")
        }
        GENERALIZED_TIME if text.len() == 15 => text.to_string(),
        _ => return Err(format!("a time in an unexpected form: {text:?}")),
    };
    Ok((parse(&full)?, rest))
}

/// `YYYYMMDDHHMMSSZ` as a timestamp.
fn parse(t: &str) -> Result<Timestamp, String> {
    let bad = || format!("a time in an unexpected form: {t:?}");
    if !t.ends_with('Z') || !t[..14].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |range: std::ops::Range<usize>| t[range].parse::<i16>().map_err(|_| bad());
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, s) = (n(8..10)?, n(10..12)?, n(12..14)?);
    let civil = jiff::civil::DateTime::new(y, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
        .map_err(|e| format!("{}: {e}", bad()))?;
    jiff::tz::TimeZone::UTC.to_timestamp(civil).map_err(|e| format!("{}: {e}", bad()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element: `tag`, a short-form length, `body`.
    fn el(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }

    /// The front of a certificate with these two times.
    fn cert(not_before: &[u8], not_after: &[u8]) -> Vec<u8> {
        let mut tbs = el(VERSION, &el(INTEGER, &[2]));
        tbs.extend(el(INTEGER, &[1, 2, 3]));
        tbs.extend(el(SEQUENCE, &[0u8; 10]));
        tbs.extend(el(SEQUENCE, &[0u8; 200])); // an issuer long enough for a long-form length
        tbs.extend(el(SEQUENCE, &[not_before, not_after].concat()));
        tbs.extend(el(SEQUENCE, &[0u8; 4]));
        el(SEQUENCE, &[el(SEQUENCE, &tbs), el(SEQUENCE, &[0u8; 3])].concat())
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn reads_both_time_forms() {
        let der = cert(&el(UTC_TIME, b"990102030405Z"), &el(GENERALIZED_TIME, b"20500607080910Z"));
        let v = read(&der).unwrap();
        assert_eq!(v.not_before, ts("1999-01-02T03:04:05Z"));
        assert_eq!(v.not_after, ts("2050-06-07T08:09:10Z"));
        let der = cert(&el(UTC_TIME, b"240102030405Z"), &el(UTC_TIME, b"491231235959Z"));
        assert_eq!(read(&der).unwrap().not_after, ts("2049-12-31T23:59:59Z"));
    }

    #[test]
    fn check_names_the_dates_and_the_way_out() {
        let der = cert(&el(UTC_TIME, b"200101000000Z"), &el(UTC_TIME, b"210101000000Z"));
        let path = Path::new("/etc/tls.crt");
        let err = check(path, &der, ts("2030-01-01T00:00:00Z")).unwrap_err().to_string();
        assert!(err.starts_with("/etc/tls.crt: the certificate expired on 2021-01-01T00:00:00Z"), "{err}");
        assert!(
            err.contains("valid from 2020-01-01T00:00:00Z") && err.contains("2030-01-01T00:00:00Z"),
            "{err}"
        );
        let err = check(path, &der, ts("2019-06-01T00:00:00Z")).unwrap_err().to_string();
        assert!(err.contains("not valid yet") && err.contains("clock"), "{err}");
        assert!(check(path, &der, ts("2020-06-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = cert(&el(UTC_TIME, b"200101000000Z"), &el(UTC_TIME, b"210101000000Z"));
        for cut in 0..good.len() {
            assert!(read(&good[..cut]).is_err(), "cut at {cut}");
        }
        for bad in [&b"20200101000000"[..], b"2020010100000Z", b"20201301000000Z", b"2020a101000000Z"] {
            let der = cert(&el(UTC_TIME, b"200101000000Z"), &el(GENERALIZED_TIME, bad));
            assert!(read(&der).is_err(), "{bad:?}");
        }
        assert!(length(&[0x85, 1, 1, 1, 1, 1]).is_err(), "lengths past 4 bytes are refused");
    }
}
