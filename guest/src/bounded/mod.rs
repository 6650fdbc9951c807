//! Bounded caches: keeping a cache within `max_entries` / `max_bytes`.
//!
//! A bounded handle knows how big the cache is from a **shared count** (the
//! census, [`census`]), corrected by periodic **recounts** ([`recount`]); after
//! each write it **evicts** while the count is over a limit, choosing victims
//! from an **index** of what it knows of the entries' last use ([`recency`]),
//! which its own writes and reads keep, and a **sweep** over the shards
//! ([`sampler`]) fills with the entries others wrote.
//!
//! # The shared count
//!
//! The census file (`<root>/census-3`, format in [`crate::format`]) holds the
//! number of entries and bytes as the bounded handles have reported them, per
//! shard the sum of the changes reported to it (for recounts), and each
//! writing handle's **reservation**. Each such handle knows its own changes
//! exactly — before a write it `stat`s the entry, so it knows whether it adds
//! an entry or replaces one and by how many bytes — and adds them up in
//! memory. It **flushes** before a write its reservation would not cover
//! (its first write, then every `F` entries it adds; `F` = the limit / 256,
//! between 1 and 32), after removing entries (its first removal at once,
//! then 2, 4, … up to `F` at a time; such a report keeps the reservation as
//! it is), when its last report is older than [`census::FLUSH_AGE`], and when
//! it is dropped: under the census
//! lock (a `create_new` lock file, [`crate::exclusion`]) it reads the file,
//! adds its changes, renews its reservation of the next entries — one at its
//! first report, twice as many at each report after, up to `F` (bytes alike:
//! the size of the first entry, doubling up to `F` bytes of the byte limit; at
//! least the entry about to be written; nothing where it holds none and the
//! write adds none) — or gives it up, when dropped — and replaces the file.
//! A write beyond its reservation first `stat`s its entry: a replacement adds
//! no entry, so it reserves no entry. A write that would take the cache over
//! a limit needs no reservation (nor the `stat`): the handle evicts for it as
//! soon as it is written, so its growth stays nil but for that instant. So a
//! handle that goes away without reporting — killed, or in an instance its
//! host throws away after a request — leaves behind a reservation of about
//! what it wrote, never of growth that did not happen (killed in that
//! instant, one entry uncounted), and has reported about half of what it
//! removed at least (all of it, if it removed one entry).
//!
//! The size a handle holds against its limits is the file as it last read it,
//! plus the others' reservations, plus its own unreported changes. So the
//! growth a handle has not reported yet is counted by every other handle
//! ahead of time, and a handle killed before it reports leaves no uncounted
//! writes (but the one it may have just made at a limit): its reservation
//! stays in the file. A reservation not renewed for
//! the lease is counted as entries by the next flush (its handle died, or
//! went quiet); that over-counts what the handle did not use, which a recount
//! corrects, and a live handle that finds its reservation counted so reports
//! only the difference. A handle never holds growth beyond its reservation
//! but in the instant between a write at a limit and its eviction: when the
//! flush that would reserve more fails (the census lock stayed busy for
//! [`census::LOCK_WAIT`]), each entry it adds beyond it is paid for by an
//! eviction, until a flush succeeds. (The file holds up to
//! [`crate::format::MAX_RESERVATIONS`]; a handle that finds it full keeps up
//! to `F` unreported without one.)
//!
//! # The bound
//!
//! With `P` handles writing at once, the cache holds at most
//! `limit + (P − 1) × (F + 1) + 1` entries (bytes alike, with the byte limit's
//! `F`), plus the drift a recount leaves alone (3 % of the limit), whether
//! handles close or are killed. Why: take the handle that flushed last. The
//! census file then holds everything reported and every reservation, and
//! that handle evicted until those plus its own changes since were within the
//! limit — but for the entry it has just written at the limit and not yet
//! evicted for (the `+ 1`); each other handle's growth since is within its
//! reservation, or one entry beyond it for such an instant. What
//! can still escape the count is a recount's error: a recount that lists a
//! shard after another handle removed entries there, and before that handle
//! reported it, counts the removals twice once they are reported — up to
//! `(P − 1) × F` — and a correction it made would leave the cache that much
//! over. The torture tests assert this bound, from a cold start, with
//! the CPU starved and with writers killed.
//!
//! # Recounts
//!
//! The count can drift: a handle killed before it flushed, two handles adding
//! the same new key at once, handles opened without a limit (they do not
//! report). So every bounded handle also recounts the cache, in **passes**
//! over the 256 shard directories: a pass starts every `K` writes (`K` at least
//! [`recount::MIN_WRITES_BETWEEN_PASSES`], and entries /
//! [`recount::CENSUS_NAMES_PER_WRITE`] for a large cache, so that a write pays
//! for about two listed names), and its writes list shards in order. Far
//! below the limits passes are rarer: a handle that sees room for `R` more
//! entries starts one only every `R / 8` writes ([`recount::ROOM_SHARE`]).
//! Both are taken at each write, so passes come at the everyday rate again as
//! the cache fills: a drift matters only where it would take the cache over
//! a limit, and there the handle looks as often as ever.
//! Each shard's count is brought up to the end of the pass by the changes to
//! that shard the handle came to know of since it was listed: its own, and
//! those the others reported. At the end of the pass, under the census lock,
//! the handle compares the recount with the shared count as it is then (plus
//! its own pending changes), and corrects a drift larger than 3 % (bytes:
//! 6 %), unless another handle corrected since the pass began.
//!
//! A small cache's pass is short: about entries² / 2 000 000 writes (4 for
//! 2 000 entries, each listing 512 names; 128 for 16 000); from 250 000
//! entries a write of a pass lists 8 names, and a pass takes `K / 4` writes. Bytes of a
//! shard are its count times the mean size of the entries sampled in it
//! (exact when all were sampled). A cache without a census file (the first
//! bounded open) is counted at `open`: shards are listed until
//! [`census::FIRST_CENSUS_NAMES`] names were seen — all of a small cache — and
//! the rest extrapolated; the census file marks such a count, and the first
//! complete recount replaces it whatever the drift.
//!
//! Passes come only to a handle that writes thousands of times; where every
//! bounded handle writes a few times and goes (a host that instantiates per
//! request), or writes rarely, none would come for long. So each write
//! checks the date of the count's last correction, as the census file last
//! read holds it: a count neither corrected nor recounted whole for
//! [`census::STALE_COUNT_AGE`] (an hour), and of at most
//! [`census::STALE_RECOUNT_MAX_ENTRIES`] entries, is recounted at once in a
//! whole pass, which corrects it as a recount the user asked for does. The
//! handle first dates the count anew under the census lock (checking its date
//! again there), so that the handles writing at that moment do not all
//! recount. A larger cache keeps such a drift until a pass or `recount`.
//!
//! # What is evicted
//!
//! After each write, while the count says the cache is over a limit, the
//! handle evicts — all of the excess, which after a flush that shows it the
//! others' growth is up to `(P − 1) × F` entries, within at most
//! [`MAX_ATTEMPTS_PER_WRITE`] victims tried, so that no write pays for a long
//! catch-up. Each entry file carries its last use in
//! its modification time (set when it is written, and moved forward by `get`
//! at most every [`TOUCH_INTERVAL`]) and its expiry in its access time (see
//! [`crate::format`]), so one `stat` judges it. The handle evicts the most
//! evictable record of its index: expired entries first, then the least
//! recently used. It learns
//! - every entry it writes itself, at no cost (the write sets the file's
//!   modification time and tells the index exactly that time), and every
//!   entry whose last use its own `get` moves forward (it forgets those it
//!   removes);
//! - the others from its sweep: before each choice of a victim it goes over
//!   [`LEARN_PER_EVICTION`] more names, [`LEARN_PER_EVICTION_SWEPT`] once the
//!   sweep has gone over the whole cache since the handle opened (from then on
//!   it knows every entry that is not newer than its last sweep), and
//!   [`LEARN_WHILE_SHORT`] while it knows fewer than [`SHORT_INDEX`] entries,
//!   and `stat`s those it has no record of. A name it has a record of costs
//!   nothing: its own writes, say, are `stat`ed once, as victims (below). A
//!   small cache (under [`EXHAUSTIVE_BELOW`] entries) is learned whole at the
//!   handle's second choice of a victim, so from then on the order there is
//!   exact; its first choice learns a sample ([`FIRST_CHOICE_NAMES`]; in a
//!   sparse cache it lists on past empty shards until it finds names), so
//!   that a handle that writes once and goes — a per-request instance — does
//!   not pay for a sweep of the whole cache.
//!
//! The index forgets nothing it paid to learn, so few `stat`s per eviction
//! give a good order: a handle evicts its own writes in exact LRU order, and
//! entries written by others in LRU order once its sweep has seen them.
//!
//! A record can be stale: another handle may have read, replaced or removed
//! the entry since. Several handles at capacity all go for the least recently
//! used entries, so most records of entries others wrote are of entries
//! another handle has just removed. A victim found gone (or used since) spends
//! its record, not a round of learning: the next record is tried before more
//! entries are learned. A victim is `stat`ed again just before it is removed,
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

mod census;
mod recency;
mod recount;
mod sampler;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, Result};
use crate::layout::{self, KeyHash, SHARDS};
use crate::options::{Options, now_ms};
use crate::platform::Dir;

use census::Census;
pub(crate) use census::{FLUSH_AGE, STALE_COUNT_AGE};
use recency::RecencyIndex;
pub(crate) use recency::Record;
pub(crate) use recount::MIN_WRITES_BETWEEN_PASSES;
use sampler::{MAX_LISTINGS_PER_CANDIDATES, Sampler};

/// The shortest span after which `get` refreshes an entry's last-use time.
pub(crate) const TOUCH_INTERVAL: Duration = Duration::from_millis(100);
/// Below this many entries, a handle's second choice of a victim learns every
/// entry (a whole sweep at once).
pub(crate) const EXHAUSTIVE_BELOW: i64 = 1024;
/// Names a handle's first choice of a victim in a cache under
/// [`EXHAUSTIVE_BELOW`] entries learns, from up to
/// [`FIRST_CHOICE_LISTINGS`] shards: a handle that writes once and goes (a
/// per-request instance) pays for a sample, not for a whole sweep (which
/// costs ~1–3 ms natively).
pub(crate) const FIRST_CHOICE_NAMES: usize = 16;
/// Shards a handle's first choice of a victim lists at most.
pub(crate) const FIRST_CHOICE_LISTINGS: usize = 8;
/// Most victims one write tries (each a `stat` or an `unlink`, and a few
/// entries learned): what keeps a write from paying for a long catch-up. A
/// write needs one at capacity, a few more when several handles evict the
/// same entries, and about `(P − 1) × F` when a flush shows it what `P − 1`
/// other handles added.
pub(crate) const MAX_ATTEMPTS_PER_WRITE: u32 = 256;
/// Names of the sweep gone over before each choice of a victim (those the
/// index has no record of are `stat`ed into it), until the handle's sweep has
/// gone over the whole cache once.
pub(crate) const LEARN_PER_EVICTION: usize = 2;
/// Names of the sweep gone over before each choice of a victim once the
/// handle's sweep has gone over the whole cache.
pub(crate) const LEARN_PER_EVICTION_SWEPT: usize = 1;
/// While the index knows fewer entries than this, more are `stat`ed before
/// each choice ([`LEARN_WHILE_SHORT`]), so that the first victims of a handle
/// are not chosen among a handful.
pub(crate) const SHORT_INDEX: usize = 256;
/// Names of the sweep gone over before each choice while the index is short.
pub(crate) const LEARN_WHILE_SHORT: usize = 8;
/// A victim whose record was made (by a `stat`) within a `TRUST_DIVISOR`th of
/// the time the entry had then been idle is removed without a second `stat`.
/// A record of the handle's own write, made as the entry was used, is never
/// trusted so: another handle may have read the entry since.
pub(crate) const TRUST_DIVISOR: u32 = 4;
/// Largest number of changes a handle keeps unreported.
const MAX_FLUSH_EVERY: u64 = 32;

/// A number of entries and bytes, or a change of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Size {
    /// Entry files.
    pub entries: i64,
    /// Bytes of entry files.
    pub bytes: i64,
}

impl Size {
    /// One entry file of `bytes` bytes.
    pub(crate) fn entry(bytes: u64) -> Self {
        Self {
            entries: 1,
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        }
    }

    /// The opposite change.
    pub(crate) fn negated(self) -> Self {
        Self {
            entries: self.entries.wrapping_neg(),
            bytes: self.bytes.wrapping_neg(),
        }
    }

    /// A `[entries, bytes]` pair, as the census file holds a shard's changes.
    pub(crate) fn from_pair([entries, bytes]: [i64; 2]) -> Self {
        Self { entries, bytes }
    }

    /// The `[entries, bytes]` pair.
    pub(crate) fn pair(self) -> [i64; 2] {
        [self.entries, self.bytes]
    }

    /// Twice this, each figure at most `cap`'s.
    pub(crate) fn doubled_within(self, cap: Self) -> Self {
        Self {
            entries: self.entries.saturating_mul(2).min(cap.entries),
            bytes: self.bytes.saturating_mul(2).min(cap.bytes),
        }
    }

    /// The sum; wrapping, as the census file's sums of shard changes do (a
    /// damaged file's figures must not panic a handle).
    pub(crate) fn plus(self, other: Self) -> Self {
        Self {
            entries: self.entries.wrapping_add(other.entries),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

/// A small xorshift generator for the recounts' and the sweep's random picks
/// (no cryptographic use), seeded from [`layout::nonce`].
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        Self(layout::nonce() | 1)
    }

    /// A number below `bound` (which must not be zero).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// The key hashes of shard `shard`'s entries and its directory, open; `None`
/// if it has no entries (or no directory).
///
/// # Errors
/// An I/O error if the shard cannot be opened or listed.
pub(crate) fn open_shard(cache: &CacheDir, shard: u8) -> Result<Option<(Arc<Dir>, Vec<KeyHash>)>> {
    let Some(dir) = crate::scan::shard(cache, shard)? else {
        return Ok(None);
    };
    let hashes = crate::scan::entry_hashes(&dir)?;
    Ok((!hashes.is_empty()).then_some((dir, hashes)))
}

/// `stat`s the entry file of `hash` in `dir` into a record; `None` if it is gone.
///
/// # Errors
/// An I/O error other than the file being gone.
pub(crate) fn probe(dir: &Dir, hash: KeyHash) -> Result<Option<Record>> {
    let file_name = hash.file_name();
    let name = file_name.as_str();
    match dir.stat(name) {
        Ok(stat) => Ok(Some(Record::from_stat(hash, &stat))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read metadata", &dir.path().join(name), e)),
    }
}

/// What the evictor removed during one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Live entries evicted.
    pub evicted: u64,
    /// Expired entries removed.
    pub expired: u64,
}

/// The size limits of a handle, its census, and its index of entries.
#[derive(Debug)]
pub(crate) struct Evictor {
    cache: Arc<CacheDir>,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    census: Census,
    sampler: Sampler,
    index: RecencyIndex,
    /// Whether the handle chose a victim before (learned for one).
    chose_before: bool,
}

impl Evictor {
    /// The evictor for `options` on `cache`, or `None` if they set no limit.
    ///
    /// # Errors
    /// An I/O error if the census cannot be read or taken.
    pub(crate) fn open(options: &Options, cache: &Arc<CacheDir>) -> Result<Option<Self>> {
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
        let census = Census::open(cache, options.lease, flush_every)?;
        Ok(Some(Self {
            cache: Arc::clone(cache),
            max_entries: options.max_entries,
            max_bytes: options.max_bytes,
            state: Mutex::new(State {
                census,
                sampler: Sampler::new(),
                index: RecencyIndex::default(),
                chose_before: false,
            }),
        }))
    }

    /// Before writing an entry file of `size` bytes: makes sure the growth it
    /// may add is counted (see the module docs). Within the handle's
    /// reservation there is nothing to do; nor where the write, as a new
    /// entry, would take the cache over a limit: the handle evicts for it as
    /// soon as it is written ([`Evictor::after_write`]), so it needs no
    /// reservation. Else `replaced` says (one `stat`) the size of the entry
    /// the write replaces, if any: a replacement adds no entry, so it reserves
    /// none — a handle that goes away without reporting after replacing an
    /// entry leaves nothing to be counted as one — and the handle reserves
    /// what the write adds.
    pub(crate) fn before_write(&self, size: u64, replaced: impl FnOnce() -> Option<u64>) {
        let mut state = self.lock();
        let mut growth = Size::entry(size);
        if state.census.covers(growth)
            || self.over(state.census.size_with_reservations().plus(growth))
        {
            return;
        }
        if let Some(old) = replaced() {
            growth = Size {
                entries: 0,
                bytes: growth.bytes - i64::try_from(old).unwrap_or(i64::MAX),
            };
        }
        state.census.reserve(&self.cache, growth);
    }

    /// Records the write of an entry (`written`: its record, with its file's
    /// modification time exactly and its size; `replaced`: the size of the
    /// entry it replaced, if any) and evicts what the limits require.
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed or an entry not removed.
    pub(crate) fn after_write(&self, written: Record, replaced: Option<u64>) -> Result<Removed> {
        let mut state = self.lock();
        state.census.record(
            written.hash.shard(),
            Size {
                entries: i64::from(replaced.is_none()),
                bytes: written.size as i64 - replaced.unwrap_or(0) as i64,
            },
        );
        state.index.learn(written);
        let room = self.room(state.census.size_with_reservations());
        let recounted = state.census.after_write(&self.cache, room, written.used);
        let removed = self.evict(&mut state);
        if state.census.unreported_growth_beyond_reservation() {
            // Nothing could be evicted for a write at a limit: its growth is
            // reported at once, so that it is counted.
            state.census.reserve(&self.cache, Size::default());
        }
        if removed
            .as_ref()
            .is_ok_and(|removed| *removed != Removed::default())
        {
            // Evictions beyond the write's own growth are reported as removals are.
            state.census.after_remove(&self.cache);
        }
        recounted?;
        removed
    }

    /// Records that the handle used an entry (a `get` moved its last use to
    /// `used.used`): its record is renewed, so that an older one is not acted on.
    pub(crate) fn after_use(&self, used: Record) {
        self.lock().index.learn(used);
    }

    /// Records that entry `hash`, of `size` bytes, was removed.
    pub(crate) fn after_remove(&self, hash: &KeyHash, size: u64) {
        let mut state = self.lock();
        state.index.forget_entry(hash);
        state
            .census
            .record(hash.shard(), Size::entry(size).negated());
        state.census.after_remove(&self.cache);
    }

    /// Records that every entry was removed.
    pub(crate) fn after_clear(&self) {
        let mut state = self.lock();
        state.census.cleared(&self.cache);
        state.index.clear();
    }

    /// Recounts the cache now and corrects the shared count by it; the
    /// entries and bytes counted (see [`crate::FileStore::recount`]).
    ///
    /// # Errors
    /// As [`Census::recount_now`].
    pub(crate) fn recount(&self) -> Result<Size> {
        self.lock().census.recount_now(&self.cache)
    }

    /// The number of entries and bytes this handle takes the cache to hold.
    pub(crate) fn estimate(&self) -> Size {
        self.lock().census.size()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is an estimate and an index of hints: a panic elsewhere
        // cannot leave it harmful, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many more entries the limits allow in a cache of `size` (room in
    /// bytes counted in entries of the mean size).
    fn room(&self, size: Size) -> u64 {
        let entries = u64::try_from(size.entries).unwrap_or(0);
        let bytes = u64::try_from(size.bytes).unwrap_or(0);
        let entry_room = self
            .max_entries
            .map_or(u64::MAX, |limit| limit.saturating_sub(entries));
        let byte_room = self.max_bytes.map_or(u64::MAX, |limit| {
            limit.saturating_sub(bytes) / (bytes / entries.max(1)).max(1)
        });
        entry_room.min(byte_room)
    }

    fn over(&self, size: Size) -> bool {
        let over = |limit: Option<u64>, value: i64| {
            limit.is_some_and(|limit| value > i64::try_from(limit).unwrap_or(i64::MAX))
        };
        over(self.max_entries, size.entries) || over(self.max_bytes, size.bytes)
    }

    /// Whether the handle must evict now: the cache is over a limit as it
    /// sees it (others' reservations included), or it holds unreported growth
    /// beyond its own reservation (the entry it has just written at a limit,
    /// or growth the census flush that would have reserved more failed to
    /// report): each new entry beyond that is paid for by an eviction, so that
    /// all growth is counted, reported or reserved.
    fn must_evict(&self, census: &Census) -> bool {
        self.over(census.size_with_reservations()) || census.unreported_growth_beyond_reservation()
    }

    /// Evicts while [`Evictor::must_evict`], within
    /// [`MAX_ATTEMPTS_PER_WRITE`] victims tried.
    fn evict(&self, state: &mut State) -> Result<Removed> {
        let mut removed = Removed::default();
        let mut learn = true;
        let mut attempts = 0;
        while self.must_evict(&state.census) {
            if attempts == MAX_ATTEMPTS_PER_WRITE {
                break; // the next write goes on from here
            }
            attempts += 1;
            let now = now_ms();
            let learned = if learn {
                self.learn(state)?
            } else {
                Vec::new()
            };
            let Some(victim) = state.index.take_most_evictable_with(learned, now) else {
                if learn {
                    break; // nothing evictable in sight: the census is ahead of the disk
                }
                learn = true;
                continue;
            };
            match self.remove_unless_used(state, &victim)? {
                Some(size) => {
                    state
                        .census
                        .record(victim.hash.shard(), Size::entry(size).negated());
                    if victim.expires_ms <= now {
                        removed.expired += 1;
                    } else {
                        removed.evicted += 1;
                    }
                    learn = true;
                }
                // Gone, or used since: another handle got there first. Its
                // record is spent; the next one is tried before learning more.
                None => learn = false,
            }
        }
        Ok(removed)
    }

    /// Entries to learn before the next choice of a victim (see the module
    /// docs): a few from the sweep; in a small cache, a larger sample at the
    /// handle's first choice and all of it at its second.
    fn learn(&self, state: &mut State) -> Result<Vec<Record>> {
        let small = !state.sampler.swept_once() && state.census.size().entries < EXHAUSTIVE_BELOW;
        let first = !std::mem::replace(&mut state.chose_before, true);
        if small && !first {
            return state.sampler.sample_everything(&self.cache);
        }
        let (count, listings) = if small {
            (FIRST_CHOICE_NAMES, FIRST_CHOICE_LISTINGS)
        } else if state.index.len() < SHORT_INDEX {
            (LEARN_WHILE_SHORT, MAX_LISTINGS_PER_CANDIDATES)
        } else if state.sampler.swept_once() {
            (LEARN_PER_EVICTION_SWEPT, MAX_LISTINGS_PER_CANDIDATES)
        } else {
            (LEARN_PER_EVICTION, MAX_LISTINGS_PER_CANDIDATES)
        };
        let State { sampler, index, .. } = state;
        let listed_before = sampler.listed();
        loop {
            let sample =
                sampler.candidates(&self.cache, count, listings, |hash| index.knows(hash))?;
            // The shards a first choice lists in a sparse small cache may all
            // be empty: it lists on (at most one whole sweep) rather than
            // choose among nothing, which would leave the write over the limit
            // and the next one two victims to choose, the second by learning
            // everything.
            let swept_through = sampler.listed() - listed_before >= SHARDS as u64;
            if sample.offered > 0 || !small || swept_through {
                return Ok(sample.records);
            }
        }
    }

    /// Removes `victim`'s file unless it is gone or was used (or replaced)
    /// since the record was made — then its record is replaced by what the
    /// `stat` said; the size of the file removed, if it was. A record recent
    /// enough (see [`TRUST_DIVISOR`]) is taken as true without a `stat`.
    fn remove_unless_used(&self, state: &mut State, victim: &Record) -> Result<Option<u64>> {
        let shard = Sub::Shard(victim.hash.shard());
        let file_name = victim.hash.file_name();
        let name = file_name.as_str();
        let path = || self.cache.entry_path(&victim.hash);
        let Some(dir) = self
            .cache
            .sub(shard, Missing::Leave)
            .map_err(|e| Error::io("open directory", &self.cache.sub_path(shard), e))?
        else {
            return Ok(None);
        };
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
        match dir.remove_file(name) {
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
        self.lock().census.flush_before_drop(&self.cache);
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

    /// A cache limited to as many entries as `keys`, filled with them by a
    /// handle that closes, and a fresh handle's evictor on it.
    fn full_cache_and_a_fresh_evictor(keys: &[String]) -> (tempfile::TempDir, Evictor) {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options {
            max_entries: Some(keys.len() as u64),
            ..Options::default()
        };
        let filler = crate::FileStore::open(dir.path(), options.clone()).expect("open");
        for key in keys {
            filler
                .insert(key, b"v", crate::Expiry::Never)
                .expect("insert");
        }
        drop(filler);
        let cache = Arc::new(
            CacheDir::open(dir.path(), crate::platform::Access::Private).expect("open cache dir"),
        );
        let evictor = Evictor::open(&options, &cache)
            .expect("open")
            .expect("bounded");
        (dir, evictor)
    }

    /// What `evictor` removes for the write of a new entry `key` of 100
    /// bytes (not written on disk: the evictor is only told of it).
    fn write_new(evictor: &Evictor, key: &str) -> Removed {
        evictor.before_write(100, || None);
        let written = Record::own_use(KeyHash::of(key), SystemTime::now(), NEVER, 100);
        evictor.after_write(written, None).expect("after write")
    }

    /// Asserts that a fresh `evictor`'s first write of a new entry into a
    /// full small cache evicts one entry, chosen from a sample.
    fn first_write_evicts_one_from_a_sample(evictor: &Evictor) {
        let first = write_new(evictor, "first");
        assert_eq!(first.evicted, 1, "room made for the write");
        assert!(
            evictor.lock().index.len() <= FIRST_CHOICE_NAMES,
            "a sample learned (and the write)"
        );
    }

    /// A handle that writes once into a full small cache — a per-request
    /// instance — learns a sample to choose its victim, not the whole cache;
    /// at its second choice it learns everything.
    #[test]
    fn a_first_choice_in_a_small_cache_samples_and_the_second_learns_all() {
        const LIMIT: u64 = 500;
        let keys: Vec<String> = (0..LIMIT).map(|i| format!("k{i}")).collect();
        let (_dir, evictor) = full_cache_and_a_fresh_evictor(&keys);
        first_write_evicts_one_from_a_sample(&evictor);
        assert!(!evictor.lock().sampler.swept_once());
        let second = write_new(&evictor, "second");
        assert_eq!(second.evicted, 1);
        let state = evictor.lock();
        assert!(state.sampler.swept_once(), "the whole cache learned");
        assert!(state.index.len() >= LIMIT as usize - 2);
    }

    /// A first choice whose shards hold nothing lists on until it finds
    /// names, rather than leave the write nothing to evict: here every entry
    /// lies in one shard, so the first few shards a fresh handle lists are
    /// almost surely empty.
    #[test]
    fn a_first_choice_that_finds_empty_shards_lists_on() {
        const LIMIT: usize = 20;
        let one_shard = KeyHash::of("k0").shard();
        let keys: Vec<String> = (0..)
            .map(|i| format!("k{i}"))
            .filter(|key| KeyHash::of(key).shard() == one_shard)
            .take(LIMIT)
            .collect();
        let (_dir, evictor) = full_cache_and_a_fresh_evictor(&keys);
        first_write_evicts_one_from_a_sample(&evictor);
    }

    /// A write at a limit for which nothing can be evicted (the count is
    /// ahead of the disk: the entries were removed behind the census's back)
    /// is counted at once — reported to the census file — so that a handle
    /// that goes away without reporting leaves no uncounted entry.
    #[test]
    fn a_write_at_a_limit_that_nothing_can_be_evicted_for_is_counted_at_once() {
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let (dir, evictor) = full_cache_and_a_fresh_evictor(&keys);
        for key in &keys {
            std::fs::remove_file(evictor.cache.entry_path(&KeyHash::of(key)))
                .expect("remove an entry file");
        }
        let census = || crate::testing::census(dir.path()).expect("a census");
        assert!(census().reservations.is_empty());
        let removed = write_new(&evictor, "new");
        assert_eq!(removed, Removed::default(), "nothing there to evict");
        let census = census();
        let reserved: i64 = census.reservations.iter().map(|r| r.entries).sum();
        assert_eq!(
            census.entries + reserved,
            keys.len() as i64 + 1,
            "the write's entry is counted (reported or reserved)"
        );
        std::mem::forget(evictor);
    }

    /// A fresh handle whose write replaces an entry reserves nothing: were it
    /// discarded unclosed (a per-request instance), a reservation would be
    /// counted as an entry that is not there. A new key reserves its entry.
    #[test]
    fn a_replacement_reserves_no_entry() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = || Options {
            max_entries: Some(1000),
            ..Options::default()
        };
        let filler = crate::FileStore::open(dir.path(), options()).expect("open");
        filler
            .insert("k", b"v", crate::Expiry::Never)
            .expect("insert");
        drop(filler);
        let reserved = || {
            crate::testing::census(dir.path())
                .expect("a census")
                .reservations
                .len()
        };
        let replacing = crate::FileStore::open(dir.path(), options()).expect("open");
        replacing
            .insert("k", b"new value", crate::Expiry::Never)
            .expect("insert");
        assert_eq!(reserved(), 0, "a replacement reserves nothing");
        let adding = crate::FileStore::open(dir.path(), options()).expect("open");
        adding
            .insert("new", b"v", crate::Expiry::Never)
            .expect("insert");
        assert_eq!(reserved(), 1, "a new key reserves its entry");
        // With a byte limit too, a larger value reserves its bytes, no entry.
        let both = crate::FileStore::open(
            dir.path(),
            Options {
                max_bytes: Some(1 << 20),
                ..options()
            },
        )
        .expect("open");
        both.insert("k", &[7; 500], crate::Expiry::Never)
            .expect("insert");
        let census = crate::testing::census(dir.path()).expect("a census");
        let held: Vec<(i64, bool)> = census
            .reservations
            .iter()
            .map(|reservation| (reservation.entries, reservation.bytes > 0))
            .collect();
        assert!(
            held.contains(&(0, true)),
            "bytes reserved, no entry: {held:?}"
        );
        std::mem::forget(replacing);
        std::mem::forget(adding);
        std::mem::forget(both);
    }

    /// A cache limited to [`DriftedCache::LIMIT`] entries, filled to it by a
    /// bounded handle that closed, then given 30 entries more by a handle
    /// without a limit: on disk 30 entries beyond the shared count.
    struct DriftedCache {
        dir: tempfile::TempDir,
        unbounded: crate::FileStore,
    }

    impl DriftedCache {
        const LIMIT: u64 = 100;
        const DRIFT: u64 = 30;

        fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let unbounded = crate::FileStore::open(dir.path(), Options::default()).expect("open");
            let cache = Self { dir, unbounded };
            let filler = cache.open_bounded();
            (0..Self::LIMIT).for_each(|i| insert(&filler, &format!("k{i}")));
            drop(filler);
            (0..Self::DRIFT).for_each(|i| insert(&cache.unbounded, &format!("u{i}")));
            cache
        }

        /// A new handle limited to [`Self::LIMIT`] entries.
        fn open_bounded(&self) -> crate::FileStore {
            let options = Options {
                max_entries: Some(Self::LIMIT),
                ..Options::default()
            };
            crate::FileStore::open(self.dir.path(), options).expect("open")
        }

        /// The entry files on disk.
        fn on_disk(&self) -> u64 {
            self.unbounded.approx_size().expect("scan")
        }

        /// Dates the count's last correction back past [`STALE_COUNT_AGE`],
        /// as an hour without one would; the date.
        fn make_the_count_stale(&self) -> u64 {
            crate::testing::make_the_count_stale(self.dir.path()).expect("a census, aged")
        }
    }

    fn insert(store: &crate::FileStore, key: &str) {
        store
            .insert(key, b"v", crate::Expiry::Never)
            .expect("insert");
    }

    /// Entries written by a handle without a limit are out of the shared
    /// count, and where no bounded handle writes long enough to recount (a
    /// host that instantiates per request) nothing corrects that while the
    /// count is fresh: a recount asked for does, at once, and the next
    /// bounded write evicts the excess.
    #[test]
    fn an_asked_recount_corrects_a_drift_at_once() {
        const LIMIT: u64 = DriftedCache::LIMIT;
        let cache = DriftedCache::new();
        for i in 0..5 {
            insert(&cache.open_bounded(), &format!("request {i}"));
        }
        assert_eq!(
            cache.on_disk(),
            LIMIT + DriftedCache::DRIFT,
            "the drift stays"
        );
        let counter = cache.open_bounded();
        assert_eq!(counter.approx_size().expect("size"), LIMIT);
        assert_eq!(
            counter.recount().expect("recount"),
            LIMIT + DriftedCache::DRIFT
        );
        assert_eq!(
            counter.approx_size().expect("size"),
            LIMIT + DriftedCache::DRIFT
        );
        drop(counter);
        insert(&cache.open_bounded(), "after the recount");
        assert_eq!(cache.on_disk(), LIMIT, "the excess evicted");
    }

    /// Where every bounded handle writes once (a host that instantiates per
    /// request), none recounts in passes: a count neither corrected nor
    /// recounted for [`census::STALE_COUNT_AGE`] is recounted by the next
    /// handle's first write, which evicts the excess; the handles after it
    /// find the count fresh and recount nothing.
    #[test]
    fn a_stale_count_is_recounted_by_the_next_handles_first_write() {
        const LIMIT: u64 = DriftedCache::LIMIT;
        let cache = DriftedCache::new();
        insert(&cache.open_bounded(), "fresh count");
        assert_eq!(
            cache.on_disk(),
            LIMIT + DriftedCache::DRIFT,
            "a fresh count is not recounted"
        );

        let stale_since = cache.make_the_count_stale();
        insert(&cache.open_bounded(), "stale count");
        assert_eq!(cache.on_disk(), LIMIT, "recounted, and the excess evicted");
        let census = crate::testing::census(cache.dir.path()).expect("a census");
        assert!(census.reconciled_at > stale_since, "dated anew");
        assert_eq!(census.entries, LIMIT as i64);
        // The next handle finds the count fresh: a drift now stays.
        (0..10).for_each(|i| insert(&cache.unbounded, &format!("v{i}")));
        insert(&cache.open_bounded(), "fresh again");
        assert_eq!(cache.on_disk(), LIMIT + 10);
    }

    /// A long-lived handle that writes rarely comes to a recount pass only
    /// after thousands of writes: it too recounts a count it finds stale, at
    /// the write after the report that shows it so.
    #[test]
    fn a_handle_that_writes_rarely_recounts_a_stale_count() {
        const LIMIT: u64 = DriftedCache::LIMIT;
        let cache = DriftedCache::new();
        let handle = cache.open_bounded();
        insert(&handle, "first");
        assert_eq!(cache.on_disk(), LIMIT + DriftedCache::DRIFT);
        cache.make_the_count_stale();
        std::thread::sleep(FLUSH_AGE + Duration::from_millis(50));
        insert(&handle, "reports, and reads the stale date");
        assert_eq!(cache.on_disk(), LIMIT + DriftedCache::DRIFT);
        insert(&handle, "finds the count stale");
        assert_eq!(cache.on_disk(), LIMIT, "recounted, and the excess evicted");
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
