//! filecache: a portable file-based cache.
//!
//! One directory holds one cache; each entry is one file named by the blake3 hash
//! of its key. The same code runs natively (this crate, used by web frameworks),
//! as a WebAssembly component exporting `filecache:cache/store` (built with
//! `--target wasm32-wasip2 --features component`), and as the `filecache-cli`
//! command. All of them can share one directory at the same time.
//!
//! ```
//! use std::time::Duration;
//! use filecache::{Expiry, FileStore, Options};
//!
//! # fn main() -> filecache::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let cache = FileStore::open(dir.path().join("cache"), Options::default())?;
//! cache.insert("greeting", b"hello", Expiry::After(Duration::from_secs(60)))?;
//! assert_eq!(cache.get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! cache.insert_json("user:1", &vec!["ada", "grace"], Expiry::Never)?;
//! assert_eq!(cache.get_json::<Vec<String>>("user:1")?.map(|v| v.len()), Some(2));
//! cache.remove("greeting")?;
//! assert!(!cache.contains_key("greeting")?);
//! # Ok(())
//! # }
//! ```
//!
//! # What is atomic, what is durable
//! - `insert` writes a fresh temporary file (created with `create_new`) and renames
//!   it over the entry: readers, which take no lock, see a whole old or a whole new
//!   value. Concurrent inserts of one key are last-writer-wins; none reports success
//!   for a value that was never published.
//! - Every entry carries a checksum: a file torn by a crash or damaged on disk is
//!   read as a miss and removed, never returned.
//! - Without [`Options::durable`], a successful `insert` survives a crash of the
//!   process but not necessarily a power cut (the entry may be missing afterwards,
//!   never torn). With it, the data and the directory are synced before `insert`
//!   returns.
//! - Expired entries are removed when `get` or `contains_key` meets them (on
//!   read-only media they stay, and read as misses); temporary and lock files
//!   left by a writer that died are swept by writers once older than the lease
//!   ([`Options::lease`]).
//! - There are no OS file locks anywhere (WASI has none).
//!
//! # Security
//! - The directories and files a cache creates are private to the user (`0700`,
//!   `0600`) unless [`Options::group_shared`] says otherwise.
//! - Below the directory it is given, the cache follows no symbolic link: a link
//!   planted in place of one of its directories or files is refused or replaced,
//!   never written through.
//! - Entries are checksummed against damage, not authenticated: whoever can
//!   write the cache directory can replace cached values.
#![deny(missing_docs)]

mod atomic;
mod bounded;
mod cache_dir;
mod error;
mod exclusion;
mod format;
mod layout;
mod listing;
mod options;
mod platform;
mod publish;
mod race;
mod scan;
mod store;
mod sweep;
#[cfg(test)]
mod test_support;

#[doc(hidden)]
pub mod cli;
#[cfg(feature = "cot")]
pub mod cot;
#[doc(hidden)]
pub mod testing;

#[cfg(all(target_family = "wasm", feature = "component"))]
mod component;
#[cfg(all(target_family = "wasm", feature = "keyvalue"))]
mod keyvalue;
#[cfg(all(feature = "component", feature = "keyvalue"))]
compile_error!("a component exports one world: enable `component` or `keyvalue`, not both");

pub use error::{Error, Result};
pub use listing::{KeyPage, Keys, NumberedKeyPage, PAGE_SIZE};
pub use options::{Expiry, Options};
pub use store::{FileStore, Stats};

/// The environment variable a host sets to `1` for the component when the
/// directory it preopens lies on a read-only file system. wasmtime-wasi
/// reports `EROFS` as a plain `io` error; with this hint the component takes
/// an `io` error for the read-only file system it then is, and its errors name
/// it as they do natively. `filecache-host` sets it; other hosts may.
pub const READ_ONLY_MEDIA_VARIABLE: &str = "FILECACHE_READ_ONLY_MEDIA";
