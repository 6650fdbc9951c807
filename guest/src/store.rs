//! [`FileStore`]: the cache operations, built from the format, layout, publish and
//! scan modules. The atomic operations are in [`crate::atomic`].

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, IoContext, Result};
use crate::eviction::{Evictor, TOUCH_INTERVAL};
use crate::exclusion::LockPolicy;
use crate::format::{self, HEADER_LEN};
use crate::layout::{KeyHash, Layout, TAG_CONTENT};
use crate::options::{Expiry, Options, expired_now};
use crate::platform::{self, NewFile};
use crate::publish::{self, Entry, Retired};
use crate::recency::Record;
use crate::scan;

/// Counters and sizes of a cache, as seen by one handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entry files on disk, counted by a scan when `stats` is called (expired
    /// entries not yet removed are included).
    pub entries: u64,
    /// Bytes of those files (header, key and value of each).
    pub bytes: u64,
    /// `get` calls of this handle that returned a value.
    pub hits: u64,
    /// `get` calls of this handle that returned nothing.
    pub misses: u64,
    /// Expired entries this handle removed.
    pub expired_removed: u64,
    /// Entries this handle evicted to honour a size limit.
    pub evicted: u64,
    /// Damaged entry files this handle removed.
    pub corrupt_removed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    expired_removed: AtomicU64,
    evicted: AtomicU64,
    corrupt_removed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Why an entry file is being retired.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Expired,
    Corrupt,
}

/// A cache in one directory. Cheap to share between threads (`&self` methods);
/// any number of handles, processes and wasm instances may use one directory.
#[derive(Debug)]
pub struct FileStore {
    layout: Layout,
    options: Options,
    counters: Counters,
    /// Present when a size limit is set.
    evictor: Option<Evictor>,
}

impl FileStore {
    /// Opens the cache in `dir`, creating the directory if it is missing, and
    /// sweeps temporary and lock files older than the lease (left by writers
    /// that died).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for bad options; an I/O error if the directory
    /// cannot be created or read.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        options.validate()?;
        let root = dir.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::invalid("the cache directory path is empty"));
        }
        let layout = Layout::new(root.to_path_buf());
        prepare(&layout)?;
        scan::sweep_abandoned(&layout, options.lease)?;
        Ok(Self {
            evictor: Evictor::open(&options, &layout)?,
            layout,
            options,
            counters: Counters::default(),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        self.layout.root()
    }

    /// The options this handle was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The path of the entry file that holds `key` (whether or not it exists).
    pub fn entry_path(&self, key: &str) -> PathBuf {
        self.layout.entry_path(&KeyHash::of(key))
    }

    /// The value stored under `key`; `None` if absent, expired or damaged (an
    /// expired or damaged file is removed on the way).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an oversized key; an I/O error if the entry
    /// cannot be read; [`Error::Corrupt`] if a damaged entry cannot be removed.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let path = self.layout.entry_path(&hash);
        let (bytes, file, meta) = match self.read_entry(&path) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(self.miss()),
            Err(e) => return Err(Error::io("read entry", &path, e)),
        };
        let size = bytes.len() as u64;
        let (value_offset, expires_ms) = match format::decode(&bytes) {
            Ok(entry) if entry.key != key => return Ok(self.miss()), // a hash collision
            Ok(entry) if expired_now(entry.expires_at) => {
                self.retire(&hash, &path, size, Fault::Expired, String::new)?;
                return Ok(self.miss());
            }
            Ok(entry) => (entry.value_offset, entry.expires_at),
            Err(e) => {
                self.retire(&hash, &path, size, Fault::Corrupt, || e.to_string())?;
                return Ok(self.miss());
            }
        };
        bump(&self.counters.hits);
        if let Some(meta) = meta.filter(|meta| last_used_before(meta, TOUCH_INTERVAL)) {
            // Best effort: a missed refresh only makes the entry look older to eviction.
            if platform::mark_used(&file, &path, &meta).is_ok()
                && let Some(evictor) = &self.evictor
            {
                evictor.after_use(Record::own_use(hash, SystemTime::now(), expires_ms, size));
            }
        }
        // An exact-size copy: the read buffer is larger than most entries.
        Ok(Some(bytes[value_offset..].to_vec()))
    }

    /// Stores `value` under `key` until `expiry`, replacing any previous value.
    /// Atomic: readers see the old or the new value whole. Durable (survives a
    /// power cut) only if the store was opened with [`Options::durable`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an oversized key or value; an I/O error or
    /// [`Error::StorageFull`] if the entry cannot be written — the previous value
    /// is then intact.
    pub fn insert(&self, key: &str, value: &[u8], expiry: Expiry) -> Result<()> {
        self.check_key(key)?;
        self.check_value(value)?;
        let hash = KeyHash::of(key);
        let entry = Entry {
            key,
            value,
            expires_at: expiry.deadline_ms(),
        };
        let replaced = self.size_before_write(&hash)?;
        let written_at = publish::publish(&self.layout, &hash, &entry, self.options.durable)?;
        self.after_write(&hash, &entry, written_at, replaced);
        Ok(())
    }

    /// Removes `key`; removing an absent key succeeds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an oversized key; an I/O error if the file
    /// exists but cannot be removed.
    pub fn remove(&self, key: &str) -> Result<()> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let path = self.layout.entry_path(&hash);
        let size = self.size_before_write(&hash)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                if let (Some(evictor), Some(size)) = (&self.evictor, size) {
                    evictor.after_remove(&hash, size);
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove entry", &path, e)),
        }
    }

    /// Whether a live value is stored under `key`. Reads only the header and key
    /// (the value's checksum is verified by `get`); expired or visibly damaged
    /// files are removed on the way.
    ///
    /// # Errors
    /// As for [`FileStore::get`].
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let path = self.layout.entry_path(&hash);
        let (head, file_len) = match read_head(&path, key.len()) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read entry", &path, e)),
        };
        match format::decode_head(&head, file_len) {
            Err(e) => {
                self.retire(&hash, &path, file_len, Fault::Corrupt, || e.to_string())?;
                Ok(false)
            }
            Ok(decoded)
                if decoded.key_len != key.len() || &head[HEADER_LEN..] != key.as_bytes() =>
            {
                Ok(false) // a hash collision
            }
            Ok(decoded) if expired_now(decoded.expires_at) => {
                self.retire(&hash, &path, file_len, Fault::Expired, String::new)?;
                Ok(false)
            }
            Ok(_) => Ok(true),
        }
    }

    /// Removes every entry. Files that are not the cache's own, and files being
    /// written at the time, are left alone.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read or an entry cannot be removed.
    pub fn clear(&self) -> Result<()> {
        scan::clear(&self.layout)?;
        if let Some(evictor) = &self.evictor {
            evictor.after_clear();
        }
        Ok(())
    }

    /// The number of entry files in the cache (expired entries not yet removed
    /// are counted; temporary files are not). A handle with a size limit
    /// answers from its census at once — exact for one handle alone, within
    /// the census margin with several (see [`crate::census`]); a handle without
    /// one scans the directories, which costs about a microsecond per entry.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read.
    pub fn approx_size(&self) -> Result<u64> {
        if let Some(evictor) = &self.evictor {
            return Ok(evictor.estimate().entries.max(0).unsigned_abs());
        }
        Ok(scan::totals(&self.layout, false)?.entries)
    }

    /// This handle's counters, and the entries and bytes on disk now.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        let totals = scan::totals(&self.layout, true)?;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Ok(Stats {
            entries: totals.entries,
            bytes: totals.bytes,
            hits: read(&self.counters.hits),
            misses: read(&self.counters.misses),
            expired_removed: read(&self.counters.expired_removed),
            evicted: read(&self.counters.evicted),
            corrupt_removed: read(&self.counters.corrupt_removed),
        })
    }

    /// The value under `key` decoded from JSON.
    ///
    /// # Errors
    /// As for [`FileStore::get`], and [`Error::InvalidInput`] if the stored value
    /// is not JSON of type `T` (the entry is left in place).
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::invalid(format!(
                "the value under `{key}` is not the JSON asked for: {e}"
            ))
        })
    }

    /// Stores `value` under `key` as JSON.
    ///
    /// # Errors
    /// As for [`FileStore::insert`], and [`Error::InvalidInput`] if `value`
    /// cannot be serialized.
    pub fn insert_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: Expiry,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::invalid(format!("cannot serialize the value for `{key}`: {e}")))?;
        self.insert(key, &bytes, expiry)
    }

    /// Reads an entry file whole, with as few calls as it takes (see
    /// [`platform::fill`]): one read of [`FIRST_READ`] bytes holds most entries,
    /// and its header says whether more is to come — so a hit costs an open, one
    /// read and a close. With a size limit, the metadata is taken too, since its
    /// modification time says whether to mark the entry used.
    fn read_entry(&self, path: &Path) -> io::Result<(Vec<u8>, fs::File, Option<fs::Metadata>)> {
        if self.evictor.is_some() {
            let (bytes, file, meta) = platform::read_file_and_metadata(path)?;
            return Ok((bytes, file, Some(meta)));
        }
        let mut file = platform::open_for_read(path)?;
        let mut bytes = vec![0u8; FIRST_READ];
        let mut filled = loop {
            match platform::read_at(&mut file, &mut bytes, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        let largest =
            HEADER_LEN as u64 + self.options.max_key_bytes as u64 + self.options.max_value_bytes;
        // A damaged header announcing more than any entry can hold is read no
        // further: the decoder refuses what was read.
        if let Some(want) = format::announced_len(&bytes[..filled]).filter(|&want| want <= largest)
            && want > filled as u64
        {
            bytes.resize(usize::try_from(want).unwrap_or(usize::MAX), 0);
            filled = platform::fill(&mut file, &mut bytes, filled)?;
        }
        bytes.truncate(filled);
        Ok((bytes, file, None))
    }

    /// With a size limit, the size of the entry about to be written or removed
    /// (`None` if there is none), so the census knows what the write changes.
    pub(crate) fn size_before_write(&self, hash: &KeyHash) -> Result<Option<u64>> {
        if self.evictor.is_none() {
            return Ok(None);
        }
        let path = self.layout.entry_path(hash);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read metadata", &path, e)),
        }
    }

    /// Tells the evictor (if any) about a write, and evicts what the limits
    /// require. A failure to evict does not fail the write, which succeeded: it
    /// is tried again at the next write (see [`crate::eviction`]).
    pub(crate) fn after_write(
        &self,
        hash: &KeyHash,
        written: &Entry<'_>,
        written_at: SystemTime,
        replaced: Option<u64>,
    ) {
        let Some(evictor) = &self.evictor else {
            return;
        };
        let removed = evictor.after_write(
            Record::own_use(*hash, written_at, written.expires_at, written.file_len()),
            replaced,
        );
        if let Ok(removed) = removed {
            self.counters
                .evicted
                .fetch_add(removed.evicted, Ordering::Relaxed);
            self.counters
                .expired_removed
                .fetch_add(removed.expired, Ordering::Relaxed);
        }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn lock_policy(&self) -> LockPolicy {
        LockPolicy {
            lease: self.options.lease,
            timeout: self.options.lock_timeout,
        }
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() as u64 > self.options.max_value_bytes {
            return Err(Error::invalid(format!(
                "value of {} bytes is over the limit of {} bytes",
                value.len(),
                self.options.max_value_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        if key.len() > self.options.max_key_bytes {
            return Err(Error::invalid(format!(
                "key of {} bytes is over the limit of {} bytes",
                key.len(),
                self.options.max_key_bytes
            )));
        }
        Ok(())
    }

    fn miss<T>(&self) -> Option<T> {
        bump(&self.counters.misses);
        None
    }

    /// Removes an expired or damaged entry file (unless a live one replaced it
    /// meanwhile) and counts the removal.
    fn retire(
        &self,
        hash: &KeyHash,
        path: &Path,
        size: u64,
        fault: Fault,
        reason: impl Fn() -> String,
    ) -> Result<()> {
        let still_bad = |bytes: &[u8]| match format::decode(bytes) {
            Ok(entry) => expired_now(entry.expires_at),
            Err(_) => true,
        };
        match publish::retire(&self.layout, hash, path, still_bad) {
            Ok(Retired::Removed) => {
                if let Some(evictor) = &self.evictor {
                    evictor.after_remove(hash, size);
                }
                let counter = match fault {
                    Fault::Expired => &self.counters.expired_removed,
                    Fault::Corrupt => &self.counters.corrupt_removed,
                };
                bump(counter);
                Ok(())
            }
            Ok(Retired::Vanished | Retired::Restored) => Ok(()),
            Err(e) => match fault {
                Fault::Expired => Err(e),
                Fault::Corrupt => Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("{}; it could not be removed: {e}", reason()),
                }),
            },
        }
    }
}

/// The first read of an entry file, whose size is not known yet: it holds most
/// entries whole (a 4 KiB value with its header and key is just over 4 KiB).
const FIRST_READ: usize = 16 * 1024;

/// Whether an entry file was last used (written or read) more than `span` ago.
fn last_used_before(meta: &fs::Metadata, span: std::time::Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|used| used.elapsed().ok())
        .is_some_and(|age| age > span)
}

/// Reads the header and the next `key_len` bytes of a file, with the file length.
fn read_head(path: &Path, key_len: usize) -> io::Result<(Vec<u8>, u64)> {
    let file = platform::open_for_read(path)?;
    let file_len = file.metadata()?.len();
    let want = (HEADER_LEN + key_len) as u64;
    let mut head = Vec::with_capacity(HEADER_LEN + key_len);
    file.take(want).read_to_end(&mut head)?;
    Ok((head, file_len))
}

/// Makes a new cache's directories and tag; an existing cache costs one `mkdir`
/// that finds `tmp/` there.
fn prepare(layout: &Layout) -> Result<()> {
    let tmp = layout.tmp_dir();
    match fs::create_dir(tmp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(tmp).context("create directory", tmp)?;
        }
        Err(e) => return Err(Error::io("create directory", tmp, e)),
        Ok(()) => {}
    }
    write_tag(&layout.tag_file())
}

/// Writes the cache-directory tag unless it is there already.
fn write_tag(path: &Path) -> Result<()> {
    match NewFile::create_new(path) {
        Ok(mut file) => file
            .write_all_at(TAG_CONTENT.as_bytes(), 0)
            .context("write", path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path, e)),
    }
}
