//! gRPC status codes: their names, and the set of them that counts as a
//! call's failure (`[metrics] grpc_error_codes`). Here rather than beside the
//! proxy's gRPC handling because the configuration parses the set and the
//! proxy reads it: both depend on this, neither on the other.

use serde::Deserialize;

/// The status codes' names, by number (the gRPC spec's `statuscodes.md`).
pub const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The `grpc-status` codes that count as errors (`[metrics]
/// grpc_error_codes`), as a bit set: one bit per code 0..=16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes(u32);

impl Default for Codes {
    /// The server-side failures: UNKNOWN, DEADLINE_EXCEEDED,
    /// RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DATA_LOSS. Codes about the
    /// request (INVALID_ARGUMENT, NOT_FOUND...) are the client's, as 4xx are.
    fn default() -> Codes {
        Codes([2, 4, 8, 13, 14, 15].iter().fold(0, |bits, c| bits | 1 << c))
    }
}

/// A code as written in the config file: its number or its name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CodeName {
    /// `14`
    Number(i64),
    /// `"UNAVAILABLE"` (any case)
    Name(String),
}

impl Codes {
    /// The set of `codes`; the error names the code that is not one.
    pub fn parse(codes: &[CodeName]) -> Result<Codes, String> {
        let mut bits = 0u32;
        for c in codes {
            let n = match c {
                CodeName::Number(n) => u32::try_from(*n).ok().filter(|n| (1..=16).contains(n)),
                CodeName::Name(s) => NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)).map(|i| i as u32),
            };
            match n {
                Some(0) | None => {
                    let what = match c {
                        CodeName::Number(n) => n.to_string(),
                        CodeName::Name(s) => format!("\"{s}\""),
                    };
                    return Err(format!(
                        "{what} is not a gRPC error code: write numbers 1 to 16 or names such as \"UNAVAILABLE\" (OK, 0, is never an error)"
                    ));
                }
                Some(n) => bits |= 1 << n,
            }
        }
        Ok(Codes(bits))
    }

    /// Whether `code` counts as an error (on the request path: inlined).
    #[inline]
    pub fn counts(self, code: u32) -> bool {
        code < 32 && self.0 & (1 << code) != 0
    }
}
