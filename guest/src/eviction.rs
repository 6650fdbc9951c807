//! Keeping a cache within `max_entries` / `max_bytes` with a flat cost per write:
//! no directory scan per insert, no shared counter, no lock.
//!
//! # How the size is known
//!
//! Each handle with a limit keeps a **census**: for every one of the 256 shard
//! directories, the entries it counted there when it last listed it, plus the
//! changes this handle made there since (each write stats the entry first, so it
//! knows whether it adds one or replaces one, and by how many bytes). Every `K`
//! writes it lists one more shard, round robin, so the whole cache is recounted
//! continuously; `K` grows with the shard size so that a write pays for about
//! [`platform::CENSUS_NAMES_PER_WRITE`] listed names. `open` lists shards until
//! it has seen [`FIRST_CENSUS_NAMES`] names — all of a small cache; shards not
//! counted yet are taken to hold the mean of those that were, since keys are
//! spread evenly by their hash. Bytes are the count times the mean size of the
//! entries sampled in that shard (exact when all were sampled).
//!
//! So one handle alone knows the size exactly. What it cannot see are other
//! handles' writes since it last listed a shard: with `P` handles filling a
//! cache at once, the cache can overshoot by about `(P − 1) / (2 × names per
//! write)` of its size before they all notice — and then they evict back down.
//! Once full, inserts and evictions balance and the estimate stays true.
//!
//! # What is evicted
//!
//! Each entry file carries its last use in its modification time (set when it
//! is written, and refreshed by `get` at most every [`TOUCH_INTERVAL`]) and its
//! expiry in its access time (see [`crate::format`]), so a single `stat` tells
//! both. Every listing samples a few entries into a **pool** of candidates; the
//! pool keeps the most evictable: expired ones first, then the least recently
//! used — approximately LRU, as Redis does it. A small cache (under
//! [`EXHAUSTIVE_BELOW`] entries) is sampled whole, so there the order is exact.
//! A candidate is `stat`ed again just before it is removed and spared if it was
//! used since. Only entry files (64-hex names in shard directories) are ever
//! removed: never temporary files being written, never foreign files.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::format::NEVER;
use crate::layout::{self, Layout};
use crate::options::{Options, now_ms, unix_ms};
use crate::platform;
use crate::scan;

/// The shortest span after which `get` refreshes an entry's last-use time.
pub const TOUCH_INTERVAL: Duration = Duration::from_millis(100);
/// Below this many entries, the pool is refilled from every entry, not samples.
pub const EXHAUSTIVE_BELOW: u64 = 1024;
/// Entries sampled into the pool per listed shard, and per refill.
const SAMPLES: usize = 8;
/// Candidates kept in the pool.
const POOL_SIZE: usize = 64;
/// Most entries one write evicts (so that a write's cost stays bounded even
/// just after the limit was lowered or another handle overshot it).
const MAX_EVICTIONS_PER_WRITE: usize = 4;
/// Names the first census (at `open`) lists at least, unless the cache is smaller.
pub const FIRST_CENSUS_NAMES: u64 = 4096;
/// Fewest writes between two shard listings.
const MIN_WRITES_PER_LISTING: u64 = 8;

const SHARDS: usize = 256;

/// What the evictor removed during one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Live entries evicted.
    pub evicted: u64,
    /// Expired entries removed.
    pub expired: u64,
}

/// The size limits of a handle and what it knows of the cache's size.
#[derive(Debug)]
pub struct Evictor {
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    state: Mutex<Census>,
}

#[derive(Debug, Clone, Copy, Default)]
struct ShardView {
    counted: bool,
    entries: u64,
    bytes: u64,
    /// This handle's changes since the shard was counted.
    own_entries: i64,
    own_bytes: i64,
}

/// An entry that may be evicted, as a `stat` saw it.
#[derive(Debug, Clone)]
struct Candidate {
    shard: u8,
    name: String,
    used: SystemTime,
    expires_ms: u64,
    size: u64,
}

impl Candidate {
    /// Sort key: larger is more evictable (expired first, then least recently used).
    fn evictability(&self, now_ms: u64) -> (bool, std::cmp::Reverse<SystemTime>) {
        (self.expires_ms <= now_ms, std::cmp::Reverse(self.used))
    }
}

#[derive(Debug)]
struct Census {
    shards: Vec<ShardView>,
    next_shard: usize,
    writes_until_listing: u64,
    /// Names of the shard listed last, to draw samples from between listings.
    last_listing: (u8, Vec<String>),
    pool: Vec<Candidate>,
    /// A small random state for sampling.
    rng: u64,
}

impl Evictor {
    /// The evictor for `options` on the cache at `layout`, or `None` if they set
    /// no limit. Takes a first census: shards are listed in order until
    /// [`FIRST_CENSUS_NAMES`] names were seen, so a small cache is counted
    /// exactly and a large one from a sample big enough to extrapolate.
    ///
    /// # Errors
    /// An I/O error if a shard directory cannot be listed.
    pub fn open(options: &Options, layout: &Layout) -> Result<Option<Self>> {
        if options.max_entries.is_none() && options.max_bytes.is_none() {
            return Ok(None);
        }
        let mut census = Census {
            shards: vec![ShardView::default(); SHARDS],
            next_shard: 0,
            writes_until_listing: 0,
            last_listing: (0, Vec::new()),
            pool: Vec::new(),
            rng: layout::nonce() | 1,
        };
        let mut seen = 0;
        while seen < FIRST_CENSUS_NAMES && census.next_shard + 1 < SHARDS {
            census.list_next_shard(layout)?;
            seen += census.last_listing.1.len() as u64;
        }
        if census.next_shard + 1 == SHARDS {
            census.list_next_shard(layout)?;
        }
        Ok(Some(Self {
            max_entries: options.max_entries,
            max_bytes: options.max_bytes,
            state: Mutex::new(census),
        }))
    }

    /// Records a write into `shard` (`replaced`: the size of the entry it
    /// replaced, if any) and evicts what the limits require.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed or an entry not removed.
    pub fn after_write(
        &self,
        layout: &Layout,
        shard: u8,
        replaced: Option<u64>,
        written: u64,
    ) -> Result<Removed> {
        let mut census = self.lock();
        let view = &mut census.shards[usize::from(shard)];
        if replaced.is_none() {
            view.own_entries += 1;
        }
        view.own_bytes += written as i64 - replaced.unwrap_or(0) as i64;
        if census.writes_until_listing == 0 {
            census.list_next_shard(layout)?;
        } else {
            census.writes_until_listing -= 1;
        }
        self.evict(&mut census, layout)
    }

    /// Records that an entry of `size` bytes in `shard` was removed.
    pub fn after_remove(&self, shard: u8, size: u64) {
        let mut census = self.lock();
        let view = &mut census.shards[usize::from(shard)];
        view.own_entries -= 1;
        view.own_bytes -= size as i64;
    }

    /// Records that every entry was removed.
    pub fn after_clear(&self) {
        let mut census = self.lock();
        for view in &mut census.shards {
            *view = ShardView {
                counted: true,
                ..ShardView::default()
            };
        }
        census.pool.clear();
    }

    /// The estimated number of entries and bytes in the cache.
    pub fn estimate(&self) -> (u64, u64) {
        self.lock().estimate()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Census> {
        // A panic elsewhere cannot leave the census inconsistent in a way that
        // matters (it is an estimate), so a poisoned lock is simply taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn over(&self, (entries, bytes): (u64, u64)) -> bool {
        self.max_entries.is_some_and(|max| entries > max)
            || self.max_bytes.is_some_and(|max| bytes > max)
    }

    fn evict(&self, census: &mut Census, layout: &Layout) -> Result<Removed> {
        let mut removed = Removed::default();
        let mut refills = 0;
        while self.over(census.estimate())
            && removed.evicted + removed.expired < MAX_EVICTIONS_PER_WRITE as u64
        {
            let now = now_ms();
            let Some(victim) = census.pop_best(now) else {
                if refills == 2 {
                    break; // nothing to evict that we can see: the estimate is stale
                }
                refills += 1;
                census.refill(layout)?;
                continue;
            };
            let path = layout.shard_dir(victim.shard).join(&victim.name);
            match fs::metadata(&path) {
                Ok(meta) if meta.modified().is_ok_and(|used| used > victim.used) => continue,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    census.forget_one(victim.shard, victim.size);
                    continue;
                }
                Err(e) => return Err(Error::io("read metadata", &path, e)),
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    let view = &mut census.shards[usize::from(victim.shard)];
                    view.own_entries -= 1;
                    view.own_bytes -= victim.size as i64;
                    if victim.expires_ms <= now {
                        removed.expired += 1;
                    } else {
                        removed.evicted += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    census.forget_one(victim.shard, victim.size);
                }
                Err(e) => return Err(Error::io("remove evicted entry", &path, e)),
            }
        }
        Ok(removed)
    }
}

impl Census {
    fn estimate(&self) -> (u64, u64) {
        let (mut counted, mut counted_entries, mut counted_bytes) = (0u64, 0u64, 0u64);
        for view in self.shards.iter().filter(|view| view.counted) {
            counted += 1;
            counted_entries += view.entries;
            counted_bytes += view.bytes;
        }
        let (mean_entries, mean_bytes) = match counted {
            0 => (0, 0),
            n => (counted_entries / n, counted_bytes / n),
        };
        let (mut entries, mut bytes) = (0u64, 0u64);
        for view in &self.shards {
            let (base_entries, base_bytes) = if view.counted {
                (view.entries, view.bytes)
            } else {
                (mean_entries, mean_bytes)
            };
            entries += base_entries.saturating_add_signed(view.own_entries);
            bytes += base_bytes.saturating_add_signed(view.own_bytes);
        }
        (entries, bytes)
    }

    /// Lists the next shard: recounts it and samples a few of its entries.
    fn list_next_shard(&mut self, layout: &Layout) -> Result<()> {
        let index = self.next_shard as u8;
        self.next_shard = (self.next_shard + 1) % SHARDS;
        let names = scan::entry_names(&layout.shard_dir(index))?;
        self.recount(layout, index, &names, SAMPLES)?;
        self.last_listing = (index, names);
        let (entries, _) = self.estimate();
        let per_shard = entries / SHARDS as u64;
        self.writes_until_listing =
            (per_shard / platform::CENSUS_NAMES_PER_WRITE).max(MIN_WRITES_PER_LISTING);
        Ok(())
    }

    /// Sets shard `index`'s count from a fresh listing, sampling `samples` of
    /// its entries (into the pool, and for the mean size).
    fn recount(
        &mut self,
        layout: &Layout,
        index: u8,
        names: &[String],
        samples: usize,
    ) -> Result<()> {
        let sizes = self.sample(layout, index, names, samples)?;
        let view = &mut self.shards[usize::from(index)];
        view.counted = true;
        view.entries = names.len() as u64;
        view.bytes = match sizes.len() as u64 {
            0 => 0,
            n => sizes.iter().sum::<u64>() / n * view.entries,
        };
        view.own_entries = 0;
        view.own_bytes = 0;
        Ok(())
    }

    /// Stats up to `count` random names of `names` (in shard `index`) into the
    /// pool; returns the sizes seen.
    fn sample(
        &mut self,
        layout: &Layout,
        index: u8,
        names: &[String],
        count: usize,
    ) -> Result<Vec<u64>> {
        let dir = layout.shard_dir(index);
        let picks: Vec<usize> = if names.len() <= count {
            (0..names.len()).collect()
        } else {
            (0..count).map(|_| self.random_below(names.len())).collect()
        };
        let mut sizes = Vec::with_capacity(picks.len());
        for pick in picks {
            let name = &names[pick];
            let Some(candidate) = probe(&dir.join(name), index, name)? else {
                continue;
            };
            sizes.push(candidate.size);
            self.offer(candidate);
        }
        Ok(sizes)
    }

    /// Adds a candidate to the pool, keeping only the most evictable.
    fn offer(&mut self, candidate: Candidate) {
        if self
            .pool
            .iter()
            .any(|c| c.shard == candidate.shard && c.name == candidate.name)
        {
            return;
        }
        self.pool.push(candidate);
        if self.pool.len() > POOL_SIZE {
            let now = now_ms();
            let least = self
                .pool
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.evictability(now))
                .map(|(i, _)| i);
            if let Some(least) = least {
                self.pool.swap_remove(least);
            }
        }
    }

    fn pop_best(&mut self, now_ms: u64) -> Option<Candidate> {
        let best = self
            .pool
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.evictability(now_ms))
            .map(|(i, _)| i)?;
        Some(self.pool.swap_remove(best))
    }

    /// Puts more candidates in the pool: every entry of a small cache, or
    /// samples of the shard listed last (listing the next one when needed).
    fn refill(&mut self, layout: &Layout) -> Result<()> {
        let (entries, _) = self.estimate();
        if entries < EXHAUSTIVE_BELOW {
            for (index, dir) in scan::shards(layout)? {
                let names = scan::entry_names(&dir)?;
                self.recount(layout, index, &names, usize::MAX)?;
            }
            return Ok(());
        }
        if self.last_listing.1.is_empty() {
            self.list_next_shard(layout)?;
        }
        let (index, names) = std::mem::take(&mut self.last_listing);
        self.sample(layout, index, &names, SAMPLES)?;
        self.last_listing = (index, names);
        Ok(())
    }

    /// An entry this handle counted is gone (someone else removed it).
    fn forget_one(&mut self, shard: u8, size: u64) {
        let view = &mut self.shards[usize::from(shard)];
        view.own_entries -= 1;
        view.own_bytes -= size as i64;
    }

    fn random_below(&mut self, bound: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % bound as u64) as usize
    }
}

/// `stat`s an entry file into a candidate; `None` if it is gone.
fn probe(path: &Path, shard: u8, name: &str) -> Result<Option<Candidate>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read metadata", path, e)),
    };
    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let expires_ms = meta.accessed().map_or(NEVER, unix_ms);
    Ok(Some(Candidate {
        shard,
        name: name.to_owned(),
        used,
        expires_ms,
        size: meta.len(),
    }))
}
