//! Every platform difference of the crate, behind one set of signatures.
//!
//! Unix and WASI (preview 2, through wasi-libc) behave alike here; Windows cannot
//! open a directory to sync it, and needs readers to share delete access so that
//! `rename` can replace an entry another process is reading.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Flushes a directory's entries (new names, renames) to stable storage.
#[cfg(not(windows))]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes a directory's entries to stable storage (a no-op: Windows commits
/// renames with the file's metadata).
#[cfg(windows)]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Opens a file for reading without keeping writers from replacing it.
#[cfg(not(windows))]
pub fn open_for_read(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Opens a file for reading without keeping writers from replacing it.
#[cfg(windows)]
pub fn open_for_read(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ_WRITE_DELETE: u32 = 0x1 | 0x2 | 0x4;
    std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ_WRITE_DELETE)
        .open(path)
}

/// Reads a whole file into a buffer of the right size.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_for_read(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
