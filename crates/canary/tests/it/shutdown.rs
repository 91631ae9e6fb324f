//! SIGTERM: in-flight requests finish, new connections are refused, state is
//! saved, and the process exits 0.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_cleanly() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let state = arg(dir.path(), "s.db");
    let mut p = serve_proc(&stable, &state, &["--share", "0"]);
    let c = client();
    let proxy = p.proxy;
    let slow = tokio::spawn(async move { get(&client(), proxy, "/slow/1500", &[]).await });
    // SIGTERM only once the proxy has the request: a fixed wait could let it come first.
    let in_flight = eventually(10, || async {
        admin_json(&c, p.admin, "/api/v2/metrics").await["capacity"]["concurrent_users"] == 1
    })
    .await;
    assert!(in_flight, "the slow request never reached the proxy");
    let (status, _) = admin_put(&c, p.admin, "/api/routing/share", serde_json::json!({"share": 5})).await;
    assert_eq!(status, 200);
    let pid = p.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let refused = eventually(5, || async { tokio::net::TcpStream::connect(proxy).await.is_err() }).await;
    assert!(refused, "new connections are refused while draining");
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "stable"), "the in-flight request finished");
    let code = tokio::task::spawn_blocking(move || p.child.wait().unwrap()).await.unwrap();
    assert!(code.success(), "exit status {code}");
    // The state was saved: a new process starts from the share set before SIGTERM.
    let p = serve_proc(&stable, &state, &["--share", "0"]);
    assert_eq!(admin_json(&client(), p.admin, "/api/routing").await["share"], 5.0);
}
