//! Every platform difference of the crate, behind one set of signatures.
//!
//! Unix and WASI (preview 2, through wasi-libc) behave alike here, but for one
//! thing: wasi-libc's `write` goes through a `wasi:io` output stream and turns
//! every failure into `EIO` (it drops the stream error without asking
//! `filesystem-error-code`), so a full disk would look like an I/O error. Its
//! `pwrite` calls `descriptor.write` and keeps the exact code (`ENOSPC`), so under
//! WASI files are written with `pwrite`. Windows cannot open a directory to sync
//! it, and needs readers to share delete access so that `rename` can replace an
//! entry another process is reading.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Writes all of `bytes` to a file being written front to back, whose first
/// `offset` bytes are written already (so `offset` is its current position).
#[cfg(not(target_os = "wasi"))]
pub fn write_all_at(file: &mut File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::Write;
    let _ = offset; // the file position is already there
    file.write_all(bytes)
}

/// Writes all of `bytes` to a file being written front to back, at `offset`,
/// with `pwrite` so that the exact error code survives (see the module docs).
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
pub fn write_all_at(file: &mut File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        let at = i64::try_from(offset + written as u64)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `fd` is open for as long as `file` is borrowed, and `rest` is a
        // live buffer of `rest.len()` bytes that `pwrite` only reads.
        let n = unsafe { libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), at) };
        match n {
            n if n > 0 => written += n.unsigned_abs(),
            0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

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
