//! Routing inputs straight from the wire: any path, override, cookie and user
//! key must give a decision, never a panic; and a user's bucket must not
//! depend on anything but the rollout name and the key.
#![no_main]

use canary_core::exclude::Excludes;
use canary_core::request::{Override, bounded_key, cookie_value};
use canary_core::route_label::RouteTemplates;
use canary_core::routing::RequestFacts;
use canary_core::{RoutingTable, Share, decide, path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(2));
    let share = Share::from_basis_points(u16::from_le_bytes([head.first().copied().unwrap_or(0), head.get(1).copied().unwrap_or(0)]) % 10_001)
        .unwrap_or(Share::ZERO);
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\n');
    let (raw_path, cookie, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let norm = path::normalize(raw_path);
    let table = RoutingTable {
        rollout: "fuzz".into(),
        share,
        excludes: Excludes::new(&["/api/admin/*", "/api/internal/*"]).unwrap_or_else(|_| Excludes::none()),
        has_canary: true,
        canary_blocked: head.get(2).is_some_and(|b| b & 1 == 1),
    };
    let forced = cookie_value(cookie.as_bytes(), "x-canary").and_then(Override::parse);
    let facts = RequestFacts { path: &norm, forced, user_key: bounded_key(key.as_bytes()) };
    let a = decide(&table, &facts);
    assert_eq!(a, decide(&table, &facts), "the same request routes the same way");
    let _ = RouteTemplates::new(&["/api/v2/rooms/{id}"], 3).map(|t| t.label(&norm).len());
});
