//! get, put and delete.

use crate::support::Etcd;
use canary_etcd::{DeleteOptions, GetOptions, SortOrder, SortTarget};

#[tokio::test]
async fn values_come_back_byte_for_byte_with_their_revisions() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    let text = "héllo wörld, ünïcode ✓ 🐤\n\ttabs \"quotes\" \\ backslash";
    let json = r#"{"share": 0.25, "name": "canary/v2", "nested": {"list": [1, "two", null]}}"#;
    let binary: Vec<u8> = (0..=255).collect();
    let first = c.put("/t/text", text, None).await.unwrap();
    c.put("/t/json", json, None).await.unwrap();
    c.put("/t/ключ ✓", binary.clone(), None).await.unwrap();
    let rev = first.header().unwrap().revision();
    assert!(rev > 0);

    let got = c.get("/t/text", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!((kv.key_str().unwrap(), kv.value_str().unwrap()), ("/t/text", text));
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()), (rev, rev, 1, 0));
    assert_eq!(got.header().unwrap().revision(), rev + 2);
    assert_eq!(c.get("/t/json", None).await.unwrap().kvs()[0].value_str().unwrap(), json);
    assert_eq!(c.get("/t/ключ ✓", None).await.unwrap().kvs()[0].value(), &binary[..]);

    let again = c.put("/t/text", "second", None).await.unwrap().header().unwrap().revision();
    let kv = c.get("/t/text", None).await.unwrap().take_kvs().remove(0);
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version()), (rev, again, 2));
    let old = c.get("/t/text", Some(GetOptions::new().with_revision(rev))).await.unwrap();
    assert_eq!(old.kvs()[0].value_str().unwrap(), text);

    let missing = c.get("/t/none", None).await.unwrap();
    assert!(missing.kvs().is_empty());
    assert_eq!(missing.count(), 0);
    assert_eq!(c.put("/t/empty", "", None).await.map(|_| ()).unwrap(), ());
    assert_eq!(c.get("/t/empty", None).await.unwrap().kvs()[0].value(), b"");
}

#[tokio::test]
async fn a_prefix_reads_sorted_and_limited_and_counts() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    // Created in this order: b, c, a; "/p0" and "/p" lie outside the prefix "/p/".
    for key in ["/p/b", "/p/c", "/p/a", "/p0", "/p"] {
        c.put(key, format!("v{key}"), None).await.unwrap();
    }
    let keys = |r: &canary_etcd::GetResponse| -> Vec<String> {
        r.kvs().iter().map(|kv| kv.key_str().unwrap().to_string()).collect()
    };
    let all = c.get("/p/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(keys(&all), ["/p/a", "/p/b", "/p/c"]);

    let desc = GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Descend).with_limit(2);
    let r = c.get("/p/", Some(desc)).await.unwrap();
    assert_eq!(keys(&r), ["/p/c", "/p/b"]);
    assert!(r.more());
    assert_eq!(r.count(), 3);

    let by_creation = GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Ascend);
    assert_eq!(keys(&c.get("/p/", Some(by_creation)).await.unwrap()), ["/p/b", "/p/c", "/p/a"]);
    let newest =
        GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Descend).with_limit(1);
    assert_eq!(keys(&c.get("/p/", Some(newest)).await.unwrap()), ["/p/a"]);

    let count = c.get("/p/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
    assert_eq!((count.count(), count.kvs().len()), (3, 0));
    let everything = c.get("", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
    assert_eq!(everything.count(), 5);

    let keys_only = GetOptions::new().with_prefix().with_keys_only();
    let r = c.get("/p/", Some(keys_only)).await.unwrap();
    assert_eq!(keys(&r), ["/p/a", "/p/b", "/p/c"]);
    assert!(r.kvs().iter().all(|kv| kv.value().is_empty()));
}

#[tokio::test]
async fn delete_removes_a_key_or_a_prefix() {
    let etcd = Etcd::start().await;
    let c = etcd.client().await;
    for key in ["/d/a", "/d/b", "/d/c", "/e"] {
        c.put(key, "x", None).await.unwrap();
    }
    assert_eq!(c.delete("/d/a", None).await.unwrap().deleted(), 1);
    assert_eq!(c.delete("/d/a", None).await.unwrap().deleted(), 0);
    assert_eq!(c.delete("/d/", Some(DeleteOptions::new().with_prefix())).await.unwrap().deleted(), 2);
    let left = c.get("", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(left.kvs().iter().map(|kv| kv.key()).collect::<Vec<_>>(), [b"/e"]);
}
