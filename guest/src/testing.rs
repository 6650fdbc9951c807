//! What this crate's own tests, fuzz targets and benchmarks reach inside it.
//! Not part of the API: hidden from the docs, and free to change in any
//! release. Library users have [`crate::FileStore`] and its options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layout::{self, KeyHash};

pub use crate::format::{
    CensusRecord, DecodeError, EntryRef, HEADER_LEN, NEVER, decode, decode_census, decode_head,
    encode, encode_as, encode_census, lock_owner,
};

/// The name of the census file at a cache's root.
pub const CENSUS_FILE: &str = layout::CENSUS_FILE;
/// The name of the sweep stamp at a cache's root.
pub const SWEPT_FILE: &str = layout::SWEPT_FILE;
/// The shortest span after which `get` refreshes an entry's last use.
pub const TOUCH_INTERVAL: Duration = crate::bounded::TOUCH_INTERVAL;
/// Below this many entries, an evictor learns every entry at once.
pub const EXHAUSTIVE_BELOW: i64 = crate::bounded::EXHAUSTIVE_BELOW;
/// How a record's age is weighed against the idle time it saw.
pub const TRUST_DIVISOR: u32 = crate::bounded::TRUST_DIVISOR;
/// Fewest writes between the starts of two recount passes.
pub const MIN_WRITES_BETWEEN_PASSES: u64 = crate::bounded::MIN_WRITES_BETWEEN_PASSES;
/// A bounded handle reports its changes at least this often while it writes.
pub const FLUSH_AGE: Duration = crate::bounded::FLUSH_AGE;
/// Age after which a bounded write recounts a count not corrected since.
pub const STALE_COUNT_AGE: Duration = crate::bounded::STALE_COUNT_AGE;
/// Entry lookups that find nothing in a shard per check of whether it was
/// removed.
pub const MISSES_PER_CHECK: u8 = crate::cache_dir::MISSES_PER_CHECK;

/// The entry file of `key` in the cache directory `dir`.
pub fn entry_path(dir: &Path, key: &str) -> PathBuf {
    let hash = KeyHash::of(key);
    dir.join(layout::shard_name(hash.shard()).as_str())
        .join(hash.file_name().as_str())
}

/// The lock file of `key` in the cache directory `dir`.
pub fn lock_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(layout::LOCKS_DIR)
        .join(layout::lock_name(&KeyHash::of(key)).as_str())
}

/// The census of the cache in `dir` as its file holds it, if it has one.
pub fn census(dir: &Path) -> Option<CensusRecord> {
    std::fs::read(dir.join(CENSUS_FILE))
        .ok()
        .and_then(|bytes| decode_census(&bytes))
}

/// Dates the last correction of the count in the census of the cache in
/// `dir` back past [`STALE_COUNT_AGE`], as an hour without one would; the
/// date written, or `None` if the cache has no census file.
pub fn make_the_count_stale(dir: &Path) -> Option<u64> {
    let mut census = census(dir)?;
    let age = u64::try_from(STALE_COUNT_AGE.as_millis()).unwrap_or(u64::MAX);
    census.reconciled_at = crate::options::now_ms().saturating_sub(age + 1);
    std::fs::write(dir.join(CENSUS_FILE), encode_census(&census)).ok()?;
    Some(census.reconciled_at)
}
