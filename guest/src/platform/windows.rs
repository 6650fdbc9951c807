//! Windows (and any target that is neither Unix nor WASI): full paths through
//! `std`. A directory "held open" is its path; a subdirectory that is a link
//! (a symbolic link or junction) is refused when it is opened, but the check
//! and later uses are separate steps. Readers share delete access, so that a
//! `rename` can replace an entry another process is reading; setting a file's
//! times needs write access; directories cannot be opened to be synced
//! (Windows commits renames with the file's metadata).
//!
//! Replacing or deleting a file that another handle holds open works with
//! POSIX semantics (Windows 10 1809 and later on NTFS, which `std` asks for);
//! without them (older Windows, other file systems, Wine) the rename or delete
//! fails with "access denied" or a sharing violation while any reader holds the
//! file. Readers hold an entry for the length of one read, so a rename or delete
//! that meets such an error is tried again for up to [`HELD_FILE_PATIENCE`];
//! a file held longer (a scanner that opens it without sharing delete) fails
//! the write with that error, and the old value stays.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Access, FileStat, Times, patiently, read_some_with, refused_dir_link, refused_link};

/// A directory, by path; see the module docs of `platform`.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
}

impl Dir {
    /// The directory `path` (links in it are followed: the user named it).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Creates the directory `path` and any missing parents.
    pub(crate) fn create_all(path: &Path, _access: Access) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The subdirectory `name`; a link is refused.
    pub(crate) fn open_dir(&self, name: &str) -> io::Result<Self> {
        let path = self.path.join(name);
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(refused_dir_link(&io::Error::from(
                io::ErrorKind::NotADirectory,
            )));
        }
        Ok(Self { path })
    }

    /// Creates the subdirectory `name`.
    pub(crate) fn create_dir(&self, name: &str, _access: Access) -> io::Result<()> {
        std::fs::create_dir(self.path.join(name))
    }

    /// Creates the file `name`, which must not exist, for writing (and for
    /// setting its times).
    pub(crate) fn create_new(&self, name: &str, _access: Access) -> io::Result<NewFile> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        Ok(NewFile { file })
    }

    /// Opens the file `name` for reading, sharing read, write and delete
    /// access; a link is refused.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<ReadFile> {
        let path = self.path.join(name);
        if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(refused_link(&io::Error::from(io::ErrorKind::InvalidData)));
        }
        Ok(ReadFile {
            file: open_shared(&path)?,
        })
    }

    /// Opens the file at the relative `path` for reading, one directory at a
    /// time (each checked not to be a link).
    pub(crate) fn open_file_below(&self, path: &str) -> io::Result<ReadFile> {
        match path.split_once('/') {
            Some((dir, rest)) => self.open_dir(dir)?.open_file_below(rest),
            None => self.open_file(path),
        }
    }

    /// `stat`s `name` (a link itself, not what it points to).
    pub(crate) fn stat(&self, name: &str) -> io::Result<FileStat> {
        std::fs::symlink_metadata(self.path.join(name)).map(|meta| file_stat(&meta))
    }

    /// Removes the file `name`.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        let path = self.path.join(name);
        patient_with_held_files(|| std::fs::remove_file(&path))
    }

    /// Removes the file `name` (as [`Dir::remove_file`]).
    pub(super) fn unlink(&self, name: &str) -> io::Result<()> {
        self.remove_file(name)
    }

    /// Notes that the file system hides open files: none here does, and
    /// files are removed plainly.
    pub(crate) fn note_hides_open_files(&self) {}

    /// Renames `name` to `to_name` in `to`, replacing what is there.
    pub(crate) fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let (from, to) = (self.path.join(name), to.path.join(to_name));
        patient_with_held_files(|| std::fs::rename(&from, &to))
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
        std::fs::hard_link(self.path.join(name), to.path.join(to_name))
    }

    /// Sets the access and modification times of `name`.
    pub(crate) fn set_times(&self, name: &str, times: Times) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.path.join(name))?;
        file.set_times(file_times(times))
    }

    /// Calls `visit` with the name of every entry.
    pub(crate) fn list(&self, mut visit: impl FnMut(&OsStr)) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.path)? {
            visit(&entry?.file_name());
        }
        Ok(())
    }

    /// Nothing to do: Windows commits renames with the file's metadata.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the directory is gone from its path.
    pub(crate) fn is_removed(&self) -> io::Result<bool> {
        Ok(!self.path.is_dir())
    }
}

/// Opens `path` for reading without keeping writers from replacing it.
fn open_shared(path: &Path) -> io::Result<File> {
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_SHARE_READ_WRITE_DELETE: u32 = 0x1 | 0x2 | 0x4;
        OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ_WRITE_DELETE)
            .open(path)
    }
    #[cfg(not(windows))]
    {
        File::open(path)
    }
}

/// A cache file open for reading.
#[derive(Debug)]
pub(crate) struct ReadFile {
    file: File,
}

impl ReadFile {
    /// `stat`s the open file.
    pub(crate) fn stat(&self) -> io::Result<FileStat> {
        self.file.metadata().map(|meta| file_stat(&meta))
    }

    /// Reads up to `len` bytes at `offset` into a new vector: one read
    /// (fewer bytes at the end of the file).
    pub(crate) fn read_some(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        read_some_with(len, offset, |buf, at| self.read_at(buf, at))
    }

    /// Reads into `buf` at `offset`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            self.file.seek_read(buf, offset)
        }
        #[cfg(not(windows))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = &self.file;
            file.seek(SeekFrom::Start(offset))?;
            file.read(buf)
        }
    }

    /// Moves the modification time of the file — `name` in `dir` — to now
    /// (which needs write access).
    pub(crate) fn mark_used(&self, dir: &Dir, name: &str, accessed: SystemTime) -> io::Result<()> {
        let modified = SystemTime::now();
        dir.set_times(name, Times { accessed, modified })
    }
}

/// A file the cache creates and writes front to back.
#[derive(Debug)]
pub(crate) struct NewFile {
    file: File,
}

impl NewFile {
    /// Writes all of `bytes` at `offset`.
    pub(crate) fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(bytes)
    }

    /// Flushes the file's data to stable storage.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Sets the file's access and modification times.
    pub(crate) fn set_times(&self, _dir: &Dir, _name: &str, times: Times) -> io::Result<()> {
        self.file.set_times(file_times(times))
    }
}

fn file_times(times: Times) -> std::fs::FileTimes {
    std::fs::FileTimes::new()
        .set_accessed(times.accessed)
        .set_modified(times.modified)
}

fn file_stat(meta: &std::fs::Metadata) -> FileStat {
    FileStat {
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        accessed: meta.accessed().ok(),
        len: meta.len(),
    }
}

/// How long a rename or delete waits out readers that hold the file.
const HELD_FILE_PATIENCE: Duration = Duration::from_millis(100);

/// Whether `error` may mean another handle holds the file open: "access
/// denied" (`ERROR_ACCESS_DENIED`, 5) or a sharing violation (32).
fn held_by_another_handle(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::PermissionDenied || error.raw_os_error() == Some(32)
}

/// Runs `operation`, again and again while it fails as if another handle held
/// the file, for up to [`HELD_FILE_PATIENCE`].
fn patient_with_held_files(operation: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    patiently(HELD_FILE_PATIENCE, held_by_another_handle, operation)
}
