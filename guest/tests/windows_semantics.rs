//! File semantics where Windows differs from Unix, checked on every platform.
//!
//! Windows refuses to rename over, or delete, a file that someone holds open
//! without `FILE_SHARE_DELETE`, and without POSIX semantics (Windows before 10
//! 1809, Wine) even with it. The cache opens entries sharing delete access and
//! retries a rename or delete that meets a held file for a moment, so readers
//! that come and go — every `get` — never fail a write. With POSIX semantics a
//! reader may even hold an entry open for good: the entry is replaced and
//! removed under it, and the held handle keeps reading the old file whole. On
//! Windows, a foreign program that opens an entry *without*
//! `FILE_SHARE_DELETE` (some backup and scanning tools do) makes writes to
//! that key fail with a clear error that keeps the old value, until it lets go.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use filecache::{Expiry, FileStore, Options};

/// A store in `dir` holding `value` under `k`.
fn store_holding(dir: &std::path::Path, value: &[u8]) -> FileStore {
    let store = FileStore::open(dir, Options::default()).expect("open");
    store.insert("k", value, Expiry::Never).expect("insert");
    store
}

#[test]
fn an_entry_held_open_by_a_reader_is_replaced_and_removed_under_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_holding(dir.path(), b"first");
    let path = store.entry_path("k");
    let old_file = std::fs::read(&path).expect("read the entry file");
    let mut held = std::fs::File::open(&path).expect("hold the entry open");

    store
        .insert("k", b"second", Expiry::Never)
        .expect("replace under a reader");
    assert_eq!(store.get("k").expect("get"), Some(b"second".to_vec()));
    store.remove("k").expect("remove under a reader");
    assert_eq!(store.get("k").expect("get"), None);
    store
        .insert("k", b"third", Expiry::Never)
        .expect("insert again while the old file is still open");
    assert_eq!(store.get("k").expect("get"), Some(b"third".to_vec()));

    let mut seen = Vec::new();
    held.read_to_end(&mut seen).expect("read the held file");
    assert_eq!(seen, old_file, "the held handle reads the old file whole");
}

#[test]
fn readers_opening_an_entry_again_and_again_never_fail_a_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_holding(dir.path(), b"0");
    let path = store.entry_path("k");
    let done = AtomicBool::new(false);
    let (written, reads) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0_u32;
            while !done.load(Ordering::Acquire) {
                // Open, read and close, as another process's `get` does.
                if let Ok(mut file) = std::fs::File::open(&path) {
                    let mut bytes = Vec::new();
                    let _ = file.read_to_end(&mut bytes);
                    reads += 1;
                }
            }
            reads
        });
        // The reader stops before any failure is reported, so a failing
        // write fails the test instead of leaving the reader spinning.
        let written = (1..=200_u32).try_for_each(|i| {
            let value = i.to_string().into_bytes();
            store
                .insert("k", &value, Expiry::Never)
                .map_err(|e| format!("insert {i}: {e}"))?;
            match store.get("k") {
                Ok(Some(read)) if read == value => Ok(()),
                other => Err(format!("get after insert {i}: {other:?}")),
            }
        });
        let written = written.and_then(|()| store.remove("k").map_err(|e| format!("remove: {e}")));
        done.store(true, Ordering::Release);
        (written, reader.join().expect("reader"))
    });
    written.expect("a reader never fails a write or a removal");
    assert!(reads > 0, "the reader never opened the entry");
}

#[cfg(windows)]
#[test]
fn a_reader_that_forbids_deletion_makes_writes_fail_clearly() {
    use std::os::windows::fs::OpenOptionsExt;
    /// `FILE_SHARE_READ` alone: others may read, not delete or rename over.
    const FILE_SHARE_READ: u32 = 1;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_holding(dir.path(), b"kept");
    let held = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(store.entry_path("k"))
        .expect("open without FILE_SHARE_DELETE");

    let replaced = store.insert("k", b"lost?", Expiry::Never);
    assert!(replaced.is_err(), "a write reported done: {replaced:?}");
    let removed = store.remove("k");
    assert!(removed.is_err(), "a removal reported done: {removed:?}");
    assert_eq!(
        store.get("k").expect("get"),
        Some(b"kept".to_vec()),
        "the old value stays"
    );
    assert!(
        std::fs::read_dir(dir.path().join("tmp")).map_or(0, Iterator::count) == 0,
        "no temporary file left behind"
    );

    drop(held);
    store
        .insert("k", b"new", Expiry::Never)
        .expect("writes work again once the reader lets go");
    assert_eq!(store.get("k").expect("get"), Some(b"new".to_vec()));
}
