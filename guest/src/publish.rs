//! Publishing and retiring entry files: the only code that creates, renames or
//! deletes single entries.
//!
//! Publication: the entry is written to a fresh temporary file in `tmp/`, created
//! with `create_new` (O_EXCL: never clobbers, never follows a planted symlink), then
//! `rename`d over the entry path. A rename is atomic, so readers — which take no
//! lock — see the whole old entry or the whole new one, never a mixture.
//!
//! Retirement (of an expired or damaged entry): the entry is first renamed aside
//! into `tmp/`, then judged again. If a writer published a live entry in between,
//! the moved file is that live entry, and it is put back with `hard_link` (which
//! fails rather than replace a still newer entry). So removing a stale entry never
//! deletes a fresh one a concurrent writer just reported as written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, IoContext, Result};
use crate::format;
use crate::layout::{KeyHash, Layout};
use crate::platform::{self, NewFile};

/// How many fresh temp names are tried before giving up (a clash needs a nonce repeat).
const TEMP_NAME_ATTEMPTS: usize = 8;
/// Values up to this size are written with the header in a single `write`.
const SINGLE_WRITE_LIMIT: usize = 64 * 1024;

/// Writes the entry `key` → `value` (expiring at `expires_at`, Unix ms) as the
/// entry for `hash`, atomically.
///
/// Returns the entry file's modification time (its last use, for eviction).
///
/// # Errors
/// An I/O error (or [`Error::StorageFull`]); the previous entry is then untouched
/// and no temporary file is left behind.
pub fn publish(
    layout: &Layout,
    hash: &KeyHash,
    entry: &Entry<'_>,
    durable: bool,
) -> Result<SystemTime> {
    stage(layout, hash, entry, durable)?.commit()
}

/// An entry about to be written.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a [u8],
    /// When it expires, in Unix milliseconds ([`crate::format::NEVER`] for never).
    pub expires_at: u64,
}

impl Entry<'_> {
    /// The size of the entry file.
    pub fn file_len(&self) -> u64 {
        (format::HEADER_LEN + self.key.len() + self.value.len()) as u64
    }
}

/// An entry written to its temporary file but not yet visible. Dropping it
/// removes the temporary file; [`Staged::commit`] publishes it.
#[derive(Debug)]
pub struct Staged<'a> {
    layout: &'a Layout,
    hash: KeyHash,
    temp: PathBuf,
    durable: bool,
    done: bool,
    /// The file's modification time, as set.
    written_at: SystemTime,
}

/// Writes `entry` to a fresh temporary file for `hash`, and gives the file its
/// expiry as access time (the eviction hint, see [`crate::format`]).
///
/// # Errors
/// An I/O error (or [`Error::StorageFull`]); no temporary file is left behind.
pub fn stage<'a>(
    layout: &'a Layout,
    hash: &KeyHash,
    entry: &Entry<'_>,
    durable: bool,
) -> Result<Staged<'a>> {
    let (mut file, temp) = create_temp(layout, hash)?;
    let mut staged = Staged {
        layout,
        hash: *hash,
        temp,
        durable,
        done: false,
        written_at: SystemTime::UNIX_EPOCH,
    };
    let value = entry.value;
    let mut head = format::encode_head(entry.expires_at, entry.key, value, value.len());
    if value.len() <= SINGLE_WRITE_LIMIT {
        head.extend_from_slice(value);
        write_parts(&mut file, &[&head], &staged.temp)?;
    } else {
        write_parts(&mut file, &[&head, value], &staged.temp)?;
    }
    // The expiry hint, and a modification time the evictor is told exactly. A
    // file system that cannot store them costs eviction precision, nothing else.
    staged.written_at = SystemTime::now();
    let _ = file.set_times(format::expiry_hint(entry.expires_at), staged.written_at);
    if durable {
        file.sync_data()
            .context("sync temporary file", &staged.temp)?;
    }
    Ok(staged)
}

impl Staged<'_> {
    /// Renames the temporary file over the entry: from now on readers see it.
    /// Returns the entry file's modification time.
    ///
    /// # Errors
    /// An I/O error; the previous entry is then untouched.
    pub fn commit(mut self) -> Result<SystemTime> {
        let result = rename_into_place(self.layout, &self.hash, &self.temp, self.durable);
        // Once renamed, the temporary name is gone; on failure, Drop removes it.
        self.done = result.is_ok();
        result.map(|()| self.written_at)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the sweep at open removes it later if this fails too.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Creates a fresh temporary file for an entry of `hash` with `create_new`.
fn create_temp(layout: &Layout, hash: &KeyHash) -> Result<(NewFile, PathBuf)> {
    let mut attempt = 1;
    loop {
        let temp = layout.temp_path(hash);
        match in_dir(layout.tmp_dir(), || NewFile::create_new(&temp)) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < TEMP_NAME_ATTEMPTS => {
                attempt += 1
            }
            Err(e) => return Err(Error::io("create temporary file", &temp, e)),
        }
    }
}

fn write_parts(file: &mut NewFile, parts: &[&[u8]], temp: &Path) -> Result<()> {
    let mut offset = 0;
    for part in parts {
        file.write_all_at(part, offset)
            .context("write temporary file", temp)?;
        offset += part.len() as u64;
    }
    Ok(())
}

fn rename_into_place(layout: &Layout, hash: &KeyHash, temp: &Path, durable: bool) -> Result<()> {
    let entry = layout.entry_path(hash);
    let shard = entry.parent().unwrap_or(layout.root());
    // The shard is created on first use: when the rename finds it missing.
    let mut created_shard = false;
    let renamed = match fs::rename(temp, &entry) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            created_shard = true;
            fs::create_dir_all(shard).and_then(|()| fs::rename(temp, &entry))
        }
        other => other,
    };
    renamed.map_err(|e| Error::rename(temp, &entry, e))?;
    if durable {
        platform::sync_dir(shard).context("sync directory", shard)?;
        if created_shard {
            platform::sync_dir(layout.root()).context("sync directory", layout.root())?;
        }
    }
    Ok(())
}

/// Runs `op`, which creates a name in `dir`; if it fails because a directory is
/// missing (first use of a shard, or the directory was removed under us), creates
/// `dir` and tries once more. (Whether `dir` exists is not checked first: another
/// writer may have created it between the failure and the check.)
pub fn in_dir<T>(dir: &Path, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match op() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            op()
        }
        other => other,
    }
}

/// What a retirement found when it judged the moved-aside file again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// The file was still bad and is gone.
    Removed,
    /// Nothing was there any more (someone else removed or replaced it first).
    Vanished,
    /// A live entry had replaced the bad one; it was put back (or a newer one won).
    Restored,
}

/// Removes the entry file at `entry` if `still_bad` holds for its content once it
/// has been moved aside. See the module documentation.
///
/// # Errors
/// An I/O error if the file could not be moved aside or deleted.
pub fn retire(
    layout: &Layout,
    hash: &KeyHash,
    entry: &Path,
    still_bad: impl Fn(&[u8]) -> bool,
) -> Result<Retired> {
    let aside = layout.temp_path(hash);
    match in_dir(layout.tmp_dir(), || fs::rename(entry, &aside)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Retired::Vanished),
        Err(e) => return Err(Error::rename(entry, &aside, e)),
    }
    let bad = platform::read_file(&aside).map_or(true, |bytes| still_bad(&bytes));
    if !bad {
        match fs::hard_link(&aside, entry) {
            Ok(()) => {}
            // A newer entry was published meanwhile: it wins, ours is older.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // No hard links here (e.g. FAT): put it back unless something newer is there.
            Err(_) if !entry.exists() => {
                return fs::rename(&aside, entry)
                    .map(|()| Retired::Restored)
                    .map_err(|e| Error::rename(&aside, entry, e));
            }
            Err(_) => {}
        }
    }
    match fs::remove_file(&aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove retired entry", &aside, e)),
    }
    Ok(if bad {
        Retired::Removed
    } else {
        Retired::Restored
    })
}
