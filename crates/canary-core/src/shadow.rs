//! The shadow step's pure part: copies of real requests are sent to the
//! canary while stable serves every user, and the answers compared.
//! [`diff`] compares two answers into a set of differences by field;
//! [`tally`] counts a route's comparisons by that set and learns stable's
//! own noise from pairs of its answers; [`verdict`] judges a route (too
//! many differences beyond noise, or too many errors on copies) with the
//! judge's always-valid test. Sending, capturing and timing are the data
//! plane's (`canary_proxy::shadow`).

pub mod diff;
pub mod tally;
pub mod verdict;
