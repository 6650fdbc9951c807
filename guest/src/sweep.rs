//! Reclaiming what writers that died left behind: temporary files in `tmp/`
//! and lock files in `locks/` older than the lease.
//!
//! Listing those directories at every `open` would make opening a cache cost
//! two listings (a per-request wasm instance opens one on every request). So
//! the sweep has a stamp: the file `swept` at the root, whose modification
//! time is when the last sweep began. A handle `stat`s it at its first write,
//! and again every [`CHECK_EVERY`] writes, and sweeps when it is older than the
//! lease (or missing). The sweeper first moves the stamp to now (or publishes
//! one), so that other handles do not sweep too (handles that find no stamp
//! at once may all sweep: harmless). Opening a cache, and reading it, cost
//! nothing of this: only writers leave such files behind, so writers clean up
//! after them.
//!
//! So an abandoned file — one older than the lease — is removed by the first
//! write of a handle (or the next check of one that writes on) that comes at
//! least one lease after the last sweep: within two leases of its writer's
//! death while the cache is written to. Younger files may belong to a writer
//! still at work and are kept. A lock left by a dead holder does not wait for
//! the sweep to stop blocking its key: the next writer that wants the key
//! reclaims it at once (see [`crate::exclusion`]). A sweep that fails (a
//! read-only file system, a directory that cannot be listed) fails nothing
//! else: it is tried again when the stamp is next found old.
//!
//! The stamp also says whether the cache's file system keeps a file removed
//! while open under another name (FUSE's `.fuse_hidden…`): it then holds
//! [`HIDING_MARK`], otherwise nothing. A sweeper of an unmarked cache finds
//! out with a probe in `tmp/`, and one that finds it so publishes a marked stamp (stage, then
//! rename: never seen without its mark) over an unmarked one; a mark is never
//! taken back (a cache moved off FUSE keeps holding files: a cost, no fault;
//! removing `swept` clears it). A handle that reads the mark at its first
//! write, or finds it with its own probe, holds the files it removes or
//! replaces (see the `platform` module docs) — the component cannot ask the
//! file system.

use std::time::{Duration, SystemTime};

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{MissingOk, Result};
use crate::exclusion::{self, LockState};
use crate::layout::{self, KeyHash, SWEPT_FILE};
use crate::platform::Times;
use crate::race;
use crate::scan::list_kept;

/// A long-lived handle checks the stamp once per this many writes.
pub(crate) const CHECK_EVERY: u64 = 4096;

/// What a sweep of abandoned files removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Temporary files older than the lease.
    pub temps: u64,
    /// Lock files older than the lease.
    pub locks: u64,
}

/// Sweeps if the stamp is older than `lease` or missing (best effort: see
/// the module docs), and notes what its mark says of the file system; what
/// was swept, if a sweep ran.
pub(crate) fn sweep_if_due(cache: &CacheDir, lease: Duration) -> Option<Swept> {
    let root = cache.root();
    let now = SystemTime::now();
    let stamp = root.stat(SWEPT_FILE).missing_ok().ok()?;
    let marked = stamp.is_some_and(|stamp| stamp.len > 0);
    if marked {
        root.note_hides_open_files();
    }
    if stamp.is_some_and(|stamp| age(stamp.modified, now) <= lease) {
        return None;
    }
    let claimed = match (stamp, marked || probe_hiding(cache)) {
        (_, true) if !marked => publish_marked_stamp(cache),
        (Some(_), _) => touch_stamp(cache, now),
        (None, _) => create_stamp(cache),
    };
    if !claimed {
        return None; // a read-only file system, or no permission: nothing to sweep with
    }
    sweep(cache, lease).ok()
}

/// What the stamp holds on a file system that keeps a file removed while
/// open under another name.
const HIDING_MARK: &[u8] = b"keeps removed open files\n";

/// Whether the cache's file system keeps files removed while open (noted on
/// the root if so); `false` if the probe failed.
fn probe_hiding(cache: &CacheDir) -> bool {
    let probe = layout::temp_name(&KeyHash::SWEEP);
    let hides = cache
        .retry_created(Sub::Tmp, |tmp| {
            tmp.keeps_removed_open_files(probe.as_str(), cache.access())
        })
        .unwrap_or(false);
    if hides {
        cache.root().note_hides_open_files();
    }
    hides
}

/// Moves the stamp's modification time to `now`; whether it could.
fn touch_stamp(cache: &CacheDir, now: SystemTime) -> bool {
    let times = Times {
        accessed: now,
        modified: now,
    };
    cache.root().set_times(SWEPT_FILE, times).is_ok()
}

/// Creates an unmarked stamp where there is none; whether this call did.
fn create_stamp(cache: &CacheDir) -> bool {
    cache.root().create_new(SWEPT_FILE, cache.access()).is_ok()
}

/// Publishes a marked stamp, replacing one that is not (stage, then rename:
/// a handle that sees the file sees its mark); whether it could.
fn publish_marked_stamp(cache: &CacheDir) -> bool {
    race::stage(cache, &KeyHash::SWEEP, |file, _, _| {
        file.write_all_at(HIDING_MARK, 0)
    })
    .and_then(|staged| staged.commit(cache, Sub::Root, SWEPT_FILE, false))
    .is_ok()
}

/// Removes temporary and lock files older than `lease`.
///
/// # Errors
/// An I/O error if a directory cannot be listed or a file removed.
pub(crate) fn sweep(cache: &CacheDir, lease: Duration) -> Result<Swept> {
    let mut swept = Swept::default();
    let now = SystemTime::now();
    if let Some(tmp) = cache
        .sub(Sub::Tmp, Missing::Leave)
        .map_err(|e| crate::Error::io("open directory", &cache.sub_path(Sub::Tmp), e))?
    {
        let names = list_kept(&tmp, |name| {
            name.to_str()
                .filter(|name| layout::is_temp_name(name))
                .map(layout::ShortName::new)
        })
        .map_err(|e| crate::Error::io("read directory", tmp.path(), e))?;
        for name in names {
            let name = name.as_str();
            let path = || tmp.path().join(name);
            let Some(stat) = tmp
                .stat(name)
                .missing_ok()
                .map_err(|e| crate::Error::io("read metadata", &path(), e))?
            else {
                continue; // gone already
            };
            if age(stat.modified, now) > lease
                && tmp
                    .remove_held(name)
                    .missing_ok()
                    .map_err(|e| crate::Error::io("remove stale temporary file", &path(), e))?
                    .is_some()
            {
                swept.temps += 1;
            }
        }
    }
    if let Some(locks) = cache
        .sub(Sub::Locks, Missing::Leave)
        .map_err(|e| crate::Error::io("open directory", &cache.sub_path(Sub::Locks), e))?
    {
        let names = list_kept(&locks, |name| {
            name.to_str()
                .and_then(|name| name.strip_suffix(".lock"))
                .and_then(layout::KeyHash::from_hex)
        })
        .map_err(|e| crate::Error::io("read directory", locks.path(), e))?;
        for hash in names {
            if exclusion::break_if_stale(cache, &hash, lease)? == LockState::Reclaimed {
                swept.locks += 1;
            }
        }
    }
    Ok(swept)
}

/// How long before `now` the time `then` was (zero if after it).
pub(crate) fn age(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::test_support::age_file;
    use crate::{Expiry, FileStore, Options};

    /// A handle checks the stamp at its first write and every `CHECK_EVERY`
    /// writes, and sweeps once the last sweep is more than a lease ago.
    #[test]
    fn a_long_lived_handle_sweeps_when_the_stamp_is_old() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options {
            lease: Duration::from_secs(60),
            ..Options::default()
        };
        let store = FileStore::open(dir.path(), options).expect("open");
        store.insert("first", b"v", Expiry::Never).expect("insert");
        let stale = dir
            .path()
            .join("tmp")
            .join("0123456789abcdef-fedcba9876543210.tmp");
        fs::write(&stale, b"half an entry").expect("plant");
        age_file(&stale, Duration::from_secs(3600));
        age_file(&dir.path().join(SWEPT_FILE), Duration::from_secs(61));
        for i in 1..CHECK_EVERY {
            store
                .insert(&format!("k{i}"), b"v", Expiry::Never)
                .expect("insert");
        }
        assert!(stale.exists(), "not checked yet");
        store.insert("last", b"v", Expiry::Never).expect("insert");
        assert!(!stale.exists(), "swept at the check");
        let stamp = fs::metadata(dir.path().join(SWEPT_FILE)).expect("stamp");
        assert!(age(stamp.modified().expect("mtime"), SystemTime::now()) < Duration::from_secs(10));
    }

    /// On a file system that keeps no removed open file, the sweep's probe
    /// leaves the stamp unmarked and nothing in `tmp/`; a mark found is kept
    /// (never taken back) and the stamp moved to now.
    #[test]
    fn the_stamp_is_marked_only_where_removed_open_files_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path(), Options::default()).expect("open");
        store.insert("k", b"v", Expiry::Never).expect("insert");
        let stamp = dir.path().join(SWEPT_FILE);
        assert_eq!(fs::read(&stamp).expect("stamp"), b"", "unmarked");
        let tmp = fs::read_dir(dir.path().join("tmp")).expect("tmp/").count();
        assert_eq!(tmp, 0, "the probe left nothing");

        fs::write(&stamp, HIDING_MARK).expect("mark");
        age_file(&stamp, Duration::from_secs(3600));
        let store = FileStore::open(dir.path(), Options::default()).expect("open");
        store.insert("k", b"w", Expiry::Never).expect("insert");
        assert_eq!(fs::read(&stamp).expect("stamp"), HIDING_MARK, "kept");
        let moved = fs::metadata(&stamp)
            .expect("stamp")
            .modified()
            .expect("mtime");
        assert!(
            age(moved, SystemTime::now()) < Duration::from_secs(10),
            "swept again"
        );
    }
}
