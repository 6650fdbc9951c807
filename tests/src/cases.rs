//! The conformance cases. Each takes a backend and panics on a violation.
//! Listed once in `lib.rs` (`define_suite!`), instantiated per backend by
//! `conformance_suite!`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use filecache::testing::{self as format, SWEPT_FILE};
use tempfile::TempDir;

use crate::values::{check_stamped, stamped};
use crate::{Backend, CacheUnderTest, Expiry, FailureKind, Options, sleep};

fn fresh_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

fn open<B: Backend>(backend: &B, dir: &Path) -> B::Cache {
    open_with(backend, dir, &Options::default())
}

fn open_with<B: Backend>(backend: &B, dir: &Path, options: &Options) -> B::Cache {
    match backend.open(dir, options) {
        Ok(cache) => cache,
        Err(e) => panic!("open `{}`: {e:?}", dir.display()),
    }
}

/// The entry file of `key` in the cache at `dir`.
fn entry_path(dir: &Path, key: &str) -> PathBuf {
    filecache::testing::entry_path(dir, key)
}

/// Entry files on disk, counted independently of the cache's own scan.
/// Inserts `{prefix}{i}` → `value`, never expiring, for every `i` in `range`.
fn insert_keys(
    cache: &mut impl CacheUnderTest,
    prefix: &str,
    range: std::ops::Range<usize>,
    value: &[u8],
) {
    for i in range {
        cache
            .insert(&format!("{prefix}{i}"), value, Expiry::Never)
            .expect("insert");
    }
}

fn entry_files_on_disk(dir: &Path) -> usize {
    let Ok(shards) = fs::read_dir(dir) else {
        return 0;
    };
    shards
        .flatten()
        .filter(|shard| shard.path().is_dir() && shard.file_name().len() == 2)
        .flat_map(|shard| fs::read_dir(shard.path()).into_iter().flatten().flatten())
        .filter(|entry| entry.file_name().len() == 64)
        .count()
}

fn bytes_of(text: &str) -> Option<Vec<u8>> {
    Some(text.as_bytes().to_vec())
}

pub fn insert_get_remove<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert_eq!(cache.get("k").expect("get"), None);
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    assert_eq!(cache.get("k").expect("get"), bytes_of("v"));
    assert!(
        entry_path(dir.path(), "k").is_file(),
        "the entry is one file named by the key hash"
    );
    cache.remove("k").expect("remove");
    assert_eq!(cache.get("k").expect("get"), None);
    assert!(!entry_path(dir.path(), "k").exists());
}

pub fn overwrite_replaces_value<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("k", b"first value, longer", Expiry::Never)
        .expect("insert");
    cache
        .insert("k", b"second", Expiry::Never)
        .expect("overwrite");
    assert_eq!(cache.get("k").expect("get"), bytes_of("second"));
    assert_eq!(entry_files_on_disk(dir.path()), 1);
}

pub fn binary_and_empty_values<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let all_bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
    cache
        .insert("binary", &all_bytes, Expiry::Never)
        .expect("insert");
    cache
        .insert("empty", b"", Expiry::Never)
        .expect("insert empty");
    assert_eq!(cache.get("binary").expect("get"), Some(all_bytes));
    assert_eq!(
        cache.get("empty").expect("get"),
        Some(Vec::new()),
        "empty is not absent"
    );
    assert!(cache.contains_key("empty").expect("contains"));
}

pub fn unicode_and_4k_keys<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let long_key = "k".repeat(4096);
    let keys = [
        "héllo wörld",
        "ключ",
        "鍵/../..\\..",
        "🦀\u{0}nul",
        "",
        " ",
        long_key.as_str(),
    ];
    for (i, key) in keys.iter().enumerate() {
        cache
            .insert(key, format!("value {i}").as_bytes(), Expiry::Never)
            .expect("insert");
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            cache.get(key).expect("get"),
            bytes_of(&format!("value {i}")),
            "key {key:?}"
        );
    }
    assert_eq!(cache.approx_size().expect("size"), keys.len() as u64);
    assert_eq!(
        entry_files_on_disk(dir.path()),
        keys.len(),
        "no key escapes into a path"
    );
}

pub fn large_value_round_trips<B: Backend>(backend: &B) {
    let large = stamped(1, 1, 3 * 1024 * 1024 + 17);
    if let Some(limit) = backend.largest_returned_value() {
        return large_value_beyond_the_host_limit_is_kept(backend, limit, &large);
    }
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("large", &large, Expiry::Never)
        .expect("insert");
    assert_eq!(
        cache
            .get("large")
            .expect("get")
            .as_deref()
            .and_then(check_stamped),
        Some((1, 1))
    );
}

/// On a host that cannot hand back values above `limit`
/// ([`Backend::largest_returned_value`]): a value of exactly `limit` bytes
/// round-trips, a larger one is stored whole, its read fails with an error
/// (never a short value), and the native library reads it back intact.
fn large_value_beyond_the_host_limit_is_kept<B: Backend>(backend: &B, limit: usize, large: &[u8]) {
    assert!(
        large.len() > limit,
        "the case's value must exceed the limit"
    );
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let at_limit = stamped(2, 2, limit);
    cache
        .insert("at-limit", &at_limit, Expiry::Never)
        .expect("insert at the limit");
    let back = cache.get("at-limit").expect("get at the limit");
    assert_eq!(back.as_deref().and_then(check_stamped), Some((2, 2)));
    cache.insert("large", large, Expiry::Never).expect("insert");
    match cache.get("large") {
        Err(_) => {}
        Ok(value) => panic!(
            "a {}-byte value came back from a host limited to {limit} bytes \
             ({:?} bytes): the limit has moved, update largest_returned_value",
            large.len(),
            value.map(|v| v.len())
        ),
    }
    drop(cache);
    let native = filecache::FileStore::open(dir.path(), Options::default()).expect("open natively");
    assert_eq!(
        native.get("large").expect("native get").as_deref(),
        Some(large),
        "the value the host could not return is stored whole"
    );
}

pub fn oversized_key_or_value_is_invalid_input<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let options = Options {
        max_key_bytes: 100,
        max_value_bytes: 1000,
        ..Options::default()
    };
    let mut cache = open_with(backend, dir.path(), &options);
    cache.insert("k", b"old", Expiry::Never).expect("insert");
    let long_key = "x".repeat(101);
    let err = cache
        .insert(&long_key, b"v", Expiry::Never)
        .expect_err("key over the limit");
    assert_eq!(err.kind, FailureKind::InvalidInput, "{err:?}");
    assert!(err.message.contains("key"), "{}", err.message);
    assert_eq!(
        cache
            .get(&long_key)
            .expect_err("get with an oversized key")
            .kind,
        FailureKind::InvalidInput
    );
    let err = cache
        .insert("k", &[0u8; 1001], Expiry::Never)
        .expect_err("value over the limit");
    assert_eq!(err.kind, FailureKind::InvalidInput, "{err:?}");
    assert!(err.message.contains("value"), "{}", err.message);
    assert_eq!(
        cache.get("k").expect("get"),
        bytes_of("old"),
        "a refused insert loses nothing"
    );
    cache
        .insert(&"y".repeat(100), &[7u8; 1000], Expiry::Never)
        .expect("exactly at the limits");
    let zero_lease = Options {
        lease: Duration::ZERO,
        ..Options::default()
    };
    let err = backend
        .open(dir.path(), &zero_lease)
        .err()
        .expect("a zero lease is refused");
    assert_eq!(err.kind, FailureKind::InvalidInput);
}

pub fn contains_key_tracks_presence<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert!(!cache.contains_key("k").expect("contains"));
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    assert!(cache.contains_key("k").expect("contains"));
    cache.remove("k").expect("remove");
    assert!(!cache.contains_key("k").expect("contains"));
}

pub fn approx_size_counts_entries<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert_eq!(cache.approx_size().expect("size"), 0);
    cache.insert("a", b"1", Expiry::Never).expect("insert");
    cache.insert("b", b"2", Expiry::Never).expect("insert");
    assert_eq!(cache.approx_size().expect("size"), 2);
    cache
        .insert("a", b"1 again", Expiry::Never)
        .expect("overwrite");
    assert_eq!(
        cache.approx_size().expect("size"),
        2,
        "an overwrite keeps the count"
    );
    cache.clear().expect("clear");
    assert_eq!(cache.approx_size().expect("size"), 0);
    assert_eq!(cache.get("a").expect("get"), None);
}

pub fn remove_absent_succeeds<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .remove("never-inserted")
        .expect("removing an absent key succeeds");
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    cache.remove("k").expect("remove");
    cache.remove("k").expect("removing twice succeeds");
}

pub fn reopen_sees_previous_entries<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    {
        let mut cache = open(backend, dir.path());
        cache
            .insert("kept", b"across handles", Expiry::Never)
            .expect("insert");
    }
    let mut cache = open(backend, dir.path());
    assert_eq!(cache.get("kept").expect("get"), bytes_of("across handles"));
}

pub fn missing_directory_is_created<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let nested = dir.path().join("a").join("b");
    let mut cache = open(backend, &nested);
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    assert!(
        nested.join("CACHEDIR.TAG").is_file(),
        "the directory is tagged as a cache"
    );
    assert!(entry_path(&nested, "k").is_file());
}

pub fn durable_insert_round_trips<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let options = Options {
        durable: true,
        ..Options::default()
    };
    let mut cache = open_with(backend, dir.path(), &options);
    cache
        .insert("k", b"synced", Expiry::Never)
        .expect("durable insert");
    assert_eq!(cache.get("k").expect("get"), bytes_of("synced"));
}

pub fn expiry_never_keeps_entry<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    let raw = fs::read(entry_path(dir.path(), "k")).expect("read entry");
    let entry = format::decode(&raw).expect("decodes");
    assert_eq!(entry.expires_at, format::NEVER);
    assert_eq!(cache.get("k").expect("get"), bytes_of("v"));
}

pub fn expiry_after_300ms<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("k", b"v", Expiry::After(Duration::from_millis(300)))
        .expect("insert");
    assert_eq!(
        cache.get("k").expect("get"),
        bytes_of("v"),
        "live before 300 ms"
    );
    assert!(cache.contains_key("k").expect("contains"));
    sleep(Duration::from_millis(350));
    assert_eq!(cache.get("k").expect("get"), None, "expired after 300 ms");
}

pub fn expiry_at_past_time_is_a_miss<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let past = SystemTime::now() - Duration::from_secs(5);
    cache.insert("k", b"v", Expiry::At(past)).expect("insert");
    assert_eq!(cache.get("k").expect("get"), None);
    assert!(!cache.contains_key("k").expect("contains"));
}

pub fn expiry_at_future_time<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let at = SystemTime::now() + Duration::from_millis(400);
    cache.insert("k", b"v", Expiry::At(at)).expect("insert");
    cache
        .insert(
            "far",
            b"v",
            Expiry::At(SystemTime::now() + Duration::from_secs(3600)),
        )
        .expect("insert");
    assert_eq!(cache.get("k").expect("get"), bytes_of("v"));
    sleep(Duration::from_millis(450));
    assert_eq!(cache.get("k").expect("get"), None);
    assert_eq!(cache.get("far").expect("get"), bytes_of("v"));
}

pub fn expired_entry_is_removed_from_disk<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let past = SystemTime::now() - Duration::from_millis(1);
    cache
        .insert("by-get", b"v", Expiry::At(past))
        .expect("insert");
    cache
        .insert("by-contains", b"v", Expiry::At(past))
        .expect("insert");
    assert!(
        entry_path(dir.path(), "by-get").is_file(),
        "written even though expired"
    );
    assert_eq!(
        cache.approx_size().expect("size"),
        2,
        "expired entries count until removed"
    );
    assert_eq!(cache.get("by-get").expect("get"), None);
    assert!(
        !entry_path(dir.path(), "by-get").exists(),
        "get removed the expired file"
    );
    assert!(!cache.contains_key("by-contains").expect("contains"));
    assert!(
        !entry_path(dir.path(), "by-contains").exists(),
        "contains-key removed the expired file"
    );
    assert_eq!(cache.stats().expect("stats").expired_removed, 2);
    assert_eq!(entry_files_on_disk(dir.path()), 0);
    let tmp_left = fs::read_dir(dir.path().join("tmp"))
        .expect("tmp dir")
        .count();
    assert_eq!(tmp_left, 0, "retiring leaves nothing behind");
}

/// Damages the entry of `key` with `damage`, then checks `get` misses, the file is
/// gone and the removal is counted.
fn check_damage<B: Backend>(backend: &B, damage: impl Fn(&mut Vec<u8>)) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("k", b"a value that will be damaged", Expiry::Never)
        .expect("insert");
    cache
        .insert("intact", b"untouched", Expiry::Never)
        .expect("insert");
    let path = entry_path(dir.path(), "k");
    let mut bytes = fs::read(&path).expect("read entry");
    damage(&mut bytes);
    fs::write(&path, &bytes).expect("write damaged entry");
    assert_eq!(
        cache
            .get("k")
            .expect("a damaged entry is a miss, not an error"),
        None
    );
    assert!(!path.exists(), "the damaged file is removed");
    assert_eq!(
        cache.stats().expect("stats").corrupt_removed,
        1,
        "and counted"
    );
    assert_eq!(cache.get("intact").expect("get"), bytes_of("untouched"));
    cache
        .insert("k", b"fresh", Expiry::Never)
        .expect("the key is usable again");
    assert_eq!(cache.get("k").expect("get"), bytes_of("fresh"));
}

pub fn corrupt_truncated_is_miss_and_removed<B: Backend>(backend: &B) {
    check_damage(backend, |bytes| bytes.truncate(20));
}

pub fn corrupt_bad_magic_is_miss_and_removed<B: Backend>(backend: &B) {
    check_damage(backend, |bytes| bytes[..4].copy_from_slice(b"JUNK"));
}

pub fn corrupt_unknown_version_is_miss_and_removed<B: Backend>(backend: &B) {
    check_damage(backend, |bytes| {
        bytes[4..6].copy_from_slice(&99u16.to_le_bytes())
    });
}

pub fn corrupt_length_mismatch_is_miss_and_removed<B: Backend>(backend: &B) {
    check_damage(backend, |bytes| {
        bytes.extend_from_slice(b"trailing garbage")
    });
}

pub fn corrupt_bad_checksum_is_miss_and_removed<B: Backend>(backend: &B) {
    check_damage(backend, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
    });
}

pub fn corrupt_entry_seen_by_contains_key_is_removed<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache.insert("k", b"value", Expiry::Never).expect("insert");
    let path = entry_path(dir.path(), "k");
    fs::write(&path, b"not an entry at all").expect("damage");
    assert!(!cache.contains_key("k").expect("contains"));
    assert!(!path.exists());
    assert_eq!(cache.stats().expect("stats").corrupt_removed, 1);
}

/// `contains-key` judges an entry's length from one read when it can: a file
/// cut short, or longer than its header says, is still seen as damaged — small
/// and past the first read's size alike.
pub fn contains_key_sees_cut_and_overlong_entries<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let large = vec![b'v'; 40 * 1024];
    for (value, size) in [(&b"a small value"[..], "small"), (&large[..], "large")] {
        for overlong in [false, true] {
            let key = format!("{size}, overlong: {overlong}");
            cache.insert(&key, value, Expiry::Never).expect("insert");
            assert!(cache.contains_key(&key).expect("contains"), "{key}: intact");
            let path = entry_path(dir.path(), &key);
            let mut bytes = fs::read(&path).expect("read entry");
            if overlong {
                bytes.push(0);
            } else {
                bytes.pop();
            }
            fs::write(&path, &bytes).expect("damage");
            assert!(!cache.contains_key(&key).expect("contains"), "{key}");
            assert!(!path.exists(), "{key}: the damaged file is removed");
        }
    }
    assert_eq!(cache.stats().expect("stats").corrupt_removed, 4);
}

pub fn entry_of_another_key_is_a_miss<B: Backend>(backend: &B) {
    // What a blake3 collision would look like: the file at a key's path holds
    // another key. It is a miss for this key, and not deleted as damage.
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("other", b"other's value", Expiry::Never)
        .expect("insert");
    let target = entry_path(dir.path(), "mine");
    fs::create_dir_all(target.parent().expect("shard")).expect("shard dir");
    fs::copy(entry_path(dir.path(), "other"), &target).expect("plant");
    assert_eq!(cache.get("mine").expect("get"), None);
    assert!(!cache.contains_key("mine").expect("contains"));
    assert_eq!(cache.stats().expect("stats").corrupt_removed, 0);
    cache
        .insert("mine", b"my value", Expiry::Never)
        .expect("insert replaces it");
    assert_eq!(cache.get("mine").expect("get"), bytes_of("my value"));
    assert_eq!(cache.get("other").expect("get"), bytes_of("other's value"));
}

/// The setup of the sweep cases: a cache with a 60 s lease whose first write
/// stamps its sweep; `plant` then leaves what writers that died would leave.
/// A second handle writes (the stamp is young: nothing is swept), the stamp
/// is aged past the lease, and a third handle is opened (opening sweeps
/// nothing) and returned, its first write to come.
fn leftovers_behind_a_young_sweep<B: Backend>(
    backend: &B,
    dir: &Path,
    plant: impl FnOnce(),
    untouched: &[&Path],
) -> B::Cache {
    let options = Options {
        lease: Duration::from_secs(60),
        ..Options::default()
    };
    let mut first = open_with(backend, dir, &options);
    first.insert("k0", b"v", Expiry::Never).expect("insert");
    drop(first);
    plant();
    let mut second = open_with(backend, dir, &options);
    assert_eq!(second.get("k0").expect("get"), bytes_of("v"));
    second.insert("k1", b"v", Expiry::Never).expect("insert");
    for path in untouched {
        assert!(
            path.exists(),
            "the last sweep is younger than the lease: kept"
        );
    }
    age_file(&dir.join(SWEPT_FILE), Duration::from_secs(61));
    let third = open_with(backend, dir, &options);
    for path in untouched {
        assert!(path.exists(), "opening sweeps nothing");
    }
    third
}

/// Temporary files older than the lease are swept by the first write of a
/// handle that comes a lease after the last sweep (the stamp `swept` says
/// when that was); opening and reading sweep nothing. Young and foreign files
/// are kept, and none of them counts as an entry.
pub fn stale_temp_files_swept_and_not_counted<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let tmp = dir.path().join("tmp");
    let stale = tmp.join("0123456789abcdef-fedcba9876543210.tmp");
    let fresh = tmp.join("0123456789abcdef-0000000000000001.tmp");
    let foreign = tmp.join("not-ours.tmp");
    let plant = || {
        for path in [&stale, &fresh, &foreign] {
            fs::write(path, b"half an entry").expect("plant temp");
        }
        for path in [&stale, &foreign] {
            age_file(path, Duration::from_secs(3600));
        }
    };
    let mut cache = leftovers_behind_a_young_sweep(backend, dir.path(), plant, &[&stale]);
    assert_eq!(
        cache.approx_size().expect("size"),
        2,
        "temp files are not entries"
    );
    cache.insert("k2", b"v", Expiry::Never).expect("insert");
    assert!(
        !stale.exists(),
        "a temp file older than the lease is swept by the first write"
    );
    assert!(
        fresh.exists(),
        "a young temp file may belong to a live writer: kept"
    );
    assert!(
        foreign.exists(),
        "a file not named like ours is not touched"
    );
    assert_eq!(cache.approx_size().expect("size"), 3);
}

pub fn clear_leaves_foreign_files<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    insert_keys(&mut cache, "k", 0..20, b"v");
    let shard = entry_path(dir.path(), "k0")
        .parent()
        .expect("shard")
        .to_path_buf();
    let foreign = [
        dir.path().join("README.txt"),
        shard.join("notes.txt"),
        shard.join("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"),
        dir.path().join("zz").join("0".repeat(64)),
        dir.path().join("photos").join("0".repeat(64)),
    ];
    for path in &foreign {
        fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        fs::write(path, b"not the cache's").expect("plant");
    }
    cache.clear().expect("clear");
    assert_eq!(cache.approx_size().expect("size"), 0);
    assert_eq!(cache.get("k0").expect("get"), None);
    for path in &foreign {
        assert!(
            path.is_file(),
            "clear removed a foreign file: {}",
            path.display()
        );
    }
}

pub fn stats_count_hits_and_misses<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache.insert("a", b"12345", Expiry::Never).expect("insert");
    cache.insert("b", b"", Expiry::Never).expect("insert");
    cache.get("a").expect("hit");
    cache.get("b").expect("hit");
    cache.get("c").expect("miss");
    let stats = cache.stats().expect("stats");
    assert_eq!((stats.hits, stats.misses), (2, 1));
    assert_eq!(stats.entries, 2);
    let header = format::HEADER_LEN as u64;
    assert_eq!(stats.bytes, (header + 1 + 5) + (header + 1));
    assert_eq!(
        (stats.expired_removed, stats.evicted, stats.corrupt_removed),
        (0, 0, 0)
    );
}

/// Writers hammer one key with whole stamped values while readers check that
/// every value they see is one a writer wrote, whole.
pub fn concurrent_writers_never_tear<B: Backend>(backend: &B) {
    const WRITES_PER_WRITER: u64 = 150;
    const READERS: usize = 2;
    let dir = fresh_dir();
    let writers = backend.writers();
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let hits = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut writer_threads = Vec::new();
        for writer in 0..writers as u64 {
            let mut cache = open(backend, dir.path());
            writer_threads.push(scope.spawn(move || {
                for seq in 0..WRITES_PER_WRITER {
                    // Vary the size so a torn value cannot pass by length alone.
                    let len = 64 + ((writer * 977 + seq * 131) % 8000) as usize;
                    cache
                        .insert("contended", &stamped(writer, seq, len), Expiry::Never)
                        .expect("insert");
                }
            }));
        }
        for _ in 0..READERS {
            let mut cache = open(backend, dir.path());
            let (done, reads, hits) = (&done, &reads, &hits);
            scope.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if let Some(value) = cache.get("contended").expect("get") {
                        hits.fetch_add(1, Ordering::Relaxed);
                        let (writer, seq) =
                            check_stamped(&value).expect("a whole value one writer wrote");
                        assert!(writer < writers as u64 && seq < WRITES_PER_WRITER);
                    }
                }
            });
        }
        // Readers stop before a failed writer's panic is passed on, so that
        // a failing write fails the case instead of leaving readers spinning.
        let joined: Vec<_> = writer_threads.into_iter().map(|t| t.join()).collect();
        done.store(true, Ordering::Release);
        for outcome in joined {
            outcome.expect("writer");
        }
    });
    let mut cache = open(backend, dir.path());
    let last = cache
        .get("contended")
        .expect("get")
        .expect("a value survives");
    let (_, seq) = check_stamped(&last).expect("whole");
    assert_eq!(
        seq,
        WRITES_PER_WRITER - 1,
        "the last write of some writer wins"
    );
    assert!(
        hits.load(Ordering::Relaxed) > 0,
        "readers saw values ({} reads)",
        reads.load(Ordering::Relaxed)
    );
    assert_eq!(cache.stats().expect("stats").corrupt_removed, 0);
    assert_eq!(
        fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
        0,
        "no temp file left"
    );
}

/// The lock file of `key` in the cache at `dir`.
fn lock_path(dir: &Path, key: &str) -> PathBuf {
    filecache::testing::lock_path(dir, key)
}

/// Files left in a sub-directory of the cache (`tmp`, `locks`).
fn files_in(dir: &Path, sub: &str) -> usize {
    fs::read_dir(dir.join(sub)).map_or(0, |listing| listing.count())
}

/// Sets a file's modification time `by` into the past.
fn age_file(path: &Path, by: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now() - by))
        .expect("age the file");
}

pub fn add_stores_only_when_no_live_value<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert!(cache.add("k", b"first", Expiry::Never).expect("add"));
    assert!(!cache.add("k", b"second", Expiry::Never).expect("add"));
    assert_eq!(cache.get("k").expect("get"), bytes_of("first"));
    let past = SystemTime::now() - Duration::from_secs(1);
    cache
        .insert("old", b"expired", Expiry::At(past))
        .expect("insert");
    assert!(
        cache.add("old", b"fresh", Expiry::Never).expect("add"),
        "an expired value does not count"
    );
    assert_eq!(cache.get("old").expect("get"), bytes_of("fresh"));
    let damaged = entry_path(dir.path(), "k");
    fs::write(&damaged, b"garbage").expect("damage");
    assert!(
        cache.add("k", b"over damage", Expiry::Never).expect("add"),
        "a damaged value does not count"
    );
    assert_eq!(cache.get("k").expect("get"), bytes_of("over damage"));
    cache
        .add("ttl", b"v", Expiry::After(Duration::from_millis(300)))
        .expect("add");
    sleep(Duration::from_millis(350));
    assert_eq!(
        cache.get("ttl").expect("get"),
        None,
        "add honours the expiry"
    );
}

pub fn increment_counts_from_zero_and_keeps_expiry<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert_eq!(cache.increment("n", 5).expect("increment"), 5);
    assert_eq!(cache.increment("n", -7).expect("increment"), -2);
    assert_eq!(
        cache.get("n").expect("get"),
        bytes_of("-2"),
        "stored as decimal text"
    );
    cache.insert("m", b"40", Expiry::Never).expect("insert");
    assert_eq!(cache.increment("m", 2).expect("increment"), 42);
    assert_eq!(cache.increment("m", 0).expect("increment"), 42);
    cache
        .insert("brief", b"1", Expiry::After(Duration::from_millis(400)))
        .expect("insert");
    assert_eq!(cache.increment("brief", 1).expect("increment"), 2);
    sleep(Duration::from_millis(450));
    assert_eq!(
        cache.get("brief").expect("get"),
        None,
        "increment kept the expiry"
    );
    assert_eq!(
        cache.increment("brief", 1).expect("increment"),
        1,
        "an expired counter starts again from 0"
    );
    let raw = fs::read(entry_path(dir.path(), "n")).expect("read entry");
    assert_eq!(
        format::decode(&raw).expect("decodes").expires_at,
        format::NEVER
    );
}

pub fn increment_refuses_non_integers_and_overflow<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache
        .insert("text", b"hello", Expiry::Never)
        .expect("insert");
    let err = cache.increment("text", 1).expect_err("not an integer");
    assert_eq!(err.kind, FailureKind::InvalidInput, "{err:?}");
    assert_eq!(
        cache.get("text").expect("get"),
        bytes_of("hello"),
        "unchanged"
    );
    cache
        .insert("max", i64::MAX.to_string().as_bytes(), Expiry::Never)
        .expect("insert");
    let err = cache.increment("max", 1).expect_err("overflow");
    assert_eq!(err.kind, FailureKind::InvalidInput, "{err:?}");
    assert!(err.message.contains("overflow"), "{}", err.message);
    assert_eq!(
        cache.get("max").expect("get"),
        bytes_of(&i64::MAX.to_string())
    );
    assert_eq!(cache.increment("max", -1).expect("increment"), i64::MAX - 1);
    assert_eq!(
        files_in(dir.path(), "locks"),
        0,
        "a refused increment released its lock"
    );
}

pub fn compare_and_swap_checks_the_current_value<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert!(
        !cache
            .compare_and_swap("k", Some(b"x"), b"y", Expiry::Never)
            .expect("cas"),
        "nothing there to match"
    );
    assert!(
        cache
            .compare_and_swap("k", None, b"v1", Expiry::Never)
            .expect("cas"),
        "none matches absence"
    );
    assert!(
        !cache
            .compare_and_swap("k", None, b"v2", Expiry::Never)
            .expect("cas"),
        "none does not match a value"
    );
    assert!(
        !cache
            .compare_and_swap("k", Some(b"wrong"), b"v2", Expiry::Never)
            .expect("cas")
    );
    assert_eq!(cache.get("k").expect("get"), bytes_of("v1"));
    assert!(
        cache
            .compare_and_swap("k", Some(b"v1"), b"v2", Expiry::Never)
            .expect("cas")
    );
    assert_eq!(cache.get("k").expect("get"), bytes_of("v2"));
    assert!(
        cache
            .compare_and_swap("k", Some(b"v2"), b"", Expiry::Never)
            .expect("cas to empty")
    );
    assert!(
        cache
            .compare_and_swap(
                "k",
                Some(b""),
                b"v3",
                Expiry::At(SystemTime::now() - Duration::from_secs(1))
            )
            .expect("cas from empty")
    );
    assert_eq!(
        cache.get("k").expect("get"),
        None,
        "swapped in an expired value"
    );
}

pub fn touch_changes_expiry_and_keeps_value<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    assert!(!cache.touch("absent", Expiry::Never).expect("touch"));
    assert_eq!(files_in(dir.path(), "locks"), 0);
    cache
        .insert(
            "k",
            b"kept value",
            Expiry::After(Duration::from_millis(300)),
        )
        .expect("insert");
    assert!(
        cache
            .touch("k", Expiry::After(Duration::from_secs(3600)))
            .expect("touch")
    );
    sleep(Duration::from_millis(350));
    assert_eq!(
        cache.get("k").expect("get"),
        bytes_of("kept value"),
        "touch extended the life"
    );
    assert!(
        cache
            .touch("k", Expiry::After(Duration::from_millis(100)))
            .expect("touch")
    );
    sleep(Duration::from_millis(150));
    assert_eq!(cache.get("k").expect("get"), None, "touch shortened it too");
    assert!(
        !cache.touch("k", Expiry::Never).expect("touch"),
        "expired: nothing to touch"
    );
}

pub fn atomic_operations_leave_no_lock_files<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    cache.add("a", b"1", Expiry::Never).expect("add");
    cache.add("a", b"1", Expiry::Never).expect("add");
    cache.increment("n", 1).expect("increment");
    cache
        .compare_and_swap("a", Some(b"1"), b"2", Expiry::Never)
        .expect("cas");
    cache.touch("a", Expiry::Never).expect("touch");
    assert_eq!(files_in(dir.path(), "locks"), 0);
    assert_eq!(files_in(dir.path(), "tmp"), 0);
    assert_eq!(cache.approx_size().expect("size"), 2);
}

pub fn held_lock_makes_atomic_operations_busy<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let options = Options {
        lease: Duration::from_secs(60),
        lock_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    let mut cache = open_with(backend, dir.path(), &options);
    cache.insert("k", b"7", Expiry::Never).expect("insert");
    // Another writer holds the key (a young lock file: not abandoned).
    let lock = lock_path(dir.path(), "k");
    fs::create_dir_all(lock.parent().expect("locks dir")).expect("locks dir");
    fs::write(&lock, b"held by someone else").expect("plant lock");
    let err = cache.increment("k", 1).expect_err("busy");
    assert_eq!(err.kind, FailureKind::Busy, "{err:?}");
    assert_eq!(
        cache.add("k", b"x", Expiry::Never).expect_err("busy").kind,
        FailureKind::Busy
    );
    assert_eq!(cache.get("k").expect("readers take no lock"), bytes_of("7"));
    cache
        .insert("k", b"8", Expiry::Never)
        .expect("plain inserts take no lock");
    assert!(lock.exists(), "someone else's lock is not removed");
    fs::remove_file(&lock).expect("the other writer releases");
    assert_eq!(cache.increment("k", 1).expect("increment"), 9);
}

pub fn abandoned_lock_is_reclaimed_after_the_lease<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let options = Options {
        lease: Duration::from_millis(300),
        lock_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let mut cache = open_with(backend, dir.path(), &options);
    // A writer died holding the lock just now: waiters reclaim it once the lease is over.
    let lock = lock_path(dir.path(), "k");
    fs::create_dir_all(lock.parent().expect("locks dir")).expect("locks dir");
    fs::write(&lock, b"").expect("plant lock");
    let started = std::time::Instant::now();
    assert_eq!(
        cache.increment("k", 1).expect("increment after the lease"),
        1
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "the young lock was respected (waited {waited:?})"
    );
    assert!(!lock.exists());
    // An old one is reclaimed at once.
    fs::write(&lock, b"").expect("plant lock");
    age_file(&lock, Duration::from_secs(3600));
    assert_eq!(cache.increment("k", 1).expect("increment"), 2);
    assert_eq!(files_in(dir.path(), "locks"), 0);
    assert_eq!(files_in(dir.path(), "tmp"), 0, "nothing left aside");
}

/// Abandoned lock files are swept by the first write of a handle that comes
/// a lease after the last sweep (the stamp `swept` says when that was); live
/// and foreign lock files are kept.
pub fn abandoned_locks_are_swept_by_writers<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let old_lock = lock_path(dir.path(), "dead");
    let young_lock = lock_path(dir.path(), "busy");
    let foreign = dir.path().join("locks").join("notes.lock");
    let plant = || {
        fs::create_dir_all(dir.path().join("locks")).expect("locks dir");
        for path in [&old_lock, &young_lock, &foreign] {
            fs::write(path, b"").expect("plant");
        }
        for path in [&old_lock, &foreign] {
            age_file(path, Duration::from_secs(3600));
        }
    };
    let mut cache = leftovers_behind_a_young_sweep(backend, dir.path(), plant, &[&old_lock]);
    cache.insert("k2", b"v", Expiry::Never).expect("insert");
    assert!(
        !old_lock.exists(),
        "an abandoned lock is swept by the first write"
    );
    assert!(young_lock.exists(), "a live one is kept");
    assert!(foreign.exists(), "a foreign file is kept");
}

/// Every writer of the backend increments one counter; the total is exact.
pub fn concurrent_increments_are_exact<B: Backend>(backend: &B) {
    const PER_WRITER: i64 = 60;
    let dir = fresh_dir();
    let writers = backend.writers();
    std::thread::scope(|scope| {
        for _ in 0..writers {
            let mut cache = open(backend, dir.path());
            scope.spawn(move || {
                for _ in 0..PER_WRITER {
                    cache.increment("counter", 1).expect("increment");
                }
            });
        }
    });
    let mut cache = open(backend, dir.path());
    let total = PER_WRITER * writers as i64;
    assert_eq!(cache.increment("counter", 0).expect("read"), total);
    assert_eq!(files_in(dir.path(), "locks"), 0);
    assert_eq!(files_in(dir.path(), "tmp"), 0);
}

/// Writers race to `add` the same keys: exactly one wins each.
pub fn concurrent_adds_have_one_winner<B: Backend>(backend: &B) {
    const KEYS: usize = 20;
    let dir = fresh_dir();
    let writers = backend.writers();
    let wins = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let mut cache = open(backend, dir.path());
            let wins = &wins;
            scope.spawn(move || {
                for key in 0..KEYS {
                    let value = format!("writer {writer}");
                    if cache
                        .add(&format!("k{key}"), value.as_bytes(), Expiry::Never)
                        .expect("add")
                    {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::Relaxed), KEYS as u64);
}

/// Two handles on a fresh cache, both holding the shard of `"k"` (`first`
/// after `hold`, the writer after writing `"k"`), whose directory is then
/// removed and made again by the writer writing `"after"` there. Returns the
/// cache directory, `first`, the writer and the entry file's path.
fn recreated_shard<B: Backend>(
    backend: &B,
    hold: impl FnOnce(&mut B::Cache),
) -> (TempDir, B::Cache, B::Cache, PathBuf) {
    let dir = fresh_dir();
    let mut first = open(backend, dir.path());
    let mut writer = open(backend, dir.path());
    writer
        .insert("k", b"before", Expiry::Never)
        .expect("insert");
    hold(&mut first);
    let path = entry_path(dir.path(), "k");
    fs::remove_dir_all(path.parent().expect("a shard directory")).expect("remove the shard");
    writer
        .insert("k", b"after", Expiry::Never)
        .expect("the writer makes the shard again (it checks at once)");
    (dir, first, writer, path)
}

/// A shard directory two handles hold is removed and made again by one of
/// them: the other, which checks for a removed shard only at every
/// `MISSES_PER_CHECK`th lookup that finds nothing there, finds the new entry
/// by then.
pub fn a_reader_finds_a_recreated_shard_by_its_check<B: Backend>(backend: &B) {
    let (_dir, mut reader, _writer, _) = recreated_shard(backend, |reader| {
        // The first read of a shard goes through the root; the second holds it.
        for _ in 0..2 {
            assert_eq!(reader.get("k").expect("get"), bytes_of("before"));
        }
    });
    let checks = filecache::testing::MISSES_PER_CHECK;
    let found = (1..=checks).find(|_| reader.get("k").expect("get") == bytes_of("after"));
    assert!(
        found.is_some(),
        "the reader still misses after {checks} reads"
    );
}

/// A shard directory two handles hold is removed and made again by one of
/// them: the other's removal of the new entry (not a lookup: it checks at
/// once) removes it.
pub fn a_removal_acts_on_a_recreated_shard_at_once<B: Backend>(backend: &B) {
    let (_dir, mut holder, mut writer, path) = recreated_shard(backend, |holder| {
        // A write holds the shard it writes into.
        holder.insert("k", b"mine", Expiry::Never).expect("insert");
    });
    holder.remove("k").expect("remove");
    assert!(!path.exists(), "the removal reached the recreated shard");
    assert_eq!(writer.get("k").expect("get"), None);
}

/// The cache directory is removed while a handle is open: every operation then
/// either works (recreating what it needs) or fails with a typed I/O error —
/// never a panic, a trap or a wrong answer.
pub fn vanished_directory_is_recreated_or_reported<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let root = dir.path().join("cache");
    let mut cache = open(backend, &root);
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    fs::remove_dir_all(&root).expect("remove the cache directory");
    let typed = |what: &str, failure: &crate::Failure| {
        assert_eq!(
            failure.kind,
            FailureKind::Io,
            "{what} after the directory vanished: {failure:?}"
        );
        assert!(!failure.message.is_empty());
    };
    assert_eq!(cache.get("k").expect("a vanished entry is a miss"), None);
    assert!(!cache.contains_key("k").expect("contains"));
    cache
        .remove("k")
        .expect("removing a vanished entry succeeds");
    match cache.insert("k2", b"again", Expiry::Never) {
        Ok(()) => {
            assert_eq!(cache.get("k2").expect("get"), bytes_of("again"));
            assert!(root.is_dir(), "the directory was recreated");
        }
        Err(e) => typed("insert", &e),
    }
    match cache.increment("n", 1) {
        Ok(n) => assert_eq!(n, 1),
        Err(e) => typed("increment", &e),
    }
    match cache.approx_size() {
        Ok(size) => assert!(size <= 2),
        Err(e) => typed("approx-size", &e),
    }
    if let Err(e) = cache.clear() {
        typed("clear", &e);
    }
    if let Err(e) = cache.stats() {
        typed("stats", &e);
    }
}

fn bounded(max_entries: Option<u64>, max_bytes: Option<u64>) -> Options {
    Options {
        max_entries,
        max_bytes,
        ..Options::default()
    }
}

pub fn max_entries_is_honoured<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(50), None));
    for i in 0..300 {
        cache
            .insert(&format!("k{i}"), b"value", Expiry::Never)
            .expect("insert");
        if i % 25 == 0 {
            let on_disk = entry_files_on_disk(dir.path());
            assert!(on_disk <= 50, "{on_disk} entries after {} inserts", i + 1);
        }
    }
    assert_eq!(entry_files_on_disk(dir.path()), 50);
    assert_eq!(cache.approx_size().expect("size"), 50);
    let stats = cache.stats().expect("stats");
    assert_eq!((stats.evicted, stats.expired_removed), (250, 0));
    assert!(
        cache.get("k299").expect("get").is_some(),
        "the newest entry survives"
    );
    for i in 0..10 {
        cache
            .insert("k299", format!("overwrite {i}").as_bytes(), Expiry::Never)
            .expect("overwrite");
    }
    assert_eq!(
        cache.stats().expect("stats").evicted,
        250,
        "overwrites add nothing, so they evict nothing"
    );
}

pub fn max_bytes_is_honoured<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(None, Some(20_000)));
    for i in 0..100 {
        cache
            .insert(&format!("k{i}"), &[7u8; 1000], Expiry::Never)
            .expect("insert");
        let bytes = cache.stats().expect("stats").bytes;
        assert!(bytes <= 20_000, "{bytes} bytes after {} inserts", i + 1);
    }
    let stats = cache.stats().expect("stats");
    let entry_size = (format::HEADER_LEN + 3 + 1000) as u64; // key "k10".."k99"
    assert!(
        stats.bytes > 20_000 - 2 * entry_size,
        "the cache is used up to its limit: {} bytes",
        stats.bytes
    );
}

pub fn expired_entries_are_evicted_before_live_ones<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(20), None));
    let past = SystemTime::now() - Duration::from_secs(1);
    for i in 0..10 {
        cache
            .insert(&format!("live{i}"), b"v", Expiry::Never)
            .expect("insert");
        cache
            .insert(&format!("gone{i}"), b"v", Expiry::At(past))
            .expect("insert");
    }
    for i in 0..10 {
        cache
            .insert(
                &format!("new{i}"),
                b"v",
                Expiry::After(Duration::from_secs(60)),
            )
            .expect("insert");
    }
    for i in 0..10 {
        assert!(
            cache.contains_key(&format!("live{i}")).expect("contains"),
            "live{i}"
        );
        assert!(
            cache.contains_key(&format!("new{i}")).expect("contains"),
            "new{i}"
        );
    }
    let stats = cache.stats().expect("stats");
    assert_eq!(
        (stats.expired_removed, stats.evicted, stats.entries),
        (10, 0, 20),
        "the ten expired entries made room, no live one did"
    );
}

pub fn least_recently_used_are_evicted_first<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(40), None));
    insert_keys(&mut cache, "k", 0..40, b"v");
    // Older than the touch interval, so that reading them counts as a use.
    sleep(filecache::testing::TOUCH_INTERVAL + Duration::from_millis(50));
    for i in 0..20 {
        assert!(cache.get(&format!("k{i}")).expect("get").is_some());
    }
    insert_keys(&mut cache, "n", 0..20, b"v");
    let survivors: Vec<usize> = (0..40)
        .filter(|i| entry_path(dir.path(), &format!("k{i}")).exists())
        .collect();
    assert_eq!(
        survivors,
        (0..20).collect::<Vec<_>>(),
        "the entries read recently survive, the others made room"
    );
    assert_eq!(cache.stats().expect("stats").evicted, 20);
}

/// A cache limited to 40 entries: `k0`…`k40` written (the last evicted `k0`),
/// idle for 800 ms, then `n0`: that second eviction learned every entry (and
/// evicted `k1`), so the records of the others are trusted for the next
/// 200 ms (see [`filecache::testing::TRUST_DIVISOR`]).
fn learned_idle_and_trusted<B: Backend>(backend: &B) -> (TempDir, B::Cache) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(40), None));
    insert_keys(&mut cache, "k", 0..41, b"v");
    sleep(Duration::from_millis(800));
    cache.insert("n0", b"v", Expiry::Never).expect("insert");
    (dir, cache)
}

/// An entry the handle writes again is as new as any: the evictor's earlier
/// record of it (idle, and recent enough to be acted on without a second
/// `stat`, see [`filecache::testing::TRUST_DIVISOR`]) must not make it the
/// next victim.
pub fn an_entry_written_again_is_not_evicted_on_its_old_record<B: Backend>(backend: &B) {
    let (dir, mut cache) = learned_idle_and_trusted(backend);
    cache
        .insert("k2", b"new value", Expiry::Never)
        .expect("insert");
    cache.insert("n1", b"v", Expiry::Never).expect("insert");
    assert_eq!(
        cache.get("k2").expect("get").as_deref(),
        Some(&b"new value"[..]),
        "the entry written again survives"
    );
    let gone: Vec<usize> = (0..41)
        .filter(|i| !entry_path(dir.path(), &format!("k{i}")).exists())
        .collect();
    assert_eq!(gone, [0, 1, 3], "the oldest others made room");
}

/// An entry the handle reads is used: the evictor's earlier record of it (idle,
/// and recent enough to be acted on without a second `stat`) must not make it
/// the next victim.
pub fn an_entry_read_again_is_not_evicted_on_its_old_record<B: Backend>(backend: &B) {
    let (dir, mut cache) = learned_idle_and_trusted(backend);
    assert!(
        cache.get("k2").expect("get").is_some(),
        "k2 is there to read"
    );
    cache.insert("n1", b"v", Expiry::Never).expect("insert");
    let gone: Vec<usize> = (0..41)
        .filter(|i| !entry_path(dir.path(), &format!("k{i}")).exists())
        .collect();
    assert_eq!(
        gone,
        [0, 1, 3],
        "the entry just read survives; the oldest others made room"
    );
}

/// Above [`filecache::testing::EXHAUSTIVE_BELOW`] entries the evictor samples:
/// entries read recently and entries just written survive, and the oldest
/// make most of the room.
pub fn least_recently_used_are_evicted_first_in_a_sampled_cache<B: Backend>(backend: &B) {
    const LIMIT: usize = filecache::testing::EXHAUSTIVE_BELOW as usize + 76;
    const HOT: usize = LIMIT / 10;
    const NEW: usize = 300;
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(LIMIT as u64), None));
    insert_keys(&mut cache, "k", 0..LIMIT, b"v");
    sleep(filecache::testing::TOUCH_INTERVAL + Duration::from_millis(50));
    for i in 0..HOT {
        assert!(cache.get(&format!("k{i}")).expect("get").is_some());
    }
    insert_keys(&mut cache, "n", 0..NEW, b"v");
    let mut alive = |keys: &mut dyn Iterator<Item = String>| {
        keys.filter(|key| cache.contains_key(key).expect("contains"))
            .count()
    };
    let hot = alive(&mut (0..HOT).map(|i| format!("k{i}")));
    let new = alive(&mut (0..NEW).map(|i| format!("n{i}")));
    let cold = (LIMIT - HOT) / 3;
    let oldest = alive(&mut (HOT..HOT + cold).map(|i| format!("k{i}")));
    let newest = alive(&mut (LIMIT - cold..LIMIT).map(|i| format!("k{i}")));
    assert!(
        hot >= HOT - 2 && new >= NEW - 5,
        "recently used entries survive: {hot} of {HOT} read, {new} of {NEW} new"
    );
    // Sampling finds about two thirds of the entries while 300 are evicted, so
    // about half of the oldest third is left; evicting at random would leave
    // as many of them as of the newest third.
    assert!(
        oldest * 3 < newest * 2,
        "the oldest third of the unread entries made most of the room: {oldest} of {cold} \
         left, against {newest} of the newest third"
    );
}

/// Every counter of `stats` follows a scripted single-threaded workload exactly.
pub fn stats_are_exact_for_a_scripted_workload<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(5), None));
    let past = SystemTime::now() - Duration::from_secs(1);
    insert_keys(&mut cache, "k", 0..5, b"12345");
    cache.get("k0").expect("hit");
    cache.get("k1").expect("hit");
    cache.get("absent").expect("miss");
    cache
        .insert("k2", b"x", Expiry::At(past))
        .expect("expire k2");
    cache.get("k2").expect("miss: expired, removed");
    let path = entry_path(dir.path(), "k3");
    fs::write(&path, b"damaged").expect("damage k3");
    cache.get("k3").expect("miss: damaged, removed");
    insert_keys(&mut cache, "k", 5..9, b"12345");
    let stats = cache.stats().expect("stats");
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.expired_removed,
            stats.corrupt_removed,
            stats.evicted
        ),
        (2, 3, 1, 1, 2),
        "{stats:?}"
    );
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.bytes, 5 * (format::HEADER_LEN as u64 + 2 + 5));
}

pub fn list_keys_pages_cover_every_live_key_once<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open(backend, dir.path());
    let total = filecache::PAGE_SIZE + filecache::PAGE_SIZE / 2 + 7;
    let mut expected: Vec<String> = (0..total).map(|i| format!("key {i} ✓")).collect();
    for key in &expected {
        cache.insert(key, b"v", Expiry::Never).expect("insert");
    }
    let past = SystemTime::now() - Duration::from_secs(1);
    for i in 0..5 {
        cache
            .insert(&format!("expired {i}"), b"v", Expiry::At(past))
            .expect("insert");
    }
    cache
        .insert("damaged", b"v", Expiry::Never)
        .expect("insert");
    fs::write(entry_path(dir.path(), "damaged"), b"garbage").expect("damage");
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = cache.list_keys(cursor.as_deref()).expect("list-keys");
        assert!(page.keys.len() <= filecache::PAGE_SIZE);
        listed.extend(page.keys);
        pages += 1;
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the listing ends");
    }
    assert!(pages >= 2, "more than a page was listed in pages");
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "every live key exactly once");
    let err = cache
        .list_keys(Some("not a cursor"))
        .expect_err("a foreign cursor");
    assert_eq!(err.kind, FailureKind::InvalidInput);
    let empty = fresh_dir();
    let mut empty_cache = open(backend, empty.path());
    let page = empty_cache.list_keys(None).expect("list-keys");
    assert_eq!((page.keys.len(), page.cursor), (0, None));
}

pub fn zero_limits_are_refused<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    for options in [bounded(Some(0), None), bounded(None, Some(0))] {
        let err = backend
            .open(dir.path(), &options)
            .err()
            .expect("a zero limit is refused");
        assert_eq!(err.kind, FailureKind::InvalidInput);
    }
}

/// Entries the shared count never heard of — written by a handle without a
/// limit while a bounded one is open — are found by the bounded handle's
/// recount passes (two in a row must find the drift) and evicted, though its
/// own writes only replace entries.
pub fn a_drifted_count_is_corrected_by_a_recount<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let mut cache = open_with(backend, dir.path(), &bounded(Some(100), None));
    insert_keys(&mut cache, "k", 0..60, b"v");
    {
        let mut unbounded = open(backend, dir.path());
        insert_keys(&mut unbounded, "unreported", 0..100, b"v");
    }
    assert_eq!(entry_files_on_disk(dir.path()), 160);
    assert_eq!(cache.approx_size().expect("size"), 60, "not noticed yet");
    // A correction is made when two passes in a row find the drift.
    let writes = 2 * filecache::testing::MIN_WRITES_BETWEEN_PASSES + 64;
    for i in 0..writes {
        cache
            .insert("k0", format!("replaced {i}").as_bytes(), Expiry::Never)
            .expect("replace");
    }
    assert_eq!(
        entry_files_on_disk(dir.path()),
        100,
        "the recount found 60 entries too many, and they were evicted"
    );
    assert_eq!(cache.approx_size().expect("size"), 100);
    assert!(
        cache.contains_key("k0").expect("contains"),
        "the entry in use survives"
    );
    assert_eq!(cache.stats().expect("stats").evicted, 60);
}

/// Where every bounded handle writes once — a host that instantiates per
/// request — none writes long enough to recount in passes: a write that finds
/// the count neither corrected nor recounted for an hour recounts the cache at
/// once and evicts the excess.
pub fn a_stale_count_is_recounted_by_the_next_write<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let limited = bounded(Some(100), None);
    {
        let mut filler = open_with(backend, dir.path(), &limited);
        insert_keys(&mut filler, "k", 0..100, b"v");
        let mut unbounded = open(backend, dir.path());
        insert_keys(&mut unbounded, "unreported", 0..40, b"v");
    }
    let mut request = open_with(backend, dir.path(), &limited);
    insert_keys(&mut request, "request", 0..1, b"v");
    drop(request);
    assert_eq!(
        entry_files_on_disk(dir.path()),
        140,
        "a fresh count is not recounted: the write evicted one entry for itself"
    );

    filecache::testing::make_the_count_stale(dir.path()).expect("a census, aged");
    let mut request = open_with(backend, dir.path(), &limited);
    insert_keys(&mut request, "request", 1..2, b"v");
    // A host that ends its process without closing the cache (the line
    // hosts do) leaves the filler's reservation of one entry: the count holds
    // it on top of the recount until its lease.
    let on_disk = entry_files_on_disk(dir.path());
    assert!(
        (99..=100).contains(&on_disk),
        "the stale count was recounted, and the excess evicted: {on_disk} entries left"
    );
    assert_eq!(request.approx_size().expect("size"), on_disk as u64);
}

/// Removals are reported to the shared count like writes: every `F` of them
/// (`F` = limit / 256, here 2), not only at the handle's next write. A handle
/// that only removed used to leave the others taking the cache for as full as
/// before, and evicting that much too much.
pub fn removals_are_reported_to_the_other_handles<B: Backend>(backend: &B) {
    const LIMIT: usize = 512;
    let dir = fresh_dir();
    let mut writer = open_with(backend, dir.path(), &bounded(Some(LIMIT as u64), None));
    insert_keys(&mut writer, "k", 0..LIMIT, b"v");
    let mut remover = open_with(backend, dir.path(), &bounded(Some(LIMIT as u64), None));
    for i in 0..100 {
        remover.remove(&format!("k{i}")).expect("remove");
    }
    // The writer reads the shared count at its next report (every F changes or
    // 100 ms): wait out the age, then refill the room the removals made.
    sleep(filecache::testing::FLUSH_AGE + Duration::from_millis(20));
    insert_keys(&mut writer, "new", 0..100, b"v");
    let evicted = writer.stats().expect("stats").evicted;
    assert!(
        evicted <= 2,
        "100 entries were removed and 100 added, so at most the remover's unreported \
         removals (< F = 2) are evicted; {evicted} were"
    );
    assert_eq!(entry_files_on_disk(dir.path()), LIMIT - evicted as usize);
}

/// A limit set on a cache that was filled without one: the first bounded handle
/// counts what is there, and the next writes evict down to the limit.
pub fn limit_set_on_a_full_cache_evicts_down_to_it<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    {
        let mut unbounded = open(backend, dir.path());
        insert_keys(&mut unbounded, "old", 0..30, b"v");
    }
    let mut cache = open_with(backend, dir.path(), &bounded(Some(20), None));
    insert_keys(&mut cache, "new", 0..5, b"v");
    assert_eq!(
        entry_files_on_disk(dir.path()),
        20,
        "35 entries brought down to 20, at most a few per write"
    );
    for i in 0..5 {
        assert!(cache.contains_key(&format!("new{i}")).expect("contains"));
    }
    assert_eq!(cache.stats().expect("stats").evicted, 15);
}

/// Every file below `dir` with its content (to show that nothing there changed).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(snapshot(&path));
        } else {
            let content = fs::read(&path).unwrap_or_default();
            found.push((path, content));
        }
    }
    found.sort();
    found
}

/// A directory a planted link points to: it holds a file named like the entry
/// of `key` and a temporary-looking file, which the cache must never touch.
fn decoy_dir(path: &Path, key: &str) -> Vec<(PathBuf, Vec<u8>)> {
    fs::create_dir_all(path).expect("decoy dir");
    let entry_name = entry_path(Path::new("/"), key);
    let entry_name = entry_name.file_name().expect("entry name");
    fs::write(path.join(entry_name), b"not the cache's").expect("decoy entry");
    fs::write(path.join("0123456789abcdef-0123456789abcdef.tmp"), b"old").expect("decoy temp");
    age_file(
        &path.join("0123456789abcdef-0123456789abcdef.tmp"),
        Duration::from_secs(3600),
    );
    snapshot(path)
}

/// Replaces the directory (or file) `path` with a symbolic link to `target`.
fn plant_link(target: &Path, path: &Path) {
    if path.is_dir() {
        fs::remove_dir_all(path).expect("remove the directory");
    } else if path.exists() {
        fs::remove_file(path).expect("remove the file");
    }
    symlink(target, path);
}

/// Makes `path` a symbolic link to `target` (on Windows a directory link
/// where `target` is a directory, else a file link).
fn symlink(target: &Path, path: &Path) {
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(target, path);
    #[cfg(windows)]
    let made = if target.is_dir() {
        std::os::windows::fs::symlink_dir(target, path)
    } else {
        std::os::windows::fs::symlink_file(target, path)
    };
    made.expect("plant a link");
}

/// A failure that is a typed I/O error, or a success of a read that found nothing.
fn refused_or_absent<T: std::fmt::Debug + PartialEq>(
    what: &str,
    outcome: crate::Outcome<T>,
    absent: T,
) {
    match outcome {
        Ok(value) => assert_eq!(value, absent, "{what} through a planted link"),
        Err(failure) => assert_eq!(
            failure.kind,
            FailureKind::Io,
            "{what} through a planted link: {failure:?}"
        ),
    }
}

/// A shard directory or `tmp/` replaced by a symbolic link — to a directory
/// inside the cache directory (which a host's sandbox would let through) or
/// outside it — is never followed: writes fail with a typed I/O error, reads
/// fail so or find nothing, and the directory linked to is left exactly as it
/// was (`clear` deletes nothing there, `insert` creates nothing). A host that
/// holds directories as paths (jco) follows a link planted in place of the
/// `tmp/` a handle already uses, which no guest can prevent: that part is
/// left out there (see `Backend::holds_directories`).
pub fn planted_links_to_directories_are_refused<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let root = dir.path().join("cache");
    let mut cache = open(backend, &root);
    cache.insert("warm", b"v", Expiry::Never).expect("insert");
    let shard = entry_path(&root, "k")
        .parent()
        .expect("shard")
        .to_path_buf();
    let targets = [
        (root.join("elsewhere"), PathBuf::from("elsewhere")),
        (dir.path().join("outside"), dir.path().join("outside")),
    ];
    for (target, link) in targets {
        let before = decoy_dir(&target, "k");
        plant_link(&link, &shard);
        let insert = cache.insert("k", b"value", Expiry::Never);
        assert!(
            insert.as_ref().is_err_and(|e| e.kind == FailureKind::Io),
            "insert into a linked shard: {insert:?}"
        );
        refused_or_absent("get", cache.get("k"), None);
        refused_or_absent("contains-key", cache.contains_key("k"), false);
        refused_or_absent("remove", cache.remove("k"), ());
        refused_or_absent("clear", cache.clear(), ());
        assert_eq!(snapshot(&target), before, "{}", target.display());
        fs::remove_file(&shard).expect("remove the link");

        if !backend.holds_directories() {
            fs::remove_dir_all(&target).expect("remove the decoy");
            continue;
        }
        plant_link(&link, &root.join("tmp"));
        let insert = cache.insert("k2", b"value", Expiry::Never);
        assert!(
            insert.as_ref().is_err_and(|e| e.kind == FailureKind::Io),
            "insert through a linked tmp/: {insert:?}"
        );
        drop(open(backend, &root));
        assert_eq!(snapshot(&target), before, "{}", target.display());
        fs::remove_file(root.join("tmp")).expect("remove the link");
        fs::remove_dir_all(&target).expect("remove the decoy");
    }
    cache
        .insert("k", b"value", Expiry::Never)
        .expect("works again");
    assert_eq!(cache.get("k").expect("get"), bytes_of("value"));
}

/// `locks/` replaced by a symbolic link: atomic operations fail with a typed
/// I/O error and create nothing in the directory linked to.
pub fn a_planted_link_in_place_of_locks_is_refused<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let root = dir.path().join("cache");
    let mut cache = open(backend, &root);
    let target = root.join("elsewhere");
    let before = decoy_dir(&target, "n");
    plant_link(Path::new("elsewhere"), &root.join("locks"));
    let increment = cache.increment("n", 1);
    assert!(
        increment.as_ref().is_err_and(|e| e.kind == FailureKind::Io),
        "increment through a linked locks/: {increment:?}"
    );
    assert_eq!(snapshot(&target), before);
}

/// An entry file replaced by a symbolic link — even to a valid entry of the
/// same key — is not read through: it is a miss, and the link (not what it
/// points to) is removed.
pub fn a_planted_link_in_place_of_an_entry_is_a_miss<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let root = dir.path().join("cache");
    let mut cache = open(backend, &root);
    cache.insert("k", b"value", Expiry::Never).expect("insert");
    cache.insert("c", b"value", Expiry::Never).expect("insert");
    for key in ["k", "c"] {
        let entry = entry_path(&root, key);
        let bytes = fs::read(&entry).expect("read the entry");
        let target = dir.path().join(format!("outside-{key}"));
        fs::write(&target, &bytes).expect("copy the entry outside");
        plant_link(&target, &entry);
        if key == "k" {
            assert_eq!(
                cache.get(key).expect("get"),
                None,
                "not read through a link"
            );
        } else {
            assert!(!cache.contains_key(key).expect("contains"));
        }
        assert!(fs::symlink_metadata(&entry).is_err(), "the link is removed");
        assert_eq!(
            fs::read(&target).expect("target"),
            bytes,
            "the target is untouched"
        );
    }
    cache.insert("k", b"new", Expiry::Never).expect("insert");
    assert_eq!(cache.get("k").expect("get"), bytes_of("new"));
}

/// A census file replaced by a symbolic link is neither read nor written
/// through: a bounded handle counts the cache itself and replaces the link
/// with a census of its own; the file linked to is untouched.
pub fn a_planted_link_in_place_of_the_census_is_replaced<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let root = dir.path().join("cache");
    fs::create_dir_all(&root).expect("cache dir");
    let target = dir.path().join("precious");
    fs::write(&target, b"precious").expect("target");
    plant_link(&target, &root.join(format::CENSUS_FILE));
    let mut cache = open_with(backend, &root, &bounded(Some(20), None));
    insert_keys(&mut cache, "k", 0..60, b"value");
    drop(cache);
    assert_eq!(fs::read(&target).expect("target"), b"precious");
    let census = fs::symlink_metadata(root.join(format::CENSUS_FILE)).expect("census");
    assert!(census.is_file(), "the link was replaced by a census file");
    assert!(entry_files_on_disk(&root) <= 20 + 2, "the limit held");
}

/// The cache directory itself may be a link (the user named it): it is
/// followed, and the entries land where it points.
pub fn a_cache_directory_reached_through_a_link_is_followed<B: Backend>(backend: &B) {
    let dir = fresh_dir();
    let real = dir.path().join("real");
    fs::create_dir(&real).expect("real dir");
    let link = dir.path().join("link");
    symlink(&real, &link);
    let mut cache = open(backend, &link);
    cache.insert("k", b"value", Expiry::Never).expect("insert");
    assert_eq!(cache.get("k").expect("get"), bytes_of("value"));
    assert!(entry_path(&real, "k").is_file());
}
