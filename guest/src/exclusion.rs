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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::format::{self, LOCK_LEN};
use crate::layout::{self, KeyHash, Layout};
use crate::options::now_ms;
use crate::platform::{self, NewFile};
use crate::publish::in_dir;
use crate::scan::age_of;

/// First pause of a writer waiting for a lock.
const FIRST_BACKOFF: Duration = Duration::from_micros(100);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// How long locks are waited for, and when they count as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// Age after which a lock file is presumed abandoned.
    pub lease: Duration,
    /// How long a writer waits for a lock before returning [`Error::Busy`].
    pub timeout: Duration,
}

/// A held key lock. Dropping it releases it (best effort); [`KeyLock::release`]
/// reports failures.
#[derive(Debug)]
pub struct KeyLock {
    path: PathBuf,
    content: [u8; LOCK_LEN],
    released: bool,
}

/// What [`break_if_stale`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
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
pub fn acquire(layout: &Layout, hash: &KeyHash, policy: &LockPolicy, key: &str) -> Result<KeyLock> {
    let path = layout.lock_path(hash);
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match in_dir(layout.locks_dir(), || NewFile::create_new(&path)) {
            Ok(mut file) => {
                let content = format::encode_lock(owner_token(), now_ms());
                if let Err(e) = file.write_all_at(&content, 0) {
                    drop(file);
                    let _ = fs::remove_file(&path);
                    return Err(Error::io("write lock file", &path, e));
                }
                return Ok(KeyLock {
                    path,
                    content,
                    released: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create lock file", &path, e)),
        }
        if break_if_stale(layout, &path, policy.lease)? != LockState::Held {
            continue;
        }
        let waited = started.elapsed();
        if waited >= policy.timeout {
            return Err(Error::Busy {
                what: format!(
                    "the key `{}` stayed locked by another writer for {waited:.1?} (lock file `{}`)",
                    abbreviate(key),
                    path.display()
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
    pub fn is_held(&self) -> Result<bool> {
        match platform::read_file(&self.path) {
            Ok(bytes) => Ok(bytes == self.content),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("read lock file", &self.path, e)),
        }
    }

    /// Releases the lock (if it is still this holder's).
    ///
    /// # Errors
    /// An I/O error if the lock file cannot be read or removed; the lock is then
    /// reclaimed by others once older than the lease.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.remove_if_held()
    }

    fn remove_if_held(&self) -> Result<()> {
        if !self.is_held()? {
            return Ok(());
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove lock file", &self.path, e)),
        }
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

/// Removes the lock file at `path` if it is older than `lease`, following step 3
/// of the protocol.
///
/// # Errors
/// An I/O error if the file cannot be inspected, moved or removed.
pub fn break_if_stale(layout: &Layout, path: &Path, lease: Duration) -> Result<LockState> {
    match lock_age(path)? {
        None => return Ok(LockState::Gone),
        Some(age) if age <= lease => return Ok(LockState::Held),
        Some(_) => {}
    }
    let aside = aside_path(layout, path);
    match in_dir(layout.tmp_dir(), || fs::rename(path, &aside)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Gone),
        Err(e) => return Err(Error::rename(path, &aside, e)),
    }
    // The moved file may be a fresh lock taken between the look and the move.
    let still_stale = age_of(&aside, SystemTime::now()).is_none_or(|age| age > lease);
    if !still_stale {
        put_back(&aside, path);
    }
    match fs::remove_file(&aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove abandoned lock file", &aside, e)),
    }
    Ok(if still_stale {
        LockState::Reclaimed
    } else {
        LockState::Held
    })
}

/// The age of a lock file; `None` if there is none.
fn lock_age(path: &Path) -> Result<Option<Duration>> {
    match fs::metadata(path).and_then(|meta| meta.modified()) {
        Ok(modified) => Ok(Some(
            SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read metadata of lock file", path, e)),
    }
}

/// Puts a live lock moved aside by mistake back in place, unless a newer lock
/// has been taken there meanwhile (its holder then finds its token gone and
/// publishes nothing).
fn put_back(aside: &Path, path: &Path) {
    match fs::hard_link(aside, path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // No hard links on this file system: a rename is the next best thing.
        Err(_) if !path.exists() => {
            let _ = fs::rename(aside, path);
        }
        Err(_) => {}
    }
}

/// A temporary-file name for a lock file being retired, so the sweep at `open`
/// removes it if this writer dies before it does.
fn aside_path(layout: &Layout, lock_path: &Path) -> PathBuf {
    let hash = lock_path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(".lock"))
        .and_then(KeyHash::from_hex)
        .unwrap_or_else(|| KeyHash::of(""));
    layout.temp_path(&hash)
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
    use super::*;

    fn policy(lease_ms: u64, timeout_ms: u64) -> LockPolicy {
        LockPolicy {
            lease: Duration::from_millis(lease_ms),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn age(path: &Path, by: Duration) {
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(SystemTime::now() - by))
            .expect("age the lock file");
    }

    #[test]
    fn a_held_lock_excludes_and_times_out_as_busy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path().to_path_buf());
        let hash = KeyHash::of("k");
        let lock = acquire(&layout, &hash, &policy(60_000, 0), "k").expect("first");
        assert!(lock.is_held().expect("read"));
        let err = acquire(&layout, &hash, &policy(60_000, 30), "k").expect_err("held");
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert!(err.to_string().contains("`k`"), "{err}");
        lock.release().expect("release");
        assert!(!layout.lock_path(&hash).exists());
        drop(acquire(&layout, &hash, &policy(60_000, 0), "k").expect("free again"));
        assert!(!layout.lock_path(&hash).exists(), "dropping releases");
    }

    #[test]
    fn an_abandoned_lock_is_reclaimed_and_its_holder_notices() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path().to_path_buf());
        let hash = KeyHash::of("k");
        let dead = acquire(&layout, &hash, &policy(60_000, 0), "k").expect("first");
        age(&layout.lock_path(&hash), Duration::from_secs(120));
        let live = acquire(&layout, &hash, &policy(60_000, 0), "k").expect("reclaimed");
        assert!(!dead.is_held().expect("read"), "the old holder lost it");
        assert!(live.is_held().expect("read"));
        drop(dead); // must not remove the new holder's lock
        assert!(live.is_held().expect("read"));
        live.release().expect("release");
        assert_eq!(
            fs::read_dir(layout.tmp_dir()).expect("tmp").count(),
            0,
            "nothing left aside"
        );
    }

    #[test]
    fn an_empty_abandoned_lock_is_reclaimed_but_a_young_one_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path().to_path_buf());
        let path = layout.lock_path(&KeyHash::of("k"));
        fs::create_dir_all(layout.locks_dir()).expect("locks dir");
        fs::write(&path, b"").expect("plant");
        assert_eq!(
            break_if_stale(&layout, &path, Duration::from_secs(60)).expect("judge"),
            LockState::Held
        );
        age(&path, Duration::from_secs(120));
        assert_eq!(
            break_if_stale(&layout, &path, Duration::from_secs(60)).expect("judge"),
            LockState::Reclaimed
        );
        assert!(!path.exists());
        assert_eq!(
            break_if_stale(&layout, &path, Duration::from_secs(60)).expect("judge"),
            LockState::Gone
        );
    }

    #[test]
    fn threads_take_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path().to_path_buf());
        let hash = KeyHash::of("counter");
        let inside = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let lock = acquire(&layout, &hash, &policy(60_000, 10_000), "counter")
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
