//! The shared count: how big the cache is, known to every bounded handle
//! across processes and wasm instances, at a flat cost per write and with no
//! lock on the write path (see the module docs of [`crate::bounded`]).

use std::time::{Duration, Instant, SystemTime};

use super::recount::{self, Recount, Recounted};
use super::{Rng, Size};
use crate::cache_dir::{CacheDir, Sub};
use crate::error::{Error, MissingOk, Result};
use crate::exclusion::{self, KeyLock, LockPolicy};
use crate::format::{self, CensusRecord, MAX_RESERVATIONS, Reservation};
use crate::layout::{self, CENSUS_FILE, KeyHash, SHARDS};
use crate::options::{now_ms, unix_ms};
use crate::platform;
use crate::race;

/// Names the first count lists at least (unless the cache is smaller).
pub(crate) const FIRST_CENSUS_NAMES: u64 = 16_384;
/// A handle reports its changes at least this often while it writes.
pub(crate) const FLUSH_AGE: Duration = Duration::from_millis(100);
/// Drift between a recount and the shared count that is left alone, as a
/// fraction of the count (bytes: twice that, for the sampled mean sizes). It
/// covers what other handles have not reported when a pass ends — at most
/// `(P − 1) × F`, 2.7 % of the limit with 8 handles — so that their unreported
/// changes are not taken for drift.
const DRIFT_TOLERATED: f64 = 0.03;
/// Age after which a count neither corrected nor recounted whole since is
/// recounted by the next bounded write (see [`Census::recount_if_stale`]).
pub(crate) const STALE_COUNT_AGE: Duration = Duration::from_secs(3600);
/// Largest count that such a recount is made for: it lists every name in one
/// write (~0.5–0.85 µs each natively, a host `stat` each under WASI).
pub(crate) const STALE_RECOUNT_MAX_ENTRIES: i64 = 65_536;
/// How long a flush waits for the census lock before trying again later.
pub(crate) const LOCK_WAIT: Duration = Duration::from_millis(20);
/// Age after which a census lock is taken for abandoned (or the handle's
/// lease, if shorter).
pub(crate) const LOCK_LEASE: Duration = Duration::from_secs(1);
/// A handle's first reservation (or the growth at hand, if larger): see
/// [`Census::next_reservation`].
const FIRST_RESERVATION: Size = Size {
    entries: 1,
    bytes: 0,
};
/// The shrinking a handle first reports at once: see [`Census::shrink_report`].
const FIRST_SHRINK_REPORT: Size = Size {
    entries: 1,
    bytes: 1,
};
/// How long a handle's last flush, as it is dropped, waits for the census
/// lock: until a lock abandoned just then would be taken over.
const LAST_FLUSH_WAIT: Duration = Duration::from_millis(1_100);

/// Whether a handle keeps or gives up its reservation when it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Renews it: [`Census::next_reservation`], or at least the given growth.
    Renew(Size),
    /// Renews it at the size it has (a report of removals needs no more).
    Keep,
    /// Gives it up (the handle is going).
    Release,
}

/// The changes to each shard a handle knows of: those reported in the census
/// file as it last read it, and its own pending ones.
#[derive(Debug, Clone, Copy)]
pub(super) struct Known<'a> {
    reported: &'a CensusRecord,
    pending: &'a [Size; SHARDS],
}

impl Known<'_> {
    /// The sum of the changes to `shard` this handle knows of.
    pub(super) fn changes(&self, shard: usize) -> Size {
        Size::from_pair(self.reported.shard_changes[shard]).plus(self.pending[shard])
    }
}

/// A bounded handle's knowledge of the cache's size. Not shared between
/// threads: the evictor keeps it behind a mutex.
#[derive(Debug)]
pub(crate) struct Census {
    lock: LockPolicy,
    shared: CensusRecord,
    /// This handle's token in the census file's reservations.
    owner: u64,
    /// The growth this handle has reserved in the census file, as it last
    /// wrote it (none before its first report).
    reserved: Size,
    /// The reservation its next report takes (at least the growth at hand):
    /// one entry (and no bytes) at first, twice the last one after each
    /// report, up to `F` — so a handle that goes away after a few writes
    /// without reporting them (a discarded instance) leaves a reservation of
    /// about what it wrote, not `F`.
    next_reservation: Size,
    /// How much its pending changes must shrink the cache before the handle
    /// reports them: one entry (and one byte) at first, twice as much after
    /// each such report, up to `F` — so a handle that removes a few entries
    /// and goes without closing (a discarded instance) has reported them.
    shrink_report: Size,
    /// Whether the census file had no room for this handle's reservation
    /// at its last report (it then keeps up to `F` unreported, unreserved).
    crowded_out: bool,
    /// The sum of the other handles' reservations in `shared`.
    others_reserved: Size,
    /// Age after which another handle's reservation is taken for abandoned
    /// and counted as entries.
    reservation_lease: Duration,
    pending: Size,
    /// The changes of `pending` made to each shard (all of them but the
    /// emptying of a `clear`, which is not the sum of anything it knows).
    pending_by_shard: Box<[Size; SHARDS]>,
    recounted: Option<Recounted>,
    /// The drift this handle's last complete pass found beyond the tolerance
    /// (see [`confirmed`]).
    last_drift: Size,
    flush_every: Size,
    last_flush: Instant,
    recount: Recount,
}

impl Census {
    /// Reads the census file, or counts the cache and writes it if there is
    /// none. `flush_every` sets `F` (see the module docs of [`crate::bounded`]).
    ///
    /// # Errors
    /// An I/O error if a directory cannot be listed.
    pub(crate) fn open(cache: &CacheDir, lease: Duration, flush_every: Size) -> Result<Self> {
        let mut census = Self {
            lock: LockPolicy {
                lease: lease.min(LOCK_LEASE),
                timeout: LOCK_WAIT,
            },
            shared: CensusRecord::default(),
            owner: layout::nonce(),
            reserved: Size::default(),
            next_reservation: FIRST_RESERVATION,
            shrink_report: FIRST_SHRINK_REPORT,
            crowded_out: false,
            others_reserved: Size::default(),
            reservation_lease: lease,
            pending: Size::default(),
            pending_by_shard: Box::new([Size::default(); SHARDS]),
            recounted: None,
            last_drift: Size::default(),
            flush_every,
            last_flush: Instant::now(),
            recount: Recount::new(),
        };
        if let Some(record) = read_census(cache)? {
            census.take_shared(record);
            return Ok(census);
        }
        // No census yet: count (part of) the cache, extrapolate, and write it.
        let mut rng = Rng::new();
        let (mut listed, mut entries, mut bytes) = (0u64, 0u64, 0u64);
        while listed < SHARDS as u64 && (listed == 0 || entries < FIRST_CENSUS_NAMES) {
            let (shard_entries, shard_bytes) =
                recount::count_shard(cache, listed as u8, &mut rng, true)?;
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
        if let Ok(lock) = exclusion::acquire(cache, &KeyHash::CENSUS, &census.lock, "the census") {
            match read_census(cache) {
                Ok(Some(record)) => census.take_shared(record),
                Ok(None) => {
                    let _ = write_census(cache, &census.shared, &lock);
                }
                Err(_) => {}
            }
            let _ = lock.release();
        }
        Ok(census)
    }

    /// The size of the cache as this handle knows it: the census as last
    /// read, plus its own unreported changes.
    pub(crate) fn size(&self) -> Size {
        Size {
            entries: self.shared.entries,
            bytes: self.shared.bytes,
        }
        .plus(self.pending)
    }

    /// The size this handle holds against its limits: [`Census::size`], plus
    /// what the other handles have reserved — growth they may have added
    /// and not reported yet.
    pub(crate) fn size_with_reservations(&self) -> Size {
        self.size().plus(self.others_reserved)
    }

    /// Whether this handle holds unreported growth (entries or bytes, where
    /// limited) beyond its reservation — so the report that would have
    /// reserved more failed, and no other handle counts that growth.
    pub(crate) fn unreported_growth_beyond_reservation(&self) -> bool {
        !self.within_reservation(self.pending)
    }

    /// Whether the reservation covers `growth` on top of the pending changes.
    pub(crate) fn covers(&self, growth: Size) -> bool {
        self.within_reservation(self.pending.plus(growth))
    }

    /// Before a write that may add `growth`: reports and reserves anew if
    /// the reservation would not cover it (best effort: if the report fails,
    /// the growth beyond the reservation is paid for by evictions).
    pub(crate) fn reserve(&mut self, cache: &CacheDir, growth: Size) {
        if !self.covers(growth) {
            let _ = self.flush_holding(cache, Hold::Renew(growth));
        }
    }

    /// Whether `growth` stays within the reservation — or within `F`, for a
    /// handle the census file had no room for (so that a file full of
    /// reservations does not make every write evict).
    fn within_reservation(&self, growth: Size) -> bool {
        let cap = if self.crowded_out {
            self.flush_every
        } else {
            self.reserved
        };
        let within = |growth: i64, cap: i64, every: i64| every == i64::MAX || growth <= cap;
        within(growth.entries, cap.entries, self.flush_every.entries)
            && within(growth.bytes, cap.bytes, self.flush_every.bytes)
    }

    /// Whether recounts count bytes too: a handle without a byte limit counts
    /// entries only.
    fn counts_bytes(&self) -> bool {
        self.flush_every.bytes != i64::MAX
    }

    /// Takes `record` as the census last read.
    fn take_shared(&mut self, record: CensusRecord) {
        self.others_reserved = record
            .reservations
            .iter()
            .filter(|reservation| reservation.owner != self.owner)
            .fold(Size::default(), |sum, reservation| {
                sum.plus(reserved_size(reservation))
            });
        self.shared = record;
    }

    /// Records a change this handle made to shard `shard`.
    pub(crate) fn record(&mut self, shard: u8, change: Size) {
        self.pending = self.pending.plus(change);
        let pending = &mut self.pending_by_shard[usize::from(shard)];
        *pending = pending.plus(change);
    }

    /// After a write made at `written_at`: recounts the cache at once if the
    /// count is stale ([`Census::recount_if_stale`]), goes on with the recount
    /// pass if it is time (`room`: how many more entries the handle's limits
    /// allow, as it sees the cache), and reports pending changes if it is time.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed.
    pub(crate) fn after_write(
        &mut self,
        cache: &CacheDir,
        room: u64,
        written_at: SystemTime,
    ) -> Result<()> {
        // Best effort, as the passes are: a claim that fails is tried again at
        // the next write; a pass that fails after its claim, an hour later.
        let _ = self.recount_if_stale(cache, unix_ms(written_at));
        let known = Known {
            reported: &self.shared,
            pending: &self.pending_by_shard,
        };
        let entries = self.size().entries.max(1).unsigned_abs();
        let with_bytes = self.counts_bytes();
        if let Some(recounted) = self
            .recount
            .after_write(cache, entries, room, known, with_bytes)?
        {
            self.recounted = Some(recounted);
        }
        // The write itself succeeded, whatever the report does.
        self.report_if_due(cache);
        Ok(())
    }

    /// Recounts the cache at once, in a whole pass over the shards, and
    /// corrects the census file by it — whatever the drift, without waiting
    /// for a second pass to confirm it (see the module docs of
    /// [`crate::bounded`]); the size it counted.
    ///
    /// # Errors
    /// An I/O error if the census cannot be read or replaced or a shard
    /// listed; [`crate::Error::Busy`] if the census lock stays taken.
    pub(crate) fn recount_now(&mut self, cache: &CacheDir) -> Result<Size> {
        if let Some(record) = read_census(cache)? {
            self.take_shared(record);
        }
        self.whole_pass_and_correction(cache)
    }

    /// [`Census::recount_now`] on the census file as last read.
    fn whole_pass_and_correction(&mut self, cache: &CacheDir) -> Result<Size> {
        let with_bytes = self.counts_bytes();
        let known = Known {
            reported: &self.shared,
            pending: &self.pending_by_shard,
        };
        let recounted = self.recount.whole_pass_now(cache, known, with_bytes)?;
        self.recounted = Some(recounted);
        self.flush_holding(cache, Hold::Keep)?;
        Ok(recounted.size)
    }

    /// Where the count, as last read, is stale at `now` (Unix ms; see
    /// [`count_is_stale`]) and at most [`STALE_RECOUNT_MAX_ENTRIES`],
    /// recounts the cache at once and corrects the count, as
    /// [`Census::recount_now`] does — after claiming the recount by dating
    /// the census file's last correction `now`, under its lock, so that the
    /// handles that write at the same moment do not all recount. No handle
    /// of a host that instantiates per request writes long enough to recount
    /// in passes, nor does a handle that writes rarely; this is how a drift
    /// there is corrected (see the module docs of [`crate::bounded`]).
    ///
    /// # Errors
    /// As [`Census::recount_now`].
    fn recount_if_stale(&mut self, cache: &CacheDir, now: u64) -> Result<()> {
        if !count_is_stale(self.shared.reconciled_at, now)
            || self.size().entries > STALE_RECOUNT_MAX_ENTRIES
        {
            return Ok(());
        }
        let mut claimed = false;
        self.update_file(cache, Hold::Keep, |record, pending| {
            add(record, pending);
            if count_is_stale(record.reconciled_at, now) {
                record.reconciled_at = now;
                claimed = true;
            }
        })?;
        if claimed {
            // The claim has just read the file: the pass starts from it.
            self.whole_pass_and_correction(cache)?;
        }
        Ok(())
    }

    /// After a removal: reports pending changes if it is time, as after a
    /// write, so that a handle that only removes is seen shrinking the cache.
    pub(crate) fn after_remove(&mut self, cache: &CacheDir) {
        self.report_if_due(cache);
    }

    /// Reports pending changes before the handle goes, and gives up its
    /// reservation, waiting for the census lock until an abandoned one would
    /// be taken over ([`LAST_FLUSH_WAIT`]) — a dropped handle has no later
    /// flush; if this one fails, its reservation stays until it is taken for
    /// abandoned.
    pub(crate) fn flush_before_drop(&mut self, cache: &CacheDir) {
        if self.reserved == Size::default() && !self.unreported() {
            return;
        }
        let wait = std::mem::replace(&mut self.lock.timeout, LAST_FLUSH_WAIT);
        let _ = self.flush_holding(cache, Hold::Release);
        self.lock.timeout = wait;
    }

    fn unreported(&self) -> bool {
        self.pending != Size::default()
            || self.pending_by_shard.iter().any(|p| *p != Size::default())
            || self.recounted.is_some()
    }

    /// Reports pending changes now (best effort).
    #[cfg(test)]
    pub(crate) fn flush_now(&mut self, cache: &CacheDir) {
        if self.unreported() {
            let _ = self.flush_holding(cache, Hold::Renew(Size::default()));
        }
    }

    /// After `clear`: the cache is empty (writers racing the clear are caught by
    /// the next recount).
    pub(crate) fn cleared(&mut self, cache: &CacheDir) {
        self.pending = Size {
            entries: self.shared.entries,
            bytes: self.shared.bytes,
        }
        .negated();
        *self.pending_by_shard = [Size::default(); SHARDS];
        self.recounted = None;
        self.recount.abandon();
        let renew = Hold::Renew(Size::default());
        let _ = self.update_file(cache, renew, |record, _| {
            record.entries = 0;
            record.bytes = 0;
            record.reconciled_at = now_ms();
            record.extrapolated = false;
        });
    }

    /// Whether the pending changes shrink the cache by [`Census::shrink_report`].
    fn shrunk_enough(&self) -> bool {
        let shrunk = |pending: i64, step: i64, every: i64| {
            every != i64::MAX
                && pending < 0
                && pending.unsigned_abs() >= step.min(every).unsigned_abs()
        };
        shrunk(
            self.pending.entries,
            self.shrink_report.entries,
            self.flush_every.entries,
        ) || shrunk(
            self.pending.bytes,
            self.shrink_report.bytes,
            self.flush_every.bytes,
        )
    }

    /// Reports pending changes after a write or a removal if it is time:
    /// growth is reported before the write its reservation would not cover
    /// ([`Census::reserve`]), so here only shrinking (see
    /// [`Census::shrink_report`]), a finished recount, or age. A report of
    /// shrinking doubles [`Census::shrink_report`] (up to `F`).
    fn report_if_due(&mut self, cache: &CacheDir) {
        let shrinking = self.shrunk_enough();
        if !shrinking && self.recounted.is_none() && self.last_flush.elapsed() < FLUSH_AGE {
            return;
        }
        let hold = if shrinking {
            Hold::Keep
        } else {
            Hold::Renew(Size::default())
        };
        // A failed report stays pending and is retried.
        if self.flush_holding(cache, hold).is_ok() && shrinking {
            self.shrink_report = self.shrink_report.doubled_within(self.flush_every);
        }
    }

    /// Adds pending changes to the census file, under its lock, and corrects it
    /// by a complete recount if they drifted apart. A recount whose flush fails
    /// is dropped (the next pass replaces it).
    fn flush_holding(&mut self, cache: &CacheDir, hold: Hold) -> Result<()> {
        let recounted = self.recounted.take();
        let last_drift = self.last_drift;
        let mut drift_seen = None;
        let result = self.update_file(cache, hold, |record, pending| {
            add(record, pending);
            // A correction made since the pass began leaves its count alone
            // (one in the millisecond it began counts as before it: the claim
            // of a stale count's recount comes just before its pass); one
            // dated in the future is no correction (a clock that was ahead,
            // or a damaged file).
            if let Some(recounted) = recounted
                && (record.reconciled_at <= recounted.started_ms || record.reconciled_at > now_ms())
            {
                // An extrapolated first count, or a recount the user asked
                // for, is corrected exactly and at once.
                let exact = record.extrapolated || recounted.asked;
                let mut drift = drift_beyond_tolerance(record, recounted.size, !exact);
                if !recounted.with_bytes {
                    drift.bytes = 0;
                }
                drift_seen = Some(drift);
                let correction = if exact {
                    drift
                } else {
                    confirmed(last_drift, drift)
                };
                if correction != Size::default() || record.extrapolated {
                    record.entries = record.entries.wrapping_add(correction.entries);
                    record.bytes = record.bytes.wrapping_add(correction.bytes);
                    record.reconciled_at = now_ms();
                    record.extrapolated = false;
                }
            }
        });
        if result.is_ok()
            && let Some(drift) = drift_seen
        {
            self.last_drift = drift;
        }
        result
    }

    /// Under the census lock: reads the file, counts the reservations of
    /// handles gone quiet for [`Census::reservation_lease`] as entries,
    /// applies `change` with the pending changes the file lacks, adds the
    /// changes per shard, renews or gives up this handle's reservation, and
    /// replaces the file.
    fn update_file(
        &mut self,
        cache: &CacheDir,
        hold: Hold,
        change: impl FnOnce(&mut CensusRecord, Size),
    ) -> Result<()> {
        self.last_flush = Instant::now();
        let lock = exclusion::acquire(cache, &KeyHash::CENSUS, &self.lock, "the census")?;
        let mut record = read_census(cache)?.unwrap_or_else(|| self.shared.clone());
        let now = now_ms();
        let held = remove_reservation(&mut record, self.owner);
        count_abandoned_reservations(&mut record, now, self.reservation_lease);
        // Another handle counted this one's reservation as entries (it went
        // quiet for the lease): what it reserved is in the count already.
        let unreported = if held {
            self.pending
        } else {
            self.pending.plus(self.reserved.negated())
        };
        change(&mut record, unreported);
        for (reported, pending) in record
            .shard_changes
            .iter_mut()
            .zip(self.pending_by_shard.iter())
        {
            *reported = Size::from_pair(*reported).plus(*pending).pair();
        }
        let crowded_out = hold != Hold::Release && record.reservations.len() >= MAX_RESERVATIONS;
        let reserved = match hold {
            Hold::Keep if !crowded_out && held => self.reserved,
            Hold::Renew(growth) if !crowded_out => self.reservation_for(growth),
            Hold::Renew(_) | Hold::Keep | Hold::Release => Size::default(),
        };
        if reserved != Size::default() {
            record.reservations.push(Reservation {
                owner: self.owner,
                entries: reserved.entries,
                bytes: reserved.bytes,
                renewed_at: now,
            });
        }
        write_census(cache, &record, &lock)?;
        lock.release()?;
        if matches!(hold, Hold::Renew(_)) && reserved != Size::default() {
            self.next_reservation = reserved.doubled_within(self.flush_every);
        }
        self.reserved = reserved;
        self.crowded_out = crowded_out;
        self.take_shared(record);
        self.pending = Size::default();
        *self.pending_by_shard = [Size::default(); SHARDS];
        Ok(())
    }

    /// The reservation to hold: [`Census::next_reservation`] where limited,
    /// or `growth` if larger — except where the handle holds none and the
    /// write at hand adds none (a replacement adds no entry): it reserves
    /// nothing there, so that a handle that goes away unreported after
    /// such writes leaves nothing to be counted.
    fn reservation_for(&self, growth: Size) -> Size {
        let amount = |every: i64, next: i64, growth: i64, held: i64| {
            if every == i64::MAX || (growth <= 0 && held <= 0) {
                0
            } else {
                next.min(every).max(growth)
            }
        };
        Size {
            entries: amount(
                self.flush_every.entries,
                self.next_reservation.entries,
                growth.entries,
                self.reserved.entries,
            ),
            bytes: amount(
                self.flush_every.bytes,
                self.next_reservation.bytes,
                growth.bytes,
                self.reserved.bytes,
            ),
        }
    }
}

/// Adds `change` to the count of `record`.
fn add(record: &mut CensusRecord, change: Size) {
    record.entries = record.entries.wrapping_add(change.entries);
    record.bytes = record.bytes.wrapping_add(change.bytes);
}

/// Whether a count last corrected or recounted whole at `reconciled_at` (Unix
/// ms) is stale at `now`: more than [`STALE_COUNT_AGE`] ago, or dated that
/// far in the future (a clock that was ahead, or a damaged file).
fn count_is_stale(reconciled_at: u64, now: u64) -> bool {
    let age = STALE_COUNT_AGE.as_millis() as u64;
    now.saturating_sub(reconciled_at) > age || reconciled_at.saturating_sub(now) > age
}

/// Removes `owner`'s reservation from `record`; whether there was one.
fn remove_reservation(record: &mut CensusRecord, owner: u64) -> bool {
    let held = record.reservations.iter().position(|r| r.owner == owner);
    if let Some(at) = held {
        record.reservations.swap_remove(at);
    }
    held.is_some()
}

/// The growth `reservation` holds.
fn reserved_size(reservation: &Reservation) -> Size {
    Size {
        entries: reservation.entries,
        bytes: reservation.bytes,
    }
}

/// Counts the reservations not renewed for `lease` (at `now`, Unix ms) as
/// entries and bytes: their handles went quiet, or were killed with growth
/// they never reported — at most what they reserved. What they did not use
/// is an excess a recount corrects; a handle that is alive finds its
/// reservation gone at its next report and reports the difference.
fn count_abandoned_reservations(record: &mut CensusRecord, now: u64, lease: Duration) {
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let mut abandoned = Size::default();
    record.reservations.retain(|reservation| {
        let quiet = now.saturating_sub(reservation.renewed_at) > lease_ms;
        if quiet {
            abandoned = abandoned.plus(reserved_size(reservation));
        }
        !quiet
    });
    record.entries = record.entries.wrapping_add(abandoned.entries);
    record.bytes = record.bytes.wrapping_add(abandoned.bytes);
}

/// What to add to the shared count `record` (pending changes included) to
/// bring it to `recounted`: with `tolerate`, nothing if they are within the
/// tolerated drift; without, the whole difference however small.
fn drift_beyond_tolerance(record: &CensusRecord, recounted: Size, tolerate: bool) -> Size {
    let drift = |counted: i64, recounted: i64, tolerated: f64, floor: f64| {
        let drift = recounted.wrapping_sub(counted);
        if !tolerate {
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

/// The correction a pass that found `drift` makes, the handle's previous pass
/// having found `previous`: for entries and bytes alike, the smaller of the
/// two if both found a drift the same way, else none. A recount counts what
/// other handles had written but not reported yet when a shard was listed
/// twice (in the listing, and in their report that comes later), and their
/// unreported removals likewise — up to `(P − 1) × F` either way. Such an
/// error comes and goes from pass to pass; a real drift (a handle killed
/// before it reported, a handle without a limit writing) stays. Correcting
/// only what two passes in a row agree on keeps the first from moving the
/// count, which downward would let the cache grow past its limit.
fn confirmed(previous: Size, drift: Size) -> Size {
    let agreed = |previous: i64, drift: i64| {
        if previous.signum() != drift.signum() {
            0
        } else if previous.unsigned_abs() < drift.unsigned_abs() {
            previous
        } else {
            drift
        }
    };
    Size {
        entries: agreed(previous.entries, drift.entries),
        bytes: agreed(previous.bytes, drift.bytes),
    }
}

/// The census file's record; `None` if there is none or it is damaged.
fn read_census(cache: &CacheDir) -> Result<Option<CensusRecord>> {
    let root = cache.root();
    let read = root.open_file(CENSUS_FILE).and_then(|file| {
        let len = file.stat()?.len;
        platform::read_whole(&file, len)
    });
    match read.missing_ok() {
        Ok(bytes) => Ok(bytes.and_then(|bytes| format::decode_census(&bytes))),
        Err(e) if platform::is_refused_link(&e) => Ok(None),
        Err(e) => Err(Error::io("read census", &root.path().join(CENSUS_FILE), e)),
    }
}

/// Replaces the census file (stage, then rename) — unless `lock` was taken
/// over meanwhile: a holder stalled past [`LOCK_LEASE`] would replace the
/// changes others reported since with its older record.
///
/// # Errors
/// [`Error::Busy`] if the lock was taken over; an I/O error.
fn write_census(cache: &CacheDir, record: &CensusRecord, lock: &KeyLock) -> Result<()> {
    let staged = race::stage(cache, &KeyHash::CENSUS, |file, _, _| {
        file.write_all_at(&format::encode_census(record), 0)
    })?;
    if !lock.is_held()? {
        return Err(Error::Busy {
            what: "the census lock was taken over while this handle held it".into(),
        });
    }
    staged.commit(cache, Sub::Root, CENSUS_FILE, false)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::super::recount::{MIN_WRITES_BETWEEN_PASSES, ROOM_SHARE};
    use super::*;
    use crate::platform::Access;
    use crate::{FileStore, Options};

    fn path_shard(path: &Path) -> u8 {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("entry name");
        KeyHash::from_hex(name).expect("an entry name").shard()
    }

    /// The cache directory `dir`, held open.
    fn cache_at(dir: &Path) -> CacheDir {
        CacheDir::open(dir, Access::Private).expect("open cache dir")
    }

    /// A census of an empty cache at `dir`, reporting every 32 changes.
    fn lone_census(dir: &Path) -> (CacheDir, Census) {
        drop(FileStore::open(dir, Options::default()).expect("open"));
        let cache = cache_at(dir);
        let flush_every = Size {
            entries: 32,
            bytes: i64::MAX,
        };
        let census = Census::open(&cache, Duration::from_secs(10), flush_every).expect("open");
        (cache, census)
    }

    /// Writes an entry file for `key`; its path.
    fn write_entry(cache: &CacheDir, key: &str, value: &[u8]) -> PathBuf {
        let path = cache.entry_path(&KeyHash::of(key));
        fs::create_dir_all(path.parent().expect("shard")).expect("shard dir");
        fs::write(&path, value).expect("write entry");
        path
    }

    /// Replaces the census file with `record` under its lock, as a handle does.
    fn replace_census(cache: &CacheDir, record: &CensusRecord) {
        let lock = census_lock(cache);
        write_census(cache, record, &lock).expect("write census");
        lock.release().expect("release");
    }

    /// The census lock, as a handle takes it.
    fn census_lock(cache: &CacheDir) -> KeyLock {
        let policy = LockPolicy {
            lease: LOCK_LEASE,
            timeout: Duration::from_secs(5),
        };
        exclusion::acquire(cache, &KeyHash::CENSUS, &policy, "the census").expect("lock")
    }

    /// The entries the census file counts.
    fn entries_reported(cache: &CacheDir) -> i64 {
        read_census(cache)
            .expect("read census")
            .expect("a census")
            .entries
    }

    /// Leaves a census lock in `locks/` as a killed holder would, last
    /// modified `age` ago.
    fn abandoned_census_lock(cache: &CacheDir, age: Duration) {
        let path = cache
            .sub_path(Sub::Locks)
            .join(crate::layout::lock_name(&KeyHash::CENSUS).as_str());
        let file = fs::File::create(&path).expect("lock file");
        file.set_modified(std::time::SystemTime::now() - age)
            .expect("age the lock");
    }

    /// A holder killed inside a flush leaves the census lock behind: the
    /// count stands still only until the lock is a second old (not for the
    /// handles' whole lease), then the next flush takes the lock over.
    #[test]
    fn an_abandoned_census_lock_is_taken_over_after_a_second() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut census) = lone_census(dir.path());
        abandoned_census_lock(&cache, Duration::ZERO);
        census.record(0, Size::entry(10));
        census.flush_now(&cache);
        assert_eq!(
            entries_reported(&cache),
            0,
            "a lock younger than a second is the holder's"
        );
        assert_eq!(census.size().entries, 1, "the change stays pending");
        abandoned_census_lock(&cache, LOCK_LEASE + Duration::from_millis(200));
        census.flush_now(&cache);
        assert_eq!(
            entries_reported(&cache),
            1,
            "the pending change is reported once the lock is a second old"
        );
    }

    /// A handle dropped while the census lock is held (here: just abandoned)
    /// waits to report, rather than leaving its changes out of the count.
    #[test]
    fn a_dropped_handle_waits_for_the_census_lock_to_report() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut census) = lone_census(dir.path());
        census.record(0, Size::entry(10));
        abandoned_census_lock(&cache, Duration::ZERO);
        census.flush_before_drop(&cache);
        assert_eq!(entries_reported(&cache), 1);
    }

    /// A holder that stalls past the census lease while another takes its
    /// lock over does not replace the record the other wrote: its flush
    /// fails and its changes stay pending.
    #[test]
    fn a_holder_whose_census_lock_was_taken_over_does_not_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut census) = lone_census(dir.path());
        let stalled = census_lock(&cache);
        // Another handle takes the lock over and reports 3 entries.
        abandoned_census_lock(&cache, LOCK_LEASE + Duration::from_millis(200));
        census.record(
            0,
            Size::entry(10).plus(Size::entry(10)).plus(Size::entry(10)),
        );
        census.flush_now(&cache);
        let reported = entries_reported(&cache);
        let err = write_census(&cache, &CensusRecord::default(), &stalled)
            .expect_err("the stalled holder must not write");
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert_eq!(
            entries_reported(&cache),
            reported,
            "the other's report stands"
        );
        assert_eq!(reported, 3);
        drop(stalled);
    }

    /// A census of the cache at `dir` opened as another handle would, with
    /// `lease` as its handles' lease.
    fn other_census(cache: &CacheDir, lease: Duration) -> Census {
        let flush_every = Size {
            entries: 32,
            bytes: i64::MAX,
        };
        Census::open(cache, lease, flush_every).expect("open")
    }

    /// A handle about to write reserves entries in the census before it adds
    /// them — one at first, twice as many at each report, up to `F` — and the
    /// other handles hold that against the limits (their view of the size is
    /// not changed by it), until the handle gives it up as it goes.
    #[test]
    fn a_writing_handle_reserves_its_growth_for_the_others_to_see() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut writer) = lone_census(dir.path());
        let mut reservations = Vec::new();
        for _ in 0..100 {
            writer.reserve(&cache, Size::entry(10));
            assert!(!writer.unreported_growth_beyond_reservation());
            writer.record(0, Size::entry(10));
            assert!(!writer.unreported_growth_beyond_reservation());
            if reservations.last() != Some(&writer.reserved.entries) {
                reservations.push(writer.reserved.entries);
            }
        }
        assert_eq!(reservations, [1, 2, 4, 8, 16, 32], "F = 32");
        let other = other_census(&cache, Duration::from_secs(10));
        let reported = other.size().entries;
        assert_eq!(
            other.size_with_reservations().entries,
            reported + 32,
            "the writer's reservation"
        );
        assert_eq!(writer.size_with_reservations().entries, 100, "not its own");
        writer.flush_before_drop(&cache);
        let after = other_census(&cache, Duration::from_secs(10));
        assert_eq!(after.size().entries, 100);
        assert_eq!(after.size_with_reservations().entries, 100, "given up");
    }

    /// A removing handle reports its first removal at once, then after 2, 4,
    /// … removals up to `F`, and reserves nothing for them: a handle that
    /// removes a few entries and goes without closing has reported them.
    #[test]
    fn removals_are_reported_at_once_at_first_then_every_f() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut remover) = lone_census(dir.path());
        let mut reported_after = Vec::new();
        for removals in 1..=100 {
            remover.record(0, Size::entry(10).negated());
            let before = entries_reported(&cache);
            remover.last_flush = Instant::now(); // no report for age
            remover.after_remove(&cache);
            if entries_reported(&cache) != before {
                reported_after.push(removals);
            }
        }
        assert_eq!(
            reported_after.get(..6),
            Some(&[1, 3, 7, 15, 31, 63][..]),
            "steps of 1, 2, 4, 8, 16, 32 removals: {reported_after:?}"
        );
        let other = other_census(&cache, Duration::from_secs(10));
        assert_eq!(
            other.size_with_reservations(),
            other.size(),
            "no reservation held for removals"
        );
    }

    /// Growth beyond the reservation — the report that would have reserved
    /// more failed (here: the census lock is held) — is flagged, so that the
    /// evictor pays for it.
    #[test]
    fn growth_without_a_reservation_is_flagged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut writer) = lone_census(dir.path());
        abandoned_census_lock(&cache, Duration::ZERO);
        writer.reserve(&cache, Size::entry(10));
        writer.record(0, Size::entry(10));
        assert!(writer.unreported_growth_beyond_reservation());
    }

    /// A handle that finds the census file full of live reservations writes
    /// without one, keeping up to `F` unreported as if reservations did not
    /// exist, rather than evicting for every entry it adds.
    #[test]
    fn a_handle_crowded_out_of_the_reservations_keeps_f_unreported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut writer) = lone_census(dir.path());
        let live = Reservation {
            owner: 1,
            entries: 1,
            bytes: 0,
            renewed_at: now_ms(),
        };
        replace_census(
            &cache,
            &CensusRecord {
                reservations: vec![live; MAX_RESERVATIONS],
                ..CensusRecord::default()
            },
        );
        writer.reserve(&cache, Size::entry(10));
        for _ in 0..32 {
            writer.record(0, Size::entry(10));
        }
        assert!(!writer.unreported_growth_beyond_reservation());
        writer.record(0, Size::entry(10));
        assert!(writer.unreported_growth_beyond_reservation());
        assert_eq!(
            writer.size_with_reservations().entries,
            33 + MAX_RESERVATIONS as i64
        );
    }

    /// A handle killed with writes it never reported leaves its reservation
    /// behind; once it is older than the lease, the next report counts it as
    /// entries — more than the handle wrote, never less.
    #[test]
    fn a_killed_handles_reservation_is_counted_after_the_lease() {
        const LEASE: Duration = Duration::from_millis(50);
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut killed) = lone_census(dir.path());
        for i in 0..5 {
            killed.reserve(&cache, Size::entry(10));
            write_entry(&cache, &format!("unreported {i}"), b"value");
            killed.record(0, Size::entry(10));
        }
        // Reported 3 (at the 2nd and 4th writes), 2 unreported, 4 reserved.
        drop(killed); // no report: as if killed
        let mut other = other_census(&cache, LEASE);
        assert_eq!(other.size_with_reservations().entries, 7);
        std::thread::sleep(LEASE * 2);
        other.reserve(&cache, Size::entry(10));
        assert_eq!(entries_reported(&cache), 7);
        assert_eq!(other.size_with_reservations().entries, 7);
    }

    /// A live handle that went quiet for longer than the lease finds its
    /// reservation counted as entries at its next report, and reports only
    /// the difference: the count is exact again.
    #[test]
    fn a_quiet_handle_whose_reservation_was_counted_reports_the_difference() {
        const LEASE: Duration = Duration::from_millis(50);
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut quiet) = lone_census(dir.path());
        for _ in 0..5 {
            quiet.reserve(&cache, Size::entry(10));
            quiet.record(0, Size::entry(10));
        }
        std::thread::sleep(LEASE * 2);
        let mut other = other_census(&cache, LEASE);
        other.reserve(&cache, Size::entry(10));
        assert_eq!(entries_reported(&cache), 3 + 4, "taken for abandoned");
        quiet.flush_now(&cache);
        assert_eq!(entries_reported(&cache), 5);
        assert_eq!(quiet.size().entries, 5);
    }

    /// The census file's record, after the handle reported all it knows.
    fn reported(cache: &CacheDir, census: &mut Census) -> CensusRecord {
        census.flush_now(cache);
        read_census(cache).expect("read census").expect("a census")
    }

    /// A census file whose figures are at the ends of their range (written
    /// by a bug, or by hand: its checksum is right), its last correction
    /// dated in the far future, makes a handle work with odd sizes, never
    /// panic; its first recount corrects them.
    #[test]
    fn extreme_census_figures_do_not_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, census) = lone_census(dir.path());
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
        replace_census(&cache, &extreme);
        let options = Options {
            max_entries: Some(64),
            max_bytes: Some(1 << 20),
            ..Options::default()
        };
        let store = FileStore::open(dir.path(), options).expect("open");
        // Two passes in a row must find a drift for it to be corrected.
        for i in 0..2 * MIN_WRITES_BETWEEN_PASSES + 256 {
            store
                .insert(&format!("key {i}"), b"value", crate::Expiry::Never)
                .expect("insert");
        }
        // A recount corrected the figures: the estimate is the cache's size
        // (give or take the evictions since), not the extreme it started from.
        let estimate = store.approx_size().expect("size");
        assert!(
            (64..=2 * MIN_WRITES_BETWEEN_PASSES + 256).contains(&estimate),
            "{estimate}"
        );
        store.clear().expect("clear");
        store
            .insert("after", b"value", crate::Expiry::Never)
            .expect("insert");
    }

    /// A cache that handles of an older census version counted in their own
    /// file (here `census`, version 1: 40 bytes) keeps that file as it is: a
    /// handle of this version counts the cache itself into its own file, so
    /// that a handle of each version does not overwrite the other's count
    /// with its own (which let two versions writing at once hold 9 709
    /// entries for a limit of 2 000).
    #[test]
    fn an_older_census_is_left_to_its_handles() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(FileStore::open(dir.path(), Options::default()).expect("open"));
        let cache = cache_at(dir.path());
        for i in 0..10 {
            write_entry(&cache, &format!("key {i}"), b"value");
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
            Census::open(&cache, Duration::from_secs(10), Size::entry(1)).expect("open");
        assert_eq!(census.size().entries, 10, "counted, not read from `census`");
        census.record(0, Size::entry(5));
        census.flush_now(&cache);
        assert_eq!(fs::read(&old_file).expect("read"), version_one);
        assert_eq!(reported(&cache, &mut census).entries, 11);
    }

    /// A count is stale once its last correction or whole recount is older
    /// than the age, or dated that far ahead; not before.
    #[test]
    fn a_count_is_stale_an_age_after_its_last_correction() {
        let age = STALE_COUNT_AGE.as_millis() as u64;
        let now = 10 * age;
        assert!(!count_is_stale(now, now));
        assert!(!count_is_stale(now - age, now));
        assert!(count_is_stale(now - age - 1, now));
        assert!(count_is_stale(0, now), "never corrected since 1970");
        assert!(!count_is_stale(now + age, now), "a clock a little ahead");
        assert!(count_is_stale(now + age + 1, now), "dated far ahead");
        assert!(count_is_stale(u64::MAX, now), "a damaged date");
    }

    /// A handle far below its limits recounts only after writing an eighth of
    /// the room it sees; the pace is taken at each write, so a pass comes as
    /// soon as the room shrinks.
    #[test]
    fn far_below_the_limits_recounts_wait_for_an_eighth_of_the_room() {
        const UNREPORTED: usize = 100;
        let dir = tempfile::tempdir().expect("temp dir");
        let (cache, mut census) = lone_census(dir.path());
        for i in 0..UNREPORTED {
            write_entry(&cache, &format!("unreported {i}"), b"value");
        }
        let room = 4 * ROOM_SHARE * MIN_WRITES_BETWEEN_PASSES;
        for _ in 0..3 * MIN_WRITES_BETWEEN_PASSES {
            census
                .after_write(&cache, room, SystemTime::now())
                .expect("after write");
        }
        assert_eq!(census.size().entries, 0, "no pass yet");
        // At the limit, passes are due every MIN_WRITES_BETWEEN_PASSES
        // writes: the first starts at once, and two in a row correct.
        for _ in 0..=MIN_WRITES_BETWEEN_PASSES {
            census
                .after_write(&cache, 0, SystemTime::now())
                .expect("after write");
        }
        assert_eq!(census.size().entries, UNREPORTED as i64);
    }

    /// The first count of a large cache lists part of its shards and
    /// extrapolates; the first complete recount replaces that estimate even
    /// when it is within the drift recounts otherwise leave alone (it was
    /// kept, so a lone handle held a cache ~1 % over its limit for good).
    #[test]
    fn the_first_complete_recount_replaces_an_extrapolated_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(FileStore::open(dir.path(), Options::default()).expect("open"));
        let cache = cache_at(dir.path());
        // Shard 00 holds 3 000 entries, the others 55 each: the first count
        // reaches FIRST_CENSUS_NAMES before the last shards and overshoots.
        let mut total = 0;
        for shard in 0..SHARDS {
            let count = if shard == 0 { 3000 } else { 55 };
            let shard_dir = cache.sub_path(Sub::Shard(shard as u8));
            fs::create_dir_all(&shard_dir).expect("shard dir");
            for i in 0..count {
                fs::write(shard_dir.join(format!("{shard:02x}{i:062x}")), b"").expect("write");
            }
            total += count as i64;
        }
        let mut census =
            Census::open(&cache, Duration::from_secs(10), Size::entry(1)).expect("open");
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
            census
                .after_write(&cache, 0, SystemTime::now())
                .expect("after write");
            census.flush_now(&cache);
        }
        assert_eq!(census.size().entries, total);
        assert!(!reported(&cache, &mut census).extrapolated);
    }

    /// A drift found by one pass alone is not corrected; two passes that agree
    /// correct by the smaller drift; passes that disagree correct nothing.
    #[test]
    fn a_correction_needs_two_passes_that_agree() {
        let size = |entries: i64, bytes: i64| Size { entries, bytes };
        assert_eq!(confirmed(Size::default(), size(61, -9000)), Size::default());
        assert_eq!(confirmed(size(70, -8000), size(61, -9000)), size(61, -8000));
        assert_eq!(confirmed(size(-70, 5), size(61, 0)), Size::default());
        assert_eq!(confirmed(size(-70, 0), size(-90, 0)), size(-70, 0));
    }

    /// The value of the entries of [`Churn`].
    const CHURN_VALUE: &[u8] = b"value";

    /// Entry files by shard, written and evicted as a handle at capacity does.
    struct Churn<'a> {
        cache: &'a CacheDir,
        by_shard: Vec<Vec<PathBuf>>,
    }

    /// Where an evictor's sweep is: its shard, and how many it evicted there.
    #[derive(Default)]
    struct Sweep {
        shard: usize,
        evicted_here: usize,
    }

    impl<'a> Churn<'a> {
        /// `live` entries written by `census`'s handle.
        fn filled(cache: &'a CacheDir, census: &mut Census, live: usize) -> Self {
            let mut churn = Self {
                cache,
                by_shard: vec![Vec::new(); SHARDS],
            };
            for i in 0..live {
                churn.write(census, &format!("key {i}"));
            }
            churn
        }

        fn one() -> Size {
            Size::entry(CHURN_VALUE.len() as u64)
        }

        /// `census`'s handle writes a new entry for `key`.
        fn write(&mut self, census: &mut Census, key: &str) {
            let path = write_entry(self.cache, key, CHURN_VALUE);
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
        let (cache, mut first) = lone_census(dir.path());
        let created = first.shared.reconciled_at;
        let mut churn = Churn::filled(&cache, &mut first, LIVE);
        first.flush_now(&cache);
        let second =
            Census::open(&cache, Duration::from_secs(10), first.flush_every).expect("open");
        let mut censuses = [first, second];
        for census in &mut censuses {
            census.recount.set_pass_spread(0);
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
            census
                .after_write(&cache, 0, SystemTime::now())
                .expect("after write");
            if i % 16 < 2 {
                // Reported often, as handles writing at this pace are.
                census.flush_now(&cache);
            }
        }
        censuses[0].flush_now(&cache);
        let record = reported(&cache, &mut censuses[1]);
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
        let (cache, mut census) = lone_census(dir.path());
        // Eight names listed per write, as in a large cache: a pass takes
        // 512 writes, during which the sweep goes over 64 shards.
        census.recount.set_pass_spread(0);
        let created = census.shared.reconciled_at;
        let mut churn = Churn::filled(&cache, &mut census, LIVE);
        let mut sweep = Sweep::default();
        for i in 0..4 * MIN_WRITES_BETWEEN_PASSES as usize {
            churn.write(&mut census, &format!("new {i}"));
            churn.evict(&mut census, &mut sweep);
            census
                .after_write(&cache, 0, SystemTime::now())
                .expect("after write");
        }
        let record = reported(&cache, &mut census);
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
        let (cache, mut census) = lone_census(dir.path());
        let created = census.shared.reconciled_at;
        let one = Size::entry(VALUE.len() as u64);
        // Through ten passes, every fourth write adds a new entry and removes
        // the oldest beyond LIVE; the others replace an entry.
        let mut live = VecDeque::new();
        for i in 0..10 * MIN_WRITES_BETWEEN_PASSES as usize {
            if i % 4 == 0 || live.len() < LIVE {
                let path = write_entry(&cache, &format!("key {i}"), VALUE);
                census.record(path_shard(&path), one);
                live.push_back(path);
            }
            if live.len() > LIVE {
                let oldest = live.pop_front().expect("oldest");
                fs::remove_file(&oldest).expect("remove entry");
                census.record(path_shard(&oldest), one.negated());
            }
            census
                .after_write(&cache, 0, SystemTime::now())
                .expect("after write");
        }
        let record = reported(&cache, &mut census);
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
