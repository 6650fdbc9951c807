//! Whole-directory work: listing, counting and clearing entries, sweeping abandoned
//! temporary and lock files.
//!
//! Only names of the shapes defined in [`crate::layout`] are touched, so files that
//! are not the cache's own survive `clear` and the sweeps.
//!
//! Listings go through [`list_names`], which copes with a quirk of WASI hosts:
//! wasmtime's `read-directory` stats every entry as it lists it, so an entry
//! removed by another writer between the two makes the stream yield an error, and
//! wasi-libc (and so `std`) end the listing there. A listing cut short that way is
//! taken again.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::exclusion;
use crate::layout::{self, KeyHash, Layout};

/// How many times a listing cut short by a vanished entry is taken again.
const LISTING_ATTEMPTS: usize = 16;

/// Totals of a scan of the entry files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Entry files found.
    pub entries: u64,
    /// Their combined size in bytes.
    pub bytes: u64,
}

/// The UTF-8 names in `dir`; a directory that does not exist (or is a file) is
/// empty. Names that are not UTF-8 are never the cache's own and are skipped.
///
/// # Errors
/// An I/O error if the directory cannot be read, or if every attempt to list it
/// was cut short by entries vanishing underneath.
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    list_kept(dir, |name| name.into_string().ok())
}

/// What `keep` makes of each name in `dir`, for the names it keeps (see
/// [`list_names`]).
fn list_kept<T>(dir: &Path, mut keep: impl FnMut(OsString) -> Option<T>) -> Result<Vec<T>> {
    let mut last_cut = None;
    for _ in 0..LISTING_ATTEMPTS {
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) if is_missing_dir(&e) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", dir, e)),
        };
        let mut kept = Vec::new();
        let mut cut = None;
        for item in listing {
            match item {
                Ok(entry) => {
                    if let Some(item) = keep(entry.file_name()) {
                        kept.push(item);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    cut = Some(e);
                    break;
                }
                Err(e) => return Err(Error::io("read directory", dir, e)),
            }
        }
        match cut {
            None => return Ok(kept),
            Some(e) => last_cut = Some(e),
        }
    }
    let e = last_cut.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound));
    Err(Error::io(
        "read directory (entries kept vanishing while it was listed)",
        dir,
        e,
    ))
}

fn is_missing_dir(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The shard directories that exist, as `(index, path)`, in index order.
pub fn shards(layout: &Layout) -> Result<Vec<(u8, PathBuf)>> {
    let mut shards: Vec<(u8, PathBuf)> = list_names(layout.root())?
        .into_iter()
        .filter_map(|name| layout::shard_index(&name).map(|index| (index, layout.shard_dir(index))))
        .collect();
    shards.sort_unstable_by_key(|(index, _)| *index);
    Ok(shards)
}

/// The entry file names in one shard directory, unsorted.
pub fn entry_names(shard_dir: &Path) -> Result<Vec<String>> {
    list_kept(shard_dir, |name| {
        name.into_string()
            .ok()
            .filter(|name| layout::is_entry_name(name))
    })
}

/// The key hashes of the entry files in one shard directory, unsorted: 32
/// bytes each, held inline (for the evictor's and the census's listings,
/// which keep thousands of them at a time).
pub fn entry_hashes(shard_dir: &Path) -> Result<Vec<KeyHash>> {
    list_kept(shard_dir, |name| name.to_str().and_then(KeyHash::from_hex))
}

/// Counts the entry files (and, if `with_bytes`, their sizes).
pub fn totals(layout: &Layout, with_bytes: bool) -> Result<Totals> {
    let mut totals = Totals::default();
    for (_, shard) in shards(layout)? {
        for name in entry_names(&shard)? {
            if !with_bytes {
                totals.entries += 1;
                continue;
            }
            let path = shard.join(&name);
            match fs::metadata(&path) {
                Ok(meta) => {
                    totals.entries += 1;
                    totals.bytes += meta.len();
                }
                // Removed since the listing: no longer counted.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("read metadata", &path, e)),
            }
        }
    }
    Ok(totals)
}

/// Removes every entry file; returns how many this call removed.
pub fn clear(layout: &Layout) -> Result<u64> {
    let mut removed = 0;
    for (_, shard) in shards(layout)? {
        for name in entry_names(&shard)? {
            let path = shard.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove entry", &path, e)),
            }
        }
    }
    Ok(removed)
}

/// What a sweep of abandoned files removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Temporary files older than the lease.
    pub temps: u64,
    /// Lock files older than the lease.
    pub locks: u64,
}

/// Removes temporary files and lock files older than `lease` (left by writers
/// that died). Younger ones may belong to a writer still at work and are kept.
pub fn sweep_abandoned(layout: &Layout, lease: Duration) -> Result<Swept> {
    let mut swept = Swept::default();
    let tmp = layout.tmp_dir();
    let now = SystemTime::now();
    for name in list_names(tmp)? {
        if !layout::is_temp_name(&name) {
            continue;
        }
        let path = tmp.join(&name);
        let Some(age) = age_of(&path, now) else {
            continue; // gone already, or no timestamps: leave it
        };
        if age > lease {
            match fs::remove_file(&path) {
                Ok(()) => swept.temps += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove stale temporary file", &path, e)),
            }
        }
    }
    for name in list_names(layout.locks_dir())? {
        if layout::is_lock_name(&name)
            && exclusion::break_if_stale(layout, &layout.locks_dir().join(&name), lease)?
                == exclusion::LockState::Reclaimed
        {
            swept.locks += 1;
        }
    }
    Ok(swept)
}

/// How long ago `path` was last modified; `None` if it is gone or has no time.
pub fn age_of(path: &Path, now: SystemTime) -> Option<Duration> {
    let modified = fs::metadata(path).and_then(|meta| meta.modified()).ok()?;
    Some(now.duration_since(modified).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both listings of a shard keep exactly the entry names: not temporary
    /// or foreign files, not names that only look like hashes.
    #[test]
    fn entry_listings_keep_entry_names_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries = [KeyHash::of("a"), KeyHash::of("b")];
        for hash in &entries {
            fs::write(dir.path().join(hash.hex()), b"").expect("write entry");
        }
        let foreign = [
            "notes.txt".to_owned(),
            "0123456789abcdef-0123456789abcdef.tmp".to_owned(),
            entries[0].hex().to_uppercase(),
            format!("{}0", entries[1].hex()),
            entries[0].hex()[1..].to_owned(),
        ];
        for name in &foreign {
            fs::write(dir.path().join(name), b"").expect("write foreign file");
        }
        let mut names = entry_names(dir.path()).expect("names");
        let mut hashes = entry_hashes(dir.path()).expect("hashes");
        names.sort();
        hashes.sort();
        let mut expected = entries.to_vec();
        expected.sort();
        assert_eq!(hashes, expected);
        assert_eq!(names, expected.iter().map(KeyHash::hex).collect::<Vec<_>>());
        assert!(
            entry_hashes(&dir.path().join("missing"))
                .expect("missing")
                .is_empty()
        );
    }
}
