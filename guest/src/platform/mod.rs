//! Every platform difference of the crate, behind one set of signatures.
//!
//! The cache works through [`Dir`]: a directory held open, whose files are
//! created, opened, `stat`ed, renamed, linked and removed **by one-component
//! names relative to it**, never following a symbolic link. The cache root is
//! the only path resolved as a whole (the user named it, links included); its
//! `tmp/`, `locks/` and shard directories are opened from it with
//! [`Dir::open_dir`], which refuses a symbolic link. So whatever is planted
//! inside a cache directory, the cache never creates, replaces or deletes a file
//! outside it.
//!
//! One implementation per target, chosen here and nowhere else:
//!
//! - `unix.rs` — `openat`, `fstatat`, `renameat`, `linkat`, `unlinkat`,
//!   `utimensat` relative to held descriptors (through `rustix`), with
//!   `O_NOFOLLOW`; listings with `getdents` on Linux.
//! - `wasi.rs` — the same calls on `wasi:filesystem` descriptors (`open-at`,
//!   `stat-at`, `rename-at`, …) made directly, not through wasi-libc: one host
//!   call each, with a one-component path, where wasi-libc resolves the whole
//!   path from the preopen on every call. It also keeps clear of two faults of
//!   jco's Node.js shim (see that file).
//! - `windows.rs` — full paths through `std` (for Windows and any other target).
//!   A planted link is refused when a directory is opened, but the check and
//!   the use are separate steps there.
//!
//! Files and directories the cache creates get the modes of [`Access`] on Unix
//! (private by default); WASI and Windows have no modes: the host's or the
//! system's defaults apply.
//!
//! # Files removed or replaced while open
//!
//! A FUSE file system built on libfuse's path API (sshfs, and most others)
//! removes or replaces a file that a process on its machine holds open by
//! renaming it to `.fuse_hidden…`, and deletes that when the last holder
//! closes it. It learns of the close after the `close` call returns, and its
//! check races with the hiding: a close that lands while a replacing `rename`
//! (or, before libfuse 3.15, an `unlink`) is hiding the file leaves the hidden
//! copy behind for as long as the file system stays mounted. Readers close an
//! entry just before a writer replaces it all the time: on sshfs, 3 000 writes
//! and 3 000 reads of 8 keys by four threads on one mount left about 100
//! hidden copies of values.
//! Holding the file open across the removal or replacement makes the outcome
//! certain: the hiding is then done before the last close, which deletes the
//! hidden copy.
//!
//! - On Linux, a [`Dir`] on FUSE (`fstatfs`) holds the file that
//!   [`Dir::remove_file`] removes and [`Dir::rename`] replaces; elsewhere it
//!   costs nothing.
//! - On WASI the file system is not known: a [`Dir`] holds those files once
//!   told to ([`Dir::note_hides_open_files`], shared with the directories
//!   opened from it). The sweep finds out ([`Dir::keeps_removed_open_files`])
//!   and marks the cache's sweep stamp, which every writing handle reads at
//!   its first write (see `crate::sweep`). Holding every file regardless
//!   would cost an `open-at` per write (measured on tmpfs: component insert
//!   +25 %, remove +60 %). Until a handle learns it, the removals that hold
//!   the file anyway ([`Dir::remove_open_file`]: a released lock) or are rare
//!   ([`Dir::remove_held`]: retired entries, abandoned temporary files) still
//!   do, so `locks/` and `tmp/` are always left clean.
//! - Windows has no such file systems; the calls there remove plainly.

use std::io;
use std::time::{Duration, Instant, SystemTime};

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(target_os = "wasi", path = "wasi.rs")]
#[cfg_attr(not(any(unix, target_os = "wasi")), path = "windows.rs")]
mod imp;

pub(crate) use imp::{Dir, NewFile, ReadFile};

/// How libfuse names a file it hides.
const HIDDEN_PREFIX: &[u8] = b".fuse_hidden";

/// Whether `name` is one libfuse gives a file it hides (`.fuse_hidden…`).
pub(crate) fn is_hidden_name(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(HIDDEN_PREFIX)
}

impl Dir {
    /// Removes the file `name`, which the caller has open as `file`, and
    /// closes `file`: after the removal on Unix and WASI (see the module
    /// docs), before it on Windows (where a name open elsewhere stays
    /// taken for a while).
    pub(crate) fn remove_open_file(&self, name: &str, file: ReadFile) -> io::Result<()> {
        if cfg!(any(unix, target_os = "wasi")) {
            let removed = self.unlink(name);
            drop(file);
            removed
        } else {
            drop(file);
            self.unlink(name)
        }
    }

    /// Whether this directory's file system keeps a file removed while open
    /// under a hidden name (see the module docs): creates the file `probe`
    /// (a fresh name), removes it while it is open and lists the directory
    /// for a `.fuse_hidden…` name. (The open file cannot tell: FUSE reports
    /// no link to it once removed.)
    ///
    /// # Errors
    /// An I/O error if the file cannot be created or removed, or the
    /// directory listed.
    pub(crate) fn keeps_removed_open_files(&self, probe: &str, access: Access) -> io::Result<bool> {
        let file = self.create_new(probe, access)?;
        let removed = self.unlink(probe);
        let mut hidden = false;
        let listed = self.list(|name| hidden |= is_hidden_name(name));
        drop(file);
        removed?;
        if hidden {
            return Ok(true); // whatever went wrong later in the listing
        }
        listed?;
        Ok(false)
    }

    /// Removes the file `name`, holding it open meanwhile on WASI even before
    /// the file system is known (see the module docs): one more call there,
    /// for removals that are rare. Elsewhere it is [`Dir::remove_file`].
    pub(crate) fn remove_held(&self, name: &str) -> io::Result<()> {
        if !cfg!(target_os = "wasi") {
            return self.remove_file(name);
        }
        match self.open_file(name) {
            Ok(file) => self.remove_open_file(name, file),
            Err(_) => self.remove_file(name),
        }
    }
}

/// Who may use the files the cache creates (Unix modes; ignored elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// The owner only: directories `0700`, files `0600` (the umask may narrow
    /// them further).
    #[default]
    Private,
    /// The owner and the directory's group: directories `2770` (new files take
    /// the directory's group), files `0660`, set explicitly whatever the umask.
    GroupShared,
}

impl Access {
    /// The mode of directories the cache creates.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn dir_mode(self) -> u32 {
        match self {
            Self::Private => 0o700,
            Self::GroupShared => 0o2770,
        }
    }

    /// The mode of files the cache creates.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn file_mode(self) -> u32 {
        match self {
            Self::Private => 0o600,
            Self::GroupShared => 0o660,
        }
    }
}

/// The two times a cache file carries: its access time (an entry's expiry
/// hint) and its modification time (an entry's last use), set together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    /// The access time.
    pub accessed: SystemTime,
    /// The modification time.
    pub modified: SystemTime,
}

/// One read of up to `len` bytes at `offset` into a new vector, through a
/// `pread`-like `read_at` (fewer bytes at the end of the file).
#[cfg_attr(target_os = "wasi", allow(dead_code))]
fn read_some_with(
    len: usize,
    offset: u64,
    read_at: impl Fn(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    let n = loop {
        match read_at(&mut bytes, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    bytes.truncate(n);
    Ok(bytes)
}

/// Runs `operation` again and again while it fails with an error that
/// `transient` calls passing, for up to `patience` (pauses from
/// 100 µs, doubling up to 10 ms); then returns its last outcome.
pub(crate) fn patiently<T>(
    patience: Duration,
    transient: impl Fn(&io::Error) -> bool,
    mut operation: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_micros(100);
    loop {
        match operation() {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            outcome => return outcome,
        }
    }
}

/// How many times [`create_exclusive`] tries a name that the file system
/// refused with `EPERM` but that is not there when looked at.
const REFUSED_CREATE_ATTEMPTS: u32 = 8;

/// Runs `create`, an exclusive create of one name (a file or a directory),
/// reading a refusal with `eperm` (the target's `EPERM`) as `AlreadyExists`
/// when `exists` then finds the name.
///
/// A file system that reports an existing name as `EPERM` (sshfs: SFTP
/// version 3 has no "exists" status, and its generic failure arrives as
/// `EPERM`) leaves a gap between the two steps: the name can exist when the
/// create fails and be gone when it is looked at (a lock released meanwhile).
/// The name is free then, so the create is tried again; an `EPERM` for a name
/// that is still absent after [`REFUSED_CREATE_ATTEMPTS`] is a real refusal.
#[cfg_attr(not(any(unix, target_os = "wasi")), allow(dead_code))]
fn create_exclusive<T>(
    mut create: impl FnMut() -> io::Result<T>,
    eperm: i32,
    exists: impl Fn() -> bool,
) -> io::Result<T> {
    let mut attempt = 1;
    loop {
        match create() {
            Err(e) if e.raw_os_error() == Some(eperm) => {
                if exists() {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, e));
                }
                if attempt == REFUSED_CREATE_ATTEMPTS {
                    return Err(e);
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What one `stat` of a file tells the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    /// Modification time (an entry's last use).
    pub modified: SystemTime,
    /// Access time (an entry's expiry hint), if the platform keeps one.
    pub accessed: Option<SystemTime>,
    /// Size in bytes.
    pub len: u64,
}

/// Reads `file` whole, its size known from a `stat` taken before (cache
/// files are never written in place once published, so that size is exact;
/// a file cut short reads short, which the decoders refuse): as few reads as
/// it takes, no probe past the end.
pub(crate) fn read_whole(file: &ReadFile, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut bytes = Vec::new();
    read_more(file, &mut bytes, len)?;
    Ok(bytes)
}

/// Appends to `bytes` (read so far from the start of the file) until it
/// holds `len` bytes or the file ends: as many reads as it takes, since a read
/// may return fewer bytes than asked before the end (a WASI host caps a read).
pub(crate) fn read_more(file: &ReadFile, bytes: &mut Vec<u8>, len: usize) -> io::Result<()> {
    while bytes.len() < len {
        let more = file.read_some(len - bytes.len(), bytes.len() as u64)?;
        if more.is_empty() {
            break;
        }
        if bytes.is_empty() {
            *bytes = more;
        } else {
            bytes.extend_from_slice(&more);
        }
    }
    Ok(())
}

/// Reads into `bytes[from..]` until the buffer is full or the file ends;
/// returns how many bytes are filled.
pub(crate) fn fill(file: &ReadFile, bytes: &mut [u8], from: usize) -> io::Result<usize> {
    let mut filled = from;
    while filled < bytes.len() {
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The error for a file the cache will not open because it is a symbolic link
/// (planted, or made by hand): the cache never follows one below its root.
/// Keeps the kind of the `source` error.
pub(crate) fn refused_link(source: &io::Error) -> io::Error {
    io::Error::new(source.kind(), RefusedLink { directory: false })
}

/// The error for a directory the cache will not open because it is a symbolic
/// link or not a directory.
pub(crate) fn refused_dir_link(source: &io::Error) -> io::Error {
    io::Error::new(source.kind(), RefusedLink { directory: true })
}

/// Whether `error` is the refusal to open a file through a link (made by
/// [`refused_link`]; a refused directory is an error like any other).
pub(crate) fn is_refused_link(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RefusedLink>())
        .is_some_and(|refused| !refused.directory)
}

/// The inner error of [`refused_link`] and [`refused_dir_link`].
#[derive(Debug)]
struct RefusedLink {
    directory: bool,
}

impl std::fmt::Display for RefusedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.directory {
            f.write_str("it is a symbolic link or not a directory; the cache follows no link below its root")
        } else {
            f.write_str("it is a symbolic link; the cache follows no link below its root")
        }
    }
}

impl std::error::Error for RefusedLink {}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const EPERM: i32 = 1;

    fn refused() -> io::Error {
        io::Error::from_raw_os_error(EPERM)
    }

    #[test]
    fn a_refused_create_of_a_name_that_is_there_reads_as_already_exists() {
        let error =
            create_exclusive(|| Err::<(), _>(refused()), EPERM, || true).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_refused_create_of_a_name_gone_meanwhile_is_tried_again() {
        let calls = Cell::new(0);
        let created = create_exclusive(
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(refused())
                } else {
                    Ok("created")
                }
            },
            EPERM,
            || false,
        );
        assert_eq!(created.expect("created on the third attempt"), "created");
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_create_refused_while_the_name_stays_absent_is_a_real_refusal() {
        let calls = Cell::new(0);
        let error = create_exclusive(
            || {
                calls.set(calls.get() + 1);
                Err::<(), _>(refused())
            },
            EPERM,
            || false,
        )
        .expect_err("refused every time");
        assert_eq!(error.raw_os_error(), Some(EPERM));
        assert_eq!(calls.get(), REFUSED_CREATE_ATTEMPTS);
    }

    #[test]
    fn other_errors_pass_through_at_once() {
        let calls = Cell::new(0);
        let error = create_exclusive(
            || {
                calls.set(calls.get() + 1);
                Err::<(), _>(io::Error::from(io::ErrorKind::NotFound))
            },
            EPERM,
            || true,
        )
        .expect_err("not found");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(calls.get(), 1);
    }
}
