//! Writing an entry file: header, key and value staged in `tmp/`, its times
//! set (the expiry hint and its last use, see [`crate::format`]), then renamed
//! over the entry ([`crate::race`]).

use std::io;
use std::time::SystemTime;

use crate::cache_dir::{CacheDir, Sub};
use crate::error::Result;
use crate::format;
use crate::layout::KeyHash;
use crate::platform::Times;
use crate::race::{self, Staged};

/// Values up to this size are written with the header in a single `write`.
const SINGLE_WRITE_LIMIT: usize = 64 * 1024;

/// An entry about to be written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a [u8],
    /// When it expires, in Unix milliseconds ([`crate::format::NEVER`] for never).
    pub expires_at: u64,
}

impl Entry<'_> {
    /// The size of the entry file.
    pub(crate) fn file_len(&self) -> u64 {
        (format::HEADER_LEN + self.key.len() + self.value.len()) as u64
    }
}

/// Writes `entry` as the entry for `hash`, atomically, and tells what it
/// replaced: `size_of_old` gives the size of the entry there, if any (it is
/// asked only when a write may replace one — natively on Linux, a write that
/// adds an entry publishes with `RENAME_NOREPLACE` and asks nothing). Returns
/// the entry file's modification time (its last use, for eviction) and that
/// size.
///
/// # Errors
/// An I/O error (or [`crate::Error::StorageFull`]); the previous entry is then
/// untouched and no temporary file is left behind.
pub(crate) fn publish_counted(
    cache: &CacheDir,
    hash: &KeyHash,
    entry: &Entry<'_>,
    durable: bool,
    size_of_old: impl FnOnce() -> Result<Option<u64>>,
) -> Result<(SystemTime, Option<u64>)> {
    let (mut staged, written_at) = stage(cache, hash, entry, durable)?;
    let name = hash.file_name();
    if staged.commit_new(cache, Sub::Shard(hash.shard()), name.as_str(), durable)? == Some(true) {
        sync_root(cache, durable)?;
        return Ok((written_at, None));
    }
    let replaced = size_of_old()?;
    commit(cache, hash, staged, durable)?;
    Ok((written_at, replaced))
}

/// Writes `entry` as the entry for `hash`, atomically; returns the entry
/// file's modification time (its last use, for eviction).
///
/// # Errors
/// An I/O error (or [`crate::Error::StorageFull`]); the previous entry is then
/// untouched and no temporary file is left behind.
pub(crate) fn publish(
    cache: &CacheDir,
    hash: &KeyHash,
    entry: &Entry<'_>,
    durable: bool,
) -> Result<SystemTime> {
    let (staged, written_at) = stage(cache, hash, entry, durable)?;
    commit(cache, hash, staged, durable)?;
    Ok(written_at)
}

/// Writes `entry` to a fresh temporary file for `hash`, with its expiry as
/// access time and now as modification time; returns it and that time.
///
/// # Errors
/// An I/O error (or [`crate::Error::StorageFull`]); no temporary file is left behind.
pub(crate) fn stage(
    cache: &CacheDir,
    hash: &KeyHash,
    entry: &Entry<'_>,
    durable: bool,
) -> Result<(Staged, SystemTime)> {
    let mut written_at = SystemTime::UNIX_EPOCH;
    let staged = race::stage(cache, hash, |file, tmp, name| {
        let value = entry.value;
        let mut head = format::encode_head(entry.expires_at, entry.key, value, value.len());
        if value.len() <= SINGLE_WRITE_LIMIT {
            head.extend_from_slice(value);
            file.write_all_at(&head, 0)?;
        } else {
            file.write_all_at(&head, 0)?;
            file.write_all_at(value, head.len() as u64)?;
        }
        // The expiry hint, and a modification time the evictor is told
        // exactly. A file system that cannot store them costs eviction
        // precision, nothing else.
        written_at = SystemTime::now();
        let times = Times {
            accessed: format::expiry_hint(entry.expires_at),
            modified: written_at,
        };
        let _ = file.set_times(tmp, name, times);
        if durable {
            file.sync_data()?;
        }
        Ok::<(), io::Error>(())
    })?;
    Ok((staged, written_at))
}

/// Publishes a staged entry of `hash`: from now on readers see it. With
/// `durable`, the shard and the root are synced too (the shard may be new).
///
/// # Errors
/// An I/O error; the previous entry is then untouched.
pub(crate) fn commit(
    cache: &CacheDir,
    hash: &KeyHash,
    staged: Staged,
    durable: bool,
) -> Result<()> {
    let name = hash.file_name();
    staged.commit(cache, Sub::Shard(hash.shard()), name.as_str(), durable)?;
    sync_root(cache, durable)
}

/// With `durable`, syncs the root (a shard may have been created in it).
fn sync_root(cache: &CacheDir, durable: bool) -> Result<()> {
    if durable {
        let root = cache.root();
        root.sync()
            .map_err(|e| crate::Error::io("sync directory", root.path(), e))?;
    }
    Ok(())
}
