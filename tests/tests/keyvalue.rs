//! The filecache component's `wasi:keyvalue` in the wasmtime host: the
//! keyvalue conformance suite through each draft it exports (`draft2`,
//! `draft`), and what is particular to filecache — a bucket is an ordinary
//! cache directory, shared by both drafts, named by a checked identifier.

use filecache::{Expiry, FileStore, Options};
use filecache_conformance::keyvalue::filecache::{FilecacheKeyValue, runtime};
use filecache_host::keyvalue::{Cursor, KeyValueError, KeyValueInstance, Version};

/// Through `wasi:keyvalue@0.2.0-draft2`.
mod draft2 {
    use super::{FilecacheKeyValue, Version};
    filecache_conformance::keyvalue_suite!(FilecacheKeyValue(Version::Draft2));
}

/// Through `wasi:keyvalue@0.2.0-draft`.
mod draft {
    use super::{FilecacheKeyValue, Version};
    filecache_conformance::keyvalue_suite!(FilecacheKeyValue(Version::Draft));
}

const VERSIONS: [Version; 2] = [Version::Draft2, Version::Draft];

fn instance(root: &std::path::Path) -> KeyValueInstance {
    runtime().instantiate(root).expect("instantiate")
}

#[test]
fn every_defined_case_is_listed() {
    let source = include_str!("../src/keyvalue/cases.rs");
    let defined: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("pub fn "))
        .filter_map(|rest| rest.split('<').next())
        .collect();
    assert!(defined.len() >= 10, "found only {} cases", defined.len());
    for case in &defined {
        assert!(
            filecache_conformance::keyvalue::KEYVALUE_CASE_NAMES.contains(case),
            "case `{case}` is defined but not listed in define_keyvalue_suite!"
        );
    }
    assert_eq!(
        defined.len(),
        filecache_conformance::keyvalue::KEYVALUE_CASE_NAMES.len()
    );
}

#[test]
fn a_bucket_is_a_cache_directory_named_by_its_identifier() {
    for version in VERSIONS {
        let root = tempfile::tempdir().expect("temp dir");
        let mut kv = instance(root.path());
        let sessions = kv.open(version, "sessions").expect("open");
        kv.open(version, "pages_v2.cache-1").expect("open");
        kv.set(&sessions, "k", b"in sessions").expect("set");
        let native =
            FileStore::open(root.path().join("sessions"), Options::default()).expect("open");
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
            match kv.open(version, bad) {
                Err(KeyValueError::AccessDenied) => {}
                other => panic!("{version}: identifier {bad:?} was not refused: {other:?}"),
            }
        }
        let made: Vec<String> = std::fs::read_dir(root.path())
            .expect("root")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            made.len(),
            2,
            "{version}: only two buckets were made: {made:?}"
        );
    }
}

#[test]
fn both_drafts_see_the_same_buckets_and_counters() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let new = kv.open(Version::Draft2, "shared").expect("open");
    let old = kv.open(Version::Draft, "shared").expect("open");
    kv.set(&new, "written-by-draft2", b"2").expect("set");
    kv.set(&old, "written-by-draft", b"1").expect("set");
    assert_eq!(
        kv.get(&old, "written-by-draft2").expect("get"),
        Some(b"2".to_vec())
    );
    assert_eq!(
        kv.get(&new, "written-by-draft").expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(kv.increment(&new, "n", 40).expect("increment"), 40);
    assert_eq!(kv.increment_unsigned(&old, "n", 2).expect("increment"), 42);
    assert_eq!(kv.increment(&new, "n", -50).expect("increment"), -8);
    assert!(
        matches!(kv.increment_unsigned(&old, "n", 1), Err(KeyValueError::Other(m)) if m.contains("integer")),
        "a negative counter is no u64"
    );
}

#[test]
fn calls_a_draft_lacks_are_refused_without_a_call() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let new = kv.open(Version::Draft2, "b").expect("open");
    let old = kv.open(Version::Draft, "b").expect("open");
    for (what, outcome) in [
        ("cas", kv.cas(&old, "k").map(drop)),
        ("signed increment", kv.increment(&old, "k", 1).map(drop)),
        (
            "unsigned increment",
            kv.increment_unsigned(&new, "k", 1).map(drop),
        ),
        (
            "a numeric cursor",
            kv.list_keys(&new, Some(&Cursor::Number(1))).map(drop),
        ),
        (
            "a text cursor",
            kv.list_keys(&old, Some(&Cursor::Text("x".into())))
                .map(drop),
        ),
    ] {
        assert!(
            matches!(outcome, Err(KeyValueError::OtherVersion { .. })),
            "{what}: {outcome:?}"
        );
    }
}

#[test]
fn an_unsigned_counter_refuses_to_wrap() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut kv = instance(root.path());
    let old = kv.open(Version::Draft, "b").expect("open");
    kv.set(&old, "n", u64::MAX.to_string().as_bytes())
        .expect("set");
    assert_eq!(kv.increment_unsigned(&old, "n", 0).expect("read"), u64::MAX);
    assert!(
        matches!(kv.increment_unsigned(&old, "n", 1), Err(KeyValueError::Other(m)) if m.contains("overflow")),
        "u64::MAX + 1 wrapped"
    );
    assert_eq!(
        kv.get(&old, "n").expect("get"),
        Some(u64::MAX.to_string().into_bytes())
    );
}
