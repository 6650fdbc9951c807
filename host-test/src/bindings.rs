//! The wasmtime bindings generated from `wit/`, and conversions between their
//! types and the crate's own (generated types do not leak out of this crate).

use std::time::UNIX_EPOCH;

/// The generated code, kept apart: its `filecache` module (the WIT package
/// namespace) would otherwise shadow the `filecache` crate.
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "cache",
    });
}

pub(crate) use generated::exports::filecache::cache::store::GuestCache;
pub(crate) use generated::filecache::cache::types as wit;
pub(crate) use generated::{Cache, CachePre};

pub(crate) fn options_to_wit(options: &::filecache::Options) -> wit::Options {
    wit::Options {
        durable: Some(options.durable),
        max_key_bytes: Some(u32::try_from(options.max_key_bytes).unwrap_or(u32::MAX)),
        max_value_bytes: Some(options.max_value_bytes),
        lease_ms: Some(millis(options.lease)),
        lock_timeout_ms: Some(millis(options.lock_timeout)),
        max_entries: options.max_entries,
        max_bytes: options.max_bytes,
        group_shared: Some(options.group_shared),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn expiry_to_wit(expiry: ::filecache::Expiry) -> wit::Expiry {
    match expiry {
        ::filecache::Expiry::Never => wit::Expiry::Never,
        ::filecache::Expiry::After(ttl) => wit::Expiry::After(millis(ttl)),
        ::filecache::Expiry::At(time) => wit::Expiry::At(
            time.duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        ),
    }
}

pub(crate) fn stats_from_wit(s: wit::Stats) -> ::filecache::Stats {
    ::filecache::Stats {
        entries: s.entries,
        bytes: s.bytes,
        hits: s.hits,
        misses: s.misses,
        expired_removed: s.expired_removed,
        evicted: s.evicted,
        corrupt_removed: s.corrupt_removed,
    }
}
