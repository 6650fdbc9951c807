//! Every platform difference of the crate, behind one set of signatures.
//!
//! Unix and WASI (preview 2, through wasi-libc) behave alike here, but for these:
//! - wasi-libc opens every file it is asked to write with the descriptor flags
//!   `write | mutate-directory` (POSIX compatibility; `mutate-directory` only has
//!   a meaning on directories). jco's Node.js WASI shim (preview2-shim 0.26)
//!   refuses any open that carries `mutate-directory` with `unsupported`, so
//!   under that host no wasi-libc program can create a file. Under WASI the cache
//!   therefore creates its files ([`NewFile`]) with its own `wasi:filesystem`
//!   `open-at` asking for `write` alone, resolving the path against the
//!   preopened directories as wasi-libc does. Everything else (reads, renames,
//!   removals, directories) still goes through `std` and wasi-libc.
//! - wasi-libc's `write` goes through a `wasi:io` output stream and turns every
//!   failure into `EIO`, so a full disk would look like an I/O error; files are
//!   written with `descriptor.write` (`pwrite`), which keeps the exact code.
//! - File times are set by path with explicit times (`utimensat`), never on a
//!   descriptor nor as "now": a file opened for reading may not have its times
//!   set under WASI, and jco's shim gets the other forms wrong (see
//!   `wasi_files::set_times`).
//! - Listing a directory costs more under WASI (the host `stat`s every entry it
//!   lists).
//!
//! - Files in a shard directory are `stat`ed and removed by name relative to an
//!   open descriptor of the directory on Unix ([`DirHandle`]: `fstatat` /
//!   `unlinkat`, no walk of the path's prefix); elsewhere by full path.
//!
//! Windows cannot open a directory to sync it, needs readers to share delete
//! access so that `rename` can replace an entry another process is reading, and
//! needs write access to set a file's times.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Most names a write of a recount pass lists (see `crate::census`): a pass
/// over a cache of 2 000 entries takes four writes, each ~2 ms here.
#[cfg(not(target_os = "wasi"))]
pub const RECOUNT_NAMES_PER_WRITE: u64 = 512;
/// Most names a write of a recount pass lists (see `crate::census`).
#[cfg(target_os = "wasi")]
pub const RECOUNT_NAMES_PER_WRITE: u64 = 256;

/// Sets the modification time of the entry file `path`, open as `file` for
/// reading and last seen as `meta`, to now: the entry was just used.
#[cfg(all(not(windows), not(target_os = "wasi")))]
pub fn mark_used(file: &File, _path: &Path, _meta: &Metadata) -> io::Result<()> {
    file.set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
}

/// Sets the modification time of the entry file `path` to now, by path (a WASI
/// host refuses to set the times of a file opened for reading only), and its
/// access time — the expiry hint — back to what `meta` read, since the times
/// can only be set both at once (see [`wasi_files::set_times`]). Should a writer
/// replace the entry between the read and this call, the new entry gets the old
/// one's hint: eviction may then judge it by the wrong expiry, nothing more.
#[cfg(target_os = "wasi")]
pub fn mark_used(_file: &File, path: &Path, meta: &Metadata) -> io::Result<()> {
    wasi_files::set_times(path, meta.accessed()?, SystemTime::now())
}

/// Sets the modification time of the entry file `path` to now (Windows needs
/// write access to the file for that).
#[cfg(windows)]
pub fn mark_used(_file: &File, path: &Path, _meta: &Metadata) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
}

/// A file the cache creates and writes: made with `create_new` (O_EXCL: it never
/// clobbers a file and never follows a planted symlink), written front to back,
/// optionally synced, and closed when dropped.
#[derive(Debug)]
pub struct NewFile {
    #[cfg(not(target_os = "wasi"))]
    file: File,
    #[cfg(target_os = "wasi")]
    descriptor: wasi_files::Descriptor,
    #[cfg(target_os = "wasi")]
    path: std::path::PathBuf,
}

#[cfg(not(target_os = "wasi"))]
impl NewFile {
    /// Creates `path`, which must not exist, for writing.
    pub fn create_new(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Self { file })
    }

    /// Writes all of `bytes` at `offset`, the file's current end (it is written
    /// front to back, so the file position is already there).
    pub fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        use std::io::Write;
        let _ = offset;
        self.file.write_all(bytes)
    }

    /// Flushes the file's data to stable storage.
    pub fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Sets the file's access time (the cache stores an eviction hint there)
    /// and modification time (its last use).
    pub fn set_times(&self, accessed: SystemTime, modified: SystemTime) -> io::Result<()> {
        self.file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(accessed)
                .set_modified(modified),
        )
    }
}

#[cfg(target_os = "wasi")]
impl NewFile {
    /// Creates `path`, which must not exist, for writing, with a `wasi:filesystem`
    /// `open-at` of its own (see the module docs for why not wasi-libc's `open`).
    pub fn create_new(path: &Path) -> io::Result<Self> {
        let descriptor = wasi_files::create_new(path)?;
        Ok(Self {
            descriptor,
            path: path.to_path_buf(),
        })
    }

    /// Writes all of `bytes` at `offset` with `descriptor.write` (`pwrite`),
    /// which reports the exact error code (a full disk is `ENOSPC`).
    pub fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut written = 0;
        while written < bytes.len() {
            let at = offset + written as u64;
            let n = self
                .descriptor
                .write(&bytes[written..], at)
                .map_err(wasi_files::to_io_error)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            written += usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(())
    }

    /// Flushes the file's data to stable storage.
    pub fn sync_data(&self) -> io::Result<()> {
        self.descriptor.sync_data().map_err(wasi_files::to_io_error)
    }

    /// Sets the file's access time (the cache stores an eviction hint there)
    /// and modification time (its last use), by path: see
    /// [`wasi_files::set_times`].
    pub fn set_times(&self, accessed: SystemTime, modified: SystemTime) -> io::Result<()> {
        wasi_files::set_times(&self.path, accessed, modified)
    }
}

/// Creating files through `wasi:filesystem` directly, resolving paths against
/// the preopened directories the way wasi-libc does.
#[cfg(target_os = "wasi")]
mod wasi_files {
    use std::io;
    use std::path::Path;
    use std::time::SystemTime;

    pub use wasip2::filesystem::types::Descriptor;
    use wasip2::filesystem::types::{DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

    thread_local! {
        /// The host's preopened directories and their guest names (own handles,
        /// asked for once per instance).
        static PREOPENS: Vec<(Descriptor, String)> =
            wasip2::filesystem::preopens::get_directories();
    }

    /// Creates `path` exclusively, for writing only, not following a symlink.
    pub fn create_new(path: &Path) -> io::Result<Descriptor> {
        let text = path
            .to_str()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // A relative path is looked up in a preopen named "." first, then from
        // the working directory, like wasi-libc does.
        let from_cwd = if text.starts_with('/') {
            None
        } else {
            let joined = std::env::current_dir()?.join(text);
            joined.to_str().map(str::to_owned)
        };
        PREOPENS.with(|preopens| {
            let found = match &from_cwd {
                None => under_absolute_preopen(preopens, text),
                Some(absolute) => in_dot_preopen(preopens, text)
                    .or_else(|| under_absolute_preopen(preopens, absolute)),
            };
            let (dir, relative) = found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{text} is not inside a preopened directory"),
                )
            })?;
            dir.open_at(
                PathFlags::empty(),
                relative,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )
            .map_err(to_io_error)
        })
    }

    /// The preopen named "." and `relative` within it.
    fn in_dot_preopen<'a>(
        preopens: &'a [(Descriptor, String)],
        relative: &'a str,
    ) -> Option<(&'a Descriptor, &'a str)> {
        let (dir, _) = preopens
            .iter()
            .find(|(_, name)| name.trim_end_matches('/') == ".")?;
        Some((dir, relative_or_dot(relative.trim_start_matches("./"))))
    }

    /// The preopen holding the absolute `path` — the longest preopen name that is
    /// `path` or a whole-component prefix of it — and the path relative to it.
    fn under_absolute_preopen<'a>(
        preopens: &'a [(Descriptor, String)],
        path: &'a str,
    ) -> Option<(&'a Descriptor, &'a str)> {
        preopens
            .iter()
            .filter_map(|(dir, name)| {
                let name = match name.trim_end_matches('/') {
                    "" if name.starts_with('/') => "/",
                    trimmed => trimmed,
                };
                let rest = path.strip_prefix(name)?;
                let whole = name == "/" || rest.is_empty() || rest.starts_with('/');
                (name.starts_with('/') && whole).then_some((name.len(), dir, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, dir, rest)| (dir, relative_or_dot(rest.trim_start_matches('/'))))
    }

    /// Sets the access and modification times of `path` with `utimensat`, both
    /// explicit. jco's Node.js shim (preview2-shim 0.26) gets every other form
    /// wrong: `descriptor.set-times` hands milliseconds to Node's `futimes`,
    /// which takes seconds; in `set-times-at`, a `now` timestamp becomes a time in
    /// January 1970, and `no-change` (`UTIME_OMIT`) `stat`s the directory instead
    /// of the file (a preopen then fails with `invalid`). Explicit times by path
    /// are right in every host tried.
    #[allow(unsafe_code)]
    pub fn set_times(path: &Path, accessed: SystemTime, modified: SystemTime) -> io::Result<()> {
        // WASI paths are Unicode strings, so a path the cache built is valid UTF-8.
        let path = path
            .to_str()
            .and_then(|text| std::ffi::CString::new(text).ok())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let times = [timespec(accessed)?, timespec(modified)?];
        // SAFETY: `path` is a NUL-terminated string and `times` two timespecs, both
        // alive for the call; `utimensat` only reads them.
        let status = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
        if status == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn timespec(time: SystemTime) -> io::Result<libc::timespec> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        let since_epoch = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| invalid())?;
        Ok(libc::timespec {
            tv_sec: libc::time_t::try_from(since_epoch.as_secs()).map_err(|_| invalid())?,
            tv_nsec: libc::c_long::try_from(since_epoch.subsec_nanos()).map_err(|_| invalid())?,
        })
    }

    fn relative_or_dot(rest: &str) -> &str {
        if rest.is_empty() { "." } else { rest }
    }

    /// The `io::Error` wasi-libc would have made of `code`.
    pub fn to_io_error(code: ErrorCode) -> io::Error {
        let errno = match code {
            ErrorCode::Access => libc::EACCES,
            ErrorCode::WouldBlock => libc::EAGAIN,
            ErrorCode::Already => libc::EALREADY,
            ErrorCode::BadDescriptor => libc::EBADF,
            ErrorCode::Busy => libc::EBUSY,
            ErrorCode::Quota => libc::EDQUOT,
            ErrorCode::Exist => libc::EEXIST,
            ErrorCode::FileTooLarge => libc::EFBIG,
            ErrorCode::Interrupted => libc::EINTR,
            ErrorCode::Invalid => libc::EINVAL,
            ErrorCode::IsDirectory => libc::EISDIR,
            ErrorCode::Loop => libc::ELOOP,
            ErrorCode::TooManyLinks => libc::EMLINK,
            ErrorCode::NameTooLong => libc::ENAMETOOLONG,
            ErrorCode::NoEntry => libc::ENOENT,
            ErrorCode::InsufficientMemory => libc::ENOMEM,
            ErrorCode::InsufficientSpace => libc::ENOSPC,
            ErrorCode::NotDirectory => libc::ENOTDIR,
            ErrorCode::Unsupported => libc::ENOTSUP,
            ErrorCode::NotPermitted => libc::EPERM,
            ErrorCode::ReadOnly => libc::EROFS,
            ErrorCode::CrossDevice => libc::EXDEV,
            _ => libc::EIO,
        };
        io::Error::from_raw_os_error(errno)
    }
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

/// What one `stat` of an entry file tells the evictor.
#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    /// Modification time.
    pub modified: SystemTime,
    /// Access time, if the platform keeps one.
    pub accessed: Option<SystemTime>,
    /// Size in bytes.
    pub len: u64,
}

impl FileStat {
    fn of(meta: &Metadata) -> Self {
        Self {
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            accessed: meta.accessed().ok(),
            len: meta.len(),
        }
    }
}

/// A directory whose files are `stat`ed and removed by name. On Unix it holds
/// the directory open and works relative to it (`fstatat`, `unlinkat`): no walk
/// of the path's prefix, ~1.4 µs less a call than by path on this machine's
/// tmpfs (2.5 against 3.9 µs). Elsewhere, or made with [`DirHandle::by_path`],
/// it works by full path. Symbolic links are not followed.
#[derive(Debug)]
pub struct DirHandle {
    path: PathBuf,
    #[cfg(unix)]
    dir: Option<File>,
}

impl DirHandle {
    /// The directory `path`, its files reached by full path.
    pub fn by_path(path: PathBuf) -> Self {
        Self {
            path,
            #[cfg(unix)]
            dir: None,
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
#[allow(unsafe_code)]
impl DirHandle {
    /// Opens the directory `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            dir: Some(dir),
        })
    }

    /// `stat`s the file `name` in the directory.
    pub fn stat(&self, name: &str) -> io::Result<FileStat> {
        use std::os::fd::AsRawFd;
        let Some(dir) = &self.dir else {
            return std::fs::symlink_metadata(self.path.join(name)).map(|meta| FileStat::of(&meta));
        };
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor is open while `self` lives, `name` is a
        // NUL-terminated string, and `stat` is writable memory of the right type.
        let status = with_c_name(name, |name| unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name,
                stat.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fstatat` succeeded, so it filled `stat`.
        let stat = unsafe { stat.assume_init() };
        Ok(FileStat {
            modified: unix_time(stat.st_mtime, stat.st_mtime_nsec),
            accessed: Some(unix_time(stat.st_atime, stat.st_atime_nsec)),
            len: u64::try_from(stat.st_size).unwrap_or(0),
        })
    }

    /// Removes the file `name` from the directory.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let Some(dir) = &self.dir else {
            return std::fs::remove_file(self.path.join(name));
        };
        // SAFETY: the descriptor is open while `self` lives and `name` is a
        // NUL-terminated string.
        let status = with_c_name(name, |name| unsafe {
            libc::unlinkat(dir.as_raw_fd(), name, 0)
        })?;
        if status == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Calls `call` with `name` as a NUL-terminated string, copied on the stack
/// when short (entry names are 64 bytes): no allocation per call.
#[cfg(unix)]
fn with_c_name<T>(name: &str, call: impl FnOnce(*const libc::c_char) -> T) -> io::Result<T> {
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    if name.as_bytes().contains(&0) {
        return Err(invalid());
    }
    let mut buffer = [0u8; 128];
    if name.len() < buffer.len() {
        buffer[..name.len()].copy_from_slice(name.as_bytes());
        return Ok(call(buffer.as_ptr().cast()));
    }
    let name = std::ffi::CString::new(name).map_err(|_| invalid())?;
    Ok(call(name.as_ptr()))
}

/// The time `seconds` + `nanos` after (or, `seconds` negative, around) the Unix epoch.
#[cfg(unix)]
fn unix_time(seconds: impl Into<i64>, nanos: impl Into<i64>) -> SystemTime {
    use std::time::Duration;
    let (seconds, nanos) = (seconds.into(), nanos.into());
    let whole = Duration::from_secs(seconds.unsigned_abs());
    let nanos = Duration::from_nanos(nanos.clamp(0, 999_999_999).unsigned_abs());
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + whole + nanos
    } else {
        SystemTime::UNIX_EPOCH - whole + nanos
    }
}

#[cfg(not(unix))]
impl DirHandle {
    /// The directory `path`, reached by path: nothing to open, and no call
    /// made (callers have just listed it; a directory gone since shows as
    /// `NotFound` at the first `stat`).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::by_path(path.to_path_buf()))
    }

    /// `stat`s the file `name` in the directory.
    pub fn stat(&self, name: &str) -> io::Result<FileStat> {
        std::fs::symlink_metadata(self.path.join(name)).map(|meta| FileStat::of(&meta))
    }

    /// Removes the file `name` from the directory.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }
}
