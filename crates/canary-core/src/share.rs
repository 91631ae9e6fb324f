//! The canary's share of traffic: a percentage from 0 to 100 with at most two
//! decimals, held as basis points (0..=10000) so comparisons are exact integers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A share of traffic in basis points: 1050 is 10.5%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Share(u16);

/// Why a value is not a share.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShareError {
    /// Not a number at all.
    #[error("`{0}` is not a number; give a percentage such as 10 or 12.5")]
    NotANumber(String),
    /// Below 0 or above 100.
    #[error("{0} is outside 0..100; a share is a percentage of traffic")]
    OutOfRange(f64),
    /// More than two decimals.
    #[error("{0} has more than two decimals; the share's resolution is 0.01%")]
    TooPrecise(f64),
}

impl Share {
    /// No traffic to the canary.
    pub const ZERO: Share = Share(0);
    /// All traffic to the canary.
    pub const FULL: Share = Share(10_000);

    /// A share from basis points, if within 0..=10000.
    pub fn from_basis_points(bp: u16) -> Option<Share> {
        (bp <= 10_000).then_some(Share(bp))
    }

    /// A share from a percentage, checked for range and resolution.
    pub fn from_percent(p: f64) -> Result<Share, ShareError> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(ShareError::OutOfRange(p));
        }
        let scaled = p * 100.0;
        let rounded = scaled.round();
        // Floating point makes 12.34 * 100 = 1233.9999...; a tolerance far below
        // one basis point accepts it and still refuses a third decimal.
        if (scaled - rounded).abs() > 1e-6 {
            return Err(ShareError::TooPrecise(p));
        }
        // In range 0..=10000 by the check above, so the cast cannot truncate.
        Ok(Share(rounded as u16))
    }

    /// The share in basis points (0..=10000).
    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// The share as a percentage.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl FromStr for Share {
    type Err = ShareError;

    fn from_str(s: &str) -> Result<Share, ShareError> {
        let t = s.trim().trim_end_matches('%');
        let p: f64 = t.parse().map_err(|_| ShareError::NotANumber(s.to_string()))?;
        Share::from_percent(p)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        if frac == 0 {
            write!(f, "{whole}%")
        } else if frac % 10 == 0 {
            write!(f, "{whole}.{}%", frac / 10)
        } else {
            write!(f, "{whole}.{frac:02}%")
        }
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Share, D::Error> {
        let p = f64::deserialize(d)?;
        Share::from_percent(p).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_percentages_with_two_decimals() {
        assert_eq!("10".parse::<Share>().unwrap().basis_points(), 1000);
        assert_eq!("12.34".parse::<Share>().unwrap().basis_points(), 1234);
        assert_eq!("0.01%".parse::<Share>().unwrap().basis_points(), 1);
        assert_eq!("100".parse::<Share>().unwrap(), Share::FULL);
    }

    #[test]
    fn refuses_out_of_range_and_too_precise() {
        assert!(matches!("150".parse::<Share>(), Err(ShareError::OutOfRange(_))));
        assert!(matches!("-1".parse::<Share>(), Err(ShareError::OutOfRange(_))));
        assert!(matches!("1.234".parse::<Share>(), Err(ShareError::TooPrecise(_))));
        assert!(matches!("ten".parse::<Share>(), Err(ShareError::NotANumber(_))));
        assert!(matches!("NaN".parse::<Share>(), Err(ShareError::OutOfRange(_))));
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Share::from_percent(25.0).unwrap().to_string(), "25%");
        assert_eq!(Share::from_percent(12.5).unwrap().to_string(), "12.5%");
        assert_eq!(Share::from_percent(0.05).unwrap().to_string(), "0.05%");
    }
}
