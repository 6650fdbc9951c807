//! What a bounded handle knows of the entries' last use and expiry: the index
//! the evictor picks its victims from (see [`crate::eviction`]).
//!
//! A record is what one `stat` (or the handle's own write) said of an entry:
//! its hash, its last use (the file's modification time) and its expiry. The
//! index keeps records in two orders — by last use, and by expiry for entries
//! that expire — so that the most evictable one (expired first, then least
//! recently used) comes out in O(log n). Records go stale: another handle may
//! read, replace or remove the entry. The evictor `stat`s a victim again before
//! removing it and hands a record that turned out stale back with what the
//! `stat` said, so the index only ever steers the choice, and never causes a
//! wrong removal.
//!
//! It holds at most [`MAX_RECORDS`] records (about 56 bytes each plus the
//! B-tree's overhead: ~5 MB when full). When full, a newer record replaces the
//! most recently used one only if it is older than that, so the index keeps the
//! oldest entries it has seen.

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::format::NEVER;
use crate::layout::KeyHash;

/// Most records kept.
pub const MAX_RECORDS: usize = 65_536;

/// What the index knows of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The entry's key hash (its file name).
    pub hash: KeyHash,
    /// Its last use: the file's modification time.
    pub used: SystemTime,
    /// Its expiry, Unix ms ([`NEVER`] if it does not expire).
    pub expires_ms: u64,
}

/// Records of entries, most evictable first.
#[derive(Debug, Default)]
pub struct RecencyIndex {
    by_use: BTreeSet<(SystemTime, u64, KeyHash)>,
    by_expiry: BTreeSet<(u64, SystemTime, KeyHash)>,
}

impl RecencyIndex {
    /// Records kept.
    pub fn len(&self) -> usize {
        self.by_use.len()
    }

    /// Whether it knows no entry.
    pub fn is_empty(&self) -> bool {
        self.by_use.is_empty()
    }

    /// Forgets every record (after `clear`).
    pub fn clear(&mut self) {
        self.by_use.clear();
        self.by_expiry.clear();
    }

    /// Adds a record. When the index is full it takes the place of the most
    /// recently used record, if it is older than that; else it is dropped.
    pub fn learn(&mut self, record: Record) {
        if self.by_use.len() >= MAX_RECORDS {
            match self.by_use.last() {
                Some(&(used, _, _)) if record.used < used => {
                    if let Some(youngest) = self.by_use.pop_last() {
                        self.forget_expiry(youngest);
                    }
                }
                _ => return,
            }
        }
        self.by_use
            .insert((record.used, record.expires_ms, record.hash));
        if record.expires_ms != NEVER {
            self.by_expiry
                .insert((record.expires_ms, record.used, record.hash));
        }
    }

    /// Takes out the most evictable record at `now_ms`: the one that expired
    /// first if any has expired, else the least recently used.
    pub fn take_most_evictable(&mut self, now_ms: u64) -> Option<Record> {
        if let Some(&(expires_ms, used, hash)) = self.by_expiry.first()
            && expires_ms <= now_ms
        {
            self.by_expiry.pop_first();
            self.by_use.remove(&(used, expires_ms, hash));
            return Some(Record {
                hash,
                used,
                expires_ms,
            });
        }
        let oldest = self.by_use.pop_first()?;
        self.forget_expiry(oldest);
        let (used, expires_ms, hash) = oldest;
        Some(Record {
            hash,
            used,
            expires_ms,
        })
    }

    fn forget_expiry(&mut self, (used, expires_ms, hash): (SystemTime, u64, KeyHash)) {
        if expires_ms != NEVER {
            self.by_expiry.remove(&(expires_ms, used, hash));
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
