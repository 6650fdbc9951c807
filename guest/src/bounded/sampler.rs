//! The evictor's sweep over the shards: where it learns the entries it did not
//! write itself (see the module docs of [`crate::bounded`]).

use std::sync::Arc;

use super::recency::Record;
use super::{Rng, open_shard, probe};
use crate::cache_dir::CacheDir;
use crate::error::Result;
use crate::layout::{KeyHash, SHARDS};
use crate::platform::Dir;
use crate::scan;

/// Most shards listed for one call for eviction candidates.
pub(crate) const MAX_LISTINGS_PER_CANDIDATES: usize = 2;

/// A shard listed for eviction candidates: its directory, open, and its names
/// not sampled yet.
#[derive(Debug)]
struct Listing {
    dir: Arc<Dir>,
    unsampled: Vec<KeyHash>,
}

/// What one call for candidates found.
#[derive(Debug)]
pub(crate) struct Sample {
    /// The names offered that the index had no record of, `stat`ed.
    pub records: Vec<Record>,
    /// How many names were offered (known ones included): none means every
    /// shard listed was empty or missing.
    pub offered: usize,
}

/// Where the sweep is.
#[derive(Debug)]
pub(crate) struct Sampler {
    /// The shard listed last.
    listing: Option<Listing>,
    /// The shard the sweep lists next.
    next: u8,
    /// Shards the sweep listed since the handle opened.
    listed: u64,
    rng: Rng,
}

impl Sampler {
    /// A sweep that starts at a shard drawn at random.
    pub(crate) fn new() -> Self {
        let mut rng = Rng::new();
        Self {
            listing: None,
            next: rng.below(SHARDS) as u8,
            listed: 0,
            rng,
        }
    }

    /// Candidates for eviction from the next `count` names of the sweep: the
    /// names of one shard, taken in a random order, each once; the next shard
    /// (in order) is listed when they run out, up to `max_listings` shards
    /// (fewer names in a sparse cache). So every entry is offered once per
    /// sweep. A name `known` says the index has a record of is passed over;
    /// the others are `stat`ed.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed or an entry not `stat`ed.
    pub(crate) fn candidates(
        &mut self,
        cache: &CacheDir,
        count: usize,
        max_listings: usize,
        known: impl Fn(&KeyHash) -> bool,
    ) -> Result<Sample> {
        let mut records = Vec::with_capacity(count);
        let mut offered = 0;
        let mut listings = 0;
        while offered < count {
            let listing = match &mut self.listing {
                Some(listing) if !listing.unsampled.is_empty() => listing,
                _ => {
                    if listings == max_listings {
                        break; // a sparse cache: fewer candidates this time
                    }
                    listings += 1;
                    let shard = self.next;
                    self.next = self.next.wrapping_add(1);
                    self.listed += 1;
                    let Some((dir, mut hashes)) = open_shard(cache, shard)? else {
                        continue;
                    };
                    for i in (1..hashes.len()).rev() {
                        hashes.swap(i, self.rng.below(i + 1));
                    }
                    self.listing.insert(Listing {
                        dir,
                        unsampled: hashes,
                    })
                }
            };
            if let Some(hash) = listing.unsampled.pop() {
                offered += 1;
                if !known(&hash) {
                    records.extend(probe(&listing.dir, hash)?);
                }
            }
        }
        Ok(Sample { records, offered })
    }

    /// How many shards the sweep listed since the handle opened.
    pub(crate) fn listed(&self) -> u64 {
        self.listed
    }

    /// Whether the sweep went over every shard since the handle opened.
    pub(crate) fn swept_once(&self) -> bool {
        self.listed >= SHARDS as u64
    }

    /// Every entry of every shard, `stat`ed (for the evictor of a small
    /// cache): a whole sweep at once.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed or an entry not `stat`ed.
    pub(crate) fn sample_everything(&mut self, cache: &CacheDir) -> Result<Vec<Record>> {
        self.listed += SHARDS as u64;
        let mut samples = Vec::new();
        for index in scan::shards(cache)? {
            if let Some((dir, hashes)) = open_shard(cache, index)? {
                for hash in hashes {
                    samples.extend(probe(&dir, hash)?);
                }
            }
        }
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::platform::Access;
    use crate::{Expiry, FileStore, Options};

    /// The sweep offers every name once per pass, `stat`s only the names the
    /// index does not know, and counts the known ones against `count`.
    #[test]
    fn known_names_are_passed_over_without_a_stat() {
        const COUNT: usize = 1;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path(), Options::default()).expect("open");
        let keys: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
        for key in &keys {
            store.insert(key, b"v", Expiry::Never).expect("insert");
        }
        let known: BTreeSet<KeyHash> = keys.iter().step_by(2).map(|key| KeyHash::of(key)).collect();
        let cache = CacheDir::open(dir.path(), Access::Private).expect("open cache dir");
        let mut sampler = Sampler::new();
        let mut learned = Vec::new();
        let mut calls = 0;
        // `known` is asked once per name offered: one pass is `keys.len()`
        // offers, and `COUNT` of 1 stops there exactly.
        let offered = std::cell::Cell::new(0);
        while offered.get() < keys.len() {
            let found = sampler
                .candidates(&cache, COUNT, MAX_LISTINGS_PER_CANDIDATES, |hash| {
                    offered.set(offered.get() + 1);
                    known.contains(hash)
                })
                .expect("candidates");
            assert!(found.offered <= COUNT, "at most `count` names offered");
            assert!(found.records.len() <= found.offered);
            learned.extend(found.records.into_iter().map(|record| record.hash));
            calls += 1;
        }
        let unknown: BTreeSet<KeyHash> = keys
            .iter()
            .skip(1)
            .step_by(2)
            .map(|key| KeyHash::of(key))
            .collect();
        let learned_set: BTreeSet<KeyHash> = learned.iter().copied().collect();
        assert_eq!(learned.len(), learned_set.len(), "each name once per pass");
        assert_eq!(
            learned_set, unknown,
            "exactly the names the index did not know"
        );
        assert!(
            calls >= keys.len() / COUNT,
            "known names count against `count`: {calls} calls"
        );
    }
}
