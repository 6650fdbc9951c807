//! Reclaiming what writers that died left behind: temporary files in `tmp/`
//! and lock files in `locks/` older than the lease — and on FUSE the hidden
//! copies libfuse lost track of.
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
//!
//! Holding leaves one case open: two writers of one key on one mount at the
//! same moment can still leave a hidden copy, which libfuse would keep until
//! the file system is unmounted. So a sweep of a marked cache also removes
//! `.fuse_hidden…` files older than the lease from `tmp/`, `locks/` and a
//! sixteenth of the shard directories, drawn at random: a mount that stays
//! up for months does not gather them.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{MissingOk, Result};
use crate::exclusion::{self, LockState};
use crate::layout::{self, KeyHash, SHARDS, SWEPT_FILE, ShortName};
use crate::platform::{Dir, Times, is_hidden_name};
use crate::race;
use crate::scan::list_kept;

/// A long-lived handle checks the stamp once per this many writes.
pub(crate) const CHECK_EVERY: u64 = 4096;

/// Shard directories whose hidden copies one sweep of a marked cache
/// reclaims: one of [`HIDDEN_GROUPS`] runs of consecutive shards, drawn at
/// random, so that a run of sweeps goes over every shard.
const HIDDEN_GROUPS: usize = 16;

/// What a sweep of abandoned files removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Temporary files older than the lease.
    pub temps: u64,
    /// Lock files older than the lease.
    pub locks: u64,
    /// Hidden copies (`.fuse_hidden…`) older than the lease.
    pub hidden: u64,
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
    let hides = marked || probe_hiding(cache);
    let claimed = match (stamp, hides) {
        (_, true) if !marked => publish_marked_stamp(cache),
        (Some(_), _) => touch_stamp(cache, now),
        (None, _) => create_stamp(cache),
    };
    if !claimed {
        return None; // a read-only file system, or no permission: nothing to sweep with
    }
    sweep(cache, lease, hides).ok()
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

/// Removes temporary and lock files older than `lease` — and, where the file
/// system `hides` removed open files, hidden copies (`.fuse_hidden…`) older
/// than `lease` in `tmp/`, `locks/` and one group of shards drawn at random
/// (see the module docs). Each directory is listed once.
///
/// # Errors
/// An I/O error if a directory cannot be listed or a file removed.
pub(crate) fn sweep(cache: &CacheDir, lease: Duration, hides: bool) -> Result<Swept> {
    let mut swept = Swept::default();
    let now = SystemTime::now();
    let hidden = |name: &OsStr| hidden_copy(name).filter(|_| hides);
    if let Some(tmp) = open_sub(cache, Sub::Tmp)? {
        let names = list_kept(&tmp, |name| {
            let temp = name.to_str().filter(|name| layout::is_temp_name(name));
            temp.map(ShortName::new).or_else(|| hidden(name))
        })
        .map_err(|e| crate::Error::io("read directory", tmp.path(), e))?;
        for name in names {
            if !remove_if_older(&tmp, name.as_str(), lease, now)? {
                continue;
            }
            if is_hidden_name(name.as_str().as_ref()) {
                swept.hidden += 1;
            } else {
                swept.temps += 1;
            }
        }
    }
    if let Some(locks) = open_sub(cache, Sub::Locks)? {
        let names = list_kept(&locks, |name| {
            let lock = name.to_str().and_then(|name| name.strip_suffix(".lock"));
            match lock.and_then(KeyHash::from_hex) {
                Some(hash) => Some(InLocks::Lock(hash)),
                None => hidden(name).map(InLocks::HiddenCopy),
            }
        })
        .map_err(|e| crate::Error::io("read directory", locks.path(), e))?;
        for name in names {
            match name {
                InLocks::Lock(hash) => {
                    if exclusion::break_if_stale(cache, &hash, lease)? == LockState::Reclaimed {
                        swept.locks += 1;
                    }
                }
                InLocks::HiddenCopy(copy) => {
                    swept.hidden += u64::from(remove_if_older(&locks, copy.as_str(), lease, now)?)
                }
            }
        }
    }
    if hides {
        let group = layout::nonce() as usize % HIDDEN_GROUPS;
        swept.hidden += reclaim_hidden_copies(cache, lease, group)?;
    }
    Ok(swept)
}

/// What the sweep acts on in `locks/`.
enum InLocks {
    /// The lock file of a key.
    Lock(KeyHash),
    /// A hidden copy (of a lock file).
    HiddenCopy(ShortName),
}

/// Removes the hidden copies (`.fuse_hidden…`) older than `lease` from the
/// shards of group `group` (of [`HIDDEN_GROUPS`]): copies that libfuse lost
/// track of and would keep until the file system is unmounted (see the
/// `platform` module docs). One still open on this machine is hidden again by
/// libfuse and deleted at its last close; one open on another machine stays
/// readable there (the server keeps it until closed). The number removed.
///
/// # Errors
/// An I/O error if a directory cannot be listed or a file removed.
pub(crate) fn reclaim_hidden_copies(
    cache: &CacheDir,
    lease: Duration,
    group: usize,
) -> Result<u64> {
    let per_group = SHARDS / HIDDEN_GROUPS;
    let now = SystemTime::now();
    let mut removed = 0;
    for shard in group * per_group..(group + 1) * per_group {
        let Some(dir) = open_sub(cache, Sub::Shard(shard as u8))? else {
            continue;
        };
        let names = list_kept(&dir, hidden_copy)
            .map_err(|e| crate::Error::io("read directory", dir.path(), e))?;
        for name in names {
            removed += u64::from(remove_if_older(&dir, name.as_str(), lease, now)?);
        }
    }
    Ok(removed)
}

/// `name`, if it is a hidden copy's (`.fuse_hidden…`).
fn hidden_copy(name: &OsStr) -> Option<ShortName> {
    name.to_str()
        .filter(|_| is_hidden_name(name))
        .map(ShortName::new)
}

/// The directory `sub` of the cache, if it exists.
fn open_sub(cache: &CacheDir, sub: Sub) -> Result<Option<std::sync::Arc<Dir>>> {
    cache
        .sub(sub, Missing::Leave)
        .map_err(|e| crate::Error::io("open directory", &cache.sub_path(sub), e))
}

/// Removes the file `name` in `dir` if it was last modified more than `lease`
/// before `now` (holding it meanwhile: see [`Dir::remove_held`]); whether
/// this call removed it.
///
/// # Errors
/// An I/O error if the file cannot be `stat`ed or removed (other than being gone).
fn remove_if_older(dir: &Dir, name: &str, lease: Duration, now: SystemTime) -> Result<bool> {
    let path = || dir.path().join(name);
    let old = dir
        .stat(name)
        .missing_ok()
        .map_err(|e| crate::Error::io("read metadata", &path(), e))?
        .is_some_and(|stat| age(stat.modified, now) > lease);
    Ok(old
        && dir
            .remove_held(name)
            .missing_ok()
            .map_err(|e| crate::Error::io("remove abandoned file", &path(), e))?
            .is_some())
}

/// How long before `now` the time `then` was (zero if after it).
pub(crate) fn age(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::platform::Access;
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

    /// Plants a hidden copy named `name` in `sub` (a directory of the cache
    /// at `root`), `aged` old; its path.
    fn plant_hidden(root: &Path, sub: &str, name: &str, aged: Duration) -> PathBuf {
        let dir = root.join(sub);
        fs::create_dir_all(&dir).expect("directory");
        let path = dir.join(name);
        fs::write(&path, b"a lost value").expect("plant");
        age_file(&path, aged);
        path
    }

    /// A marked cache's sweep removes hidden copies older than the lease from
    /// `tmp/` and `locks/` every time and from each shard in its group's turn;
    /// it keeps younger ones, and every other name; an unmarked cache's sweep
    /// leaves them all.
    #[test]
    fn a_marked_cache_reclaims_old_hidden_copies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let lease = Duration::from_secs(60);
        let options = Options {
            lease,
            ..Options::default()
        };
        let store = FileStore::open(root, options.clone()).expect("open");
        store.insert("k", b"v", Expiry::Never).expect("insert");
        let hour = Duration::from_secs(3600);
        let mut old = vec![
            plant_hidden(root, "tmp", ".fuse_hidden0000000a00000001", hour),
            plant_hidden(root, "locks", ".fuse_hidden0000000b00000002", hour),
        ];
        old.extend((0..SHARDS).step_by(7).map(|shard| {
            let name = format!(".fuse_hidden{shard:016x}");
            plant_hidden(root, &format!("{shard:02x}"), &name, hour)
        }));
        let young = plant_hidden(root, "3f", ".fuse_hidden00000000000000ff", Duration::ZERO);
        let foreign = plant_hidden(root, "3f", "notes.txt", hour);
        let stamp = root.join(SWEPT_FILE);

        age_file(&stamp, hour);
        store
            .insert("k", b"w", Expiry::Never)
            .expect("a due sweep, unmarked");
        assert!(
            old.iter().all(|path| path.exists()),
            "unmarked: nothing removed"
        );

        fs::write(&stamp, HIDING_MARK).expect("mark");
        age_file(&stamp, hour);
        let store = FileStore::open(root, options).expect("open");
        store
            .insert("k", b"x", Expiry::Never)
            .expect("a due sweep, marked");
        assert!(
            !old[0].exists() && !old[1].exists(),
            "tmp/ and locks/ at every sweep"
        );

        let cache = CacheDir::open(root, Access::Private).expect("open cache dir");
        let still_there = old.iter().filter(|path| path.exists()).count() as u64;
        let removed: u64 = (0..HIDDEN_GROUPS)
            .map(|group| reclaim_hidden_copies(&cache, lease, group).expect("reclaim"))
            .sum();
        let left: Vec<&PathBuf> = old.iter().filter(|path| path.exists()).collect();
        assert!(left.is_empty(), "left after every group's turn: {left:?}");
        assert_eq!(removed, still_there, "each counted once");
        assert!(young.exists(), "a copy younger than the lease is kept");
        assert!(foreign.exists(), "a name not libfuse's is kept");
    }
}
