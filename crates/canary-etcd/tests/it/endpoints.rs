//! Endpoints: failover, a stopped member, https refused, a leaderless member.

use crate::support::{Etcd, client, reserved};
use canary_etcd::{Client, ConnectOptions, Error, WatchOptions};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_closed_port_first_fails_over_to_the_next_endpoint_and_is_remembered() {
    let etcd = Etcd::start().await;
    let (closed, _keep) = reserved();
    let closed = format!("http://127.0.0.1:{closed}");
    let c = client(&[closed.clone(), etcd.url(0)], Duration::from_secs(1)).await;
    assert_eq!(c.current_endpoint(), closed);
    c.put("/f", "1", None).await.unwrap();
    assert_eq!(c.current_endpoint(), etcd.url(0));
    assert_eq!(c.get("/f", None).await.unwrap().kvs()[0].value(), b"1");
    let mut w = c.watch("/f", None).await.unwrap();
    c.put("/f", "2", None).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), w.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(r.events()[0].kv().unwrap().value(), b"2");

    // A fresh client starts at the closed port: its watch fails over too.
    let c = client(&[closed, etcd.url(0)], Duration::from_secs(1)).await;
    let mut w = c.watch("/f", Some(WatchOptions::new().with_start_revision(1))).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), w.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(r.events()[0].kv().unwrap().value(), b"1");
}

/// A server that accepts connections and never answers (a hung member).
async fn silent() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_member_that_does_not_answer_is_left_after_the_per_try_timeout() {
    let etcd = Etcd::start().await;
    let (hung, task) = silent().await;
    let per_try = Duration::from_secs(1);
    let c = client(&[hung.clone(), etcd.url(0)], per_try).await;
    let started = Instant::now();
    c.put("/h", "1", None).await.unwrap();
    let took = started.elapsed();
    assert!(took >= per_try && took < per_try + Duration::from_secs(3), "took {took:?}");
    assert_eq!(c.current_endpoint(), etcd.url(0));
    // The next call starts where the last one was answered: no wait.
    let started = Instant::now();
    c.get("/h", None).await.unwrap();
    assert!(started.elapsed() < per_try, "took {:?}", started.elapsed());

    let alone = client(std::slice::from_ref(&hung), per_try).await;
    let e = alone.get("/h", None).await.unwrap_err();
    assert!(matches!(&e, Error::Timeout { endpoint, .. } if *endpoint == hung), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(e.to_string(), format!("etcd {hung}: no answer within 1000 ms"));
    task.abort();
}

#[tokio::test]
async fn a_stopped_etcd_is_a_transient_error_within_the_per_try_timeout() {
    let mut etcd = Etcd::start().await;
    let per_try = Duration::from_secs(1);
    let c = client(&[etcd.url(0)], per_try).await;
    c.put("/s", "1", None).await.unwrap();
    etcd.kill(0);
    let started = Instant::now();
    let e = c.get("/s", None).await.unwrap_err();
    assert!(started.elapsed() < per_try, "took {:?}", started.elapsed());
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains(&etcd.url(0)), "{e}");
    assert!(matches!(e, Error::Connect { .. } | Error::Transport { .. }), "{e:?}");
    let e = c.watch("/s", None).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    let e = c.lease_keep_alive_once(1).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
}

#[tokio::test]
async fn a_broken_watch_ends_in_a_transient_error() {
    let mut etcd = Etcd::start().await;
    let c = etcd.client().await;
    let mut w = c.watch("/b", None).await.unwrap();
    etcd.kill(0);
    let r =
        tokio::time::timeout(Duration::from_secs(10), w.message()).await.expect("the stream did not notice");
    let e = r.expect_err("a killed etcd ends the watch with an error");
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains(&etcd.url(0)), "{e}");
}

#[tokio::test]
async fn every_endpoint_down_gives_the_last_ones_error() {
    let ((a, _ka), (b, _kb)) = (reserved(), reserved());
    let (a, b) = (format!("http://127.0.0.1:{a}"), format!("http://127.0.0.1:{b}"));
    let c = client(&[a, b.clone()], Duration::from_secs(1)).await;
    let e = c.get("/x", None).await.unwrap_err();
    assert!(matches!(&e, Error::Connect { endpoint, .. } if *endpoint == b), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("refused"), "{e}");
}

#[tokio::test]
async fn an_https_endpoint_is_refused_by_name() {
    let e = Client::connect(["http://127.0.0.1:2379", "https://etcd-b:2379"], None).await.unwrap_err();
    assert!(matches!(e, Error::InvalidEndpoint { .. }));
    let text = e.to_string();
    assert!(text.contains("https://etcd-b:2379") && text.contains("plain HTTP"), "{text}");
    assert!(matches!(Client::connect(Vec::<String>::new(), None).await, Err(Error::NoEndpoints)));
}

#[tokio::test]
async fn a_member_without_a_leader_refuses_at_once_when_a_leader_is_required() {
    let mut etcd = Etcd::cluster(2).await;
    etcd.kill(1);
    let per_try = Duration::from_secs(2);
    let opts = ConnectOptions::new().with_timeout(per_try).with_require_leader(true);
    let strict = Client::connect([etcd.url(0)], Some(opts)).await.unwrap();
    // The survivor loses its leader within an election timeout or two.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (e, took) = loop {
        let started = Instant::now();
        match strict.get("/l", None).await {
            Err(e) if e.to_string().contains("no leader") => break (e, started.elapsed()),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the member kept answering with one member of two down: {other:?}"),
        }
    };
    assert_eq!(e.code(), Some(14));
    assert!(e.is_transient());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(e.to_string().contains(&etcd.url(0)), "{e}");

    // Without the header the same read waits for etcd instead.
    let lax = client(&[etcd.url(0)], Duration::from_millis(1500)).await;
    let e = lax.get("/l", None).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    // A watch is refused the same way.
    let e = strict.watch("/l", None).await.unwrap_err();
    assert!(e.to_string().contains("no leader"), "{e}");
}
