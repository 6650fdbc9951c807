//! Keeping a cache within `max_entries` / `max_bytes`: what to evict, and when.
//! How big the cache is comes from [`crate::census`].
//!
//! After each write, while the census says the cache is over a limit, the handle
//! evicts (at most [`MAX_EVICTIONS_PER_WRITE`] entries per write, so no write
//! pays for a long catch-up).
//!
//! # What is evicted
//!
//! Each entry file carries its last use in its modification time (set when it
//! is written, and moved forward by `get` at most every [`TOUCH_INTERVAL`]) and
//! its expiry in its access time (see [`crate::format`]), so one `stat` judges
//! it. Before each choice of a victim, [`REFILL_SAMPLES`] entries sampled at
//! random (from shards drawn at random, each name once per listing) go into a
//! **pool** of candidates that keeps the most evictable of all it was offered —
//! expired entries first, then the least recently used — and the best is
//! evicted: approximately LRU, the way Redis does it. (Refilling only when the
//! pool ran dry would evict every sample in turn, which is random eviction.) A
//! small cache (under [`EXHAUSTIVE_BELOW`] entries) is sampled whole when the
//! pool runs dry, so there the order is exact.
//! A candidate is `stat`ed again just before it is removed, and spared if it was
//! used since. Only entry files (64-hex names in shard directories) are ever
//! removed: never temporary files being written, never foreign files.
//!
//! An eviction that fails (a permission problem, say) does not fail the write
//! that triggered it — that write succeeded; it is tried again at the next
//! write, and a cache that cannot evict shows in `stats` as over its limit.

use std::fs;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::census::{Census, Sample, Size};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{Options, now_ms};

/// The shortest span after which `get` refreshes an entry's last-use time.
pub const TOUCH_INTERVAL: Duration = Duration::from_millis(100);
/// Below this many entries, the pool is refilled from every entry, not samples.
pub const EXHAUSTIVE_BELOW: i64 = 1024;
/// Most entries one write evicts.
pub const MAX_EVICTIONS_PER_WRITE: u64 = 4;
/// Most refills of the pool per write, before it gives up until the next write.
const MAX_REFILLS_PER_WRITE: u32 = 16;
/// Samples added to a large cache's pool before each choice of a victim.
pub const REFILL_SAMPLES: usize = 5;
/// Candidates kept in the pool.
const POOL_SIZE: usize = 64;
/// Largest number of changes a handle keeps unreported.
const MAX_FLUSH_EVERY: u64 = 32;

/// What the evictor removed during one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Live entries evicted.
    pub evicted: u64,
    /// Expired entries removed.
    pub expired: u64,
}

/// The size limits of a handle, its census, and its pool of candidates.
#[derive(Debug)]
pub struct Evictor {
    layout: Layout,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    census: Census,
    pool: Vec<Sample>,
}

impl Evictor {
    /// The evictor for `options` on the cache at `layout`, or `None` if they set
    /// no limit.
    ///
    /// # Errors
    /// An I/O error if the census cannot be read or taken.
    pub fn open(options: &Options, layout: &Layout) -> Result<Option<Self>> {
        if options.max_entries.is_none() && options.max_bytes.is_none() {
            return Ok(None);
        }
        let flush_every = |limit: Option<u64>, cap: u64| {
            limit.map_or(i64::MAX, |limit| (limit / 256).clamp(1, cap) as i64)
        };
        let flush_every = Size {
            entries: flush_every(options.max_entries, MAX_FLUSH_EVERY),
            bytes: flush_every(options.max_bytes, u64::MAX),
        };
        let census = Census::open(layout, options.lease, flush_every)?;
        Ok(Some(Self {
            layout: layout.clone(),
            max_entries: options.max_entries,
            max_bytes: options.max_bytes,
            state: Mutex::new(State {
                census,
                pool: Vec::new(),
            }),
        }))
    }

    /// Records a write (`replaced`: the size of the entry it replaced, if any)
    /// and evicts what the limits require.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed or an entry not removed.
    pub fn after_write(&self, replaced: Option<u64>, written: u64) -> Result<Removed> {
        let mut state = self.lock();
        state.census.record(Size {
            entries: i64::from(replaced.is_none()),
            bytes: written as i64 - replaced.unwrap_or(0) as i64,
        });
        state.census.after_write(&self.layout)?;
        self.evict(&mut state)
    }

    /// Records that an entry of `size` bytes was removed.
    pub fn after_remove(&self, size: u64) {
        self.lock().census.record(Size {
            entries: -1,
            bytes: -(size as i64),
        });
    }

    /// Records that every entry was removed.
    pub fn after_clear(&self) {
        let mut state = self.lock();
        state.census.cleared(&self.layout);
        state.pool.clear();
    }

    /// The number of entries and bytes this handle takes the cache to hold.
    pub fn estimate(&self) -> Size {
        self.lock().census.size()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is an estimate and a pool of hints: a panic elsewhere cannot
        // leave it harmful, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn over(&self, size: Size) -> bool {
        let over = |limit: Option<u64>, value: i64| {
            limit.is_some_and(|limit| value > i64::try_from(limit).unwrap_or(i64::MAX))
        };
        over(self.max_entries, size.entries) || over(self.max_bytes, size.bytes)
    }

    fn evict(&self, state: &mut State) -> Result<Removed> {
        let mut removed = Removed::default();
        let mut refills = 0;
        while self.over(state.census.size())
            && removed.evicted + removed.expired < MAX_EVICTIONS_PER_WRITE
        {
            let now = now_ms();
            let exhaustive = state.census.size().entries < EXHAUSTIVE_BELOW;
            // A large cache's pool takes fresh samples before every choice, so it
            // holds the most evictable of many samples; a small cache's pool is
            // filled from every entry when it runs dry.
            if !exhaustive || state.pool.is_empty() {
                if refills == MAX_REFILLS_PER_WRITE {
                    break; // nothing evictable in sight: the census is ahead of the disk
                }
                refills += 1;
                let samples = if exhaustive {
                    state.census.sample_everything(&self.layout)?
                } else {
                    state.census.candidates(&self.layout, REFILL_SAMPLES)?
                };
                state.offer(samples);
            }
            let Some(victim) = state.pop_best(now) else {
                continue;
            };
            let path = self.layout.shard_dir(victim.shard).join(&victim.name);
            let gone = Size {
                entries: -1,
                bytes: -(victim.size as i64),
            };
            match fs::metadata(&path) {
                Ok(meta) if meta.modified().is_ok_and(|used| used > victim.used) => continue,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read metadata", &path, e)),
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    state.census.record(gone);
                    if victim.expires_ms <= now {
                        removed.expired += 1;
                    } else {
                        removed.evicted += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove evicted entry", &path, e)),
            }
        }
        Ok(removed)
    }
}

impl Drop for Evictor {
    fn drop(&mut self) {
        self.lock().census.flush_now(&self.layout);
    }
}

impl State {
    /// Adds samples to the pool, keeping only the most evictable.
    fn offer(&mut self, samples: Vec<Sample>) {
        for sample in samples {
            if let Some(known) = self
                .pool
                .iter_mut()
                .find(|c| c.shard == sample.shard && c.name == sample.name)
            {
                *known = sample;
                continue;
            }
            self.pool.push(sample);
        }
        if self.pool.len() > POOL_SIZE {
            let now = now_ms();
            self.pool
                .sort_unstable_by_key(|c| std::cmp::Reverse(evictability(c, now)));
            self.pool.truncate(POOL_SIZE);
        }
    }

    fn pop_best(&mut self, now_ms: u64) -> Option<Sample> {
        let best = self
            .pool
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| evictability(c, now_ms))
            .map(|(i, _)| i)?;
        Some(self.pool.swap_remove(best))
    }
}

/// Sort key: larger is more evictable (expired first, then least recently used).
fn evictability(sample: &Sample, now_ms: u64) -> (bool, std::cmp::Reverse<std::time::SystemTime>) {
    (sample.expires_ms <= now_ms, std::cmp::Reverse(sample.used))
}
