//! Whole-directory work: listing shards and entries, counting and clearing
//! entries.
//!
//! Only names of the shapes defined in [`crate::layout`] are touched, so files
//! that are not the cache's own survive `clear`.
//!
//! Listings go through [`list_kept`], which copes with a quirk of WASI hosts:
//! wasmtime's `read-directory` stats every entry as it lists it, so an entry
//! removed by another writer between the two makes the listing fail with
//! `NotFound`. A listing cut short that way is taken again.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, IoContext, MissingOk, Result};
use crate::layout::{self, KeyHash};
use crate::platform::Dir;

/// How many times a listing cut short by a vanished entry is taken again.
const LISTING_ATTEMPTS: usize = 16;

/// Totals of a scan of the entry files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Entry files found.
    pub entries: u64,
    /// Their combined size in bytes.
    pub bytes: u64,
}

/// What `keep` makes of each name in `dir`, for the names it keeps.
///
/// # Errors
/// The listing's error, or `NotFound` if every attempt was cut short by
/// entries vanishing underneath.
pub(crate) fn list_kept<T>(
    dir: &Dir,
    mut keep: impl FnMut(&OsStr) -> Option<T>,
) -> io::Result<Vec<T>> {
    let mut last_cut = None;
    for _ in 0..LISTING_ATTEMPTS {
        let mut kept = Vec::new();
        match dir.list(|name| kept.extend(keep(name))) {
            Ok(()) => return Ok(kept),
            Err(e) if e.kind() == io::ErrorKind::NotFound => last_cut = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_cut.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

/// The indexes of the shard directories that exist, in order.
///
/// # Errors
/// An I/O error if the root cannot be listed.
pub(crate) fn shards(cache: &CacheDir) -> Result<Vec<u8>> {
    let root = cache.root();
    let mut shards = list_kept(&root, |name| name.to_str().and_then(layout::shard_index))
        .context("read directory", root.path())?;
    shards.sort_unstable();
    Ok(shards)
}

/// Shard `index`, open, if it exists.
///
/// # Errors
/// An I/O error if it cannot be opened (a link in its place is refused).
pub(crate) fn shard(cache: &CacheDir, index: u8) -> Result<Option<Arc<Dir>>> {
    let sub = Sub::Shard(index);
    cache
        .sub(sub, Missing::Leave)
        .context("open directory", &cache.sub_path(sub))
}

/// The key hashes of the entry files in a shard directory, unsorted: 32 bytes
/// each, held inline.
///
/// # Errors
/// An I/O error if the directory cannot be listed.
pub(crate) fn entry_hashes(shard: &Dir) -> Result<Vec<KeyHash>> {
    list_kept(shard, |name| {
        KeyHash::from_hex_bytes(name.as_encoded_bytes())
    })
    .context("read directory", shard.path())
}

/// Counts the entry files (and, if `with_bytes`, their sizes).
///
/// # Errors
/// An I/O error if a directory cannot be listed or an entry `stat`ed.
pub(crate) fn totals(cache: &CacheDir, with_bytes: bool) -> Result<Totals> {
    let mut totals = Totals::default();
    for index in shards(cache)? {
        let Some(shard) = shard(cache, index)? else {
            continue;
        };
        for hash in entry_hashes(&shard)? {
            if !with_bytes {
                totals.entries += 1;
                continue;
            }
            let name = hash.file_name();
            // Removed since the listing: no longer counted.
            if let Some(stat) = shard
                .stat(name.as_str())
                .missing_ok()
                .context("read metadata", &shard.path().join(name.as_str()))?
            {
                totals.entries += 1;
                totals.bytes += stat.len;
            }
        }
    }
    Ok(totals)
}

/// Removes every entry file; returns how many this call removed.
///
/// # Errors
/// An I/O error if a directory cannot be listed or an entry removed.
pub(crate) fn clear(cache: &CacheDir) -> Result<u64> {
    let mut removed = 0;
    for index in shards(cache)? {
        let Some(shard) = shard(cache, index)? else {
            continue;
        };
        for hash in entry_hashes(&shard)? {
            let name = hash.file_name();
            let gone = shard
                .remove_file(name.as_str())
                .missing_ok()
                .map_err(|e| Error::io("remove entry", &shard.path().join(name.as_str()), e))?;
            removed += u64::from(gone.is_some());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::platform::Access;

    /// A shard listing keeps exactly the entry names: not temporary or
    /// foreign files, not names that only look like hashes.
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
        let listed = Dir::open(dir.path()).expect("open");
        let mut hashes = entry_hashes(&listed).expect("hashes");
        hashes.sort();
        let mut expected = entries.to_vec();
        expected.sort();
        assert_eq!(hashes, expected);
        let cache = CacheDir::open(dir.path(), Access::Private).expect("open cache");
        assert!(shard(&cache, 0x17).expect("missing shard").is_none());
    }
}
