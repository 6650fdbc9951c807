//! The filecache conformance suite: one set of cases, run against every backend.
//!
//! Backends: the native store, the component in the wasmtime host, the Cot
//! adapter ([`backends`]), the component on Node.js through jco ([`jco`]), and
//! the component in wasmtime-py ([`wasmtime_py`]); the last two run in a
//! process of their own ([`line_host`]).
//! A backend implements [`Backend`] (open a cache in a host directory) and
//! [`CacheUnderTest`] (the cache operations). `conformance_suite!(backend)` expands
//! to one `#[test]` per case, from the single list in this file, so every backend
//! runs every case; `every_defined_case_is_listed` (in `tests/native.rs`) fails if
//! a case is written in `cases.rs` but left out of the list.
//!
//! Cases work on host paths: a backend maps the directory into its world (the
//! component backend preopens it). They may inspect and damage the files on disk,
//! through the layout the `filecache` crate documents.

use std::path::Path;
use std::time::Duration;

pub use filecache::{Expiry, Options, Stats};

pub mod backends;
#[doc(hidden)]
pub mod cases;
pub mod jco;
pub mod keyvalue;
pub mod line_host;
pub mod redis_server;
pub mod sshfs;
pub mod tools;
pub mod values;
pub mod wasmtime_py;
pub mod workers;

/// What kind of failure an operation reported (the WIT `error` cases, plus a
/// runtime failure of the backend itself such as a trap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Refused input.
    InvalidInput,
    /// File system failure.
    Io,
    /// Out of space.
    StorageFull,
    /// Exclusion not obtained.
    Busy,
    /// Damaged entry not removable.
    Corrupt,
    /// The backend itself failed (e.g. a wasm trap): never expected.
    Runtime,
}

/// A failed operation: its kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// The message, for humans.
    pub message: String,
}

/// Result of a cache operation under test.
pub type Outcome<T> = Result<T, Failure>;

/// The cache operations, as every backend offers them.
pub trait CacheUnderTest: Send {
    /// Get.
    fn get(&mut self, key: &str) -> Outcome<Option<Vec<u8>>>;
    /// Insert.
    fn insert(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<()>;
    /// Remove.
    fn remove(&mut self, key: &str) -> Outcome<()>;
    /// Contains-key.
    fn contains_key(&mut self, key: &str) -> Outcome<bool>;
    /// Add (insert if absent).
    fn add(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<bool>;
    /// Increment.
    fn increment(&mut self, key: &str, delta: i64) -> Outcome<i64>;
    /// Compare-and-swap.
    fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
    ) -> Outcome<bool>;
    /// Touch (new expiry).
    fn touch(&mut self, key: &str, expiry: Expiry) -> Outcome<bool>;
    /// Clear.
    fn clear(&mut self) -> Outcome<()>;
    /// Approx-size.
    fn approx_size(&mut self) -> Outcome<u64>;
    /// Stats.
    fn stats(&mut self) -> Outcome<Stats>;
    /// List-keys (one page).
    fn list_keys(&mut self, cursor: Option<&str>) -> Outcome<filecache::KeyPage>;
}

/// A way to run the cache: natively, as a component in a host, …
pub trait Backend: Sync {
    /// The open cache.
    type Cache: CacheUnderTest;
    /// Opens (creating) the cache in the host directory `dir`.
    ///
    /// # Errors
    /// The backend's failure to open.
    fn open(&self, dir: &Path, options: &Options) -> Outcome<Self::Cache>;
    /// How many concurrent writers the concurrency case starts.
    fn writers(&self) -> usize;
    /// Whether the host holds a directory it opened as a real descriptor, so
    /// that a link planted in its place later is not followed. jco's Node.js
    /// shim holds a path instead (Node has no `openat`): there a link planted
    /// in place of a directory already in use is followed, even out of the
    /// preopen (`tests/jco/shim-bugs.mjs` reproduces it).
    fn holds_directories(&self) -> bool {
        true
    }
    /// The largest value the host can hand back from a call, if it has a
    /// limit below the cache's. wasmtime-py lifts a result through the C API's
    /// generic values and charges each list element 48 bytes of wasmtime's
    /// 128 MiB per-call hostcall fuel, which it offers no way to raise: a value
    /// above about 2.79 MB cannot come back, and the instance refuses every
    /// call after that.
    fn largest_returned_value(&self) -> Option<usize> {
        None
    }
    /// Why this backend cannot run here (a missing external tool), if it cannot;
    /// its cases then print a loud skip. A backend that must run panics instead.
    fn skip_reason(&self) -> Option<String> {
        None
    }
}

/// Whether a case should be skipped on `backend`: prints the loud skip if so.
#[doc(hidden)]
pub fn skipped<B: Backend>(backend: &B, case: &str) -> bool {
    announce_skip(backend.skip_reason(), case)
}

/// Prints the loud skip of `case` if there is a `reason`; whether there is.
#[doc(hidden)]
pub fn announce_skip(reason: Option<String>, case: &str) -> bool {
    match reason {
        Some(reason) => {
            eprintln!("\n*** SKIPPED: {case}: {reason} ***\n");
            true
        }
        None => false,
    }
}

/// Declares the case lists once, and the macros that instantiate them.
///
/// `core` cases use only the operations every backend has — those of Cot's
/// `CacheStore` (get, insert, remove, contains-key, clear, approx-size) and
/// `stats` — and store any bytes; `extended` cases use the rest (atomic
/// operations, listing, exact value sizes). `conformance_suite!` runs both,
/// `core_suite!` the first (the Cot adapter's backend).
macro_rules! define_suite {
    (core: [$($core:ident),* $(,)?], extended: [$($extended:ident),* $(,)?] $(,)?) => {
        /// Every case of the suite, by name.
        pub const CASE_NAMES: &[&str] = &[$(stringify!($core),)* $(stringify!($extended)),*];

        /// The cases every backend runs, by name.
        pub const CORE_CASE_NAMES: &[&str] = &[$(stringify!($core)),*];

        /// Expands to one `#[test]` per conformance case, run against `$backend`.
        #[macro_export]
        macro_rules! conformance_suite {
            ($backend:expr) => {
                $crate::core_suite!($backend);
                $(
                    #[test]
                    fn $extended() {
                        if !$crate::skipped(&$backend, stringify!($extended)) {
                            $crate::cases::$extended(&$backend);
                        }
                    }
                )*
            };
        }

        /// Expands to one `#[test]` per core case, run against `$backend`.
        #[macro_export]
        macro_rules! core_suite {
            ($backend:expr) => {
                $(
                    #[test]
                    fn $core() {
                        if !$crate::skipped(&$backend, stringify!($core)) {
                            $crate::cases::$core(&$backend);
                        }
                    }
                )*
            };
        }
    };
}

define_suite!(
    core: [
        insert_get_remove,
        overwrite_replaces_value,
        binary_and_empty_values,
        unicode_and_4k_keys,
        large_value_round_trips,
        contains_key_tracks_presence,
        approx_size_counts_entries,
        remove_absent_succeeds,
        reopen_sees_previous_entries,
        missing_directory_is_created,
        durable_insert_round_trips,
        expiry_never_keeps_entry,
        expiry_after_300ms,
        expiry_at_past_time_is_a_miss,
        expiry_at_future_time,
        expired_entry_is_removed_from_disk,
        corrupt_truncated_is_miss_and_removed,
        corrupt_bad_magic_is_miss_and_removed,
        corrupt_unknown_version_is_miss_and_removed,
        corrupt_length_mismatch_is_miss_and_removed,
        corrupt_bad_checksum_is_miss_and_removed,
        corrupt_entry_seen_by_contains_key_is_removed,
        contains_key_sees_cut_and_overlong_entries,
        entry_of_another_key_is_a_miss,
        stale_temp_files_swept_and_not_counted,
        clear_leaves_foreign_files,
        concurrent_writers_never_tear,
        max_entries_is_honoured,
        expired_entries_are_evicted_before_live_ones,
        least_recently_used_are_evicted_first,
        least_recently_used_are_evicted_first_in_a_sampled_cache,
        an_entry_written_again_is_not_evicted_on_its_old_record,
        an_entry_read_again_is_not_evicted_on_its_old_record,
        zero_limits_are_refused,
        limit_set_on_a_full_cache_evicts_down_to_it,
        a_drifted_count_is_corrected_by_a_recount,
        a_stale_count_is_recounted_by_the_next_write,
        removals_are_reported_to_the_other_handles,
        planted_links_to_directories_are_refused,
        a_planted_link_in_place_of_an_entry_is_a_miss,
        a_planted_link_in_place_of_the_census_is_replaced,
        a_cache_directory_reached_through_a_link_is_followed,
    ],
    extended: [
        oversized_key_or_value_is_invalid_input,
        stats_count_hits_and_misses,
        add_stores_only_when_no_live_value,
        increment_counts_from_zero_and_keeps_expiry,
        increment_refuses_non_integers_and_overflow,
        compare_and_swap_checks_the_current_value,
        touch_changes_expiry_and_keeps_value,
        atomic_operations_leave_no_lock_files,
        held_lock_makes_atomic_operations_busy,
        abandoned_lock_is_reclaimed_after_the_lease,
        abandoned_locks_are_swept_by_writers,
        concurrent_increments_are_exact,
        concurrent_adds_have_one_winner,
        vanished_directory_is_recreated_or_reported,
        a_reader_finds_a_recreated_shard_by_its_check,
        a_removal_acts_on_a_recreated_shard_at_once,
        max_bytes_is_honoured,
        stats_are_exact_for_a_scripted_workload,
        list_keys_pages_cover_every_live_key_once,
        a_planted_link_in_place_of_locks_is_refused,
    ],
);

/// Waits out a wall-clock span (expiry cases).
pub fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}
