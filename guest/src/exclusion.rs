//! Exclusion between writers of one key — threads, processes and wasm instances —
//! from `create_new` lock files alone: WASI has no file locks, so there is no
//! `flock`, no `fs4`, no `File::lock` anywhere.
//!
//! # The protocol
//!
//! 1. **Acquire**: create `locks/<key hash>.lock` with `create_new` (O_EXCL) and
//!    write a fresh random owner token into it (the format is in
//!    [`crate::format`]). Exactly one creator succeeds.
//! 2. **Wait**: a writer that finds the file there backs off (exponentially,
//!    100 µs doubling to 10 ms, with jitter) and tries again, for at most the lock
//!    timeout; then it returns [`Error::Busy`].
//! 3. **Reclaim**: a lock file whose modification time is older than the lease
//!    was left by a holder that died (holders keep a lock for one operation,
//!    microseconds to milliseconds). A waiter renames it aside (only one renamer
//!    can succeed), judges the moved file again — a holder may have taken a fresh
//!    lock between the look and the move — and deletes it if still stale, or puts
//!    it back with `hard_link` (which never replaces a newer lock) if not.
//! 4. **Verify, then publish**: just before its `rename` publishes a new entry,
//!    the holder reads the lock file back and checks its own token is there. A
//!    holder that was paused past the lease and lost its lock publishes nothing.
//! 5. **Release**: the holder checks the token once more and removes the file.
//!
//! What is not guaranteed: a holder paused for longer than the lease *between*
//! its check in step 4 and its `rename` (a window of microseconds) can publish
//! after another writer took over the key; and lock ages are judged with the
//! file system's clock, so hosts sharing a network file system must keep their
//! clocks within a fraction of the lease.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, IoContext, MissingOk, Result};
use crate::format::{self, LOCK_LEN};
use crate::layout::{self, KeyHash, ShortName};
use crate::options::now_ms;
use crate::platform::{self, Dir, ReadFile};
use crate::race::{self, Retired};
use crate::sweep::age;

/// First pause of a writer waiting for a lock.
const FIRST_BACKOFF: Duration = Duration::from_micros(100);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// How long locks are waited for, and when they count as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockPolicy {
    /// Age after which a lock file is presumed abandoned.
    pub lease: Duration,
    /// How long a writer waits for a lock before returning [`Error::Busy`].
    pub timeout: Duration,
}

/// A held key lock. Dropping it releases it (best effort); [`KeyLock::release`]
/// reports failures.
#[derive(Debug)]
pub(crate) struct KeyLock {
    locks: Arc<Dir>,
    name: ShortName,
    content: [u8; LOCK_LEN],
    released: bool,
}

/// What [`break_if_stale`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockState {
    /// A live holder has it.
    Held,
    /// No lock file is there (any more).
    Gone,
    /// It was abandoned, and this call removed it.
    Reclaimed,
}

/// Acquires the lock of the key with `hash`, waiting as `policy` allows.
/// `key` only names the key in a [`Error::Busy`] message.
///
/// # Errors
/// [`Error::Busy`] after waiting `policy.timeout`; an I/O error if the lock file
/// cannot be created or written.
pub(crate) fn acquire(
    cache: &CacheDir,
    hash: &KeyHash,
    policy: &LockPolicy,
    key: &str,
) -> Result<KeyLock> {
    let name = layout::lock_name(hash);
    let path = || cache.sub_path(Sub::Locks).join(name.as_str());
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let created = cache.retry_created(Sub::Locks, |locks| {
            let file = locks.create_new(name.as_str(), cache.access())?;
            Ok((file, Arc::clone(locks)))
        });
        match created {
            Ok((mut file, locks)) => {
                let content = format::encode_lock(owner_token(), now_ms());
                if let Err(e) = file.write_all_at(&content, 0) {
                    drop(file);
                    let _ = locks.remove_held(name.as_str());
                    return Err(Error::io("write lock file", &path(), e));
                }
                return Ok(KeyLock {
                    locks,
                    name,
                    content,
                    released: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create lock file", &path(), e)),
        }
        if break_if_stale(cache, hash, policy.lease)? != LockState::Held {
            continue;
        }
        let waited = started.elapsed();
        if waited >= policy.timeout {
            return Err(Error::Busy {
                what: format!(
                    "the key `{}` stayed locked by another writer for {waited:.1?} (lock file `{}`)",
                    abbreviate(key),
                    path().display()
                ),
            });
        }
        std::thread::sleep(jitter(backoff).min(policy.timeout - waited));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl KeyLock {
    /// Whether the lock file still holds this holder's token.
    ///
    /// # Errors
    /// An I/O error other than the file being gone.
    pub(crate) fn is_held(&self) -> Result<bool> {
        Ok(self.open_if_held()?.is_some())
    }

    /// The lock file, open, if it still holds this holder's token.
    fn open_if_held(&self) -> Result<Option<ReadFile>> {
        let read = self.locks.open_file(self.name.as_str()).and_then(|file| {
            let mut bytes = [0u8; LOCK_LEN + 1];
            let filled = platform::fill(&file, &mut bytes, 0)?;
            Ok((bytes[..filled] == self.content).then_some(file))
        });
        match read.missing_ok() {
            Ok(held) => Ok(held.flatten()),
            Err(e) => Err(Error::io("read lock file", &self.path(), e)),
        }
    }

    /// Releases the lock (if it is still this holder's).
    ///
    /// # Errors
    /// An I/O error if the lock file cannot be read or removed; the lock is then
    /// reclaimed by others once older than the lease.
    pub(crate) fn release(mut self) -> Result<()> {
        self.released = true;
        self.remove_if_held()
    }

    /// Removes the lock file if it still holds this holder's token, through
    /// the handle that read the token (see the `platform` docs on files
    /// removed while open).
    fn remove_if_held(&self) -> Result<()> {
        let Some(file) = self.open_if_held()? else {
            return Ok(());
        };
        self.locks
            .remove_open_file(self.name.as_str(), file)
            .missing_ok()
            .context("remove lock file", &self.path())?;
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.locks.path().join(self.name.as_str())
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        if !self.released {
            // Best effort on an error path: a lock left behind is reclaimed after the lease.
            let _ = self.remove_if_held();
        }
    }
}

/// Removes the lock file of `hash` if it is older than `lease`, following step
/// 3 of the protocol (move aside, judge again, restore if it turned out live).
///
/// # Errors
/// An I/O error if the file cannot be inspected, moved or removed.
pub(crate) fn break_if_stale(
    cache: &CacheDir,
    hash: &KeyHash,
    lease: Duration,
) -> Result<LockState> {
    let name = layout::lock_name(hash);
    let path = || cache.sub_path(Sub::Locks).join(name.as_str());
    let stat = cache
        .retry(Sub::Locks, Missing::Leave, |locks| {
            locks.stat(name.as_str())
        })
        .missing_ok()
        .context("read metadata of lock file", &path())?;
    let Some(Some(stat)) = stat else {
        return Ok(LockState::Gone);
    };
    if age(stat.modified, SystemTime::now()) <= lease {
        return Ok(LockState::Held);
    }
    // The moved file may be a fresh lock taken between the look and the move.
    let still_stale = |tmp: &Dir, aside: &str| {
        tmp.stat(aside)
            .map_or(true, |moved| age(moved.modified, SystemTime::now()) > lease)
    };
    Ok(
        match race::retire(cache, Sub::Locks, name.as_str(), hash, still_stale)? {
            Retired::Removed => LockState::Reclaimed,
            Retired::Vanished => LockState::Gone,
            Retired::Restored | Retired::ReadOnly => LockState::Held,
        },
    )
}

fn owner_token() -> [u8; 16] {
    let mut token = [0u8; 16];
    token[..8].copy_from_slice(&layout::nonce().to_le_bytes());
    token[8..].copy_from_slice(&layout::nonce().to_le_bytes());
    token
}

/// `pause` scaled by a random factor in [0.5, 1.5), so waiters spread out.
fn jitter(pause: Duration) -> Duration {
    let factor = 0.5 + (layout::nonce() % 1024) as f64 / 1024.0;
    pause.mul_f64(factor)
}

/// A key short enough for a message.
fn abbreviate(key: &str) -> String {
    const LIMIT: usize = 80;
    if key.len() <= LIMIT {
        return key.to_owned();
    }
    let mut end = LIMIT;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &key[..end])
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::test_support::age_file;

    fn policy(lease_ms: u64, timeout_ms: u64) -> LockPolicy {
        LockPolicy {
            lease: Duration::from_millis(lease_ms),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn cache_in(dir: &Path) -> CacheDir {
        CacheDir::open(dir, crate::platform::Access::Private).expect("open cache dir")
    }

    fn lock_path(dir: &Path, hash: &KeyHash) -> std::path::PathBuf {
        dir.join(layout::LOCKS_DIR)
            .join(layout::lock_name(hash).as_str())
    }

    #[test]
    fn a_held_lock_excludes_and_times_out_as_busy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = cache_in(dir.path());
        let hash = KeyHash::of("k");
        let lock = acquire(&cache, &hash, &policy(60_000, 0), "k").expect("first");
        assert!(lock.is_held().expect("read"));
        let err = acquire(&cache, &hash, &policy(60_000, 30), "k").expect_err("held");
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert!(err.to_string().contains("`k`"), "{err}");
        lock.release().expect("release");
        assert!(!lock_path(dir.path(), &hash).exists());
        drop(acquire(&cache, &hash, &policy(60_000, 0), "k").expect("free again"));
        assert!(!lock_path(dir.path(), &hash).exists(), "dropping releases");
    }

    #[test]
    fn an_abandoned_lock_is_reclaimed_and_its_holder_notices() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = cache_in(dir.path());
        let hash = KeyHash::of("k");
        let dead = acquire(&cache, &hash, &policy(60_000, 0), "k").expect("first");
        age_file(&lock_path(dir.path(), &hash), Duration::from_secs(120));
        let live = acquire(&cache, &hash, &policy(60_000, 0), "k").expect("reclaimed");
        assert!(!dead.is_held().expect("read"), "the old holder lost it");
        assert!(live.is_held().expect("read"));
        drop(dead); // must not remove the new holder's lock
        assert!(live.is_held().expect("read"));
        live.release().expect("release");
        assert_eq!(
            fs::read_dir(dir.path().join(layout::TMP_DIR))
                .expect("tmp")
                .count(),
            0,
            "nothing left aside"
        );
    }

    #[test]
    fn an_empty_abandoned_lock_is_reclaimed_but_a_young_one_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = cache_in(dir.path());
        let hash = KeyHash::of("k");
        let path = lock_path(dir.path(), &hash);
        fs::create_dir_all(path.parent().expect("locks dir")).expect("locks dir");
        fs::write(&path, b"").expect("plant");
        let judge = || break_if_stale(&cache, &hash, Duration::from_secs(60)).expect("judge");
        assert_eq!(judge(), LockState::Held);
        age_file(&path, Duration::from_secs(120));
        assert_eq!(judge(), LockState::Reclaimed);
        assert!(!path.exists());
        assert_eq!(judge(), LockState::Gone);
    }

    #[test]
    fn threads_take_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = cache_in(dir.path());
        let hash = KeyHash::of("counter");
        let inside = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let lock = acquire(&cache, &hash, &policy(60_000, 10_000), "counter")
                            .expect("lock");
                        let others = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(others, 0, "two holders at once");
                        std::thread::yield_now();
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        lock.release().expect("release");
                    }
                });
            }
        });
    }
}
