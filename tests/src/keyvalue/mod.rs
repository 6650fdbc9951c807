//! The `wasi:keyvalue` conformance suite: one set of cases ([`cases`]) run
//! against every store that serves `wasi:keyvalue` — the filecache component
//! through each draft it exports ([`filecache`]), and the host-served store on
//! a Redis server ([`redis`]).
//!
//! A backend implements [`KeyValueBackend`] (a fresh, empty store per case, and
//! connections to it) and [`Connection`] (the `store`, `atomics` and `batch`
//! calls). What differs between the drafts — signed increments and
//! compare-and-swap exist in `0.2.0-draft2` only — is asked of the connection,
//! and the cases that need it check only where it exists.
//! `keyvalue_suite!(backend)` expands to one `#[test]` per case.

pub mod cases;
pub mod filecache;
pub mod redis;

pub use filecache_host::keyvalue::{Cursor, KeyValueError, Pairs};

/// Result of a `wasi:keyvalue` call under test.
pub type Kv<T> = Result<T, KeyValueError>;

/// The outcome of a swap that did not fail.
#[derive(Debug)]
pub enum Swap<C> {
    /// The value was written.
    Done,
    /// The value had changed: a fresh handle to retry with.
    Changed(C),
}

/// One client's view of a `wasi:keyvalue` store.
pub trait Connection: Send {
    /// An open bucket.
    type Bucket: Clone;
    /// A compare-and-swap handle.
    type Cas;
    /// `store.open`.
    fn open(&mut self, identifier: &str) -> Kv<Self::Bucket>;
    /// `bucket.get`.
    fn get(&mut self, bucket: &Self::Bucket, key: &str) -> Kv<Option<Vec<u8>>>;
    /// `bucket.set`.
    fn set(&mut self, bucket: &Self::Bucket, key: &str, value: &[u8]) -> Kv<()>;
    /// `bucket.delete`.
    fn delete(&mut self, bucket: &Self::Bucket, key: &str) -> Kv<()>;
    /// `bucket.exists`.
    fn exists(&mut self, bucket: &Self::Bucket, key: &str) -> Kv<bool>;
    /// `bucket.list-keys`: one page and the cursor of the next.
    fn list_keys(
        &mut self,
        bucket: &Self::Bucket,
        cursor: Option<&Cursor>,
    ) -> Kv<(Vec<String>, Option<Cursor>)>;
    /// Whether `increment` takes negative deltas (`0.2.0-draft2`).
    fn signed_increments(&self) -> bool;
    /// `atomics.increment`; a draft that counts in `u64` is given and returns
    /// non-negative numbers only.
    fn increment(&mut self, bucket: &Self::Bucket, key: &str, delta: i64) -> Kv<i64>;
    /// Whether the draft has compare-and-swap (`0.2.0-draft2`).
    fn has_compare_and_swap(&self) -> bool;
    /// `cas.new`.
    fn cas(&mut self, bucket: &Self::Bucket, key: &str) -> Kv<Self::Cas>;
    /// `cas.current`.
    fn current(&mut self, cas: &Self::Cas) -> Kv<Option<Vec<u8>>>;
    /// `atomics.swap`.
    fn swap(&mut self, cas: Self::Cas, value: &[u8]) -> Kv<Swap<Self::Cas>>;
    /// `batch.get-many`.
    fn get_many(&mut self, bucket: &Self::Bucket, keys: &[String]) -> Kv<Pairs>;
    /// `batch.set-many`.
    fn set_many(&mut self, bucket: &Self::Bucket, pairs: &[(String, Vec<u8>)]) -> Kv<()>;
    /// `batch.delete-many`.
    fn delete_many(&mut self, bucket: &Self::Bucket, keys: &[String]) -> Kv<()>;
}

/// A store that serves `wasi:keyvalue`.
pub trait KeyValueBackend: Sync {
    /// A fresh, empty store, alive while this value is.
    type Place: Sync;
    /// A client of a store.
    type Connection: Connection;
    /// Makes a fresh, empty store for one case.
    fn place(&self) -> Self::Place;
    /// A new client of the store at `place` (several may be open at once).
    fn connect(&self, place: &Self::Place) -> Self::Connection;
    /// Why this backend cannot run here, if it cannot; its cases then print a
    /// loud skip. A backend that must run panics instead.
    fn skip_reason(&self) -> Option<String> {
        None
    }
}

/// Whether a case should be skipped on `backend`: prints the loud skip if so.
#[doc(hidden)]
pub fn skipped<B: KeyValueBackend>(backend: &B, case: &str) -> bool {
    crate::announce_skip(backend.skip_reason(), case)
}

/// Declares the case list once, and the macro that instantiates it.
macro_rules! define_keyvalue_suite {
    ($($case:ident),* $(,)?) => {
        /// Every case of the suite, by name.
        pub const KEYVALUE_CASE_NAMES: &[&str] = &[$(stringify!($case)),*];

        /// Expands to one `#[test]` per `wasi:keyvalue` case, run against `$backend`.
        #[macro_export]
        macro_rules! keyvalue_suite {
            ($backend:expr) => {
                $(
                    #[test]
                    fn $case() {
                        if !$crate::keyvalue::skipped(&$backend, stringify!($case)) {
                            $crate::keyvalue::cases::$case(&$backend);
                        }
                    }
                )*
            };
        }
    };
}

define_keyvalue_suite!(
    store_operations_round_trip,
    values_are_any_bytes,
    buckets_are_separate,
    list_keys_pages_through_every_key_once,
    list_keys_skips_deleted_keys,
    increment_counts_from_zero_and_refuses_text,
    increments_from_several_connections_add_up,
    compare_and_swap_succeeds_on_an_unchanged_key,
    compare_and_swap_fails_when_another_writer_changed_the_key,
    compare_and_swap_races_have_one_winner_each_round,
    batch_operations_cover_present_and_absent_keys,
);
