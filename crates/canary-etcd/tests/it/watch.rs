//! Watches: history from a revision, live changes, quiet spells, prefixes,
//! compaction, and cancellation on drop.

use crate::support::{Etcd, eventually};
use canary_etcd::{EventType, WatchOptions, WatchStream};
use std::time::Duration;

/// The next message with events, waiting at most 10 s.
async fn next_events(s: &mut WatchStream) -> Vec<(EventType, String, i64)> {
    loop {
        let r =
            tokio::time::timeout(Duration::from_secs(10), s.message()).await.expect("no event within 10 s");
        let r = r.unwrap().expect("the watch ended");
        assert!(!r.canceled(), "canceled: {r:?}");
        if !r.events().is_empty() {
            return r
                .events()
                .iter()
                .map(|e| {
                    let kv = e.kv().unwrap();
                    (e.event_type(), kv.key_str().unwrap().to_string(), kv.mod_revision())
                })
                .collect();
        }
    }
}

/// The next `n` events, across messages.
async fn events(s: &mut WatchStream, n: usize) -> Vec<(EventType, String, i64)> {
    let mut all = Vec::new();
    while all.len() < n {
        all.extend(next_events(s).await);
    }
    all
}

/// The value of one of etcd's own metrics, from `/metrics`.
async fn metric(url: &str, name: &str) -> f64 {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = http.get(format!("{url}/metrics").parse().unwrap()).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body).to_string();
    let line =
        text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
    line[name.len()..].trim().parse().unwrap()
}

#[tokio::test]
async fn a_watch_from_a_revision_sees_puts_and_deletes_in_order_then_waits_quietly() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let start = c.put("/w/a", "1", None).await.unwrap().header().unwrap().revision();
    c.put("/w/b", "2", None).await.unwrap();
    c.delete("/w/a", None).await.unwrap();
    c.put("/w/b", "3", None).await.unwrap();

    let opts = WatchOptions::new().with_prefix().with_start_revision(start);
    let mut s = c.watch("/w/", Some(opts)).await.unwrap();
    let seen = events(&mut s, 4).await;
    let want = [
        (EventType::Put, "/w/a".to_string(), start),
        (EventType::Put, "/w/b".to_string(), start + 1),
        (EventType::Delete, "/w/a".to_string(), start + 2),
        (EventType::Put, "/w/b".to_string(), start + 3),
    ];
    assert_eq!(seen, want);

    // A quiet spell longer than any per-try timeout: the watch stays open.
    let quiet = tokio::time::timeout(Duration::from_secs(3), s.message()).await;
    assert!(quiet.is_err(), "a message came while nothing changed: {quiet:?}");
    let rev = c.put("/w/c", "after the quiet", None).await.unwrap().header().unwrap().revision();
    assert_eq!(events(&mut s, 1).await, [(EventType::Put, "/w/c".to_string(), rev)]);
}

#[tokio::test]
async fn a_watch_sees_every_change_made_once_it_has_returned() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let mut s = c.watch("/routing", None).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..20 {
        revs.push(c.put("/routing", format!("{i}"), None).await.unwrap().header().unwrap().revision());
    }
    let seen: Vec<i64> = events(&mut s, 20).await.into_iter().map(|(_, _, rev)| rev).collect();
    assert_eq!(seen, revs);
}

#[tokio::test]
async fn a_key_watch_and_a_prefix_watch_see_only_their_keys() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let mut one = c.watch("/kv/flags", None).await.unwrap();
    let mut under = c.watch("/kv/", Some(WatchOptions::new().with_prefix())).await.unwrap();
    for key in ["/kv/flagsx", "/kv0", "/kv/other", "/kv/flags"] {
        c.put(key, "v", None).await.unwrap();
    }
    let keys = |evs: Vec<(EventType, String, i64)>| evs.into_iter().map(|e| e.1).collect::<Vec<_>>();
    assert_eq!(keys(events(&mut one, 1).await), ["/kv/flags"]);
    assert_eq!(keys(events(&mut under, 3).await), ["/kv/flagsx", "/kv/other", "/kv/flags"]);
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_is_canceled_with_the_compact_revision() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let old = c.put("/x", "1", None).await.unwrap().header().unwrap().revision();
    let now = c.put("/x", "2", None).await.unwrap().header().unwrap().revision();
    etcd.etcdctl(&["compact", &now.to_string()]);

    let mut s = c.watch("/x", Some(WatchOptions::new().with_start_revision(old))).await.unwrap();
    let r = loop {
        let r = tokio::time::timeout(Duration::from_secs(10), s.message()).await.unwrap().unwrap().unwrap();
        if r.canceled() {
            break r;
        }
    };
    assert_eq!(r.compact_revision(), now);
    assert!(s.message().await.unwrap().is_none(), "nothing follows a cancel");
}

/// How many watchers etcd has.
async fn watchers(url: &str) -> f64 {
    metric(url, "etcd_debugging_mvcc_watcher_total").await
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_watch_on_etcd() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let url = etcd.url(0);
    assert_eq!(watchers(&url).await, 0.0);
    let s = c.watch("/dropped", None).await.unwrap();
    assert_eq!(watchers(&url).await, 1.0);
    drop(s);
    let gone = eventually(Duration::from_secs(10), || async { watchers(&url).await == 0.0 }).await;
    assert!(gone, "etcd still has the watcher 10 s after the stream was dropped");
}
