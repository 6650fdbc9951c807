//! What a bounded handle knows of the entries' last use and expiry: the index
//! the evictor picks its victims from (see [`crate::bounded`]).
//!
//! A record is what one `stat` (or the handle's own write or read) said of an
//! entry, and when: its hash, its last use (the file's modification time), its
//! expiry and its size. The index keeps records in two orders — by last use,
//! and by expiry for entries that expire — so that the most evictable one
//! (expired first, then least recently used) comes out in O(log n). Records
//! go stale: another handle may read, replace or remove the entry. The
//! evictor judges from a record's age whether to `stat` a victim again before
//! removing it, and hands a record that turned out stale back with what the
//! `stat` said.
//!
//! It holds one record per entry — learning an entry again replaces its
//! record, so that a record the handle knows to be stale (its own write
//! since, say) is never acted on — and at most [`MAX_RECORDS`] of them (a hash
//! table of 65 536 slots of 88 bytes and B-trees of 16-byte keys: ~7 MB when
//! full). When full, a newer record replaces the most recently used one only
//! if it is older than that, so the index keeps the oldest entries it has seen.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::SystemTime;

use crate::format::{self, NEVER};
use crate::layout::KeyHash;
use crate::platform::FileStat;

/// Most records kept: as many as fill a hash table of 65 536 slots.
pub(crate) const MAX_RECORDS: usize = 57_344;

/// What the index knows of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// The entry's key hash (its file name).
    pub hash: KeyHash,
    /// Its last use: the file's modification time.
    pub used: SystemTime,
    /// Its expiry, Unix ms ([`NEVER`] if it does not expire).
    pub expires_ms: u64,
    /// When this was seen to be so: the time of the `stat`, or of the write.
    pub seen: SystemTime,
    /// The size of its file, bytes.
    pub size: u64,
}

impl Record {
    /// The record of entry `hash` that the handle itself used (wrote, or read
    /// and marked used) at `at`: seen as it was used, so never trusted without
    /// a `stat` (see [`super::TRUST_DIVISOR`]).
    pub(crate) fn own_use(hash: KeyHash, at: SystemTime, expires_ms: u64, size: u64) -> Self {
        Self {
            hash,
            used: at,
            expires_ms,
            seen: at,
            size,
        }
    }

    /// The record of entry `hash` whose file a `stat` just now found as `stat`.
    pub(crate) fn from_stat(hash: KeyHash, stat: &FileStat) -> Self {
        Self {
            hash,
            used: stat.modified,
            expires_ms: stat.accessed.map_or(NEVER, format::expiry_from_hint),
            seen: SystemTime::now(),
            size: stat.len,
        }
    }
}

/// Where a record is filed: the first 8 bytes of its entry's hash. Two
/// entries that share them (one chance in 2^64 per pair) share a record: a
/// hint is lost, nothing worse.
type Slot = u64;

/// Hashes a slot to itself: slots are the leading bytes of blake3 hashes,
/// uniform already.
#[derive(Debug, Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A time as nanoseconds since the Unix epoch (0 before it): a compact
/// B-tree key.
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// The order in which records are evicted at `now_ms`, lowest first: expired
/// ones by expiry, then the others by last use.
fn evictability(record: &Record, now_ms: u64) -> (bool, u64, u64) {
    if record.expires_ms <= now_ms {
        (false, record.expires_ms, nanos(record.used))
    } else {
        (true, nanos(record.used), 0)
    }
}

/// Records of entries, one per entry, most evictable first.
#[derive(Debug, Default)]
pub(crate) struct RecencyIndex {
    records: HashMap<Slot, Record, BuildHasherDefault<SlotHasher>>,
    /// (last use, slot) of every record.
    by_use: BTreeSet<(u64, Slot)>,
    /// (expiry, last use, slot) of the records of entries that expire.
    by_expiry: BTreeSet<(u64, u64, Slot)>,
}

impl RecencyIndex {
    /// Records kept.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it knows no entry.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether it has a record of entry `hash`.
    pub(crate) fn knows(&self, hash: &KeyHash) -> bool {
        self.records.contains_key(&hash.prefix())
    }

    /// Forgets every record (after `clear`).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.by_use.clear();
        self.by_expiry.clear();
    }

    /// Adds a record, in place of the entry's previous one. When the index is
    /// full it takes the place of the most recently used record, if it is
    /// older than that; else it is dropped.
    pub(crate) fn learn(&mut self, record: Record) {
        let slot = record.hash.prefix();
        let previous = self
            .records
            .get_mut(&slot)
            .map(|known| std::mem::replace(known, record));
        if let Some(previous) = previous {
            self.unfile(&previous, slot);
            self.file(&record, slot);
            return;
        }
        if self.records.len() >= MAX_RECORDS {
            match self.by_use.last() {
                Some(&(used, youngest)) if nanos(record.used) < used => {
                    self.forget(youngest);
                }
                _ => return,
            }
        }
        self.records.insert(slot, record);
        self.file(&record, slot);
    }

    /// Takes out the most evictable record at `now_ms`: the one that expired
    /// first if any has expired, else the least recently used.
    pub(crate) fn take_most_evictable(&mut self, now_ms: u64) -> Option<Record> {
        let slot = self.most_evictable_slot(now_ms)?;
        self.forget(slot)
    }

    /// Learns `fresh` records and takes out the most evictable at `now_ms`, as
    /// [`Self::learn`] each then [`Self::take_most_evictable`] would — but a
    /// fresh record that is the most evictable is taken without being filed
    /// (the common case when the evictor samples: a B-tree insert and removal
    /// fewer). The fresh records are of distinct entries.
    pub(crate) fn take_most_evictable_with(
        &mut self,
        mut fresh: Vec<Record>,
        now_ms: u64,
    ) -> Option<Record> {
        let best_fresh = (0..fresh.len()).min_by_key(|&i| evictability(&fresh[i], now_ms));
        let filed_best = self
            .most_evictable_slot(now_ms)
            .and_then(|slot| self.records.get(&slot))
            .map(|record| evictability(record, now_ms));
        match best_fresh {
            Some(best)
                if filed_best.is_none_or(|filed| evictability(&fresh[best], now_ms) < filed) =>
            {
                let victim = fresh.swap_remove(best);
                self.forget(victim.hash.prefix());
                for record in fresh {
                    self.learn(record);
                }
                Some(victim)
            }
            _ => {
                for record in fresh {
                    self.learn(record);
                }
                self.take_most_evictable(now_ms)
            }
        }
    }

    /// Forgets the record of entry `hash`, if any (the entry was removed).
    pub(crate) fn forget_entry(&mut self, hash: &KeyHash) {
        self.forget(hash.prefix());
    }

    /// The slot of the most evictable record at `now_ms`.
    fn most_evictable_slot(&self, now_ms: u64) -> Option<Slot> {
        match self.by_expiry.first() {
            Some(&(expires_ms, _, slot)) if expires_ms <= now_ms => Some(slot),
            _ => self.by_use.first().map(|&(_, slot)| slot),
        }
    }

    /// Takes out the record in `slot`, if any.
    fn forget(&mut self, slot: Slot) -> Option<Record> {
        let record = self.records.remove(&slot)?;
        self.unfile(&record, slot);
        Some(record)
    }

    /// Enters `record`, filed in `slot`, in the orders.
    fn file(&mut self, record: &Record, slot: Slot) {
        let used = nanos(record.used);
        self.by_use.insert((used, slot));
        if record.expires_ms != NEVER {
            self.by_expiry.insert((record.expires_ms, used, slot));
        }
    }

    /// Takes `record`, filed in `slot`, out of the orders.
    fn unfile(&mut self, record: &Record, slot: Slot) {
        let used = nanos(record.used);
        self.by_use.remove(&(used, slot));
        if record.expires_ms != NEVER {
            self.by_expiry.remove(&(record.expires_ms, used, slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(key: &str, used_s: u64, expires_ms: u64) -> Record {
        Record {
            hash: KeyHash::of(key),
            used: SystemTime::UNIX_EPOCH + Duration::from_secs(used_s),
            expires_ms,
            seen: SystemTime::UNIX_EPOCH + Duration::from_secs(used_s),
            size: 10,
        }
    }

    #[test]
    fn expired_records_come_out_first_then_least_recently_used() {
        let mut index = RecencyIndex::default();
        index.learn(record("new", 30, NEVER));
        index.learn(record("old", 10, NEVER));
        index.learn(record("expires later", 5, 50_000));
        index.learn(record("expired", 20, 1_000));
        index.learn(record("middle", 15, NEVER));
        let order: Vec<Record> = std::iter::from_fn(|| index.take_most_evictable(40_000)).collect();
        let expected = ["expired", "expires later", "old", "middle", "new"].map(KeyHash::of);
        assert_eq!(order.iter().map(|r| r.hash).collect::<Vec<_>>(), expected);
        assert!(index.is_empty());
        assert!(index.by_expiry.is_empty());
    }

    #[test]
    fn learning_an_entry_again_replaces_its_record() {
        let mut index = RecencyIndex::default();
        index.learn(record("a", 10, 20_000));
        index.learn(record("b", 20, NEVER));
        index.learn(record("a", 30, NEVER));
        assert_eq!(index.len(), 2);
        assert!(index.by_expiry.is_empty(), "a's expiring record is gone");
        let order: Vec<Record> = std::iter::from_fn(|| index.take_most_evictable(40_000)).collect();
        assert_eq!(
            order.iter().map(|r| (r.hash, r.used)).collect::<Vec<_>>(),
            [("b", 20), ("a", 30)].map(|(key, s)| (KeyHash::of(key), record(key, s, NEVER).used)),
        );
    }

    /// Taking a victim among fresh records gives what learning them and then
    /// taking would, through a churn of new, renewed and expiring records.
    #[test]
    fn taking_among_fresh_records_matches_learning_them_first() {
        let (mut direct, mut filed) = (RecencyIndex::default(), RecencyIndex::default());
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for round in 0..2_000_u64 {
            let now_ms = 1_000 * (1_000 + round);
            // Distinct entries, as a sweep offers them.
            let first = next(300);
            let fresh: Vec<Record> = (0..next(4))
                .map(|i| {
                    let expires_ms = match next(3) {
                        0 => NEVER,
                        1 => now_ms - 1 - next(50_000),
                        _ => now_ms + 1 + next(50_000),
                    };
                    record(
                        &format!("k{}", first + i),
                        1_000 + round - next(900),
                        expires_ms,
                    )
                })
                .collect();
            for record in &fresh {
                filed.learn(*record);
            }
            let expected = filed.take_most_evictable(now_ms);
            let got = direct.take_most_evictable_with(fresh, now_ms);
            assert_eq!(got, expected, "round {round}");
            assert_eq!(direct.len(), filed.len(), "round {round}");
        }
    }

    #[test]
    fn a_full_index_keeps_the_oldest_records() {
        let mut index = RecencyIndex::default();
        for i in 0..MAX_RECORDS as u64 {
            index.learn(record(&format!("k{i}"), 1_000 + i, 2_000_000));
        }
        index.learn(record("younger than all", 10_000_000, NEVER));
        assert_eq!(index.len(), MAX_RECORDS);
        index.learn(record("older than all", 1, NEVER));
        assert_eq!(index.len(), MAX_RECORDS);
        assert_eq!(
            index.by_expiry.len(),
            MAX_RECORDS - 1,
            "the youngest left both orders"
        );
        let first = index.take_most_evictable(0).expect("a record");
        assert_eq!(first.hash, KeyHash::of("older than all"));
        let mut last = None;
        while let Some(record) = index.take_most_evictable(0) {
            last = Some(record.hash);
        }
        let youngest_kept = format!("k{}", MAX_RECORDS - 2);
        assert_eq!(last, Some(KeyHash::of(&youngest_kept)));
    }
}
