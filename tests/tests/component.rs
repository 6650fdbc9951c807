//! The conformance suite against the filecache component, run in the wasmtime
//! host (`filecache-host`), one instance per open cache; and what a host that
//! instantiates per request does to a bounded cache.

use std::path::Path;
use std::time::Duration;

use filecache::{Expiry, Options};
use filecache_conformance::backends::{Component, runtime};

filecache_conformance::conformance_suite!(Component);

const LIMIT: u64 = 1_000;
const REQUESTS: usize = 150;

fn bounded() -> Options {
    Options {
        max_entries: Some(LIMIT),
        lease: Duration::from_millis(200),
        ..Options::default()
    }
}

/// Entry files on disk: 64-hex names in the two-hex shard directories.
fn entry_files(dir: &Path) -> usize {
    let is_hex =
        |name: &str, len: usize| name.len() == len && name.bytes().all(|b| b.is_ascii_hexdigit());
    std::fs::read_dir(dir)
        .expect("list the cache")
        .map(|shard| shard.expect("shard").path())
        .filter(|shard| is_hex(&shard.file_name().unwrap_or_default().to_string_lossy(), 2))
        .flat_map(|shard| std::fs::read_dir(shard).expect("list a shard"))
        .filter(|entry| {
            is_hex(
                &entry.as_ref().expect("entry").file_name().to_string_lossy(),
                64,
            )
        })
        .count()
}

/// `REQUESTS` fresh instances, each opening the bounded cache, writing one
/// new key and thrown away without closing the cache.
fn discarded_requests(dir: &Path) {
    for i in 0..REQUESTS {
        let mut cache = runtime().open(dir, &bounded()).expect("open");
        cache
            .insert(&format!("request {i}"), b"value", Expiry::Never)
            .expect("insert");
        cache.discard();
    }
}

/// Writes `count` keys `old 0`, `old 1`, … into the cache at `dir`, through
/// a handle that closes.
fn fill_with_old_keys(dir: &Path, count: usize) {
    let mut filler = runtime().open(dir, &bounded()).expect("open");
    for i in 0..count {
        filler
            .insert(&format!("old {i}"), b"value", Expiry::Never)
            .expect("insert");
    }
}

/// Once the discarded instances' lease is over, a handle writes a new key and
/// closes (so the census counts their reservations): the entry files on disk,
/// and the entries counted.
fn one_closed_write_after_the_lease(dir: &Path) -> (usize, i64) {
    std::thread::sleep(bounded().lease * 2);
    let mut closed = runtime().open(dir, &bounded()).expect("open");
    closed
        .insert("closed", b"value", Expiry::Never)
        .expect("insert");
    drop(closed);
    let census = filecache::testing::census(dir).expect("a census");
    (entry_files(dir), census.entries)
}

/// At capacity, each such request pays for its entry with an eviction: the
/// cache stays at its limit (counted exactly), where reserving ahead left
/// every discarded instance's reservation for the others to evict for.
#[test]
fn discarded_instances_keep_a_full_bounded_cache_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    fill_with_old_keys(dir.path(), LIMIT as usize);
    discarded_requests(dir.path());
    let (on_disk, counted) = one_closed_write_after_the_lease(dir.path());
    assert_eq!(on_disk, LIMIT as usize, "the cache stays full");
    assert_eq!(counted, LIMIT as i64, "counted exactly");
}

/// Below capacity, such a request leaves a reservation of the one entry it
/// wrote, which is counted as that entry once the lease is over: the count
/// stays exact, and no later writer evicts for growth that never happened.
#[test]
fn discarded_instances_below_the_limit_leave_an_exact_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    discarded_requests(dir.path());
    let (on_disk, counted) = one_closed_write_after_the_lease(dir.path());
    assert_eq!(on_disk, REQUESTS + 1, "nothing evicted");
    assert_eq!(counted, REQUESTS as i64 + 1, "counted exactly");
}

/// Below capacity, a request that replaces an entry and is discarded leaves
/// no reservation behind: it added no entry, so nothing is counted for it once
/// the lease is over (a reservation taken for it would be counted as an entry
/// that is not there, one per request, never recounted by per-request
/// handles: the cache would shrink as it is updated).
#[test]
fn discarded_instances_that_replace_entries_leave_an_exact_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    fill_with_old_keys(dir.path(), REQUESTS / 2);
    for i in 0..REQUESTS {
        let mut cache = runtime().open(dir.path(), &bounded()).expect("open");
        cache
            .insert(
                &format!("old {}", i % (REQUESTS / 2)),
                b"new value",
                Expiry::Never,
            )
            .expect("insert");
        cache.discard();
    }
    let (on_disk, counted) = one_closed_write_after_the_lease(dir.path());
    assert_eq!(on_disk, REQUESTS / 2 + 1, "nothing evicted");
    assert_eq!(counted, (REQUESTS / 2 + 1) as i64, "counted exactly");
}

/// A request that removes a key and is discarded: its removal is counted all
/// the same, so the room it made is there for the next writers (a removal
/// kept unreported would be lost with the instance, and the count, never
/// recounted by per-request handles, would drift up one per request).
#[test]
fn discarded_instances_removals_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    fill_with_old_keys(dir.path(), LIMIT as usize);
    for i in 0..REQUESTS {
        let mut cache = runtime().open(dir.path(), &bounded()).expect("open");
        cache.remove(&format!("old {i}")).expect("remove");
        cache.discard();
    }
    let (on_disk, counted) = one_closed_write_after_the_lease(dir.path());
    let expected = LIMIT as usize - REQUESTS + 1;
    assert_eq!(on_disk, expected, "the closed write evicted nothing");
    assert_eq!(counted, expected as i64, "counted exactly");
}
