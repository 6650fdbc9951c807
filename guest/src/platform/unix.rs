//! Unix: every operation relative to a held directory descriptor, through
//! `rustix` (`openat`, `fstatat`, `renameat`, …), never following a symbolic
//! link (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). A name relative to an open
//! directory is one path component to resolve, where a full path walks every
//! component from `/` (`fstatat` relative: 2.5 µs against 3.9 µs by path on
//! this project's test machine).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

use super::{
    Access, FileStat, Times, create_exclusive, read_some_with, refused_dir_link, refused_link,
};

/// A directory held open; see the module docs of `platform`.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    /// Whether its file system hides open files it removes or replaces (see
    /// the module docs of `platform`), shared with the directories opened
    /// from it.
    hides_open_files: Arc<AtomicBool>,
}

impl Dir {
    /// Opens the directory `path`, following symbolic links in it (the user
    /// named it).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            hides_open_files: Arc::new(AtomicBool::new(is_fuse(&fd))),
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Creates the directory `path` and any missing parents, with `access`'s
    /// mode for those it creates. An existing directory is left as it is.
    pub(crate) fn create_all(path: &Path, access: Access) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(access.dir_mode())
            .create(path)?;
        if access == Access::GroupShared {
            // The umask may have narrowed it, and `mkdir` ignores the setgid bit.
            let dir = Self::open(path)?;
            rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(access.dir_mode()))?;
        }
        Ok(())
    }

    /// The directory's path (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the subdirectory `name`; a symbolic link is refused.
    pub(crate) fn open_dir(&self, name: &str) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Self {
                fd,
                path: self.path.join(name),
                hides_open_files: Arc::clone(&self.hides_open_files),
            }),
            Err(e) if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR => {
                Err(refused_dir_link(&e.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the subdirectory `name` with `access`'s mode. An `EPERM` for a
    /// name that is there reads as `AlreadyExists` (see [`create_exclusive`]).
    pub(crate) fn create_dir(&self, name: &str, access: Access) -> io::Result<()> {
        let mode = Mode::from_raw_mode(access.dir_mode());
        create_exclusive(
            || Ok(rustix::fs::mkdirat(&self.fd, name, mode)?),
            rustix::io::Errno::PERM.raw_os_error(),
            || self.has_entry(name),
        )?;
        if access == Access::GroupShared {
            let dir = self.open_dir(name)?;
            rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(access.dir_mode()))?;
        }
        Ok(())
    }

    /// Whether `name` exists here (as anything; a link is not followed).
    fn has_entry(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Creates the file `name`, which must not exist (`O_EXCL`: it never
    /// clobbers a file and never follows a link), for writing.
    ///
    /// An `EPERM` for a name that is there reads as `AlreadyExists` (see
    /// [`create_exclusive`]).
    pub(crate) fn create_new(&self, name: &str, access: Access) -> io::Result<NewFile> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(access.file_mode());
        let fd = create_exclusive(
            || Ok(rustix::fs::openat(&self.fd, name, flags, mode)?),
            rustix::io::Errno::PERM.raw_os_error(),
            || self.has_entry(name),
        )?;
        if access == Access::GroupShared {
            rustix::fs::fchmod(&fd, mode)?;
        }
        Ok(NewFile {
            file: File::from(fd),
        })
    }

    /// Opens the file `name` for reading; a symbolic link is refused.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<ReadFile> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(ReadFile {
                file: File::from(fd),
            }),
            Err(e) if e == rustix::io::Errno::LOOP => Err(refused_link(&e.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the file at the relative `path` (of a few components) for
    /// reading, following no link on the way (`RESOLVE_NO_SYMLINKS`): one
    /// call where opening each directory on the way would take one more.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn open_file_below(&self, path: &str) -> io::Result<ReadFile> {
        use rustix::fs::ResolveFlags;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        match rustix::fs::openat2(&self.fd, path, flags, Mode::empty(), resolve) {
            Ok(fd) => Ok(ReadFile {
                file: File::from(fd),
            }),
            Err(e) if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::XDEV => {
                Err(refused_link(&e.into()))
            }
            // A kernel older than `openat2` (5.6): one directory at a time.
            Err(e) if e == rustix::io::Errno::NOSYS => self.open_file_stepwise(path),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the file at the relative `path` for reading, one directory at a
    /// time, following no link.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn open_file_below(&self, path: &str) -> io::Result<ReadFile> {
        self.open_file_stepwise(path)
    }

    fn open_file_stepwise(&self, path: &str) -> io::Result<ReadFile> {
        match path.split_once('/') {
            Some((dir, rest)) => self.open_dir(dir)?.open_file_stepwise(rest),
            None => self.open_file(path),
        }
    }

    /// `stat`s `name` (a link itself, not what it points to).
    pub(crate) fn stat(&self, name: &str) -> io::Result<FileStat> {
        let stat = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(file_stat(&stat))
    }

    /// Removes the file (or link) `name` (held open meanwhile on FUSE, see the
    /// module docs of `platform`).
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        let _held = self.hold(name);
        self.unlink(name)
    }

    /// Removes the file (or link) `name`: the bare call.
    pub(super) fn unlink(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Renames `name` to `to_name` in `to`, replacing what is there atomically
    /// (held open meanwhile on FUSE, see the module docs of `platform`).
    pub(crate) fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let _held = to.hold(to_name);
        Ok(rustix::fs::renameat(&self.fd, name, &to.fd, to_name)?)
    }

    /// Notes that this directory's file system hides open files (learnt
    /// otherwise than from `fstatfs`): it and the directories opened from it
    /// hold files they remove or replace from now on.
    pub(crate) fn note_hides_open_files(&self) {
        self.hides_open_files.store(true, Ordering::Relaxed);
    }

    /// The file `name` open until the result is dropped, if this directory's
    /// file system hides open files and `name` can be opened (non-blocking:
    /// a planted FIFO does not hang it).
    fn hold(&self, name: &str) -> Option<OwnedFd> {
        if !self.hides_open_files.load(Ordering::Relaxed) {
            return None;
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        rustix::fs::openat(&self.fd, name, flags, Mode::empty()).ok()
    }

    /// Renames `name` to `to_name` in `to` only if `to_name` does not exist:
    /// whether it did (`renameat2` with `RENAME_NOREPLACE`); `None` where the
    /// system or file system cannot say so in one call.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn rename_new(
        &self,
        name: &str,
        to: &Dir,
        to_name: &str,
    ) -> io::Result<Option<bool>> {
        use rustix::fs::RenameFlags;
        match rustix::fs::renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(Some(true)),
            Err(e) if e == rustix::io::Errno::EXIST => Ok(Some(false)),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames only if `to_name` does not exist: not in one call here.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
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
        Ok(rustix::fs::linkat(
            &self.fd,
            name,
            &to.fd,
            to_name,
            AtFlags::empty(),
        )?)
    }

    /// Sets the access and modification times of `name` (not following a link).
    pub(crate) fn set_times(&self, name: &str, times: Times) -> io::Result<()> {
        let times = timestamps(times)?;
        Ok(rustix::fs::utimensat(
            &self.fd,
            name,
            &times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Calls `visit` with the name of every entry but `.` and `..`, in the
    /// order the file system lists them. Each listing reads a descriptor of
    /// its own, so threads may list one directory at once.
    pub(crate) fn list(&self, mut visit: impl FnMut(&OsStr)) -> io::Result<()> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, ".", flags, Mode::empty())?;
        list_fd(fd, &mut |name: &[u8]| {
            if name != b"." && name != b".." {
                visit(OsStr::from_bytes(name));
            }
        })
    }

    /// Flushes the directory's entries (new names, renames) to stable storage.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Whether the directory was removed since it was opened (a cached
    /// descriptor of it is then useless: nothing can be created in it).
    pub(crate) fn is_removed(&self) -> io::Result<bool> {
        Ok(rustix::fs::fstat(&self.fd)?.st_nlink == 0)
    }
}

/// Whether `fd` is on a FUSE file system (see the module docs of `platform`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_fuse(fd: &OwnedFd) -> bool {
    const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;
    rustix::fs::fstatfs(fd).is_ok_and(|stat| stat.f_type as u64 == FUSE_SUPER_MAGIC)
}

/// Whether `fd` is on a FUSE file system: not told here, so taken as not.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_fuse(_fd: &OwnedFd) -> bool {
    false
}

/// Lists the directory open as `fd` with `getdents`, names borrowed from the
/// buffer (no allocation per name).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn list_fd(fd: OwnedFd, visit: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let mut buffer = vec![std::mem::MaybeUninit::<u8>::uninit(); 32 * 1024];
    let mut entries = rustix::fs::RawDir::new(fd.as_fd(), &mut buffer);
    while let Some(entry) = entries.next() {
        visit(entry?.file_name().to_bytes());
    }
    Ok(())
}

/// Lists the directory open as `fd` with `readdir`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn list_fd(fd: OwnedFd, visit: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    for entry in rustix::fs::Dir::new(fd)? {
        visit(entry?.file_name().to_bytes());
    }
    Ok(())
}

/// A cache file open for reading.
#[derive(Debug)]
pub(crate) struct ReadFile {
    file: File,
}

impl ReadFile {
    /// `stat`s the open file.
    pub(crate) fn stat(&self) -> io::Result<FileStat> {
        Ok(file_stat(&rustix::fs::fstat(&self.file)?))
    }

    /// Reads up to `len` bytes at `offset` into a new vector: one read
    /// (fewer bytes at the end of the file).
    pub(crate) fn read_some(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        read_some_with(len, offset, |buf, at| self.read_at(buf, at))
    }

    /// Reads into `buf` at `offset` (`pread`).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// Moves the modification time of the file — `name` in `dir` — to now,
    /// leaving its access time (the expiry hint, `accessed`) as it is.
    pub(crate) fn mark_used(
        &self,
        _dir: &Dir,
        _name: &str,
        _accessed: SystemTime,
    ) -> io::Result<()> {
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
        };
        Ok(rustix::fs::futimens(&self.file, &times)?)
    }
}

/// A file the cache creates and writes front to back.
#[derive(Debug)]
pub(crate) struct NewFile {
    file: File,
}

impl NewFile {
    /// Writes all of `bytes` at `offset` (`pwrite`).
    pub(crate) fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    /// Flushes the file's data to stable storage.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Sets the file's access and modification times; the file is `name` in
    /// `dir` (used where times can only be set by name).
    pub(crate) fn set_times(&self, _dir: &Dir, _name: &str, times: Times) -> io::Result<()> {
        Ok(rustix::fs::futimens(&self.file, &timestamps(times)?)?)
    }
}

fn file_stat(stat: &rustix::fs::Stat) -> FileStat {
    FileStat {
        modified: unix_time(wide(stat.st_mtime), wide(stat.st_mtime_nsec)),
        accessed: Some(unix_time(wide(stat.st_atime), wide(stat.st_atime_nsec))),
        len: u64::try_from(stat.st_size).unwrap_or(0),
    }
}

/// A `stat` time field (whose integer type differs between platforms) as an `i64`.
fn wide<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(0)
}

/// The time `seconds` + `nanos` after (or, `seconds` negative, around) the Unix epoch.
fn unix_time(seconds: i64, nanos: i64) -> SystemTime {
    let whole = Duration::from_secs(seconds.unsigned_abs());
    let nanos = Duration::from_nanos(nanos.clamp(0, 999_999_999).unsigned_abs());
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + whole + nanos
    } else {
        SystemTime::UNIX_EPOCH - whole + nanos
    }
}

fn timestamps(times: Times) -> io::Result<Timestamps> {
    Ok(Timestamps {
        last_access: timespec(times.accessed)?,
        last_modification: timespec(times.modified)?,
    })
}

fn timespec(time: SystemTime) -> io::Result<Timespec> {
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| invalid())?;
    Ok(Timespec {
        tv_sec: since_epoch.as_secs().try_into().map_err(|_| invalid())?,
        tv_nsec: since_epoch.subsec_nanos().into(),
    })
}
