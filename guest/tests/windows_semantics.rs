//! File semantics where Windows differs from Unix, checked on every platform.
//!
//! Windows refuses to rename over, or delete, a file that someone holds open
//! without `FILE_SHARE_DELETE`. The cache opens entries with it (Rust's
//! default share mode), so a reader holding an entry open — another handle of
//! the cache, or any program opening it the default way — never blocks a
//! write: the entry is replaced and removed under it, and the held handle keeps
//! reading the old file whole. On Windows, a foreign program that opens an
//! entry *without* `FILE_SHARE_DELETE` (some backup and scanning tools do)
//! makes writes to that key fail with a clear error that keeps the old value,
//! until it lets go.

use std::io::Read;

use filecache::{Expiry, FileStore, Options};

#[test]
fn an_entry_held_open_by_a_reader_is_replaced_and_removed_under_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStore::open(dir.path(), Options::default()).expect("open");
    store.insert("k", b"first", Expiry::Never).expect("insert");
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

#[cfg(windows)]
#[test]
fn a_reader_that_forbids_deletion_makes_writes_fail_clearly() {
    use std::os::windows::fs::OpenOptionsExt;
    /// `FILE_SHARE_READ` alone: others may read, not delete or rename over.
    const FILE_SHARE_READ: u32 = 1;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStore::open(dir.path(), Options::default()).expect("open");
    store.insert("k", b"kept", Expiry::Never).expect("insert");
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
