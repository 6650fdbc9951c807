//! [`FileStore`]: the cache operations, built on the held directories
//! ([`crate::cache_dir`]), the formats, and the race primitives. The atomic
//! operations are in [`crate::atomic`], listing keys in [`crate::listing`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bounded::{Evictor, Record, Removed, TOUCH_INTERVAL};
use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, IoContext, MissingOk, Result};
use crate::exclusion::LockPolicy;
use crate::format::{self, HEADER_LEN};
use crate::layout::KeyHash;
use crate::options::{Expiry, Options, expired_now};
use crate::platform::{self, Dir, FileStat, ReadFile};
use crate::publish::{self, Entry};
use crate::race::{self, Retired};
use crate::{scan, sweep};

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
    /// Writes by this handle (for the periodic check of the sweep stamp).
    writes: AtomicU64,
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
    cache: Arc<CacheDir>,
    options: Options,
    counters: Counters,
    /// Present when a size limit is set.
    evictor: Option<Evictor>,
}

impl FileStore {
    /// Opens the cache in `dir`, creating the directory (and its missing
    /// parents, private to the user unless [`Options::group_shared`]) if it
    /// does not exist. Opening an existing cache costs one `open` of the
    /// directory: nothing is listed, read or written. (Abandoned temporary and
    /// lock files are swept by writers: see the README's guarantees.)
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for bad options; an I/O error if the directory
    /// cannot be created or opened.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        options.validate()?;
        let root = dir.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::invalid("the cache directory path is empty"));
        }
        let cache = CacheDir::open(root, options.access()).context("open cache directory", root)?;
        let cache = Arc::new(cache);
        Ok(Self {
            evictor: Evictor::open(&options, &cache)?,
            cache,
            options,
            counters: Counters::default(),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        self.cache.path()
    }

    /// The options this handle was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The path of the entry file that holds `key` (whether or not it exists).
    pub fn entry_path(&self, key: &str) -> PathBuf {
        self.cache.entry_path(&KeyHash::of(key))
    }

    /// The value stored under `key`; `None` if absent, expired or damaged (an
    /// expired or damaged file is removed on the way, where the file system
    /// lets it: on read-only media it stays, and is a miss all the same).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an oversized key; an I/O error if the entry
    /// cannot be read.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let read = self.read_entry_file(&hash, |file, dir| {
            let (bytes, stat) = self.read_entry(&file)?;
            Ok((bytes, file, stat, dir))
        })?;
        let Some((bytes, file, stat, dir)) = read else {
            return Ok(self.miss());
        };
        let size = bytes.len() as u64;
        let (value_offset, expires_ms) = match format::decode(&bytes) {
            Ok(entry) if entry.key != key => return Ok(self.miss()), // a hash collision
            Ok(entry) if expired_now(entry.expires_at) => {
                self.retire(&hash, size, Fault::Expired);
                return Ok(self.miss());
            }
            Ok(entry) => (entry.value_offset, entry.expires_at),
            Err(_) => {
                self.retire(&hash, size, Fault::Corrupt);
                return Ok(self.miss());
            }
        };
        bump(&self.counters.hits);
        if let Some(stat) = stat.filter(|stat| last_used_before(stat, TOUCH_INTERVAL)) {
            self.mark_used(&hash, &file, dir, expires_ms, stat.len);
        }
        // An exact-size copy: the read buffer is larger than most entries.
        Ok(Some(bytes[value_offset..].to_vec()))
    }

    /// Moves the last use of the entry of `hash`, open as `file` (in `dir`,
    /// if the handle holds its shard), to now, and renews the evictor's
    /// record of it. Best effort: a missed refresh only makes the entry look
    /// older to eviction.
    fn mark_used(
        &self,
        hash: &KeyHash,
        file: &ReadFile,
        dir: Option<Arc<Dir>>,
        expires_ms: u64,
        size: u64,
    ) {
        let shard = Sub::Shard(hash.shard());
        let Some(dir) = dir.or_else(|| self.cache.sub(shard, Missing::Leave).ok().flatten()) else {
            return;
        };
        let hint = format::expiry_hint(expires_ms);
        if file
            .mark_used(&dir, hash.file_name().as_str(), hint)
            .is_ok()
            && let Some(evictor) = &self.evictor
        {
            evictor.after_use(Record::own_use(*hash, SystemTime::now(), expires_ms, size));
        }
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
        let durable = self.options.durable;
        // An entry that cannot be `stat`ed counts as new: at worst one entry reserved too many.
        self.before_write(&entry, || self.size_replaced(&hash).ok().flatten());
        let (written_at, replaced) = if self.evictor.is_some() {
            publish::publish_counted(&self.cache, &hash, &entry, durable, || {
                self.size_replaced(&hash)
            })?
        } else {
            (publish::publish(&self.cache, &hash, &entry, durable)?, None)
        };
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
        let name = hash.file_name();
        let size = self.size_before_remove(&hash)?;
        let removed = self
            .cache
            .retry(Sub::Shard(hash.shard()), Missing::Leave, |dir| {
                dir.remove_file(name.as_str())
            })
            .missing_ok()
            .context("remove entry", &self.cache.entry_path(&hash))?;
        if let (Some(Some(())), Some(evictor), Some(size)) = (removed, &self.evictor, size) {
            evictor.after_remove(&hash, size);
        }
        Ok(())
    }

    /// Whether a live value is stored under `key`. Checks the header and key
    /// (the value's checksum is verified by `get`) — a small entry from one
    /// read; expired or visibly damaged files are removed on the way.
    ///
    /// # Errors
    /// As for [`FileStore::get`].
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let read = self.read_entry_file(&hash, |file, _| read_head(&file, key.len()))?;
        let Some((head, file_len)) = read else {
            return Ok(false);
        };
        match format::decode_head(&head, file_len) {
            Err(_) => {
                self.retire(&hash, file_len, Fault::Corrupt);
                Ok(false)
            }
            Ok(decoded)
                if decoded.key_len != key.len() || &head[HEADER_LEN..] != key.as_bytes() =>
            {
                Ok(false) // a hash collision
            }
            Ok(decoded) if expired_now(decoded.expires_at) => {
                self.retire(&hash, file_len, Fault::Expired);
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
        scan::clear(&self.cache)?;
        if let Some(evictor) = &self.evictor {
            evictor.after_clear();
        }
        Ok(())
    }

    /// The number of entry files in the cache (expired entries not yet removed
    /// are counted; temporary files are not). A handle with a size limit
    /// answers from its census at once — exact for one handle alone, within
    /// the bound with several (see the README); a handle without
    /// one scans the directories, which costs about a microsecond per entry.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read.
    pub fn approx_size(&self) -> Result<u64> {
        if let Some(evictor) = &self.evictor {
            return Ok(evictor.estimate().entries.max(0).unsigned_abs());
        }
        Ok(scan::totals(&self.cache, false)?.entries)
    }

    /// Counts the cache's entries now, listing every shard (about a
    /// microsecond per entry), and — for a handle with a size limit —
    /// corrects the count the bounded handles share by it at once, rather
    /// than at the recounts a bounded handle makes on its own every few
    /// thousand writes. Where no handle lives that long (a host that
    /// instantiates per request, short commands), a drift of the shared count
    /// — entries written by handles without a limit, say — is otherwise
    /// corrected only by a bounded write that finds the count an hour old,
    /// in a cache of at most 65 536 entries: in a larger one, call this
    /// now and then (`filecache-cli recount`). The number counted.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read or the census not replaced;
    /// [`Error::Busy`] if the census lock stays taken.
    pub fn recount(&self) -> Result<u64> {
        match &self.evictor {
            Some(evictor) => Ok(evictor.recount()?.entries.max(0).unsigned_abs()),
            None => self.approx_size(), // a scan
        }
    }

    /// This handle's counters, and the entries and bytes on disk now.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        let totals = scan::totals(&self.cache, true)?;
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

    /// Opens the entry file of `hash` and has `read` read it (given the file
    /// and its shard, if held); `None` if there is no such file. An entry
    /// that is a symbolic link is damage: it is retired, and `None`.
    fn read_entry_file<T>(
        &self,
        hash: &KeyHash,
        read: impl FnOnce(ReadFile, Option<Arc<Dir>>) -> io::Result<T>,
    ) -> Result<Option<T>> {
        let opened = self
            .cache
            .open_entry(hash)
            .and_then(|opened| opened.map(|(file, dir)| read(file, dir)).transpose());
        match opened.missing_ok() {
            Ok(read) => Ok(read.flatten()),
            Err(e) if platform::is_refused_link(&e) => {
                self.retire(hash, 0, Fault::Corrupt);
                Ok(None)
            }
            Err(e) => Err(Error::io("read entry", &self.cache.entry_path(hash), e)),
        }
    }

    /// Reads an entry file whole, with as few calls as it takes: one read of
    /// [`FIRST_READ`] bytes holds most entries, and its header says whether
    /// more is to come — so a hit costs an open, one read and a close. With a
    /// size limit, the file is `stat`ed too, since its modification time says
    /// whether to mark the entry used.
    fn read_entry(&self, file: &ReadFile) -> io::Result<(Vec<u8>, Option<FileStat>)> {
        if self.evictor.is_some() {
            let stat = file.stat()?;
            let bytes = platform::read_whole(file, stat.len)?;
            return Ok((bytes, Some(stat)));
        }
        // One read: a short one is the whole file, or the header says what is
        // left (a host that returns less than a header gets asked for the rest).
        let mut bytes = file.read_some(FIRST_READ, 0)?;
        if !bytes.is_empty() && bytes.len() < HEADER_LEN {
            platform::read_more(file, &mut bytes, HEADER_LEN)?;
        }
        let largest =
            HEADER_LEN as u64 + self.options.max_key_bytes as u64 + self.options.max_value_bytes;
        // A damaged header announcing more than any entry can hold is read no
        // further: the decoder refuses what was read.
        if let Some(want) = format::announced_len(&bytes).filter(|&want| want <= largest)
            && want > bytes.len() as u64
        {
            platform::read_more(
                file,
                &mut bytes,
                usize::try_from(want).unwrap_or(usize::MAX),
            )?;
        }
        Ok((bytes, None))
    }

    /// With a size limit, the size of the entry a write is about to replace
    /// (`None` if there is none), so the census knows what the write changes.
    /// A lookup (see [`CacheDir::stat_entry`]): right after another handle
    /// removed and recreated the shard, it may miss an entry there, which
    /// then counts as new — the count errs on the safe side, by one.
    fn size_replaced(&self, hash: &KeyHash) -> Result<Option<u64>> {
        if self.evictor.is_none() {
            return Ok(None);
        }
        let stat = self
            .cache
            .stat_entry(hash)
            .context("read metadata", &self.cache.entry_path(hash))?;
        Ok(stat.map(|stat| stat.len))
    }

    /// With a size limit, the size of the entry about to be removed (`None`
    /// if there is none), so the census knows what the removal changes.
    fn size_before_remove(&self, hash: &KeyHash) -> Result<Option<u64>> {
        if self.evictor.is_none() {
            return Ok(None);
        }
        let name = hash.file_name();
        let stat = self
            .cache
            .retry(Sub::Shard(hash.shard()), Missing::Leave, |dir| {
                dir.stat(name.as_str())
            })
            .missing_ok()
            .context("read metadata", &self.cache.entry_path(hash))?;
        Ok(stat.flatten().map(|stat| stat.len))
    }

    /// Lets the evictor (if any) make sure the growth a write of `entry` may
    /// add is counted: by a reservation (`replaced`: the size of the entry
    /// the write replaces, if any; asked only when the handle reserves), or
    /// at a limit by the eviction that follows the write.
    pub(crate) fn before_write(&self, entry: &Entry<'_>, replaced: impl FnOnce() -> Option<u64>) {
        if let Some(evictor) = &self.evictor {
            evictor.before_write(entry.file_len(), replaced);
        }
    }

    /// Adds what an evictor removed to the handle's counters.
    fn count_removed(&self, removed: Removed) {
        self.counters
            .evicted
            .fetch_add(removed.evicted, Ordering::Relaxed);
        self.counters
            .expired_removed
            .fetch_add(removed.expired, Ordering::Relaxed);
    }

    /// Tells the evictor (if any) about a write, and evicts what the limits
    /// require. A failure to evict does not fail the write, which succeeded: it
    /// is tried again at the next write.
    pub(crate) fn after_write(
        &self,
        hash: &KeyHash,
        written: &Entry<'_>,
        written_at: SystemTime,
        replaced: Option<u64>,
    ) {
        let writes = self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if writes.is_multiple_of(sweep::CHECK_EVERY) {
            sweep::sweep_if_due(&self.cache, self.options.lease);
        }
        let Some(evictor) = &self.evictor else {
            return;
        };
        let removed = evictor.after_write(
            Record::own_use(*hash, written_at, written.expires_at, written.file_len()),
            replaced,
        );
        if let Ok(removed) = removed {
            self.count_removed(removed);
        }
    }

    pub(crate) fn cache(&self) -> &CacheDir {
        &self.cache
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

    /// Removes an expired or damaged entry file of `size` bytes (unless a
    /// live one replaced it meanwhile) and counts the removal. One that cannot
    /// be removed — a read-only file system, a directory the handle may read
    /// but not write, any other failure — stays where it is: the read that met
    /// it is a miss all the same, and the next write of the key reports what
    /// is wrong. (A host may not say which failure it was: wasmtime reports a
    /// read-only file system as a plain I/O error.)
    fn retire(&self, hash: &KeyHash, size: u64, fault: Fault) {
        let still_bad = |tmp: &Dir, aside: &str| {
            let bytes = tmp.open_file(aside).and_then(|file| {
                let len = file.stat()?.len;
                platform::read_whole(&file, len)
            });
            match bytes.map(|bytes| format::decode(&bytes).map(|entry| entry.expires_at)) {
                Ok(Ok(expires_at)) => expired_now(expires_at),
                _ => true,
            }
        };
        let name = hash.file_name();
        let shard = Sub::Shard(hash.shard());
        if let Ok(Retired::Removed) =
            race::retire(&self.cache, shard, name.as_str(), hash, still_bad)
        {
            if let Some(evictor) = &self.evictor {
                evictor.after_remove(hash, size);
            }
            let counter = match fault {
                Fault::Expired => &self.counters.expired_removed,
                Fault::Corrupt => &self.counters.corrupt_removed,
            };
            bump(counter);
        }
    }
}

/// The first read of an entry file, whose size is not known yet: it holds most
/// entries whole (a 4 KiB value with its header and key is just over 4 KiB).
const FIRST_READ: usize = 16 * 1024;

/// The read with which `contains-key` looks at an entry file: it holds a small
/// entry whole (a 100 B value with its header and key is under 200 B). A
/// larger one is `stat`ed instead: natively, reading more of its value costs
/// more than the `stat` saves (a 4 KiB entry's `contains-key` is 1.14× as
/// long with a 16 KiB first read, 1.04× with 512 B, unchanged with 256 B).
const HEAD_READ: usize = 256;

/// Whether an entry file was last used (written or read) more than `span` ago.
fn last_used_before(stat: &FileStat, span: std::time::Duration) -> bool {
    stat.modified.elapsed().is_ok_and(|age| age > span)
}

/// Reads the header and the next `key_len` bytes of an entry file, with the
/// file length. One read of [`HEAD_READ`] bytes: when it comes back short
/// with as many bytes as the header announces, that is the whole file (as for
/// `get`), so a small entry costs an open, one read and a close; otherwise the
/// file is `stat`ed for its length.
fn read_head(file: &ReadFile, key_len: usize) -> io::Result<(Vec<u8>, u64)> {
    let head_len = HEADER_LEN + key_len;
    let want = HEAD_READ.max(head_len);
    let mut head = file.read_some(want, 0)?;
    if head.len() >= head_len {
        let read = head.len() as u64;
        let whole = head.len() < want && format::announced_len(&head) == Some(read);
        let file_len = if whole { read } else { file.stat()?.len };
        head.truncate(head_len);
        return Ok((head, file_len));
    }
    // Less than a header and key: a short file, or a host that returned less.
    let file_len = file.stat()?.len;
    head.resize(head_len, 0);
    let filled = platform::fill(file, &mut head, 0)?;
    head.truncate(filled);
    Ok((head, file_len))
}
