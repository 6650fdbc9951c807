//! How big the cache is — known to every handle with a size limit, across
//! processes and wasm instances, at a flat cost per write and with no lock on the
//! write path.
//!
//! # The shared count
//!
//! The census file (`<root>/census-2`, format in [`crate::format`]) holds the
//! number of entries and bytes as the bounded handles have reported them, and
//! per shard the sum of the changes reported to it (for recounts). Each
//! such handle knows its own changes exactly — before a write it `stat`s the
//! entry, so it knows whether it adds an entry or replaces one and by how many
//! bytes — and adds them up in memory. Every `F` changes (`F` = the limit / 256,
//! between 1 and 32), or when its last report is older than [`FLUSH_AGE`], or
//! when the handle is dropped, it **flushes**: under the census lock (a
//! `create_new` lock file, [`crate::exclusion`]) it reads the file, adds its
//! changes, and replaces the file. The size a handle works with is the file as
//! it last read it plus its own unreported changes. So with `P` handles writing
//! at once, what one handle does not see yet is at most the others' unreported
//! changes plus what they reported since its own last flush: about
//! `2 × (P − 1) × F` entries — 2 × (P − 1) / 256 of the limit for large limits.
//!
//! # Recounts
//!
//! The count can drift: a handle killed before it flushed, two handles adding
//! the same new key at once, handles opened without a limit (they do not
//! report). So every bounded handle also recounts the cache, in **passes** over
//! the 256 shard directories: a pass starts every `K` writes (`K` at least
//! [`MIN_WRITES_BETWEEN_PASSES`], and entries / [`CENSUS_NAMES_PER_WRITE`]
//! for a large cache, so that a write pays for about that many listed names),
//! and its writes list shards in order. Each shard's count is brought up to
//! the end of the pass by the changes to that shard the handle came to know of
//! since it was listed: its own, and those the others reported. (Until
//! 2026-11-28 such changes were spread evenly over the shards. That is wrong at
//! capacity: evictors remove entries shard by shard while writes land
//! everywhere, so a pass counted shards before or after their evictions and
//! strayed by up to half a pass's evictions — a lone handle held 250 000
//! entries at +4.6 % of its limit, two ranged from −5.5 % to +1.9 %.) At
//! the end of the pass, under the census lock, the handle compares the recount with the shared
//! count as it is then (plus its own pending changes), and corrects a drift
//! larger than 3 % (bytes: 6 %), unless another handle corrected since the pass
//! began.
//!
//! A small cache's pass is short. (This was made so while changes were
//! spread evenly: shards listed far apart in time were counted at different
//! moments of a churning cache, and the sum strayed from the true size by
//! about √(entries) — ±45 for 2 000 entries, close to the 3 % tolerance. The
//! per-shard changes remove that; short passes were kept.) A pass
//! takes about entries² / `PASS_SPREAD` writes: 4 for 2 000 entries (each
//! listing 512 names; under WASI 8 of 256), 128 for 16 000, during which few
//! entries change. From 250 000 entries a pass goes at the everyday rate and
//! takes `K` writes. What is left is what other handles had not reported yet
//! when a shard was listed (or have not when the pass ends), at most
//! `(P − 1) × F` each time. Bytes of a shard are
//! its count times the mean size of the entries sampled in it (exact when all
//! were sampled). A cache without a census file (the first bounded open) is
//! counted at `open`: shards are listed until [`FIRST_CENSUS_NAMES`] names were
//! seen — all of a small cache — and the rest extrapolated; the census file
//! marks such a count, and the first complete recount replaces it whatever the
//! drift.
//!
//! Listings `stat` a few entries for the mean size. The evictor
//! takes its candidates from a sweep of its own, which starts at a shard drawn
//! at random and goes at its own pace ([`Census::candidates`]: two names per
//! eviction, where a recount lists eight per write).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::exclusion::{self, LockPolicy};
use crate::format::{self, CensusRecord};
use crate::layout::{self, KeyHash, Layout};
use crate::options::now_ms;
use crate::platform::{self, DirHandle, NewFile};
use crate::publish::in_dir;
use crate::recency::Record;
use crate::scan;

/// Names the first count lists at least (unless the cache is smaller).
pub const FIRST_CENSUS_NAMES: u64 = 16_384;
/// A handle reports its changes at least this often while it writes.
pub const FLUSH_AGE: Duration = Duration::from_millis(100);
/// Drift between a recount and the shared count that is left alone, as a
/// fraction of the count (bytes: twice that, for the sampled mean sizes). It
/// covers what other handles have not reported when a pass ends — at most
/// `(P − 1) × F`, 2.7 % of the limit with 8 handles — so that their unreported
/// changes are not taken for drift.
const DRIFT_TOLERATED: f64 = 0.03;
/// Entries `stat`ed per recount listing, for the mean size.
pub const SAMPLES_PER_LISTING: usize = 8;
/// About how many directory entries a write pays to have listed for recounts,
/// on average. A name costs ~0.85 µs to list natively here (32 per write made
/// a bounded insert at 100k entries cost twice an unbounded one), and a host
/// `stat` under WASI (wasmtime's `read-directory` stats each entry).
pub const CENSUS_NAMES_PER_WRITE: u64 = 8;
/// Fewest writes between the starts of two recount passes.
pub const MIN_WRITES_BETWEEN_PASSES: u64 = 2048;
/// A write of a recount pass lists `PASS_SPREAD` / entries names, between
/// [`CENSUS_NAMES_PER_WRITE`] and [`platform::RECOUNT_NAMES_PER_WRITE`].
const PASS_SPREAD: u64 = 2_000_000;
/// How long a flush waits for the census lock before trying again later.
const LOCK_WAIT: Duration = Duration::from_millis(20);
/// Shard directories.
const SHARDS: usize = 256;
/// Most shards listed for one call for eviction candidates.
const MAX_LISTINGS_PER_CANDIDATES: usize = 2;

/// A number of entries and bytes, or a change of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Entry files.
    pub entries: i64,
    /// Bytes of entry files.
    pub bytes: i64,
}

impl Size {
    /// One entry file of `bytes` bytes.
    pub fn entry(bytes: u64) -> Self {
        Self {
            entries: 1,
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        }
    }

    /// The opposite change.
    pub fn negated(self) -> Self {
        Self {
            entries: self.entries.wrapping_neg(),
            bytes: self.bytes.wrapping_neg(),
        }
    }

    /// A `[entries, bytes]` pair, as the census file holds a shard's changes.
    fn from_pair([entries, bytes]: [i64; 2]) -> Self {
        Self { entries, bytes }
    }

    /// The `[entries, bytes]` pair.
    fn pair(self) -> [i64; 2] {
        [self.entries, self.bytes]
    }

    /// The sum; wrapping, as the census file's sums of shard changes do (a
    /// damaged file's figures must not panic a handle).
    fn plus(self, other: Self) -> Self {
        Self {
            entries: self.entries.wrapping_add(other.entries),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

/// A shard listed for eviction candidates: its directory, open, and its names
/// not sampled yet.
#[derive(Debug)]
struct Listing {
    shard: u8,
    dir: DirHandle,
    unsampled: Vec<KeyHash>,
}

/// One shard's count in the current recount pass.
#[derive(Debug, Clone, Copy)]
struct ShardCount {
    entries: u64,
    bytes: u64,
    /// The changes to the shard this handle knew of when it was listed
    /// ([`Census::changes_known`]).
    changes_then: Size,
}

/// A recount pass: shards `0..counts.len()` are listed so far.
#[derive(Debug)]
struct Pass {
    counts: Vec<ShardCount>,
    /// Names the pass may still list before it waits for more writes: each
    /// write adds its share, each shard listed takes its names (so a shard
    /// larger than a share waits for several writes' worth).
    credit: i64,
    /// Unix ms when the pass began.
    started_ms: u64,
}

/// The outcome of a complete pass, waiting for the next flush to be compared
/// with the shared count.
#[derive(Debug, Clone, Copy)]
struct Recounted {
    /// The cache's size as the pass counted it, brought up to the end of the pass.
    size: Size,
    /// Unix ms when the pass began.
    started_ms: u64,
}

/// A bounded handle's knowledge of the cache's size. Not shared between
/// threads: the evictor keeps it behind a mutex.
#[derive(Debug)]
pub struct Census {
    file: PathBuf,
    lock: LockPolicy,
    shared: CensusRecord,
    pending: Size,
    /// The changes of `pending` made to each shard (all of them but the
    /// emptying of a `clear`, which is not the sum of anything it knows).
    pending_by_shard: [Size; SHARDS],
    recounted: Option<Recounted>,
    flush_every: Size,
    last_flush: Instant,
    /// The pass under way, if one is.
    pass: Option<Pass>,
    /// Writes before the next pass may start (counted from the last start).
    writes_until_pass: u64,
    /// The shard listed last for the evictor.
    listing: Option<Listing>,
    /// The shard the evictor's sweep lists next.
    next_swept: u8,
    /// Shards the evictor's sweep listed since the handle opened.
    swept: u64,
    /// [`PASS_SPREAD`], or another pace for tests.
    pass_spread: u64,
    rng: u64,
}

impl Census {
    /// Reads the census file, or counts the cache and writes it if there is
    /// none. `flush_every` sets `F` (see the module docs).
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed.
    pub fn open(layout: &Layout, lease: Duration, flush_every: Size) -> Result<Self> {
        let mut census = Self {
            file: layout.census_file(),
            lock: LockPolicy {
                lease,
                timeout: LOCK_WAIT,
            },
            shared: CensusRecord::default(),
            pending: Size::default(),
            pending_by_shard: [Size::default(); SHARDS],
            recounted: None,
            flush_every,
            last_flush: Instant::now(),
            pass: None,
            writes_until_pass: MIN_WRITES_BETWEEN_PASSES,
            listing: None,
            next_swept: 0,
            swept: 0,
            pass_spread: PASS_SPREAD,
            rng: layout::nonce() | 1,
        };
        census.next_swept = census.random_below(SHARDS) as u8;
        if let Some(record) = read_census(&census.file)? {
            census.shared = record;
            return Ok(census);
        }
        // No census yet: count (part of) the cache, extrapolate, and write it.
        let (mut listed, mut entries, mut bytes) = (0u64, 0u64, 0u64);
        while listed < SHARDS as u64 && (listed == 0 || entries < FIRST_CENSUS_NAMES) {
            let (shard_entries, shard_bytes) = census.count_shard(layout, listed as u8)?;
            entries += shard_entries;
            bytes += shard_bytes;
            listed += 1;
        }
        census.shared = CensusRecord {
            entries: (entries * SHARDS as u64 / listed) as i64,
            bytes: (bytes * SHARDS as u64 / listed) as i64,
            reconciled_at: now_ms(),
            extrapolated: listed < SHARDS as u64,
            ..CensusRecord::default()
        };
        // Written only if nobody else wrote one meanwhile; a failure is retried at the next flush.
        if let Ok(lock) = exclusion::acquire(layout, &KeyHash::CENSUS, &census.lock, "the census") {
            match read_census(&census.file) {
                Ok(Some(record)) => census.shared = record,
                Ok(None) => {
                    let _ = write_census(layout, &census.file, &census.shared);
                }
                Err(_) => {}
            }
            let _ = lock.release();
        }
        Ok(census)
    }

    /// The size this handle works with: the census as last read, plus its own
    /// unreported changes.
    pub fn size(&self) -> Size {
        Size {
            entries: self.shared.entries,
            bytes: self.shared.bytes,
        }
        .plus(self.pending)
    }

    /// Records a change this handle made to shard `shard`.
    pub fn record(&mut self, shard: u8, change: Size) {
        self.pending = self.pending.plus(change);
        let pending = &mut self.pending_by_shard[usize::from(shard)];
        *pending = pending.plus(change);
    }

    /// The sum of the changes to shard `shard` that this handle knows of: those
    /// reported in the census file as it last read it, and its own pending ones.
    fn changes_known(&self, shard: usize) -> Size {
        Size::from_pair(self.shared.shard_changes[shard]).plus(self.pending_by_shard[shard])
    }

    /// After a write: goes on with the recount if it is time, and reports
    /// pending changes if it is time.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed.
    pub fn after_write(&mut self, layout: &Layout) -> Result<()> {
        self.writes_until_pass = self.writes_until_pass.saturating_sub(1);
        if self.pass.is_some() || self.writes_until_pass == 0 {
            self.continue_pass(layout)?;
        }
        if self.flush_due() {
            // A failed report stays pending and is retried; the write itself succeeded.
            let _ = self.flush(layout);
        }
        Ok(())
    }

    /// After a removal: reports pending changes if it is time, as after a
    /// write, so that a handle that only removes is seen shrinking the cache.
    pub fn after_remove(&mut self, layout: &Layout) {
        if self.flush_due() {
            // A failed report stays pending and is retried.
            let _ = self.flush(layout);
        }
    }

    /// Reports pending changes now (best effort), as when the handle is dropped.
    pub fn flush_now(&mut self, layout: &Layout) {
        let unreported = self.pending != Size::default()
            || self.pending_by_shard.iter().any(|p| *p != Size::default());
        if unreported || self.recounted.is_some() {
            let _ = self.flush(layout);
        }
    }

    /// After `clear`: the cache is empty (writers racing the clear are caught by
    /// the next recount).
    pub fn cleared(&mut self, layout: &Layout) {
        self.pending = Size {
            entries: self.shared.entries,
            bytes: self.shared.bytes,
        }
        .negated();
        self.pending_by_shard = [Size::default(); SHARDS];
        self.recounted = None;
        self.pass = None;
        let _ = self.flush_setting_zero(layout);
    }

    /// `count` candidates for eviction, from a **sweep** over the shards: the
    /// names of one shard, taken in a random order, each once; the next shard
    /// (in order, from one drawn at random when the handle opened) is listed
    /// when they run out. So every entry is offered once per sweep.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed or an entry not `stat`ed.
    pub fn candidates(&mut self, layout: &Layout, count: usize) -> Result<Vec<Record>> {
        let mut samples = Vec::with_capacity(count);
        let mut listings = 0;
        while samples.len() < count {
            let listing = match &mut self.listing {
                Some(listing) if !listing.unsampled.is_empty() => listing,
                _ => {
                    if listings == MAX_LISTINGS_PER_CANDIDATES {
                        break; // a sparse cache: fewer candidates this time
                    }
                    listings += 1;
                    let shard = self.next_swept;
                    self.next_swept = self.next_swept.wrapping_add(1);
                    self.swept += 1;
                    let Some((dir, mut hashes)) = open_shard(layout, shard)? else {
                        continue;
                    };
                    for i in (1..hashes.len()).rev() {
                        hashes.swap(i, self.random_below(i + 1));
                    }
                    self.listing.insert(Listing {
                        shard,
                        dir,
                        unsampled: hashes,
                    })
                }
            };
            if let Some(hash) = listing.unsampled.pop() {
                samples.extend(probe(&listing.dir, hash)?);
            }
        }
        Ok(samples)
    }

    /// Whether the evictor's sweep went over every shard since the handle opened.
    pub fn swept_once(&self) -> bool {
        self.swept >= SHARDS as u64
    }

    /// Shard `shard`'s directory as open for the last listing of candidates,
    /// if that was the shard.
    pub fn listed_dir(&self, shard: u8) -> Option<&DirHandle> {
        self.listing
            .as_ref()
            .filter(|listing| listing.shard == shard)
            .map(|listing| &listing.dir)
    }

    /// Every entry of every shard, `stat`ed (for the evictor of a small
    /// cache): a whole sweep at once.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed or an entry not `stat`ed.
    pub fn sample_everything(&mut self, layout: &Layout) -> Result<Vec<Record>> {
        self.swept += SHARDS as u64;
        let mut samples = Vec::new();
        for (index, _) in scan::shards(layout)? {
            if let Some((dir, hashes)) = open_shard(layout, index)? {
                for hash in hashes {
                    samples.extend(probe(&dir, hash)?);
                }
            }
        }
        Ok(samples)
    }

    /// Lists shards of the recount pass (starting one if none is under way)
    /// until this write has listed its share of names or the pass is complete;
    /// a complete pass is left for the next flush to compare.
    fn continue_pass(&mut self, layout: &Layout) -> Result<()> {
        let entries = self.size().entries.max(1) as u64;
        let mut pass = self.pass.take().unwrap_or_else(|| {
            self.writes_until_pass =
                (entries / CENSUS_NAMES_PER_WRITE).max(MIN_WRITES_BETWEEN_PASSES);
            Pass {
                counts: Vec::with_capacity(SHARDS),
                credit: 0,
                started_ms: now_ms(),
            }
        });
        let names_per_write = (self.pass_spread / entries)
            .clamp(CENSUS_NAMES_PER_WRITE, platform::RECOUNT_NAMES_PER_WRITE);
        pass.credit += names_per_write as i64;
        while pass.counts.len() < SHARDS && pass.credit > 0 {
            // A failed listing drops the pass: the next one starts when due,
            // rather than every write retrying it.
            let shard = pass.counts.len();
            let (entries, bytes) = self.count_shard(layout, shard as u8)?;
            pass.credit -= entries as i64;
            pass.counts.push(ShardCount {
                entries,
                bytes,
                changes_then: self.changes_known(shard),
            });
        }
        if pass.counts.len() < SHARDS {
            self.pass = Some(pass);
            return Ok(());
        }
        // Each shard's count, plus the changes to that shard the handle came
        // to know of since it was listed: its own, and those others reported.
        let mut size = Size::default();
        for (shard, count) in pass.counts.iter().enumerate() {
            let since = self.changes_known(shard).plus(count.changes_then.negated());
            let counted = Size {
                entries: count.entries as i64,
                bytes: count.bytes as i64,
            };
            size = size.plus(counted).plus(since);
        }
        self.recounted = Some(Recounted {
            size,
            started_ms: pass.started_ms,
        });
        Ok(())
    }

    /// Counts shard `index` from a fresh listing, `stat`ing a few of its
    /// entries for their mean size: its entries and bytes.
    fn count_shard(&mut self, layout: &Layout, index: u8) -> Result<(u64, u64)> {
        let (dir, hashes) = open_shard(layout, index)?
            .unwrap_or_else(|| (DirHandle::by_path(layout.shard_dir(index)), Vec::new()));
        let picks: Vec<usize> = if hashes.len() <= SAMPLES_PER_LISTING {
            (0..hashes.len()).collect()
        } else {
            (0..SAMPLES_PER_LISTING)
                .map(|_| self.random_below(hashes.len()))
                .collect()
        };
        let mut sampled = Vec::with_capacity(picks.len());
        for pick in picks {
            sampled.extend(probe(&dir, hashes[pick])?);
        }
        let entries = hashes.len() as u64;
        let bytes = match sampled.len() as u64 {
            0 => 0,
            n => sampled.iter().map(|s| s.size).sum::<u64>() / n * entries,
        };
        Ok((entries, bytes))
    }

    fn flush_due(&self) -> bool {
        let pending = self.pending;
        pending.entries.unsigned_abs() >= self.flush_every.entries.unsigned_abs()
            || pending.bytes.unsigned_abs() >= self.flush_every.bytes.unsigned_abs()
            || self.recounted.is_some()
            || self.last_flush.elapsed() >= FLUSH_AGE
    }

    /// Adds pending changes to the census file, under its lock, and corrects it
    /// by a complete recount if they drifted apart. A recount whose flush fails
    /// is dropped (the next pass replaces it).
    fn flush(&mut self, layout: &Layout) -> Result<()> {
        let recounted = self.recounted.take();
        self.update_file(layout, |record, pending| {
            record.entries = record.entries.wrapping_add(pending.entries);
            record.bytes = record.bytes.wrapping_add(pending.bytes);
            // A correction "since the pass began" that is dated in the future
            // is no correction (a clock that was ahead, or a damaged file).
            if let Some(recounted) = recounted
                && (record.reconciled_at < recounted.started_ms || record.reconciled_at > now_ms())
            {
                let correction = correction(record, recounted.size);
                if correction != Size::default() || record.extrapolated {
                    record.entries = record.entries.wrapping_add(correction.entries);
                    record.bytes = record.bytes.wrapping_add(correction.bytes);
                    record.reconciled_at = now_ms();
                    record.extrapolated = false;
                }
            }
        })
    }

    fn flush_setting_zero(&mut self, layout: &Layout) -> Result<()> {
        self.update_file(layout, |record, _| {
            record.entries = 0;
            record.bytes = 0;
            record.reconciled_at = now_ms();
            record.extrapolated = false;
        })
    }

    fn update_file(
        &mut self,
        layout: &Layout,
        change: impl FnOnce(&mut CensusRecord, Size),
    ) -> Result<()> {
        self.last_flush = Instant::now();
        let lock = exclusion::acquire(layout, &KeyHash::CENSUS, &self.lock, "the census")?;
        let mut record = read_census(&self.file)?.unwrap_or(self.shared);
        change(&mut record, self.pending);
        for (reported, pending) in record.shard_changes.iter_mut().zip(&self.pending_by_shard) {
            *reported = Size::from_pair(*reported).plus(*pending).pair();
        }
        write_census(layout, &self.file, &record)?;
        lock.release()?;
        self.shared = record;
        self.pending = Size::default();
        self.pending_by_shard = [Size::default(); SHARDS];
        Ok(())
    }

    fn random_below(&mut self, bound: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % bound as u64) as usize
    }
}

/// What to add to the shared count `record` (pending changes included) to
/// bring it to `recounted`: nothing if they are within the tolerated drift —
/// unless `record` is an extrapolated first count, which a complete recount
/// replaces however close they are.
fn correction(record: &CensusRecord, recounted: Size) -> Size {
    let drift = |counted: i64, recounted: i64, tolerated: f64, floor: f64| {
        let drift = recounted.wrapping_sub(counted);
        if record.extrapolated {
            return drift;
        }
        if drift.unsigned_abs() as f64 > (counted.unsigned_abs() as f64 * tolerated).max(floor) {
            drift
        } else {
            0
        }
    };
    Size {
        entries: drift(record.entries, recounted.entries, DRIFT_TOLERATED, 16.0),
        bytes: drift(
            record.bytes,
            recounted.bytes,
            DRIFT_TOLERATED * 2.0,
            65536.0,
        ),
    }
}

/// The census file's record; `None` if there is none or it is damaged.
fn read_census(path: &Path) -> Result<Option<CensusRecord>> {
    match platform::read_file(path) {
        Ok(bytes) => Ok(format::decode_census(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read census", path, e)),
    }
}

/// Replaces the census file (temporary file, then rename).
fn write_census(layout: &Layout, path: &Path, record: &CensusRecord) -> Result<()> {
    let temp = layout.temp_path(&KeyHash::CENSUS);
    let mut file = in_dir(layout.tmp_dir(), || NewFile::create_new(&temp))
        .context("create temporary file", &temp)?;
    let written = file
        .write_all_at(&format::encode_census(record), 0)
        .context("write temporary file", &temp)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| Error::rename(&temp, path, e)));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// The key hashes of shard `shard`'s entries and its directory, open for
/// `stat`s; `None` if it has no entries (or no directory).
fn open_shard(layout: &Layout, shard: u8) -> Result<Option<(DirHandle, Vec<KeyHash>)>> {
    let path = layout.shard_dir(shard);
    let hashes = scan::entry_hashes(&path)?;
    if hashes.is_empty() {
        return Ok(None);
    }
    match DirHandle::open(&path) {
        Ok(dir) => Ok(Some((dir, hashes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None), // cleared meanwhile
        Err(e) => Err(Error::io("open directory", &path, e)),
    }
}

/// `stat`s the entry file of `hash` in `dir` into a record; `None` if it is gone.
fn probe(dir: &DirHandle, hash: KeyHash) -> Result<Option<Record>> {
    let file_name = hash.file_name();
    let name = file_name.as_str();
    let stat = match dir.stat(name) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read metadata", &dir.path().join(name), e)),
    };
    Ok(Some(Record::from_stat(hash, &stat)))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::{FileStore, Options};

    fn path_shard(path: &Path) -> u8 {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("entry name");
        KeyHash::from_hex(name).expect("an entry name").shard()
    }

    /// A census of an empty cache at `dir`, reporting every 32 changes.
    fn lone_census(dir: &Path) -> (Layout, Census) {
        drop(FileStore::open(dir, Options::default()).expect("open"));
        let layout = Layout::new(dir.to_path_buf());
        let flush_every = Size {
            entries: 32,
            bytes: i64::MAX,
        };
        let census = Census::open(&layout, Duration::from_secs(10), flush_every).expect("open");
        (layout, census)
    }

    /// Writes an entry file for `key`; its path.
    fn write_entry(layout: &Layout, key: &str, value: &[u8]) -> PathBuf {
        let path = layout.entry_path(&KeyHash::of(key));
        fs::create_dir_all(path.parent().expect("shard")).expect("shard dir");
        fs::write(&path, value).expect("write entry");
        path
    }

    /// The census file's record, after the handle reported all it knows.
    fn reported(layout: &Layout, census: &mut Census) -> CensusRecord {
        census.flush_now(layout);
        read_census(&layout.census_file())
            .expect("read census")
            .expect("a census")
    }

    /// A census file whose figures are at the ends of their range (written
    /// by a bug, or by hand: its checksum is right), its last correction
    /// dated in the far future, makes a handle work with odd sizes, never
    /// panic; its first recount corrects them.
    #[test]
    fn extreme_census_figures_do_not_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (layout, census) = lone_census(dir.path());
        drop(census);
        let mut extreme = CensusRecord {
            entries: i64::MIN,
            bytes: i64::MAX,
            reconciled_at: u64::MAX,
            ..CensusRecord::default()
        };
        for (shard, changes) in extreme.shard_changes.iter_mut().enumerate() {
            *changes = if shard % 2 == 0 {
                [i64::MAX; 2]
            } else {
                [i64::MIN; 2]
            };
        }
        write_census(&layout, &layout.census_file(), &extreme).expect("write census");
        let options = Options {
            max_entries: Some(64),
            max_bytes: Some(1 << 20),
            ..Options::default()
        };
        let store = FileStore::open(dir.path(), options).expect("open");
        for i in 0..MIN_WRITES_BETWEEN_PASSES + 256 {
            store
                .insert(&format!("key {i}"), b"value", crate::Expiry::Never)
                .expect("insert");
        }
        // A recount corrected the figures: the estimate is the cache's size
        // (give or take the evictions since), not the extreme it started from.
        let estimate = store.approx_size().expect("size");
        assert!(
            (64..=MIN_WRITES_BETWEEN_PASSES + 256).contains(&estimate),
            "{estimate}"
        );
        store.clear().expect("clear");
        store
            .insert("after", b"value", crate::Expiry::Never)
            .expect("insert");
    }

    /// A cache that handles of the census's version 1 counted in `census`
    /// (40 bytes) keeps that file as it is: a handle of this version counts
    /// the cache itself into `census-2`, so that a handle of each version does
    /// not overwrite the other's count with its own (which let two versions
    /// writing at once hold 9 709 entries for a limit of 2 000).
    #[test]
    fn a_version_one_census_is_left_to_its_handles() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(FileStore::open(dir.path(), Options::default()).expect("open"));
        let layout = Layout::new(dir.path().to_path_buf());
        for i in 0..10 {
            write_entry(&layout, &format!("key {i}"), b"value");
        }
        let mut version_one = format::encode_census(&CensusRecord {
            entries: 99_999,
            ..CensusRecord::default()
        })[..40]
            .to_vec();
        version_one[4] = 1;
        let old_file = dir.path().join("census");
        fs::write(&old_file, &version_one).expect("write version 1 census");
        let mut census =
            Census::open(&layout, Duration::from_secs(10), Size::entry(1)).expect("open");
        assert_eq!(census.size().entries, 10, "counted, not read from `census`");
        census.record(0, Size::entry(5));
        census.flush_now(&layout);
        assert_eq!(fs::read(&old_file).expect("read"), version_one);
        assert_eq!(reported(&layout, &mut census).entries, 11);
    }

    /// The first count of a large cache lists part of its shards and
    /// extrapolates; the first complete recount replaces that estimate even
    /// when it is within the drift recounts otherwise leave alone (it was
    /// kept, so a lone handle held a cache ~1 % over its limit for good).
    #[test]
    fn the_first_complete_recount_replaces_an_extrapolated_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(FileStore::open(dir.path(), Options::default()).expect("open"));
        let layout = Layout::new(dir.path().to_path_buf());
        // Shard 00 holds 3 000 entries, the others 55 each: the first count
        // reaches FIRST_CENSUS_NAMES before the last shards and overshoots.
        let mut total = 0;
        for shard in 0..SHARDS {
            let count = if shard == 0 { 3000 } else { 55 };
            let shard_dir = layout.shard_dir(shard as u8);
            fs::create_dir_all(&shard_dir).expect("shard dir");
            for i in 0..count {
                fs::write(shard_dir.join(format!("{shard:02x}{i:062x}")), b"").expect("write");
            }
            total += count as i64;
        }
        let mut census =
            Census::open(&layout, Duration::from_secs(10), Size::entry(1)).expect("open");
        let first = census.size().entries;
        assert!(
            census.shared.extrapolated && first != total,
            "{first} for {total}"
        );
        assert!(
            first.abs_diff(total) * 100 < 3 * total as u64,
            "{first} within 3 %"
        );
        while census.shared.extrapolated {
            census.after_write(&layout).expect("after write");
            census.flush_now(&layout);
        }
        assert_eq!(census.size().entries, total);
        assert!(!reported(&layout, &mut census).extrapolated);
    }

    /// Entry files by shard, written and evicted as a handle at capacity does.
    struct Churn {
        layout: Layout,
        by_shard: Vec<Vec<PathBuf>>,
    }

    /// Where an evictor's sweep is: its shard, and how many it evicted there.
    #[derive(Default)]
    struct Sweep {
        shard: usize,
        evicted_here: usize,
    }

    impl Churn {
        const VALUE: &[u8] = b"value";

        /// `live` entries written by `census`'s handle.
        fn filled(layout: &Layout, census: &mut Census, live: usize) -> Self {
            let mut churn = Self {
                layout: layout.clone(),
                by_shard: vec![Vec::new(); SHARDS],
            };
            for i in 0..live {
                churn.write(census, &format!("key {i}"));
            }
            churn
        }

        fn one() -> Size {
            Size::entry(Self::VALUE.len() as u64)
        }

        /// `census`'s handle writes a new entry for `key`.
        fn write(&mut self, census: &mut Census, key: &str) {
            let path = write_entry(&self.layout, key, Self::VALUE);
            census.record(path_shard(&path), Self::one());
            self.by_shard[usize::from(path_shard(&path))].push(path);
        }

        /// `census`'s handle evicts an entry of its sweep's shard, moving on
        /// after 8 evictions (half of a shard's 16 entries) as the evictor
        /// goes through a shard.
        fn evict(&mut self, census: &mut Census, sweep: &mut Sweep) {
            while self.by_shard[sweep.shard].is_empty() || sweep.evicted_here == 8 {
                sweep.shard = (sweep.shard + 1) % SHARDS;
                sweep.evicted_here = 0;
            }
            let victim = self.by_shard[sweep.shard].pop().expect("an entry");
            fs::remove_file(&victim).expect("evict");
            census.record(path_shard(&victim), Self::one().negated());
            sweep.evicted_here += 1;
        }
    }

    /// Two handles at capacity, each evicting shard by shard from its own
    /// sweep: each recount must follow the *other* handle's evictions into
    /// the shards it counted, as it follows its own. Spread evenly over the
    /// shards, they made two handles holding 250 000 entries range from
    /// −5.5 % to +1.9 % of their limit.
    #[test]
    fn recounts_follow_other_handles_evicting_shard_by_shard() {
        const LIVE: usize = 4096;
        let dir = tempfile::tempdir().expect("temp dir");
        let (layout, mut first) = lone_census(dir.path());
        let created = first.shared.reconciled_at;
        let mut churn = Churn::filled(&layout, &mut first, LIVE);
        first.flush_now(&layout);
        let second =
            Census::open(&layout, Duration::from_secs(10), first.flush_every).expect("open");
        let mut censuses = [first, second];
        for census in &mut censuses {
            census.pass_spread = 0;
        }
        // The handles take turns; their sweeps are half the shards apart.
        let mut sweeps = [
            Sweep::default(),
            Sweep {
                shard: SHARDS / 2,
                evicted_here: 0,
            },
        ];
        for i in 0..8 * MIN_WRITES_BETWEEN_PASSES as usize {
            let turn = i % 2;
            let census = &mut censuses[turn];
            churn.write(census, &format!("new {i}"));
            churn.evict(census, &mut sweeps[turn]);
            census.after_write(&layout).expect("after write");
            if i % 16 < 2 {
                // Reported often, as handles writing at this pace are.
                census.flush_now(&layout);
            }
        }
        censuses[0].flush_now(&layout);
        let record = reported(&layout, &mut censuses[1]);
        assert_eq!(
            record.reconciled_at, created,
            "no recount corrected the count: {record:?}"
        );
        assert_eq!(record.entries, LIVE as i64);
    }

    /// The evictor of a lone handle at capacity removes entries shard after
    /// shard (its sweep) while its writes land in every shard, and its
    /// recount passes go over the shards in another order. Each shard's count
    /// must be brought up to the end of the pass by the handle's own changes
    /// *in that shard*: spread evenly, they cancelled out (one write, one
    /// eviction), and a pass that overtook the sweep counted its shards before
    /// their evictions — 250 000 entries at their limit then drifted to +4.6 %.
    #[test]
    fn recounts_follow_an_evictor_that_removes_shard_by_shard() {
        const LIVE: usize = 4096;
        let dir = tempfile::tempdir().expect("temp dir");
        let (layout, mut census) = lone_census(dir.path());
        // Eight names listed per write, as in a large cache: a pass takes
        // 512 writes, during which the sweep goes over 64 shards.
        census.pass_spread = 0;
        let created = census.shared.reconciled_at;
        let mut churn = Churn::filled(&layout, &mut census, LIVE);
        let mut sweep = Sweep::default();
        for i in 0..4 * MIN_WRITES_BETWEEN_PASSES as usize {
            churn.write(&mut census, &format!("new {i}"));
            churn.evict(&mut census, &mut sweep);
            census.after_write(&layout).expect("after write");
        }
        let record = reported(&layout, &mut census);
        assert_eq!(
            record.reconciled_at, created,
            "no recount corrected the count: {record:?}"
        );
        assert_eq!(record.entries, LIVE as i64);
    }

    /// A lone handle knows every change made to the cache, so its recount
    /// passes must agree with its count however much the cache churns, and
    /// never "correct" it. Passes spread over many writes used to stray by
    /// about √(entries) and often did (with these figures, in about a third of
    /// the passes).
    #[test]
    fn recounts_leave_an_exact_count_alone_through_churn() {
        const LIVE: usize = 500;
        const VALUE: &[u8] = b"value";
        let dir = tempfile::tempdir().expect("temp dir");
        let (layout, mut census) = lone_census(dir.path());
        let created = census.shared.reconciled_at;
        let one = Size::entry(VALUE.len() as u64);
        // Through ten passes, every fourth write adds a new entry and removes
        // the oldest beyond LIVE; the others replace an entry.
        let mut live = VecDeque::new();
        for i in 0..10 * MIN_WRITES_BETWEEN_PASSES as usize {
            if i % 4 == 0 || live.len() < LIVE {
                let path = write_entry(&layout, &format!("key {i}"), VALUE);
                census.record(path_shard(&path), one);
                live.push_back(path);
            }
            if live.len() > LIVE {
                let oldest = live.pop_front().expect("oldest");
                fs::remove_file(&oldest).expect("remove entry");
                census.record(path_shard(&oldest), one.negated());
            }
            census.after_write(&layout).expect("after write");
        }
        let record = reported(&layout, &mut census);
        assert_eq!(
            record.reconciled_at, created,
            "no recount corrected the count: {record:?}"
        );
        assert_eq!(
            (record.entries, record.bytes),
            (LIVE as i64, LIVE as i64 * one.bytes)
        );
    }
}
