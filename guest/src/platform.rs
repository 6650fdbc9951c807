//! Every platform difference of the crate, behind one set of signatures.
//!
//! Unix and WASI (preview 2, through wasi-libc) behave alike here, but for one
//! thing: wasi-libc's `write` goes through a `wasi:io` output stream and turns
//! every failure into `EIO` (it drops the stream error without asking
//! `filesystem-error-code`), so a full disk would look like an I/O error. Its
//! `pwrite` calls `descriptor.write` and keeps the exact code (`ENOSPC`), so under
//! WASI files are written with `pwrite`. Listing a directory also costs more
//! under WASI (the host `stat`s every entry it lists), and a file opened for
//! reading may not have its times set there, so entries are marked used by path.
//! Windows cannot open a directory to sync it, needs readers to share delete
//! access so that `rename` can replace an entry another process is reading, and
//! needs write access to set a file's times.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// About how many directory entries a write may pay to have listed for the
/// eviction census (see `crate::eviction`): listing is cheap natively, and costs
/// a host-side `stat` per entry under WASI.
#[cfg(not(target_os = "wasi"))]
pub const CENSUS_NAMES_PER_WRITE: u64 = 32;
/// About how many directory entries a write may pay to have listed for the
/// eviction census (see `crate::eviction`).
#[cfg(target_os = "wasi")]
pub const CENSUS_NAMES_PER_WRITE: u64 = 8;

/// Sets the modification time of the entry file `path`, open as `file` for
/// reading, to now: the entry was just used.
#[cfg(all(not(windows), not(target_os = "wasi")))]
pub fn mark_used(file: &File, _path: &Path) -> io::Result<()> {
    file.set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
}

/// Sets the modification time of the entry file `path` to now, by path: a WASI
/// host refuses to set the times of a file opened for reading only.
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
pub fn mark_used(_file: &File, path: &Path) -> io::Result<()> {
    // WASI paths are Unicode strings, so a path the cache built is valid UTF-8.
    let path = path
        .to_str()
        .and_then(|text| std::ffi::CString::new(text).ok())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
    ];
    // SAFETY: `path` is a NUL-terminated string and `times` two timespecs, both
    // alive for the call; `utimensat` only reads them.
    let status = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the modification time of the entry file `path` to now (Windows needs
/// write access to the file for that).
#[cfg(windows)]
pub fn mark_used(_file: &File, path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
}

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

/// Reads a whole file.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    read_file_and_metadata(path).map(|(bytes, _, _)| bytes)
}

/// Reads a whole file and also returns the open file and its metadata (taken
/// before the read).
///
/// The size comes from one `fstat`, and the bytes from as few reads as it takes
/// to fill it, with no probe past the end: cache files are never written in
/// place once published (they are replaced by `rename`), so that size is exact,
/// and a file cut short reads short, which the decoders refuse. (`read_to_end`
/// would `fstat` again, ask for the position and read once more to see the end;
/// under WASI each of those is a host call.)
pub fn read_file_and_metadata(path: &Path) -> io::Result<(Vec<u8>, File, Metadata)> {
    let mut file = open_for_read(path)?;
    let meta = file.metadata()?;
    let len =
        usize::try_from(meta.len()).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut bytes = vec![0u8; len];
    let filled = fill(&mut file, &mut bytes, 0)?;
    bytes.truncate(filled);
    Ok((bytes, file, meta))
}

/// Reads into `bytes[from..]`, the file being read front to back, until the
/// buffer is full or the file ends; returns how many bytes are filled.
pub fn fill(file: &mut File, bytes: &mut [u8], from: usize) -> io::Result<usize> {
    let mut filled = from;
    while filled < bytes.len() {
        match read_at(file, &mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads into `buf` from a file being read front to back, at `offset` (its
/// current position).
#[cfg(not(target_os = "wasi"))]
pub fn read_at(file: &mut File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::Read;
    let _ = offset; // the file position is already there
    file.read(buf)
}

/// Reads into `buf` at `offset` with `pread`: one `descriptor.read` host call,
/// where wasi-libc's `read` sets up an input stream and reads through it.
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
pub fn read_at(file: &mut File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let at = i64::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor is open while `file` is borrowed, and `buf` is a
    // live, writable buffer of `buf.len()` bytes.
    let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), at) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n.unsigned_abs())
    }
}
