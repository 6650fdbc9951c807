//! WASI preview 2: `wasi:filesystem` descriptors, called directly.
//!
//! wasi-libc (and so `std`) resolves every path from a preopened directory on
//! each call: the host walks all its components again (`openat2` with
//! `RESOLVE_BENEATH` in wasmtime), and a `rename` opens both parents. Here the
//! cache holds a descriptor for its root, `tmp/`, `locks/` and each shard it
//! uses, and every call names one component relative to one of them: one host
//! call, one component to resolve. Links are not followed (`path-flags`
//! without `symlink-follow`), as natively.
//!
//! Two faults of jco's Node.js shim (preview2-shim 0.26) shape the calls; both
//! are reproduced by `tests/jco/shim-bugs.mjs`:
//! - `open-at` refuses any open that asks for `mutate-directory` (as wasi-libc
//!   does for every file it writes). Files are created asking for `write`
//!   alone; directories are opened asking for `read | mutate-directory` (what
//!   the specification asks of a descriptor used to create and rename files),
//!   and for `read` alone where that is refused as unsupported.
//! - `descriptor.set-times` hands milliseconds to Node's `futimes`, which takes
//!   seconds; in `set-times-at`, `now` becomes a time in January 1970 and
//!   `no-change` `stat`s the directory instead of the file. Times are set with
//!   `set-times-at` by name, both explicit.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use wasip2::filesystem::types::{
    Datetime, Descriptor, DescriptorFlags, DescriptorStat, ErrorCode, NewTimestamp, OpenFlags,
    PathFlags,
};

use super::{Access, FileStat, Times, create_exclusive, refused_dir_link, refused_link};

/// A directory held open; see the module docs of `platform`.
#[derive(Debug)]
pub(crate) struct Dir {
    handle: Handle,
    path: PathBuf,
    /// Whether its file system hides open files it removes or replaces (see
    /// the module docs of `platform`): not known until noted, shared with the
    /// directories opened from it.
    hides_open_files: Arc<AtomicBool>,
}

/// How a [`Dir`] holds its descriptor.
#[derive(Debug)]
enum Handle {
    /// A descriptor of its own.
    Own(Descriptor),
    /// The preopened directory with this index: a cache whose directory is
    /// the preopen itself (the usual setup) costs no `open-at` to open. jco's
    /// shim refuses `stat`, `sync` and `read-directory` on a preopen, so for
    /// those (listings, removal checks, durable syncs: rare) the directory is
    /// opened as `.` once, when first needed.
    Preopen(usize, std::sync::OnceLock<Descriptor>),
}

impl Dir {
    /// Opens the directory `path`, which must lie inside a preopened directory
    /// (links in it are followed: the user named it).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let handle = preopens::with_parent(path, |index, preopen, relative| {
            if relative == "." {
                return Ok(Handle::Preopen(index, std::sync::OnceLock::new()));
            }
            open_dir_at(preopen, PathFlags::SYMLINK_FOLLOW, relative).map(Handle::Own)
        })?;
        Ok(Self {
            handle,
            path: path.to_path_buf(),
            hides_open_files: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Calls `op` with the directory's descriptor.
    fn with<T>(&self, op: impl FnOnce(&Descriptor) -> T) -> T {
        match &self.handle {
            Handle::Own(descriptor) => op(descriptor),
            Handle::Preopen(index, _) => preopens::with_preopen(*index, op),
        }
    }

    /// Calls `op` with a descriptor of the directory that is not a preopen
    /// (see [`Handle::Preopen`]).
    fn with_own<T>(&self, op: impl FnOnce(&Descriptor) -> Result<T, ErrorCode>) -> io::Result<T> {
        match &self.handle {
            Handle::Own(descriptor) => op(descriptor).map_err(to_io_error),
            Handle::Preopen(index, dot) => {
                if dot.get().is_none() {
                    let opened = preopens::with_preopen(*index, |preopen| {
                        open_dir_at(preopen, PathFlags::SYMLINK_FOLLOW, ".")
                    })
                    .map_err(to_io_error)?;
                    let _ = dot.set(opened);
                }
                let descriptor = dot
                    .get()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                op(descriptor).map_err(to_io_error)
            }
        }
    }

    /// Creates the directory `path` and any missing parents (WASI has no
    /// modes: the host decides).
    pub(crate) fn create_all(path: &Path, _access: Access) -> io::Result<()> {
        preopens::with_parent(path, |_, preopen, relative| {
            let mut partial = String::new();
            for component in relative.split('/').filter(|c| !c.is_empty() && *c != ".") {
                if !partial.is_empty() {
                    partial.push('/');
                }
                partial.push_str(component);
                match preopen.create_directory_at(&partial) {
                    Ok(()) | Err(ErrorCode::Exist) => {}
                    Err(code) => return Err(code),
                }
            }
            Ok(())
        })
    }

    /// The directory's path (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the subdirectory `name`; a symbolic link is refused.
    pub(crate) fn open_dir(&self, name: &str) -> io::Result<Self> {
        match self.with(|dir| open_dir_at(dir, PathFlags::empty(), name)) {
            Ok(descriptor) => Ok(Self {
                handle: Handle::Own(descriptor),
                path: self.path.join(name),
                hides_open_files: Arc::clone(&self.hides_open_files),
            }),
            Err(code @ (ErrorCode::Loop | ErrorCode::NotDirectory)) => {
                Err(refused_dir_link(&to_io_error(code)))
            }
            Err(code) => Err(to_io_error(code)),
        }
    }

    /// Creates the subdirectory `name`. A host file system's `EPERM` for a
    /// name that is there reads as `AlreadyExists` (see [`create_exclusive`]).
    pub(crate) fn create_dir(&self, name: &str, _access: Access) -> io::Result<()> {
        let create = || {
            self.with(|dir| dir.create_directory_at(name))
                .map_err(to_io_error)
        };
        create_exclusive(create, libc::EPERM, || self.stat(name).is_ok())
    }

    /// Creates the file `name`, which must not exist, for writing (asking for
    /// `write` alone: see the module docs).
    ///
    /// A host file system's `EPERM` for a name that is there reads as
    /// `AlreadyExists` (see [`create_exclusive`]).
    pub(crate) fn create_new(&self, name: &str, _access: Access) -> io::Result<NewFile> {
        let create = || {
            self.with(|dir| {
                dir.open_at(
                    PathFlags::empty(),
                    name,
                    OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                    DescriptorFlags::WRITE,
                )
            })
            .map_err(to_io_error)
        };
        let descriptor = create_exclusive(create, libc::EPERM, || self.stat(name).is_ok())?;
        Ok(NewFile { descriptor })
    }

    /// Opens the file `name` for reading; a symbolic link is refused.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<ReadFile> {
        let opened = self.with(|dir| {
            dir.open_at(
                PathFlags::empty(),
                name,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
        });
        match opened {
            Ok(descriptor) => Ok(ReadFile { descriptor }),
            Err(ErrorCode::Loop) => Err(refused_link(&to_io_error(ErrorCode::Loop))),
            Err(code) => Err(to_io_error(code)),
        }
    }

    /// Opens the file at the relative `path` (of a few components) for
    /// reading: one `open-at` where opening each directory on the way would
    /// take one more. The host resolves the path within its sandbox; the last
    /// component is not followed if it is a link.
    pub(crate) fn open_file_below(&self, path: &str) -> io::Result<ReadFile> {
        self.open_file(path)
    }

    /// `stat`s `name` (a link itself, not what it points to).
    pub(crate) fn stat(&self, name: &str) -> io::Result<FileStat> {
        self.with(|dir| dir.stat_at(PathFlags::empty(), name))
            .map(|stat| file_stat(&stat))
            .map_err(to_io_error)
    }

    /// Removes the file (or link) `name` (held open meanwhile once the file
    /// system is noted to hide open files, see the module docs of `platform`).
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        let _held = self.hold(name);
        self.unlink(name)
    }

    /// Removes the file (or link) `name`: the bare call.
    pub(super) fn unlink(&self, name: &str) -> io::Result<()> {
        self.with(|dir| dir.unlink_file_at(name))
            .map_err(to_io_error)
    }

    /// Renames `name` to `to_name` in `to`, replacing what is there atomically
    /// (held open meanwhile once the file system is noted to hide open files).
    pub(crate) fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let _held = to.hold(to_name);
        self.with(|dir| to.with(|to| dir.rename_at(name, to, to_name)))
            .map_err(to_io_error)
    }

    /// Notes that this directory's file system hides open files: it and the
    /// directories opened from it hold files they remove or replace from now
    /// on.
    pub(crate) fn note_hides_open_files(&self) {
        self.hides_open_files.store(true, Ordering::Relaxed);
    }

    /// The file `name` open until the result is dropped, once the file system
    /// is noted to hide open files.
    fn hold(&self, name: &str) -> Option<ReadFile> {
        if !self.hides_open_files.load(Ordering::Relaxed) {
            return None;
        }
        self.open_file(name).ok()
    }

    /// Renames only if `to_name` does not exist: not in one call here.
    pub(crate) fn rename_new(
        &self,
        _name: &str,
        _to: &Dir,
        _to_name: &str,
    ) -> io::Result<Option<bool>> {
        Ok(None)
    }

    /// Links `name` as `to_name` in `to`; fails if `to_name` exists.
    pub(crate) fn hard_link(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        self.with(|dir| to.with(|to| dir.link_at(PathFlags::empty(), name, to, to_name)))
            .map_err(to_io_error)
    }

    /// Sets the access and modification times of `name`, both explicit (see
    /// the module docs).
    pub(crate) fn set_times(&self, name: &str, times: Times) -> io::Result<()> {
        let (accessed, modified) = (datetime(times.accessed)?, datetime(times.modified)?);
        self.with(|dir| {
            dir.set_times_at(
                PathFlags::empty(),
                name,
                NewTimestamp::Timestamp(accessed),
                NewTimestamp::Timestamp(modified),
            )
        })
        .map_err(to_io_error)
    }

    /// Calls `visit` with the name of every entry, in the order the host lists
    /// them. A host that `stat`s each entry as it lists it (wasmtime) fails the
    /// listing with `no-entry` when one vanishes meanwhile; callers take such a
    /// listing again.
    pub(crate) fn list(&self, mut visit: impl FnMut(&OsStr)) -> io::Result<()> {
        let entries = self.with_own(|dir| dir.read_directory())?;
        while let Some(entry) = entries.read_directory_entry().map_err(to_io_error)? {
            visit(OsStr::new(&entry.name));
        }
        Ok(())
    }

    /// Flushes the directory's entries to stable storage.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.with_own(|dir| dir.sync())
    }

    /// Whether the directory was removed since it was opened (a preopen is
    /// the host's to keep: never).
    pub(crate) fn is_removed(&self) -> io::Result<bool> {
        if let Handle::Preopen(..) = self.handle {
            return Ok(false);
        }
        let stat = self.with_own(|dir| dir.stat())?;
        Ok(stat.link_count == 0)
    }
}

/// Opens the directory `path` relative to `base`, asking to mutate it; a host
/// that does not support that flag (jco's shim) is asked for reading alone.
fn open_dir_at(base: &Descriptor, flags: PathFlags, path: &str) -> Result<Descriptor, ErrorCode> {
    let open = |descriptor_flags| base.open_at(flags, path, OpenFlags::DIRECTORY, descriptor_flags);
    match open(DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY) {
        Err(ErrorCode::Unsupported) => open(DescriptorFlags::READ),
        other => other,
    }
}

/// A cache file open for reading.
#[derive(Debug)]
pub(crate) struct ReadFile {
    descriptor: Descriptor,
}

impl ReadFile {
    /// `stat`s the open file.
    pub(crate) fn stat(&self) -> io::Result<FileStat> {
        self.descriptor
            .stat()
            .map(|stat| file_stat(&stat))
            .map_err(to_io_error)
    }

    /// Reads up to `len` bytes at `offset` into a new vector: one
    /// `descriptor.read` host call, the host handing the bytes over in a
    /// vector of its own (nothing is zeroed or copied first). Fewer bytes at
    /// the end of the file — or when the host caps a read.
    pub(crate) fn read_some(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        let (bytes, _end) = self
            .descriptor
            .read(len as u64, offset)
            .map_err(to_io_error)?;
        Ok(bytes)
    }

    /// Reads into `buf` at `offset`: one `descriptor.read` host call.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let (bytes, _end) = self
            .descriptor
            .read(buf.len() as u64, offset)
            .map_err(to_io_error)?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// Moves the modification time of the file — `name` in `dir` — to now,
    /// by name (a host may refuse to set the times of a file opened for
    /// reading), its access time set back to `accessed` (the expiry hint),
    /// since both are set at once (see the module docs).
    pub(crate) fn mark_used(&self, dir: &Dir, name: &str, accessed: SystemTime) -> io::Result<()> {
        let modified = SystemTime::now();
        dir.set_times(name, Times { accessed, modified })
    }
}

/// A file the cache creates and writes front to back.
#[derive(Debug)]
pub(crate) struct NewFile {
    descriptor: Descriptor,
}

impl NewFile {
    /// Writes all of `bytes` at `offset` with `descriptor.write` (`pwrite`),
    /// which reports the exact error code (a full disk is `insufficient-space`;
    /// wasi-libc's stream writes turn every failure into `EIO`).
    pub(crate) fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut written = 0;
        while written < bytes.len() {
            let at = offset + written as u64;
            let n = self
                .descriptor
                .write(&bytes[written..], at)
                .map_err(to_io_error)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            written += usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(())
    }

    /// Flushes the file's data to stable storage.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.descriptor.sync_data().map_err(to_io_error)
    }

    /// Sets the file's access and modification times, by name (see the module
    /// docs): the file is `name` in `dir`.
    pub(crate) fn set_times(&self, dir: &Dir, name: &str, times: Times) -> io::Result<()> {
        dir.set_times(name, times)
    }
}

fn file_stat(stat: &DescriptorStat) -> FileStat {
    let time = |datetime: Option<Datetime>| {
        datetime.map(|at| {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(at.seconds)
                + Duration::from_nanos(u64::from(at.nanoseconds))
        })
    };
    FileStat {
        modified: time(stat.data_modification_timestamp).unwrap_or(SystemTime::UNIX_EPOCH),
        accessed: time(stat.data_access_timestamp),
        len: stat.size,
    }
}

fn datetime(time: SystemTime) -> io::Result<Datetime> {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(Datetime {
        seconds: since_epoch.as_secs(),
        nanoseconds: since_epoch.subsec_nanos(),
    })
}

/// The `io::Error` wasi-libc would have made of `code` (so that `std`'s
/// error kinds — `NotFound`, `StorageFull`, … — come out as they would).
pub(crate) fn to_io_error(code: ErrorCode) -> io::Error {
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
        ErrorCode::NotEmpty => libc::ENOTEMPTY,
        ErrorCode::Unsupported => libc::ENOTSUP,
        ErrorCode::NotPermitted => libc::EPERM,
        ErrorCode::ReadOnly => libc::EROFS,
        ErrorCode::CrossDevice => libc::EXDEV,
        ErrorCode::Io if host_reports_read_only() => libc::EROFS,
        _ => libc::EIO,
    };
    io::Error::from_raw_os_error(errno)
}

/// Whether the host said the preopened directory is read-only (asked once per
/// instance, on the first `io` error).
fn host_reports_read_only() -> bool {
    thread_local! {
        static READ_ONLY: bool =
            std::env::var_os(crate::READ_ONLY_MEDIA_VARIABLE).is_some_and(|v| v == "1");
    }
    READ_ONLY.with(|read_only| *read_only)
}

/// Finding the preopened directory a path lies in, as wasi-libc does.
mod preopens {
    use std::io;
    use std::path::Path;

    use wasip2::filesystem::types::{Descriptor, ErrorCode};

    use super::to_io_error;

    thread_local! {
        /// The host's preopened directories and their guest names (own
        /// handles, asked for once per instance).
        static PREOPENS: Vec<(Descriptor, String)> =
            wasip2::filesystem::preopens::get_directories();
    }

    /// Calls `op` with the preopen with this index (one [`with_parent`] found).
    pub(super) fn with_preopen<T>(index: usize, op: impl FnOnce(&Descriptor) -> T) -> T {
        PREOPENS.with(|preopens| op(&preopens[index].0))
    }

    /// Calls `op` with the preopen that holds `path` (its index, and itself)
    /// and the path relative to it. A relative path is looked up in a preopen
    /// named "." first, then from the working directory, as wasi-libc does.
    pub(super) fn with_parent<T>(
        path: &Path,
        op: impl FnOnce(usize, &Descriptor, &str) -> Result<T, ErrorCode>,
    ) -> io::Result<T> {
        let text = path
            .to_str()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
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
            let (index, relative) = found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{text} is not inside a preopened directory"),
                )
            })?;
            op(index, &preopens[index].0, relative).map_err(to_io_error)
        })
    }

    /// The index of the preopen named "." and `relative` within it.
    fn in_dot_preopen<'a>(
        preopens: &[(Descriptor, String)],
        relative: &'a str,
    ) -> Option<(usize, &'a str)> {
        let index = preopens
            .iter()
            .position(|(_, name)| name.trim_end_matches('/') == ".")?;
        Some((index, relative_or_dot(relative.trim_start_matches("./"))))
    }

    /// The index of the preopen holding the absolute `path` — the longest
    /// preopen name that is `path` or a whole-component prefix of it — and the
    /// path relative to it.
    fn under_absolute_preopen<'a>(
        preopens: &[(Descriptor, String)],
        path: &'a str,
    ) -> Option<(usize, &'a str)> {
        preopens
            .iter()
            .enumerate()
            .filter_map(|(index, (_, name))| {
                let name = match name.trim_end_matches('/') {
                    "" if name.starts_with('/') => "/",
                    trimmed => trimmed,
                };
                let rest = path.strip_prefix(name)?;
                let whole = name == "/" || rest.is_empty() || rest.starts_with('/');
                (name.starts_with('/') && whole).then_some((name.len(), index, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, index, rest)| (index, relative_or_dot(rest.trim_start_matches('/'))))
    }

    fn relative_or_dot(rest: &str) -> &str {
        if rest.is_empty() { "." } else { rest }
    }
}
