//! State that survives the process: kill -9 and restart keep the share.

use crate::support::*;

#[test]
fn after_kill_9_the_first_request_is_routed_by_the_persisted_share() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let state = arg(dir.path(), "state.db");
    let (s, c) = (stable.url(), canary.url());
    let args = [
        "--stable",
        &s,
        "--canary",
        &c,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
        "--share",
        "0",
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = Process::start(&args);
    rt.block_on(async {
        let cl = client();
        assert_eq!(get(&cl, p.proxy, "/", &[("x-user-id", "u1")]).await.1, "stable");
        let (status, _) =
            admin_put(&cl, p.admin, "/api/routing/share", serde_json::json!({"share": 100})).await;
        assert_eq!(status, 200);
    });
    p.kill9();
    // Restarted with the same flags (share 0): the persisted 100% wins, from
    // the very first request on a fresh connection.
    let p = Process::start(&args);
    rt.block_on(async {
        let cl = client();
        assert_eq!(get(&cl, p.proxy, "/", &[("x-user-id", "u1")]).await.1, "canary");
        let routing = admin_json(&cl, p.admin, "/api/routing").await;
        assert_eq!(routing["share"], 100.0);
        let events = admin_json(&cl, p.admin, "/api/events").await;
        let kinds: Vec<&str> =
            events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["share_changed", "routing_initialised"], "newest first");
        assert_eq!(events["events"][0]["source"], "api");
    });
}
