//! Routing through the real proxy: the split, stickiness, excludes, overrides.

use crate::support::*;
use canary::live::{Change, Source};
use canary_core::Share;
use canary_core::exclude::Excludes;
use futures_util::future::join_all;
use std::collections::HashSet;

/// Sends one request per user and returns the users served by the canary.
async fn canary_users(addr: std::net::SocketAddr, users: usize) -> HashSet<usize> {
    let c = client();
    let mut in_canary = HashSet::new();
    for batch in (0..users).collect::<Vec<_>>().chunks(64) {
        let replies = join_all(batch.iter().map(|&u| {
            let c = c.clone();
            async move {
                let id = format!("user-{u}");
                (u, get(&c, addr, "/api/v2/rooms", &[("x-user-id", &id)]).await)
            }
        }))
        .await;
        for (u, (status, version, body)) in replies {
            assert_eq!(status, 200);
            assert_eq!(version, body, "x-canary-version must name the upstream that answered");
            if version == "canary" {
                in_canary.insert(u);
            }
        }
    }
    in_canary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_is_within_bounds_and_sticky_as_the_share_rises() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "10", dir.path()));
    let users = 10_000;
    let mut previous: HashSet<usize> = HashSet::new();
    for share in [10.0, 25.0, 50.0, 75.0] {
        let change = Change { share: Some(Share::from_percent(share).unwrap()), ..Change::default() };
        srv.live.apply(change, Source::Api).unwrap();
        let now = canary_users(srv.proxy_addr, users).await;
        // Binomial(n, p): 5 standard deviations either side.
        let p = share / 100.0;
        let (mean, sd) = (users as f64 * p, (users as f64 * p * (1.0 - p)).sqrt());
        let got = now.len() as f64;
        assert!(
            (got - mean).abs() < 5.0 * sd,
            "{share}%: {got} users in the canary, expected {mean} +- {}",
            5.0 * sd
        );
        let left: Vec<_> = previous.difference(&now).collect();
        assert!(left.is_empty(), "{} users left the canary when the share rose to {share}%", left.len());
        previous = now;
    }
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excludes_and_overrides_win() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "100", dir.path()));
    let ex = Excludes::new(&["/api/admin/*", "/api/internal/*"]).unwrap();
    srv.live.apply(Change { excludes: Some(ex), ..Change::default() }, Source::Api).unwrap();
    let c = client();
    let a = srv.proxy_addr;
    assert_eq!(get(&c, a, "/api/v2/rooms", &[("x-user-id", "u1")]).await.1, "canary");
    assert_eq!(get(&c, a, "/api/admin/users/7", &[("x-user-id", "u1")]).await.1, "stable");
    // An exclude cannot be walked around by spelling the path differently.
    assert_eq!(get(&c, a, "/api/%61dmin/users", &[]).await.1, "stable");
    assert_eq!(get(&c, a, "/api/v2/../internal/x", &[]).await.1, "stable");
    // Excludes win even over an explicit override.
    assert_eq!(get(&c, a, "/api/internal/x", &[("x-canary", "always")]).await.1, "stable");
    // Overrides beat the bucket, by header and by cookie.
    assert_eq!(get(&c, a, "/api/v2/rooms", &[("x-canary", "never")]).await.1, "stable");
    assert_eq!(get(&c, a, "/api/v2/rooms", &[("cookie", "a=b; x-canary=never")]).await.1, "stable");
    let zero = Change { share: Some(Share::ZERO), ..Change::default() };
    srv.live.apply(zero, Source::Api).unwrap();
    assert_eq!(get(&c, a, "/api/v2/rooms", &[("x-canary", "always")]).await.1, "canary");
    assert_eq!(get(&c, a, "/api/v2/rooms", &[]).await.1, "stable");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_user_id_the_client_address_is_the_key() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, Some(&canary), "50", dir.path()));
    let c = client();
    let first = get(&c, srv.proxy_addr, "/", &[]).await.1;
    for _ in 0..20 {
        assert_eq!(get(&c, srv.proxy_addr, "/", &[]).await.1, first, "one client address, one version");
    }
    // An absurdly long user id is bounded, not refused: the request is served.
    let long = "x".repeat(8000);
    assert_eq!(get(&c, srv.proxy_addr, "/", &[("x-user-id", &long)]).await.0, 200);
    srv.shutdown();
}
