//! The dynamic config JSON (S16) and feature flags: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = canary_core::dynamic::parse(text, "v2-api-canary");
    let _ = canary_core::flags::from_file(text, "v2-api-canary");
});
