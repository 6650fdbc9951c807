//! Reclaiming what writers that died left behind: temporary files in `tmp/`
//! and lock files in `locks/` older than the lease.
//!
//! Listing those directories at every `open` would make opening a cache cost
//! two listings (a per-request wasm instance opens one on every request). So
//! the sweep has a stamp: the file `swept` at the root, whose modification
//! time is when the last sweep began. A handle `stat`s it at its first write,
//! and again every [`CHECK_EVERY`] writes, and sweeps when it is older than the
//! lease (or missing). The sweeper first moves the stamp to now, so that other
//! handles do not sweep too. Opening a cache, and reading it, cost nothing of
//! this: only writers leave such files behind, so writers clean up after them.
//!
//! So an abandoned file — one older than the lease — is removed by the first
//! write of a handle (or the next check of one that writes on) that comes at
//! least one lease after the last sweep: within two leases of its writer's
//! death while the cache is written to. Younger files may belong to a writer
//! still at work and are kept. A lock left by a dead holder does not wait for the sweep to stop
//! blocking its key: the next writer that wants the key reclaims it at once
//! (see [`crate::exclusion`]). A sweep that fails (a read-only file system, a
//! directory that cannot be listed) fails nothing else: it is tried again when
//! the stamp is next found old.

use std::time::{Duration, SystemTime};

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{MissingOk, Result};
use crate::exclusion::{self, LockState};
use crate::layout::{self, SWEPT_FILE};
use crate::platform::Times;
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
/// the module docs); what was swept, if a sweep ran.
pub(crate) fn sweep_if_due(cache: &CacheDir, lease: Duration) -> Option<Swept> {
    let root = cache.root();
    let now = SystemTime::now();
    let stamp = root.stat(SWEPT_FILE).missing_ok().ok()?;
    if stamp.is_some_and(|stamp| age(stamp.modified, now) <= lease) {
        return None;
    }
    if !restamp(cache, now) {
        return None; // a read-only file system, or no permission: nothing to sweep with
    }
    sweep(cache, lease).ok()
}

/// Moves the stamp to `now`, creating it if missing; whether it could.
fn restamp(cache: &CacheDir, now: SystemTime) -> bool {
    let root = cache.root();
    let times = Times {
        accessed: now,
        modified: now,
    };
    let set = root.set_times(SWEPT_FILE, times).missing_ok();
    match set {
        Ok(Some(())) => true,
        Ok(None) => root.create_new(SWEPT_FILE, cache.access()).is_ok(),
        Err(_) => false,
    }
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
}
