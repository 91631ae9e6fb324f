//! SIGTERM: in-flight requests finish, new connections are refused, state is
//! saved, and the process exits 0.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_cleanly() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let state = arg(dir.path(), "s.db");
    let mut p = serve_proc(&stable, &state, &["--share", "0"]);
    let c = client();
    let proxy = p.proxy;
    let slow = tokio::spawn(async move { get(&client(), proxy, "/slow/1500", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = admin_put(&c, p.admin, "/api/routing/share", serde_json::json!({"share": 5})).await;
    assert_eq!(status, 200);
    let pid = p.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        tokio::net::TcpStream::connect(proxy).await.is_err(),
        "new connections are refused while draining"
    );
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "stable"), "the in-flight request finished");
    let code = tokio::task::spawn_blocking(move || p.child.wait().unwrap()).await.unwrap();
    assert!(code.success(), "exit status {code}");
    // The state was saved: a new process starts from the share set before SIGTERM.
    let p = serve_proc(&stable, &state, &["--share", "0"]);
    assert_eq!(admin_json(&client(), p.admin, "/api/routing").await["share"], 5.0);
}
