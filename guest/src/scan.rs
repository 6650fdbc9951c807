//! Whole-directory work: counting and clearing entries, sweeping abandoned temp files.
//!
//! Only names of the shapes defined in [`crate::layout`] are touched, so files that
//! are not the cache's own survive `clear` and the sweep.

use std::fs::{self, DirEntry};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Error, IoContext, Result};
use crate::layout::{self, Layout};

/// Totals of a scan of the entry files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Entry files found.
    pub entries: u64,
    /// Their combined size in bytes.
    pub bytes: u64,
}

/// Calls `visit` for every entry file in every shard.
fn for_each_entry(layout: &Layout, mut visit: impl FnMut(&DirEntry) -> Result<()>) -> Result<()> {
    let root = layout.root();
    for shard in read_dir_or_empty(root)? {
        let shard = shard.context("read directory", root)?;
        if !shard
            .file_name()
            .to_str()
            .is_some_and(layout::is_shard_name)
        {
            continue;
        }
        let shard_path = shard.path();
        for entry in read_dir_or_empty(&shard_path)? {
            let entry = entry.context("read directory", &shard_path)?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(layout::is_entry_name)
            {
                visit(&entry)?;
            }
        }
    }
    Ok(())
}

/// A directory's listing; a directory that does not exist (or is a file) is empty.
fn read_dir_or_empty(dir: &Path) -> Result<Vec<io::Result<DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(listing) => Ok(listing.collect()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(Error::io("read directory", dir, e)),
    }
}

/// Counts the entry files (and, if `with_bytes`, their sizes).
pub fn totals(layout: &Layout, with_bytes: bool) -> Result<Totals> {
    let mut totals = Totals::default();
    for_each_entry(layout, |entry| {
        totals.entries += 1;
        if with_bytes {
            match entry.metadata() {
                Ok(meta) => totals.bytes += meta.len(),
                // Removed since the listing: no longer counted.
                Err(e) if e.kind() == io::ErrorKind::NotFound => totals.entries -= 1,
                Err(e) => return Err(Error::io("read metadata", &entry.path(), e)),
            }
        }
        Ok(())
    })?;
    Ok(totals)
}

/// Removes every entry file; returns how many this call removed.
pub fn clear(layout: &Layout) -> Result<u64> {
    let mut removed = 0;
    for_each_entry(layout, |entry| {
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove entry", &path, e)),
        }
        Ok(())
    })?;
    Ok(removed)
}

/// Removes temporary files older than `lease` (left by writers that died);
/// returns how many. Younger ones may belong to a writer still at work.
pub fn sweep_stale_temps(layout: &Layout, lease: Duration) -> Result<u64> {
    let tmp = layout.tmp_dir();
    let now = SystemTime::now();
    let mut removed = 0;
    for temp in read_dir_or_empty(tmp)? {
        let temp = temp.context("read directory", tmp)?;
        if !temp.file_name().to_str().is_some_and(layout::is_temp_name) {
            continue;
        }
        let modified = temp.metadata().and_then(|meta| meta.modified());
        let age = match modified {
            Ok(modified) => now.duration_since(modified).unwrap_or(Duration::ZERO),
            Err(_) => continue, // gone already, or no timestamps: leave it
        };
        if age > lease {
            match fs::remove_file(temp.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove stale temporary file", &temp.path(), e)),
            }
        }
    }
    Ok(removed)
}
