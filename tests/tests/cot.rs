//! The Cot adapter: the core conformance cases through a real `cot::cache::Cache`
//! built on `CotStore`, and Cot's own shared cache cases (the ones Cot runs
//! against its memory and Redis stores) against it.

use std::time::Duration;

use cot::cache::Cache;
use cot::config::Timeout;
use filecache::Options;
use filecache::cot::CotStore;
use filecache_conformance::backends::Cot;
use serde::{Deserialize, Serialize};

filecache_conformance::core_suite!(Cot);

fn cache_in(dir: &std::path::Path, prefix: Option<&str>) -> (Cache, CotStore) {
    let store = CotStore::open(dir, Options::default()).expect("open");
    let cache = Cache::new(
        store.clone(),
        prefix.map(str::to_owned),
        Timeout::After(Duration::from_secs(60)),
    );
    (cache, store)
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct User {
    id: u32,
    name: String,
    email: String,
}

#[tokio::test]
async fn cot_basic_operations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    cache
        .insert("user:1", "John Doe".to_owned())
        .await
        .expect("insert");
    let user: Option<String> = cache.get("user:1").await.expect("get");
    assert_eq!(user.as_deref(), Some("John Doe"));
    cache.remove("user:1").await.expect("remove");
    let user: Option<String> = cache.get("user:1").await.expect("get");
    assert_eq!(user, None);
}

#[tokio::test]
async fn cot_prefix_keeps_keys_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (app_a, store) = cache_in(dir.path(), Some("a"));
    let (app_b, _) = cache_in(dir.path(), Some("b"));
    app_a.insert("user:1", "in a").await.expect("insert");
    app_b.insert("user:1", "in b").await.expect("insert");
    let a: Option<String> = app_a.get("user:1").await.expect("get");
    let b: Option<String> = app_b.get("user:1").await.expect("get");
    assert_eq!((a.as_deref(), b.as_deref()), (Some("in a"), Some("in b")));
    assert!(
        store
            .file_store()
            .contains_key("a:user:1")
            .expect("contains"),
        "the prefix is part of the stored key"
    );
}

#[tokio::test]
async fn cot_complex_objects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    let user = User {
        id: 1,
        name: "John Doe".to_owned(),
        email: "john@example.com".to_owned(),
    };
    cache.insert("user:1", &user).await.expect("insert");
    let cached: Option<User> = cache.get("user:1").await.expect("get");
    assert_eq!(cached, Some(user));
}

#[tokio::test]
async fn cot_insert_expiring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    cache
        .insert_expiring(
            "temp:data",
            "temporary",
            Timeout::After(Duration::from_millis(300)),
        )
        .await
        .expect("insert");
    let value: Option<String> = cache.get("temp:data").await.expect("get");
    assert_eq!(value.as_deref(), Some("temporary"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let value: Option<String> = cache.get("temp:data").await.expect("get");
    assert_eq!(value, None, "a 300 ms timeout expires to the millisecond");
    let at = Timeout::After(Duration::from_millis(300)).canonicalize();
    cache
        .insert_expiring("at", "until then", at)
        .await
        .expect("insert");
    assert!(cache.contains_key("at").await.expect("contains"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        !cache.contains_key("at").await.expect("contains"),
        "AtDateTime too"
    );
}

#[tokio::test]
async fn cot_get_or_insert_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    let mut calls = 0;
    let first: String = cache
        .get_or_insert_with("expensive", || async {
            calls += 1;
            Ok("computed".to_owned())
        })
        .await
        .expect("first");
    let second: String = cache
        .get_or_insert_with("expensive", || async {
            calls += 1;
            Ok("different".to_owned())
        })
        .await
        .expect("second");
    assert_eq!(
        (first.as_str(), second.as_str(), calls),
        ("computed", "computed", 1)
    );
}

#[tokio::test]
async fn cot_get_or_insert_with_expiring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    let mut calls = 0;
    for _ in 0..2 {
        let value: String = cache
            .get_or_insert_expiring_with(
                "temp:data",
                || async {
                    calls += 1;
                    Ok("temporary".to_owned())
                },
                Timeout::After(Duration::from_mins(5)),
            )
            .await
            .expect("get or insert");
        assert_eq!(value, "temporary");
    }
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn cot_statistics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    assert_eq!(cache.approx_size().await.expect("size"), 0);
    cache.insert("key1", "value1").await.expect("insert");
    cache.insert("key2", "value2").await.expect("insert");
    assert_eq!(cache.approx_size().await.expect("size"), 2);
    cache.clear().await.expect("clear");
    assert_eq!(cache.approx_size().await.expect("size"), 0);
}

#[tokio::test]
async fn cot_contains_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, _) = cache_in(dir.path(), None);
    assert!(!cache.contains_key("nonexistent").await.expect("contains"));
    cache.insert("existing", "value").await.expect("insert");
    assert!(cache.contains_key("existing").await.expect("contains"));
}

#[tokio::test]
async fn cot_values_are_shared_with_the_native_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cache, store) = cache_in(dir.path(), None);
    cache.insert("k", vec![1, 2, 3]).await.expect("insert");
    assert_eq!(
        store.file_store().get("k").expect("get"),
        Some(b"[1,2,3]".to_vec()),
        "stored as JSON"
    );
    store
        .file_store()
        .insert("not-json", b"\xff\xfe", filecache::Expiry::Never)
        .expect("insert");
    let err = cache
        .get::<_, Vec<u8>>("not-json")
        .await
        .expect_err("not JSON");
    assert!(err.to_string().contains("deserializ"), "{err}");
}
