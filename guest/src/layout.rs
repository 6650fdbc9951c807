//! Where things live inside a cache directory, and how files are recognised.
//!
//! ```text
//! <cache dir>/
//!   CACHEDIR.TAG     marks the directory as a cache (https://bford.info/cachedir/),
//!                    so backup tools skip it; written with tmp/
//!   tmp/             files being written: `<key hash, 16 hex>-<nonce, 16 hex>.tmp`,
//!                    created with `create_new`; also entries and locks being retired
//!   census-3         the size of the cache, as bounded handles report it (see
//!                    `crate::bounded`; its format is in `crate::format`)
//!   swept            its modification time is when abandoned files were last swept
//!                    (see `crate::sweep`)
//!   locks/           key locks of the atomic operations: `<64 hex>.lock`, created
//!                    with `create_new` (see `crate::exclusion`); the census lock
//!                    is `ffff…ff.lock`
//!   00/ … ff/        shards, created on first use: the first two hex digits of the hash
//!     <64 hex>       an entry: the blake3 hash of its key, lower-case hex, no extension
//! ```
//!
//! Only names of exactly these shapes are ever deleted by the cache (`clear`, sweeps),
//! so foreign files in the directory are left alone. The directories themselves
//! are held open by [`crate::cache_dir`].

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the cache-directory tag file.
pub const TAG_FILE: &str = "CACHEDIR.TAG";
/// Content of the tag file; the first line is fixed by the Cache Directory Tagging spec.
pub const TAG_CONTENT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by filecache.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";
/// Sub-directory holding temporary files.
pub const TMP_DIR: &str = "tmp";
/// Name of the census file (format version 3; older versions count in
/// `census` and `census-2`, so that versions do not overwrite each other's
/// count).
pub const CENSUS_FILE: &str = "census-3";
/// Name of the file whose modification time says when abandoned files were
/// last swept, and whose content marks a file system that keeps files removed
/// while open (FUSE).
pub const SWEPT_FILE: &str = "swept";
/// Sub-directory holding key lock files.
pub const LOCKS_DIR: &str = "locks";
/// Extension of lock files.
pub const LOCK_EXTENSION: &str = "lock";
/// Extension of temporary files.
pub const TEMP_EXTENSION: &str = "tmp";
/// Shard directories: one per value of a hash's first byte.
pub const SHARDS: usize = 256;

/// The blake3 hash of a key: the entry's identity on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyHash([u8; 32]);

/// The marker [`NIBBLES`] holds for a byte that is not a lower-case hex digit.
const NOT_HEX: u8 = 0x10;

/// The value of each lower-case hex digit, [`NOT_HEX`] for every other byte.
const NIBBLES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        table[HEX_DIGITS[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

impl KeyHash {
    /// The hash whose lock guards the census file (all ones: no key hashes to it
    /// in practice, and if one did, it would only share a lock).
    pub const CENSUS: Self = Self([0xff; 32]);
    /// The hash that names the sweep's temporary files (its probe of the file
    /// system, a new stamp).
    pub const SWEEP: Self = Self([0xfe; 32]);

    /// Hashes a key.
    pub fn of(key: &str) -> Self {
        Self(*blake3::hash(key.as_bytes()).as_bytes())
    }

    /// The hash spelled by a 64-character lower-case hex name, if it is one.
    pub fn from_hex(name: &str) -> Option<Self> {
        Self::from_hex_bytes(name.as_bytes())
    }

    /// [`Self::from_hex`] of a name as bytes (a directory listing's, say,
    /// which need not be UTF-8). Directory listings parse every name, so it
    /// decodes through a table, with one validity check at the end.
    pub fn from_hex_bytes(name: &[u8]) -> Option<Self> {
        if name.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        let mut invalid = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(name.chunks_exact(2)) {
            let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
            invalid |= high | low;
            *byte = (high << 4) | (low & 0x0f);
        }
        (invalid & NOT_HEX == 0).then_some(Self(bytes))
    }

    /// The first 8 bytes of the hash, as a number.
    pub fn prefix(&self) -> u64 {
        u64::from_le_bytes(first_eight(&self.0))
    }

    /// The first 8 bytes of the hash read big-endian: a number that sorts
    /// as the hashes do (a numbered `list-keys` cursor).
    pub fn order_prefix(&self) -> u64 {
        u64::from_be_bytes(first_eight(&self.0))
    }

    /// The greatest hash whose [`KeyHash::order_prefix`] is `prefix`: listing
    /// after it resumes after every hash with that prefix.
    pub fn last_with_order_prefix(prefix: u64) -> Self {
        let mut bytes = [0xff; 32];
        bytes[..8].copy_from_slice(&prefix.to_be_bytes());
        Self(bytes)
    }

    /// The index of the entry's shard directory (the first byte of the hash).
    pub fn shard(&self) -> u8 {
        self.0[0]
    }

    /// The 64-character lower-case hex form: the entry's file name.
    pub fn hex(&self) -> String {
        self.file_name().as_str().to_owned()
    }

    /// The entry's file name (its hex form), without allocating.
    pub fn file_name(&self) -> EntryName {
        let mut name = [0u8; 64];
        for (pair, byte) in name.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0xf)];
        }
        EntryName(name)
    }
}

/// An entry's file name held inline: see [`KeyHash::file_name`].
#[derive(Debug, Clone, Copy)]
pub struct EntryName([u8; 64]);

impl EntryName {
    /// The name.
    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A name of at most 80 bytes, held inline (entry, lock, temporary and
/// shard names): no allocation per file operation.
#[derive(Clone, Copy)]
pub struct ShortName {
    bytes: [u8; 80],
    len: u8,
}

impl ShortName {
    /// `text`, which must be at most 80 bytes (longer text is cut).
    pub fn new(text: &str) -> Self {
        let mut name = Self {
            bytes: [0; 80],
            len: 0,
        };
        name.push(text);
        name
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only whole `str`s are pushed: always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Appends `text` (cut at 80 bytes in all).
    pub fn push(&mut self, text: &str) {
        let start = usize::from(self.len);
        let end = (start + text.len()).min(self.bytes.len());
        self.bytes[start..end].copy_from_slice(&text.as_bytes()[..end - start]);
        self.len = end as u8;
    }

    fn push_hex(&mut self, value: u64, digits: u32) {
        for i in (0..digits).rev() {
            let digit = HEX_DIGITS[((value >> (i * 4)) & 0xf) as usize];
            self.push(std::str::from_utf8(&[digit]).unwrap_or_default());
        }
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of the shard directory with this index: two lower-case hex digits.
pub fn shard_name(index: u8) -> ShortName {
    let mut name = ShortName::new("");
    name.push_hex(u64::from(index), 2);
    name
}

/// The lock file name of the key with `hash`: `<64 hex>.lock`.
pub fn lock_name(hash: &KeyHash) -> ShortName {
    let mut name = ShortName::new(hash.file_name().as_str());
    name.push(".");
    name.push(LOCK_EXTENSION);
    name
}

/// A fresh temporary file name for a file about to hold something of `hash`:
/// `<first 16 hex of the hash>-<16 hex nonce>.tmp`. Unique with overwhelming
/// probability; callers still create it with `create_new`.
pub fn temp_name(hash: &KeyHash) -> ShortName {
    let mut name = ShortName::new("");
    name.push_hex(u64::from_be_bytes(first_eight(&hash.0)), 16);
    name.push("-");
    name.push_hex(nonce(), 16);
    name.push(".");
    name.push(TEMP_EXTENSION);
    name
}

/// Whether `name` is a shard directory name: two lower-case hex digits.
pub fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && is_lower_hex(name)
}

/// The index of the shard directory called `name`, if it is one.
pub fn shard_index(name: &str) -> Option<u8> {
    if is_shard_name(name) {
        u8::from_str_radix(name, 16).ok()
    } else {
        None
    }
}

/// Whether `name` is a lock file name: `<64 hex>.lock`.
#[cfg(test)]
pub fn is_lock_name(name: &str) -> bool {
    name.strip_suffix(".lock").is_some_and(is_entry_name)
}

/// Whether `name` is an entry file name: 64 lower-case hex digits.
#[cfg(test)]
pub fn is_entry_name(name: &str) -> bool {
    name.len() == 64 && is_lower_hex(name)
}

/// Whether `name` is a temporary file name: `<16 hex>-<16 hex>.tmp`.
pub fn is_temp_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".tmp") else {
        return false;
    };
    stem.len() == 33
        && stem.as_bytes()[16] == b'-'
        && is_lower_hex(&stem[..16])
        && is_lower_hex(&stem[17..])
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The lower-case hex digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn first_eight(bytes: &[u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// A number unlikely to repeat across threads, processes and wasm instances:
/// OS randomness (through std's hasher seeds, which WASI provides too) mixed with a
/// per-process counter. Uniqueness is a convenience: exclusion comes from `create_new`.
pub(crate) fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_the_documented_shapes() {
        let hash = KeyHash::of("hello");
        let name = hash.hex();
        assert!(is_entry_name(&name));
        assert_eq!(name, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(hash.file_name().as_str(), name);
        assert_eq!(KeyHash::from_hex(&name), Some(hash));
        assert_eq!(KeyHash::from_hex(&name[1..]), None);
        assert_eq!(KeyHash::from_hex(&name.to_uppercase()), None, "upper case");
        assert_eq!(KeyHash::from_hex(&format!("{}g", &name[1..])), None);
        for bad in [b'/', b':', b'`', b'g', b'G', b'A', 0, 0xff] {
            for at in [0, 1, 62, 63] {
                let mut spelled = name.clone().into_bytes();
                spelled[at] = bad;
                assert_eq!(KeyHash::from_hex_bytes(&spelled), None, "{bad} at {at}");
            }
        }
        let every_digit = "0123456789abcdef".repeat(4);
        assert_eq!(
            KeyHash::from_hex(&every_digit).map(|hash| hash.hex()),
            Some(every_digit)
        );
        let temp = temp_name(&hash);
        assert!(is_temp_name(temp.as_str()), "{temp:?}");
        assert!(temp.as_str().starts_with(&name[..16]));
        assert_ne!(temp_name(&hash).as_str(), temp.as_str());
        assert!(is_shard_name("0f") && !is_shard_name("0F") && !is_shard_name("tmp"));
        assert!(!is_entry_name("notes.txt") && !is_temp_name("notes.tmp"));
        let lock = lock_name(&hash);
        assert!(is_lock_name(lock.as_str()) && lock.as_str().starts_with(&name));
        assert_eq!(shard_index(&name[..2]), Some(hash.shard()));
        assert_eq!(shard_name(hash.shard()).as_str(), &name[..2]);
        assert_eq!(
            (shard_index("ff"), shard_index("FF"), shard_index("f")),
            (Some(255), None, None)
        );
    }
}
