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
//! it. The handle keeps what it learned of entries in an index
//! ([`crate::recency`]) and evicts its most evictable record: expired entries
//! first, then the least recently used. It learns
//! - every entry it writes itself, at no cost (the write sets the file's
//!   modification time and tells the index exactly that time), and every
//!   entry whose last use its own `get` moves forward (it forgets those it
//!   removes);
//! - the others from a **sweep** over the shards (see
//!   [`Census::candidates`]): before each choice of a victim it `stat`s
//!   [`LEARN_PER_EVICTION`] more entries, [`LEARN_PER_EVICTION_SWEPT`] once the
//!   sweep has gone over the whole cache since the handle opened (from then on
//!   it knows every entry that is not newer than its last sweep), and
//!   [`LEARN_WHILE_SHORT`] while it knows fewer than [`SHORT_INDEX`] entries. A
//!   small cache (under [`EXHAUSTIVE_BELOW`] entries) is learned whole at the
//!   first eviction, so there the order is exact.
//!
//! Unlike a pool of a few samples (Redis's way, and this crate's until
//! 2026-11-28: 5 fresh samples per eviction, 64 kept), the index forgets
//! nothing it paid to learn, so it needs fewer `stat`s per eviction for a
//! better order: a handle evicts its own writes in exact LRU order, and entries
//! written by others in LRU order once its sweep has seen them.
//!
//! A record can be stale: another handle may have read, replaced or removed
//! the entry since. So a victim is `stat`ed again just before it is removed,
//! and spared — its record replaced by the new one — if it was used since;
//! unless its record is recent against how long the entry had been idle then
//! (see [`TRUST_DIVISOR`]): an entry idle for an hour when it was `stat`ed a
//! minute ago is taken as idle still, as LRU itself assumes. Only entry files
//! (64-hex names in shard directories) are ever removed: never temporary
//! files being written, never foreign files.
//!
//! An eviction that fails (a permission problem, say) does not fail the write
//! that triggered it — that write succeeded; it is tried again at the next
//! write, and a cache that cannot evict shows in `stats` as over its limit.

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::census::{Census, Size};
use crate::error::{Error, Result};
use crate::layout::{KeyHash, Layout};
use crate::options::{Options, now_ms};
use crate::platform::DirHandle;
use crate::recency::{RecencyIndex, Record};

/// The shortest span after which `get` refreshes an entry's last-use time.
pub const TOUCH_INTERVAL: Duration = Duration::from_millis(100);
/// Below this many entries, a handle's first eviction learns every entry (a
/// whole sweep at once).
pub const EXHAUSTIVE_BELOW: i64 = 1024;
/// Most entries one write evicts.
pub const MAX_EVICTIONS_PER_WRITE: u64 = 4;
/// Most rounds of learning per write, before it gives up until the next write.
const MAX_LEARNING_PER_WRITE: u32 = 16;
/// Entries `stat`ed into the index before each choice of a victim, until the
/// handle's sweep has gone over the whole cache once.
pub const LEARN_PER_EVICTION: usize = 2;
/// Entries `stat`ed into the index before each choice of a victim once the
/// handle's sweep has gone over the whole cache.
pub const LEARN_PER_EVICTION_SWEPT: usize = 1;
/// While the index knows fewer entries than this, more are `stat`ed before
/// each choice ([`LEARN_WHILE_SHORT`]), so that the first victims of a handle
/// are not chosen among a handful.
pub const SHORT_INDEX: usize = 256;
/// Entries `stat`ed before each choice while the index is short.
pub const LEARN_WHILE_SHORT: usize = 8;
/// A victim whose record was made (by a `stat`) within a `TRUST_DIVISOR`th of
/// the time the entry had then been idle is removed without a second `stat`.
/// A record of the handle's own write, made as the entry was used, is never
/// trusted so: another handle may have read the entry since.
pub const TRUST_DIVISOR: u32 = 4;
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

/// The size limits of a handle, its census, and its index of entries.
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
    index: RecencyIndex,
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
                index: RecencyIndex::default(),
            }),
        }))
    }

    /// Records the write of an entry (`written`: its record, with its file's
    /// modification time exactly and its size; `replaced`: the size of the
    /// entry it replaced, if any) and evicts what the limits require.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed or an entry not removed.
    pub fn after_write(&self, written: Record, replaced: Option<u64>) -> Result<Removed> {
        let mut state = self.lock();
        state.census.record(
            written.hash.shard(),
            Size {
                entries: i64::from(replaced.is_none()),
                bytes: written.size as i64 - replaced.unwrap_or(0) as i64,
            },
        );
        state.index.learn(written);
        state.census.after_write(&self.layout)?;
        self.evict(&mut state)
    }

    /// Records that the handle used an entry (a `get` moved its last use to
    /// `used.used`): its record is renewed, so that an older one is not acted on.
    pub fn after_use(&self, used: Record) {
        self.lock().index.learn(used);
    }

    /// Records that entry `hash`, of `size` bytes, was removed.
    pub fn after_remove(&self, hash: &KeyHash, size: u64) {
        let mut state = self.lock();
        state.index.forget_entry(hash);
        state
            .census
            .record(hash.shard(), Size::entry(size).negated());
        state.census.after_remove(&self.layout);
    }

    /// Records that every entry was removed.
    pub fn after_clear(&self) {
        let mut state = self.lock();
        state.census.cleared(&self.layout);
        state.index.clear();
    }

    /// The number of entries and bytes this handle takes the cache to hold.
    pub fn estimate(&self) -> Size {
        self.lock().census.size()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is an estimate and an index of hints: a panic elsewhere
        // cannot leave it harmful, so a poisoned lock is simply taken over.
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
        let mut learning = 0;
        while self.over(state.census.size())
            && removed.evicted + removed.expired < MAX_EVICTIONS_PER_WRITE
        {
            let now = now_ms();
            if learning == MAX_LEARNING_PER_WRITE {
                break; // nothing evictable in sight: the census is ahead of the disk
            }
            learning += 1;
            let learned =
                if !state.census.swept_once() && state.census.size().entries < EXHAUSTIVE_BELOW {
                    state.census.sample_everything(&self.layout)?
                } else {
                    let count = if state.index.len() < SHORT_INDEX {
                        LEARN_WHILE_SHORT
                    } else if state.census.swept_once() {
                        LEARN_PER_EVICTION_SWEPT
                    } else {
                        LEARN_PER_EVICTION
                    };
                    state.census.candidates(&self.layout, count)?
                };
            let Some(victim) = state.index.take_most_evictable_with(learned, now) else {
                continue;
            };
            if let Some(size) = self.remove_unless_used(state, &victim)? {
                state
                    .census
                    .record(victim.hash.shard(), Size::entry(size).negated());
                if victim.expires_ms <= now {
                    removed.expired += 1;
                } else {
                    removed.evicted += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Removes `victim`'s file unless it is gone or was used (or replaced)
    /// since the record was made — then its record is replaced by what the
    /// `stat` said; the size of the file removed, if it was. A record recent
    /// enough (see [`TRUST_DIVISOR`]) is taken as true without a `stat`.
    fn remove_unless_used(&self, state: &mut State, victim: &Record) -> Result<Option<u64>> {
        let shard = victim.hash.shard();
        let file_name = victim.hash.file_name();
        let name = file_name.as_str();
        let by_path;
        let dir = match state.census.listed_dir(shard) {
            Some(dir) => dir,
            None => {
                by_path = DirHandle::by_path(self.layout.shard_dir(shard));
                &by_path
            }
        };
        let path = || dir.path().join(name);
        let size = if still_trusted(victim, SystemTime::now()) {
            victim.size
        } else {
            match dir.stat(name) {
                Ok(stat) if stat.modified > victim.used => {
                    state.index.learn(Record::from_stat(victim.hash, &stat));
                    return Ok(None);
                }
                Ok(stat) => stat.len,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("read metadata", &path(), e)),
            }
        };
        match dir.remove(name) {
            Ok(()) => Ok(Some(size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("remove evicted entry", &path(), e)),
        }
    }
}

/// Whether `record` is recent enough, at `now`, to be acted on without a new
/// `stat`: made within a [`TRUST_DIVISOR`]th of the time the entry had then
/// been idle.
fn still_trusted(record: &Record, now: SystemTime) -> bool {
    let since = now.duration_since(record.seen).unwrap_or(Duration::MAX);
    let idle = record.seen.duration_since(record.used).unwrap_or_default();
    since.saturating_mul(TRUST_DIVISOR) < idle
}

impl Drop for Evictor {
    fn drop(&mut self) {
        self.lock().census.flush_now(&self.layout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::NEVER;

    fn seen(used_s: u64, seen_s: u64) -> Record {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        Record {
            hash: KeyHash::of("k"),
            used: at(used_s),
            expires_ms: NEVER,
            seen: at(seen_s),
            size: 1,
        }
    }

    #[test]
    fn a_record_is_trusted_for_a_fraction_of_the_idle_time_it_saw() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        // Idle for an hour when seen a minute ago: still idle.
        assert!(still_trusted(&seen(10_000 - 3_660, 10_000 - 60), now));
        // Seen longer ago than a quarter of that hour: `stat` again.
        assert!(!still_trusted(&seen(10_000 - 4_600, 10_000 - 1_000), now));
        // The handle's own write: used as it was seen, never trusted.
        assert!(!still_trusted(&seen(9_999, 9_999), now));
        // Seen "after" now (the clock went back): not trusted.
        assert!(!still_trusted(&seen(5_000, 10_001), now));
    }
}
