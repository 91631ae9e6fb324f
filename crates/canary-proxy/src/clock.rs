//! The wall clock, for the instants an outcome is recorded at.

use canary_core::time::UnixMs;
use std::time::SystemTime;

/// Now, as the wall clock says (the epoch for a clock set before it).
pub fn now() -> UnixMs {
    UnixMs::from(SystemTime::now())
}
