//! Recounts: the passes over the shard directories that correct the shared
//! count's drift (see the module docs of [`crate::bounded`]).

use super::census::Known;
use super::{Rng, Size, open_shard, probe};
use crate::cache_dir::CacheDir;
use crate::error::Result;
use crate::layout::SHARDS;
use crate::options::now_ms;

/// Entries `stat`ed per recount listing, for the mean size.
pub(crate) const SAMPLES_PER_LISTING: usize = 8;
/// About how many directory entries a write pays to have listed for recounts,
/// on average: a pass over `N` entries starts every `N /
/// CENSUS_NAMES_PER_WRITE` writes. A name costs ~0.5–0.85 µs to list natively
/// on the test machine (8 per write made an evicting insert at 10k entries
/// cost ~1.3× what 2 do), and a host `stat` under WASI (wasmtime's
/// `read-directory` stats each entry).
pub(crate) const CENSUS_NAMES_PER_WRITE: u64 = 2;
/// Fewest names a write of a recount pass lists: a pass is over in `N / 8`
/// writes, so that others' changes while it runs stay few.
const PASS_NAMES_PER_WRITE: u64 = 8;
/// Fewest writes between the starts of two recount passes.
pub(crate) const MIN_WRITES_BETWEEN_PASSES: u64 = 2048;
/// A handle that sees room for `R` more entries starts its next pass no
/// sooner than `R / ROOM_SHARE` writes after the last: far below its limits a
/// drift changes nothing it does, and the pace returns to `K` as the room
/// shrinks.
pub(crate) const ROOM_SHARE: u64 = 8;
/// A write of a recount pass lists `PASS_SPREAD` / entries names, between
/// [`PASS_NAMES_PER_WRITE`] and [`RECOUNT_NAMES_PER_WRITE`].
const PASS_SPREAD: u64 = 2_000_000;
/// Most names a write of a recount pass lists: a pass over a cache of 2 000
/// entries takes four writes, each ~2 ms on the test machine.
const RECOUNT_NAMES_PER_WRITE: u64 = 512;

/// One shard's count in the current recount pass.
#[derive(Debug, Clone, Copy)]
struct ShardCount {
    entries: u64,
    bytes: u64,
    /// The changes to the shard this handle knew of when it was listed.
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

impl Pass {
    /// The outcome of the pass, complete: each shard's count, plus the
    /// changes to that shard the handle came to know of since it was listed
    /// (its own, and those others reported).
    fn recounted(&self, known: Known<'_>, with_bytes: bool, asked: bool) -> Recounted {
        let mut size = Size::default();
        for (shard, count) in self.counts.iter().enumerate() {
            let since = known.changes(shard).plus(count.changes_then.negated());
            let counted = Size {
                entries: count.entries as i64,
                bytes: count.bytes as i64,
            };
            size = size.plus(counted).plus(since);
        }
        Recounted {
            size,
            with_bytes,
            started_ms: self.started_ms,
            asked,
        }
    }
}

/// The outcome of a complete pass, waiting for the next flush to be compared
/// with the shared count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recounted {
    /// The cache's size as the pass counted it, brought up to the end of the pass.
    pub size: Size,
    /// Whether the pass counted bytes (`size.bytes` is meaningful).
    pub with_bytes: bool,
    /// Unix ms when the pass began.
    pub started_ms: u64,
    /// Whether the user asked for it ([`Recount::whole_pass_now`]): its
    /// drift is corrected whatever its size, without waiting for a second
    /// pass to confirm it.
    pub asked: bool,
}

/// A handle's recounts: the pass under way, and when the next one starts.
#[derive(Debug)]
pub(crate) struct Recount {
    pass: Option<Pass>,
    /// Writes since the last pass started.
    writes_since_pass: u64,
    /// [`PASS_SPREAD`], or another pace for tests.
    pass_spread: u64,
    rng: Rng,
}

impl Recount {
    pub(crate) fn new() -> Self {
        Self {
            pass: None,
            writes_since_pass: 0,
            pass_spread: PASS_SPREAD,
            rng: Rng::new(),
        }
    }

    /// Lists shards of the pass (starting one if none is under way and one is
    /// due) until this write has listed its share of names or the pass is
    /// complete; a complete pass is returned, to be compared at the next
    /// flush. `entries` is the size the handle works with, and `room` how many
    /// more entries its limits allow; `known`, the changes it knows of;
    /// `with_bytes`, whether to count bytes too (it `stat`s a few entries of
    /// each shard: a handle without a byte limit has no use for them).
    ///
    /// A pass is due `max(K, room / ROOM_SHARE)` writes after the last one
    /// started, `K` being entries / [`CENSUS_NAMES_PER_WRITE`] and at least
    /// [`MIN_WRITES_BETWEEN_PASSES`]; both are taken at each write, so a pass
    /// comes sooner as the cache fills.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed; the pass is then dropped (the
    /// next one starts when due, rather than every write retrying it).
    pub(crate) fn after_write(
        &mut self,
        cache: &CacheDir,
        entries: u64,
        room: u64,
        known: Known<'_>,
        with_bytes: bool,
    ) -> Result<Option<Recounted>> {
        self.writes_since_pass = self.writes_since_pass.saturating_add(1);
        let pace = (entries / CENSUS_NAMES_PER_WRITE)
            .max(room / ROOM_SHARE)
            .max(MIN_WRITES_BETWEEN_PASSES);
        if self.pass.is_none() && self.writes_since_pass < pace {
            return Ok(None);
        }
        let mut pass = self.pass.take().unwrap_or_else(|| {
            self.writes_since_pass = 0;
            Pass {
                counts: Vec::with_capacity(SHARDS),
                credit: 0,
                started_ms: now_ms(),
            }
        });
        let names_per_write =
            (self.pass_spread / entries).clamp(PASS_NAMES_PER_WRITE, RECOUNT_NAMES_PER_WRITE);
        pass.credit += names_per_write as i64;
        while pass.counts.len() < SHARDS && pass.credit > 0 {
            let listed = self.list_next_shard(cache, &mut pass, known, with_bytes)?;
            pass.credit -= listed as i64;
        }
        if pass.counts.len() < SHARDS {
            self.pass = Some(pass);
            return Ok(None);
        }
        Ok(Some(pass.recounted(known, with_bytes, false)))
    }

    /// A whole pass at once, whatever the pace (the user asked for it: see
    /// [`crate::FileStore::recount`]); a pass under way is dropped.
    ///
    /// # Errors
    /// An I/O error if a shard cannot be listed.
    pub(crate) fn whole_pass_now(
        &mut self,
        cache: &CacheDir,
        known: Known<'_>,
        with_bytes: bool,
    ) -> Result<Recounted> {
        self.pass = None;
        self.writes_since_pass = 0;
        let mut pass = Pass {
            counts: Vec::with_capacity(SHARDS),
            credit: 0,
            started_ms: now_ms(),
        };
        while pass.counts.len() < SHARDS {
            self.list_next_shard(cache, &mut pass, known, with_bytes)?;
        }
        Ok(pass.recounted(known, with_bytes, true))
    }

    /// Lists the next shard of `pass`; the names it listed.
    fn list_next_shard(
        &mut self,
        cache: &CacheDir,
        pass: &mut Pass,
        known: Known<'_>,
        with_bytes: bool,
    ) -> Result<u64> {
        let shard = pass.counts.len();
        let (entries, bytes) = count_shard(cache, shard as u8, &mut self.rng, with_bytes)?;
        pass.counts.push(ShardCount {
            entries,
            bytes,
            changes_then: known.changes(shard),
        });
        Ok(entries)
    }

    /// Drops the pass under way (after `clear`).
    pub(crate) fn abandon(&mut self) {
        self.pass = None;
    }

    /// Lists shards at once as in a cache of `PASS_SPREAD / names` entries
    /// (for tests that need many listings per write).
    #[cfg(test)]
    pub(crate) fn set_pass_spread(&mut self, spread: u64) {
        self.pass_spread = spread;
    }
}

/// Counts shard `index` from a fresh listing: its entries, and with
/// `with_bytes` its bytes (`stat`ing a few of its entries for their mean size;
/// else 0).
///
/// # Errors
/// An I/O error if the shard cannot be listed or an entry `stat`ed.
pub(crate) fn count_shard(
    cache: &CacheDir,
    index: u8,
    rng: &mut Rng,
    with_bytes: bool,
) -> Result<(u64, u64)> {
    let Some((dir, hashes)) = open_shard(cache, index)? else {
        return Ok((0, 0));
    };
    if !with_bytes {
        return Ok((hashes.len() as u64, 0));
    }
    let picks: Vec<usize> = if hashes.len() <= SAMPLES_PER_LISTING {
        (0..hashes.len()).collect()
    } else {
        (0..SAMPLES_PER_LISTING)
            .map(|_| rng.below(hashes.len()))
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
