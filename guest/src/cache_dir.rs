//! The directories of one cache, held open: the root, `tmp/`, `locks/` and the
//! shard directories (see [`crate::layout`] for what lives where).
//!
//! The root is opened once by its path; the others are opened from it by name
//! the first time they are needed, never through a symbolic link
//! ([`Dir::open_dir`]), and kept. Opening an existing cache therefore costs one
//! `open`: nothing is created, listed or read until an operation needs it.
//! `tmp/` and `locks/` are created on first use, a shard when the first entry
//! is published into it; the cache-directory tag is written with `tmp/`.
//!
//! A directory removed while a handle holds it (say `rm -rf` of the whole
//! cache) cannot hold new files, and lookups in it find nothing. So when an
//! operation on a held directory fails with `NotFound`, the directory is
//! checked ([`Dir::is_removed`]); if it is gone, it is opened again by name —
//! created again for writes — and the operation retried once
//! ([`CacheDir::retry`]). The one exception is the lookup of an entry for
//! `get` or `contains-key`, or of the entry an `insert` may replace (with a
//! size limit): finding nothing is the everyday miss, so a lookup checks only
//! at every [`MISSES_PER_CHECK`]th miss in its shard (or through the root). A
//! handle that only reads thus finds the entries of a removed and recreated
//! shard by its sixteenth miss there, and at once after any other operation
//! on it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::layout::{self, KeyHash, SHARDS, TAG_CONTENT, TAG_FILE};
use crate::platform::{Access, Dir, FileStat, ReadFile};

/// The root, or one of the directories below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    /// The cache directory itself.
    Root,
    /// `tmp/`: files being written, and files being retired.
    Tmp,
    /// `locks/`: key locks.
    Locks,
    /// A shard directory: entries whose hash starts with this byte.
    Shard(u8),
}

/// Whether a directory that does not exist is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Create it (to write into it).
    Create,
    /// Leave it missing (to read: nothing is in it).
    Leave,
}

type Slot = RwLock<Option<Arc<Dir>>>;

/// What a `NotFound` from an operation in a held directory was (see the
/// module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    /// A lookup of an entry to read it (`get`, `contains-key`), or to learn
    /// whether a write replaces one: a miss.
    Lookup,
    /// Anything else: a write, a removal, a read that a change depends on.
    Operation,
}

/// Entry lookups that find nothing in a shard (or through the root) per check
/// of whether the directory was removed (see the module docs). A divisor of 256.
pub(crate) const MISSES_PER_CHECK: u8 = 16;
const _: () = assert!(256 % MISSES_PER_CHECK as u16 == 0);

/// The directories of one cache; see the module docs.
#[derive(Debug)]
pub(crate) struct CacheDir {
    path: PathBuf,
    access: Access,
    root: RwLock<Arc<Dir>>,
    tmp: Slot,
    locks: Slot,
    shards: Box<[Slot]>,
    /// The shards read once through the root (see [`CacheDir::open_entry`]).
    read_once: [AtomicU64; SHARDS / 64],
    /// Entry lookups that found nothing, per shard and (last) through the root.
    misses: [AtomicU8; SHARDS + 1],
}

impl CacheDir {
    /// Opens the cache directory `path`, creating it and its missing parents
    /// (with `access`'s mode) if it does not exist.
    ///
    /// # Errors
    /// The error of opening or creating the directory.
    pub(crate) fn open(path: &Path, access: Access) -> io::Result<Self> {
        let root = open_root(path, access, Missing::Create)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the cache directory vanished")
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            access,
            root: RwLock::new(Arc::new(root)),
            tmp: Slot::default(),
            locks: Slot::default(),
            shards: (0..SHARDS).map(|_| Slot::default()).collect(),
            read_once: Default::default(),
            misses: std::array::from_fn(|_| AtomicU8::new(0)),
        })
    }

    /// The cache directory's path, as given to [`CacheDir::open`].
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Who may use the files the cache creates.
    pub(crate) fn access(&self) -> Access {
        self.access
    }

    /// The root directory.
    pub(crate) fn root(&self) -> Arc<Dir> {
        Arc::clone(&self.root.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The path of `sub` (for messages).
    pub(crate) fn sub_path(&self, sub: Sub) -> PathBuf {
        match sub {
            Sub::Root => self.path.clone(),
            _ => self.path.join(sub_name(sub).as_str()),
        }
    }

    /// The path of the entry file of `hash` (for messages and tests).
    pub(crate) fn entry_path(&self, hash: &KeyHash) -> PathBuf {
        let mut path = self.sub_path(Sub::Shard(hash.shard()));
        path.push(hash.file_name().as_str());
        path
    }

    /// The directory `sub`, opened (and, with [`Missing::Create`], created)
    /// if this handle does not hold it yet; `None` if it does not exist and is
    /// left missing.
    ///
    /// # Errors
    /// The error of opening or creating it (a symbolic link in its place is
    /// refused).
    pub(crate) fn sub(&self, sub: Sub, missing: Missing) -> io::Result<Option<Arc<Dir>>> {
        let Some(slot) = self.slot(sub) else {
            return Ok(Some(self.root()));
        };
        if let Some(dir) = slot.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
            return Ok(Some(Arc::clone(dir)));
        }
        let Some(opened) = self.open_sub(sub, missing)? else {
            return Ok(None);
        };
        let mut held = slot.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have opened it meanwhile: keep one.
        Ok(Some(Arc::clone(held.get_or_insert(Arc::new(opened)))))
    }

    /// Opens the entry file of `hash` for reading: through its shard
    /// directory if this handle holds it (returned too); the first read of a
    /// shard through the root by its two-component name — one `open` where
    /// opening the shard first would take two (what a per-request wasm
    /// instance does) — and from the second on through the shard, opened then
    /// and held (a lookup of one name in it is cheaper). No link is followed
    /// natively; a WASI host resolves the two-component name within its
    /// sandbox, which only matters for reading (every change to a shard goes
    /// through the shard opened by name). `None` if the file (or its shard)
    /// does not exist.
    ///
    /// # Errors
    /// The error of opening the file or a directory on the way.
    pub(crate) fn open_entry(
        &self,
        hash: &KeyHash,
    ) -> io::Result<Option<(ReadFile, Option<Arc<Dir>>)>> {
        let sub = Sub::Shard(hash.shard());
        let name = hash.file_name();
        let (word, bit) = (usize::from(hash.shard() / 64), 1u64 << (hash.shard() % 64));
        let read_before = self.read_once[word].fetch_or(bit, Ordering::Relaxed) & bit != 0;
        if read_before || self.held(sub).is_some() {
            return self.retry_as(sub, Missing::Leave, Miss::Lookup, |dir| {
                Ok((dir.open_file(name.as_str())?, Some(Arc::clone(dir))))
            });
        }
        let mut path = layout::shard_name(hash.shard());
        path.push("/");
        path.push(name.as_str());
        self.retry_as(Sub::Root, Missing::Leave, Miss::Lookup, |root| {
            Ok((root.open_file_below(path.as_str())?, None))
        })
    }

    /// `stat`s the entry file of `hash` through its shard directory, as a
    /// lookup (see the module docs: a miss checks for a removed shard only
    /// now and then). `None` if the file (or its shard) does not exist.
    ///
    /// # Errors
    /// The error of the `stat`, or of opening the shard.
    pub(crate) fn stat_entry(&self, hash: &KeyHash) -> io::Result<Option<FileStat>> {
        let name = hash.file_name();
        let sub = Sub::Shard(hash.shard());
        match self.retry_as(sub, Missing::Leave, Miss::Lookup, |dir| {
            dir.stat(name.as_str())
        }) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            other => other,
        }
    }

    /// The directory `sub`, if this handle holds it open.
    fn held(&self, sub: Sub) -> Option<Arc<Dir>> {
        match self.slot(sub) {
            None => Some(self.root()),
            Some(slot) => slot
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Arc::clone),
        }
    }

    /// Runs `op` on the directory `sub`; if it fails with `NotFound` because
    /// the directory was removed since this handle opened it, opens it again
    /// (creating it with [`Missing::Create`]) and runs `op` once more. `None`
    /// if the directory does not exist and is left missing.
    ///
    /// # Errors
    /// The error of `op`, or of opening the directory.
    pub(crate) fn retry<T>(
        &self,
        sub: Sub,
        missing: Missing,
        op: impl FnMut(&Arc<Dir>) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        self.retry_as(sub, missing, Miss::Operation, op)
    }

    /// [`CacheDir::retry`], checking for a removed directory after a
    /// `NotFound` as `miss` says.
    fn retry_as<T>(
        &self,
        sub: Sub,
        missing: Missing,
        miss: Miss,
        mut op: impl FnMut(&Arc<Dir>) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        let Some(dir) = self.sub(sub, missing)? else {
            return Ok(None);
        };
        match op(&dir) {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && self.removal_check_due(sub, miss)
                    && self.forget_if_removed(sub, &dir) =>
            {
                match self.sub(sub, missing)? {
                    Some(dir) => op(&dir).map(Some),
                    None => Ok(None),
                }
            }
            other => other.map(Some),
        }
    }

    /// [`CacheDir::retry`] with [`Missing::Create`].
    ///
    /// # Errors
    /// As for [`CacheDir::retry`].
    pub(crate) fn retry_created<T>(
        &self,
        sub: Sub,
        op: impl FnMut(&Arc<Dir>) -> io::Result<T>,
    ) -> io::Result<T> {
        self.retry(sub, Missing::Create, op)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// Whether an operation on `sub` that found nothing checks whether the
    /// directory was removed: any operation but an entry lookup always, a
    /// lookup at every [`MISSES_PER_CHECK`]th miss in its shard (or through
    /// the root).
    fn removal_check_due(&self, sub: Sub, miss: Miss) -> bool {
        let counter = match (miss, sub) {
            (Miss::Operation, _) | (Miss::Lookup, Sub::Tmp | Sub::Locks) => return true,
            (Miss::Lookup, Sub::Shard(index)) => &self.misses[usize::from(index)],
            (Miss::Lookup, Sub::Root) => &self.misses[SHARDS],
        };
        // The count wraps at 256, a multiple of `MISSES_PER_CHECK`.
        counter.fetch_add(1, Ordering::Relaxed) % MISSES_PER_CHECK == MISSES_PER_CHECK - 1
    }

    /// Drops the held `dir` (the directory `sub`) if it was removed, so that
    /// the next use opens it again; whether it did.
    fn forget_if_removed(&self, sub: Sub, dir: &Arc<Dir>) -> bool {
        let Some(slot) = self.slot(sub) else {
            return self.reopen_root(dir, Missing::Leave).unwrap_or(false);
        };
        if !dir.is_removed().unwrap_or(false) {
            return false;
        }
        let mut held = slot.write().unwrap_or_else(PoisonError::into_inner);
        if held
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, dir))
        {
            *held = None;
        }
        true
    }

    fn slot(&self, sub: Sub) -> Option<&Slot> {
        match sub {
            Sub::Root => None,
            Sub::Tmp => Some(&self.tmp),
            Sub::Locks => Some(&self.locks),
            Sub::Shard(index) => Some(&self.shards[usize::from(index)]),
        }
    }

    /// Opens `sub` from the root (creating it with [`Missing::Create`]). If
    /// the root itself was removed, opens it again by its path first.
    fn open_sub(&self, sub: Sub, missing: Missing) -> io::Result<Option<Dir>> {
        let name = sub_name(sub);
        let name = name.as_str();
        let mut reopened_root = false;
        loop {
            let root = self.root();
            let failed = match root.open_dir(name) {
                Ok(dir) => return Ok(Some(dir)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => e,
                Err(e) => return Err(e),
            };
            let created = match missing {
                Missing::Leave => Err(failed),
                Missing::Create => root.create_dir(name, self.access),
            };
            match created {
                Ok(()) => {
                    if sub == Sub::Tmp {
                        write_tag(&root, self.access);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && !reopened_root => {
                    reopened_root = true;
                    if !self.reopen_root(&root, missing)? {
                        return match missing {
                            Missing::Leave => Ok(None),
                            Missing::Create => Err(e),
                        };
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
            return root.open_dir(name).map(Some);
        }
    }

    /// Opens the root again by its path if `stale` was removed (creating it
    /// with [`Missing::Create`]), forgetting every directory held below it;
    /// whether there is a root to retry with.
    fn reopen_root(&self, stale: &Arc<Dir>, missing: Missing) -> io::Result<bool> {
        if !stale.is_removed()? {
            return Ok(false);
        }
        let Some(fresh) = open_root(&self.path, self.access, missing)? else {
            return Ok(false);
        };
        let mut root = self.root.write().unwrap_or_else(PoisonError::into_inner);
        if Arc::ptr_eq(&root, stale) {
            *root = Arc::new(fresh);
            for slot in [&self.tmp, &self.locks]
                .into_iter()
                .chain(self.shards.iter())
            {
                *slot.write().unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
        Ok(true)
    }
}

/// Opens the root directory `path` (creating it and its parents with
/// [`Missing::Create`]).
fn open_root(path: &Path, access: Access, missing: Missing) -> io::Result<Option<Dir>> {
    match Dir::open(path) {
        Ok(dir) => Ok(Some(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match missing {
            Missing::Leave => Ok(None),
            Missing::Create => {
                Dir::create_all(path, access)?;
                Dir::open(path).map(Some)
            }
        },
        Err(e) => Err(e),
    }
}

/// The name of `sub` in the root.
fn sub_name(sub: Sub) -> layout::ShortName {
    match sub {
        Sub::Root => layout::ShortName::new("."),
        Sub::Tmp => layout::ShortName::new(layout::TMP_DIR),
        Sub::Locks => layout::ShortName::new(layout::LOCKS_DIR),
        Sub::Shard(index) => layout::shard_name(index),
    }
}

/// Writes the cache-directory tag (best effort: it only tells backup tools to
/// skip the directory), unless it is there already.
fn write_tag(root: &Dir, access: Access) {
    if let Ok(mut file) = root.create_new(TAG_FILE, access) {
        let _ = file.write_all_at(TAG_CONTENT.as_bytes(), 0);
    }
}
