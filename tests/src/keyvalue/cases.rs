//! The `wasi:keyvalue` conformance cases, generic over [`KeyValueBackend`].
//! Each makes a fresh store; a case that needs a call one draft lacks
//! (signed increments, compare-and-swap) checks it where the connection has it
//! and says so where it does not.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Connection, Cursor, KeyValueBackend, Swap};

/// Runs `case` unless the connection's draft lacks what it needs.
fn needs_compare_and_swap<C: Connection>(kv: &C, case: &str) -> bool {
    if kv.has_compare_and_swap() {
        true
    } else {
        eprintln!("{case}: this draft has no compare-and-swap; nothing to check");
        false
    }
}

/// Every key of `bucket`, page by page; the number of pages.
fn all_keys<C: Connection>(kv: &mut C, bucket: &C::Bucket) -> (Vec<String>, usize) {
    let (mut listed, mut cursor, mut pages) = (Vec::new(), None::<Cursor>, 0);
    loop {
        let (keys, next) = kv.list_keys(bucket, cursor.as_ref()).expect("list-keys");
        listed.extend(keys);
        pages += 1;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10_000, "list-keys never ends");
    }
    listed.sort();
    (listed, pages)
}

/// Get, set, overwrite, exists and delete on one bucket.
pub fn store_operations_round_trip<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let bucket = kv.open("main").expect("open");
    assert_eq!(kv.get(&bucket, "k").expect("get"), None);
    assert!(!kv.exists(&bucket, "k").expect("exists"));
    kv.set(&bucket, "k", b"v1").expect("set");
    kv.set(&bucket, "k", b"v2").expect("overwrite");
    assert_eq!(kv.get(&bucket, "k").expect("get"), Some(b"v2".to_vec()));
    assert!(kv.exists(&bucket, "k").expect("exists"));
    kv.delete(&bucket, "k").expect("delete");
    kv.delete(&bucket, "k")
        .expect("deleting an absent key is fine");
    assert_eq!(kv.get(&bucket, "k").expect("get"), None);
    assert!(!kv.exists(&bucket, "k").expect("exists"));
}

/// Empty, binary and megabyte values, and keys of any text, come back whole.
pub fn values_are_any_bytes<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let bucket = kv.open("bytes").expect("open");
    let every_byte: Vec<u8> = (0..=255).collect();
    let large: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("every byte", &every_byte),
        ("große 🗝/../key:with*odd?chars", b"unicode key"),
        ("large", &large),
    ];
    for (key, value) in cases {
        kv.set(&bucket, key, value).expect("set");
    }
    for (key, value) in cases {
        assert_eq!(
            kv.get(&bucket, key).expect("get").as_deref(),
            Some(value),
            "{key}"
        );
    }
}

/// The same key in two buckets holds two values; a second connection sees both.
pub fn buckets_are_separate<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let sessions = kv.open("sessions").expect("open");
    let pages = kv.open("pages").expect("open");
    kv.set(&sessions, "k", b"in sessions").expect("set");
    kv.set(&pages, "k", b"in pages").expect("set");
    let mut other = backend.connect(&place);
    let sessions = other.open("sessions").expect("open");
    let pages = other.open("pages").expect("open");
    assert_eq!(
        other.get(&sessions, "k").expect("get"),
        Some(b"in sessions".to_vec())
    );
    assert_eq!(
        other.get(&pages, "k").expect("get"),
        Some(b"in pages".to_vec())
    );
    other.delete(&pages, "k").expect("delete");
    assert!(other.exists(&sessions, "k").expect("exists"));
    assert_eq!(all_keys(&mut other, &pages).0, Vec::<String>::new());
}

/// 600 keys come back over several pages, each exactly once.
pub fn list_keys_pages_through_every_key_once<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let bucket = kv.open("many").expect("open");
    let mut expected: Vec<String> = (0..600).map(|i| format!("key-{i}")).collect();
    let pairs: Vec<(String, Vec<u8>)> = expected
        .iter()
        .map(|key| (key.clone(), key.as_bytes().to_vec()))
        .collect();
    kv.set_many(&bucket, &pairs).expect("set-many");
    let (listed, pages) = all_keys(&mut kv, &bucket);
    assert!(pages >= 2, "600 keys in {pages} page(s)");
    expected.sort();
    assert_eq!(listed, expected);
}

/// Deleted keys are not listed; keys left are.
pub fn list_keys_skips_deleted_keys<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let bucket = kv.open("listing").expect("open");
    for i in 0..40 {
        kv.set(&bucket, &format!("k{i:02}"), b"v").expect("set");
    }
    let odd: Vec<String> = (1..40).step_by(2).map(|i| format!("k{i:02}")).collect();
    kv.delete_many(&bucket, &odd).expect("delete-many");
    let even: Vec<String> = (0..40).step_by(2).map(|i| format!("k{i:02}")).collect();
    assert_eq!(all_keys(&mut kv, &bucket).0, even);
}

/// An absent counter starts at zero; text is refused and left as it was.
pub fn increment_counts_from_zero_and_refuses_text<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    let bucket = kv.open("counters").expect("open");
    assert_eq!(kv.increment(&bucket, "n", 5).expect("increment"), 5);
    assert_eq!(kv.increment(&bucket, "n", 0).expect("read"), 5);
    if kv.signed_increments() {
        assert_eq!(kv.increment(&bucket, "n", -8).expect("increment"), -3);
        assert_eq!(kv.get(&bucket, "n").expect("get"), Some(b"-3".to_vec()));
    } else {
        assert_eq!(kv.increment(&bucket, "n", 3).expect("increment"), 8);
        assert_eq!(kv.get(&bucket, "n").expect("get"), Some(b"8".to_vec()));
    }
    kv.set(&bucket, "text", b"hello").expect("set");
    assert!(kv.increment(&bucket, "text", 1).is_err(), "text counted");
    assert_eq!(
        kv.get(&bucket, "text").expect("get"),
        Some(b"hello".to_vec())
    );
}

/// Four connections increment one counter at once; none is lost.
pub fn increments_from_several_connections_add_up<B: KeyValueBackend>(backend: &B) {
    const EACH: i64 = 50;
    const CONNECTIONS: i64 = 4;
    let place = backend.place();
    std::thread::scope(|scope| {
        for _ in 0..CONNECTIONS {
            let mut kv = backend.connect(&place);
            scope.spawn(move || {
                let bucket = kv.open("counters").expect("open");
                for _ in 0..EACH {
                    kv.increment(&bucket, "total", 1).expect("increment");
                }
            });
        }
    });
    let mut kv = backend.connect(&place);
    let bucket = kv.open("counters").expect("open");
    assert_eq!(
        kv.increment(&bucket, "total", 0).expect("read"),
        CONNECTIONS * EACH
    );
}

/// A swap on an unchanged key (absent, then present) writes.
pub fn compare_and_swap_succeeds_on_an_unchanged_key<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
    if !needs_compare_and_swap(&kv, "compare_and_swap_succeeds_on_an_unchanged_key") {
        return;
    }
    let bucket = kv.open("cas").expect("open");
    let cas = kv.cas(&bucket, "k").expect("cas on an absent key");
    assert_eq!(kv.current(&cas).expect("current"), None);
    assert!(matches!(kv.swap(cas, b"first").expect("swap"), Swap::Done));
    let cas = kv.cas(&bucket, "k").expect("cas");
    assert_eq!(kv.current(&cas).expect("current"), Some(b"first".to_vec()));
    assert!(matches!(kv.swap(cas, b"second").expect("swap"), Swap::Done));
    assert_eq!(kv.get(&bucket, "k").expect("get"), Some(b"second".to_vec()));
}

/// A swap after another connection's write fails, writes nothing, and hands
/// back a handle that sees the new value and can retry.
pub fn compare_and_swap_fails_when_another_writer_changed_the_key<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut mine = backend.connect(&place);
    if !needs_compare_and_swap(
        &mine,
        "compare_and_swap_fails_when_another_writer_changed_the_key",
    ) {
        return;
    }
    let mut theirs = backend.connect(&place);
    let my_bucket = mine.open("shared").expect("open");
    let their_bucket = theirs.open("shared").expect("open");
    mine.set(&my_bucket, "k", b"v1").expect("set");
    let cas = mine.cas(&my_bucket, "k").expect("cas");
    assert_eq!(mine.current(&cas).expect("current"), Some(b"v1".to_vec()));
    theirs
        .set(&their_bucket, "k", b"v2")
        .expect("a concurrent write");
    let Swap::Changed(fresh) = mine.swap(cas, b"v3").expect("swap") else {
        panic!("the swap must fail after a concurrent write");
    };
    assert_eq!(
        mine.get(&my_bucket, "k").expect("get"),
        Some(b"v2".to_vec()),
        "the failed swap wrote nothing"
    );
    assert_eq!(mine.current(&fresh).expect("current"), Some(b"v2".to_vec()));
    assert!(matches!(mine.swap(fresh, b"v3").expect("swap"), Swap::Done));
    assert_eq!(
        theirs.get(&their_bucket, "k").expect("get"),
        Some(b"v3".to_vec())
    );
    // A handle made on an absent key fails once the key exists.
    let on_absent = mine.cas(&my_bucket, "new").expect("cas");
    theirs.set(&their_bucket, "new", b"theirs").expect("set");
    assert!(matches!(
        mine.swap(on_absent, b"mine").expect("swap"),
        Swap::Changed(_)
    ));
    // And one made on a present key fails once it is deleted.
    let on_present = mine.cas(&my_bucket, "new").expect("cas");
    theirs.delete(&their_bucket, "new").expect("delete");
    assert!(matches!(
        mine.swap(on_present, b"mine").expect("swap"),
        Swap::Changed(_)
    ));
    assert_eq!(mine.get(&my_bucket, "new").expect("get"), None);
}

/// Connections that read-modify-write one value with compare-and-swap, retrying
/// on conflict, lose no update.
pub fn compare_and_swap_races_have_one_winner_each_round<B: KeyValueBackend>(backend: &B) {
    const EACH: u64 = 25;
    const CONNECTIONS: u64 = 4;
    let place = backend.place();
    if !needs_compare_and_swap(
        &backend.connect(&place),
        "compare_and_swap_races_have_one_winner_each_round",
    ) {
        return;
    }
    let conflicts = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..CONNECTIONS {
            let mut kv = backend.connect(&place);
            let conflicts = &conflicts;
            scope.spawn(move || {
                let bucket = kv.open("race").expect("open");
                for _ in 0..EACH {
                    let mut cas = kv.cas(&bucket, "n").expect("cas");
                    loop {
                        let now = kv.current(&cas).expect("current").map_or(0, |bytes| {
                            String::from_utf8(bytes)
                                .expect("text")
                                .parse::<u64>()
                                .expect("a number")
                        });
                        match kv.swap(cas, (now + 1).to_string().as_bytes()) {
                            Ok(Swap::Done) => break,
                            Ok(Swap::Changed(fresh)) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                                cas = fresh;
                            }
                            Err(e) => panic!("swap failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    let mut kv = backend.connect(&place);
    let bucket = kv.open("race").expect("open");
    let total = (CONNECTIONS * EACH).to_string().into_bytes();
    assert_eq!(kv.get(&bucket, "n").expect("get"), Some(total));
    eprintln!(
        "{} conflicts retried in {} swaps",
        conflicts.load(Ordering::Relaxed),
        CONNECTIONS * EACH
    );
}

/// `get-many` answers present and absent keys in order; `delete-many` skips
/// absent ones.
pub fn batch_operations_cover_present_and_absent_keys<B: KeyValueBackend>(backend: &B) {
    let place = backend.place();
    let mut kv = backend.connect(&place);
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
    kv.set_many(&bucket, &[]).expect("an empty set-many");
    assert_eq!(
        kv.get_many(&bucket, &[]).expect("an empty get-many"),
        vec![]
    );
}
