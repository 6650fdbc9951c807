//! The `wasi:keyvalue` component (0.2.0-draft2) in the wasmtime host: `store`,
//! `atomics` (increment, compare-and-swap and its conflict path) and `batch`,
//! bucket identifiers, and that a bucket is an ordinary cache directory.

use std::sync::OnceLock;

use filecache::{Expiry, FileStore, Options};
use filecache_host::HostConfig;
use filecache_host::keyvalue::{KeyValueError, KeyValueInstance, KeyValueRuntime, SwapFailure};

fn runtime() -> &'static KeyValueRuntime {
    static RUNTIME: OnceLock<KeyValueRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| match KeyValueRuntime::new(HostConfig::keyvalue()) {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot load the keyvalue component: {e}"),
    })
}

fn instance(root: &std::path::Path) -> KeyValueInstance {
    runtime().instantiate(root).expect("instantiate")
}

#[test]
fn store_operations_round_trip() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let bucket = kv.open("main").expect("open");
    assert_eq!(kv.get(&bucket, "k").expect("get"), None);
    assert!(!kv.exists(&bucket, "k").expect("exists"));
    kv.set(&bucket, "k", b"v1").expect("set");
    kv.set(&bucket, "k", b"v2").expect("overwrite");
    assert_eq!(kv.get(&bucket, "k").expect("get"), Some(b"v2".to_vec()));
    assert!(kv.exists(&bucket, "k").expect("exists"));
    kv.set(&bucket, "empty", b"").expect("set empty");
    assert_eq!(kv.get(&bucket, "empty").expect("get"), Some(Vec::new()));
    kv.delete(&bucket, "k").expect("delete");
    kv.delete(&bucket, "k")
        .expect("deleting an absent key is fine");
    assert_eq!(kv.get(&bucket, "k").expect("get"), None);
}

#[test]
fn a_bucket_is_a_cache_directory_named_by_its_identifier() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let sessions = kv.open("sessions").expect("open");
    let pages = kv.open("pages_v2.cache-1").expect("open");
    kv.set(&sessions, "k", b"in sessions").expect("set");
    kv.set(&pages, "k", b"in pages").expect("set");
    assert_eq!(
        kv.get(&sessions, "k").expect("get"),
        Some(b"in sessions".to_vec())
    );
    let native = FileStore::open(root.path().join("sessions"), Options::default()).expect("open");
    assert_eq!(native.get("k").expect("get"), Some(b"in sessions".to_vec()));
    native
        .insert("from-native", b"hello", Expiry::Never)
        .expect("insert");
    assert_eq!(
        kv.get(&sessions, "from-native").expect("get"),
        Some(b"hello".to_vec())
    );
    let long = "x".repeat(200);
    for bad in [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        "/abs",
        ".hidden",
        "a b",
        "é",
        long.as_str(),
    ] {
        match kv.open(bad) {
            Err(KeyValueError::AccessDenied) => {}
            other => panic!("identifier {bad:?} was not refused: {other:?}"),
        }
    }
    let made: Vec<String> = std::fs::read_dir(root.path())
        .expect("root")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made.len(), 2, "only the two buckets were made: {made:?}");
}

#[test]
fn list_keys_pages_through_every_key_once() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let bucket = kv.open("many").expect("open");
    let mut expected: Vec<String> = (0..600).map(|i| format!("key-{i}")).collect();
    let pairs: Vec<(String, Vec<u8>)> = expected
        .iter()
        .map(|key| (key.clone(), key.as_bytes().to_vec()))
        .collect();
    kv.set_many(&bucket, &pairs).expect("set-many");
    let (mut listed, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let (keys, next) = kv.list_keys(&bucket, cursor.as_deref()).expect("list-keys");
        listed.extend(keys);
        pages += 1;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn increment_counts_from_zero_and_refuses_text() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let bucket = kv.open("counters").expect("open");
    assert_eq!(kv.increment(&bucket, "n", 5).expect("increment"), 5);
    assert_eq!(kv.increment(&bucket, "n", -8).expect("increment"), -3);
    assert_eq!(kv.get(&bucket, "n").expect("get"), Some(b"-3".to_vec()));
    kv.set(&bucket, "text", b"hello").expect("set");
    assert!(matches!(
        kv.increment(&bucket, "text", 1),
        Err(KeyValueError::Other(message)) if message.contains("integer")
    ));
}

#[test]
fn compare_and_swap_succeeds_on_an_unchanged_key() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let bucket = kv.open("cas").expect("open");
    let cas = kv.cas(&bucket, "k").expect("cas on an absent key");
    assert_eq!(kv.current(&cas).expect("current"), None);
    assert!(kv.swap(cas, b"first").expect("swap").is_ok());
    let cas = kv.cas(&bucket, "k").expect("cas");
    assert_eq!(kv.current(&cas).expect("current"), Some(b"first".to_vec()));
    assert!(kv.swap(cas, b"second").expect("swap").is_ok());
    assert_eq!(kv.get(&bucket, "k").expect("get"), Some(b"second".to_vec()));
}

#[test]
fn compare_and_swap_fails_when_another_writer_changed_the_key() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut mine = instance(root.path());
    let mut theirs = instance(root.path());
    let my_bucket = mine.open("shared").expect("open");
    let their_bucket = theirs.open("shared").expect("open");
    mine.set(&my_bucket, "k", b"v1").expect("set");
    let cas = mine.cas(&my_bucket, "k").expect("cas");
    assert_eq!(mine.current(&cas).expect("current"), Some(b"v1".to_vec()));
    theirs
        .set(&their_bucket, "k", b"v2")
        .expect("a concurrent write");
    let fresh = match mine.swap(cas, b"v3").expect("swap") {
        Err(SwapFailure::Changed(fresh)) => fresh,
        other => panic!("the swap must fail: {other:?}"),
    };
    assert_eq!(
        mine.get(&my_bucket, "k").expect("get"),
        Some(b"v2".to_vec()),
        "the failed swap wrote nothing"
    );
    assert_eq!(
        mine.current(&fresh).expect("current"),
        Some(b"v2".to_vec()),
        "the fresh handle saw the new value"
    );
    assert!(
        mine.swap(fresh, b"v3").expect("swap").is_ok(),
        "the retry succeeds"
    );
    assert_eq!(
        theirs.get(&their_bucket, "k").expect("get"),
        Some(b"v3".to_vec())
    );
    // A handle made on an absent key fails once the key exists.
    let on_absent = mine.cas(&my_bucket, "new").expect("cas");
    theirs.set(&their_bucket, "new", b"theirs").expect("set");
    assert!(matches!(
        mine.swap(on_absent, b"mine").expect("swap"),
        Err(SwapFailure::Changed(_))
    ));
}

#[test]
fn batch_operations_cover_present_and_absent_keys() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let bucket = kv.open("batch").expect("open");
    let pairs = vec![
        ("a".to_owned(), b"1".to_vec()),
        ("b".to_owned(), b"2".to_vec()),
        ("c".to_owned(), b"3".to_vec()),
    ];
    kv.set_many(&bucket, &pairs).expect("set-many");
    let keys: Vec<String> = ["a", "missing", "c"].map(str::to_owned).to_vec();
    assert_eq!(
        kv.get_many(&bucket, &keys).expect("get-many"),
        vec![
            Some(("a".to_owned(), b"1".to_vec())),
            None,
            Some(("c".to_owned(), b"3".to_vec())),
        ]
    );
    kv.delete_many(&bucket, &["a".to_owned(), "missing".to_owned()])
        .expect("delete-many skips absent keys");
    assert_eq!(kv.get(&bucket, "a").expect("get"), None);
    assert_eq!(kv.get(&bucket, "b").expect("get"), Some(b"2".to_vec()));
}

#[test]
fn increments_from_several_instances_add_up() {
    const EACH: i64 = 50;
    let root = tempfile::tempdir().expect("temp dir");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let mut kv = instance(root.path());
            scope.spawn(move || {
                let bucket = kv.open("counters").expect("open");
                for _ in 0..EACH {
                    kv.increment(&bucket, "total", 1).expect("increment");
                }
            });
        }
    });
    let mut kv = instance(root.path());
    let bucket = kv.open("counters").expect("open");
    assert_eq!(kv.increment(&bucket, "total", 0).expect("read"), 4 * EACH);
}
