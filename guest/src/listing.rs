//! Listing the live keys in pages, shaped like `wasi:keyvalue`'s `list-keys`.
//!
//! Keys are listed in the order of their hashes (shard by shard, names sorted
//! within a shard). The cursor is the hash of the last key of a page, so a
//! listing resumes correctly whatever happened in between: a key that is live
//! for the whole listing is returned exactly once; a key inserted or removed
//! meanwhile may or may not be. Each page costs one listing of the shard
//! directories it touches and one small read (header and key) per entry; an
//! entry whose stored key does not hash to its file name (damage) is skipped.

use std::io;

use crate::error::{Error, MissingOk, Result};
use crate::format::{self, HEADER_LEN, Head};
use crate::layout::KeyHash;
use crate::options::now_ms;
use crate::platform::{self, Dir};
use crate::scan;
use crate::store::FileStore;

/// Keys returned per page.
pub const PAGE_SIZE: usize = 256;

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    /// Live keys, in hash order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the listing is complete.
    pub cursor: Option<String>,
}

/// One page of keys with a numbered cursor ([`FileStore::list_keys_numbered`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumberedKeyPage {
    /// Live keys, in hash order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the listing is complete.
    pub cursor: Option<u64>,
}

impl FileStore {
    /// A page of live (unexpired) keys, starting after `cursor` (`None`: from
    /// the start). Pass the returned cursor to get the next page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a cursor this cache did not hand out; an I/O
    /// error if a directory or entry cannot be read.
    pub fn list_keys(&self, cursor: Option<&str>) -> Result<KeyPage> {
        let after = match cursor {
            None => None,
            Some(cursor) => Some(KeyHash::from_hex(cursor).ok_or_else(|| {
                Error::invalid(format!(
                    "`{cursor}` is not a list-keys cursor of this cache"
                ))
            })?),
        };
        let (keys, last) = self.page_after(after, PageEnd::AnyKey)?;
        Ok(KeyPage {
            keys,
            cursor: last.map(|hash| hash.hex()),
        })
    }

    /// [`FileStore::list_keys`] with a numbered cursor (`wasi:keyvalue`
    /// 0.2.0-draft's `option<u64>`): the first 8 bytes of the last key's hash,
    /// read big-endian. A page ends only between two keys whose numbers
    /// differ, so in the rare case that two keys share one it may hold more
    /// than [`PAGE_SIZE`] keys, and resuming after a number skips nothing; the
    /// guarantees are `list_keys`'s. Every number is a valid cursor.
    ///
    /// # Errors
    /// An I/O error if a directory or entry cannot be read.
    pub fn list_keys_numbered(&self, cursor: Option<u64>) -> Result<NumberedKeyPage> {
        let after = cursor.map(KeyHash::last_with_order_prefix);
        let (keys, last) = self.page_after(after, PageEnd::NewOrderPrefix)?;
        Ok(NumberedKeyPage {
            keys,
            cursor: last.map(|hash| hash.order_prefix()),
        })
    }

    /// The live keys whose hashes sort after `after`, up to a page as `end`
    /// has it, and the hash of the page's last key when more may follow.
    fn page_after(
        &self,
        after: Option<KeyHash>,
        end: PageEnd,
    ) -> Result<(Vec<String>, Option<KeyHash>)> {
        let first_shard = after.map_or(0, |hash| hash.shard());
        let now = now_ms();
        let mut keys = Vec::new();
        // Set once the page is full and `end` wants it closed only at a new prefix.
        let mut full_at: Option<KeyHash> = None;
        for index in scan::shards(self.cache())? {
            if index < first_shard {
                continue;
            }
            let Some(dir) = scan::shard(self.cache(), index)? else {
                continue;
            };
            let mut hashes = scan::entry_hashes(&dir)?;
            hashes.sort_unstable();
            for hash in hashes {
                if after.is_some_and(|after| hash <= after) {
                    continue;
                }
                if let Some(last) = full_at
                    && last.order_prefix() != hash.order_prefix()
                {
                    return Ok((keys, Some(last)));
                }
                let Some((key, head)) = read_stored_key(&dir, &hash)? else {
                    continue;
                };
                if head.is_expired_at(now) || KeyHash::of(&key) != hash {
                    continue;
                }
                keys.push(key);
                if keys.len() >= PAGE_SIZE {
                    match end {
                        PageEnd::AnyKey => return Ok((keys, Some(hash))),
                        PageEnd::NewOrderPrefix => full_at = Some(hash),
                    }
                }
            }
        }
        Ok((keys, None))
    }

    /// Every live key, page by page (see [`FileStore::list_keys`]).
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            store: self,
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }
}

/// Where a full page may end.
#[derive(Debug, Clone, Copy)]
enum PageEnd {
    /// After any key.
    AnyKey,
    /// Only before a key whose [`KeyHash::order_prefix`] differs from the last.
    NewOrderPrefix,
}

/// The iterator of [`FileStore::keys`].
#[derive(Debug)]
pub struct Keys<'a> {
    store: &'a FileStore,
    page: std::vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match self.store.list_keys(self.cursor.as_deref()) {
                Ok(page) => {
                    self.done = page.cursor.is_none();
                    self.cursor = page.cursor;
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The key and header stored in the entry file of `hash` in `dir`; `None` if
/// the file is gone or is not an entry (a damaged one is left for `get` to
/// retire).
fn read_stored_key(dir: &Dir, hash: &KeyHash) -> Result<Option<(String, Head)>> {
    let name = hash.file_name();
    match read_key_bytes(dir, name.as_str()).missing_ok() {
        Ok(Some(Some((bytes, head)))) => Ok(String::from_utf8(bytes).ok().map(|key| (key, head))),
        Ok(_) => Ok(None),
        Err(e) if platform::is_refused_link(&e) => Ok(None),
        Err(e) => Err(Error::io("read entry", &dir.path().join(name.as_str()), e)),
    }
}

fn read_key_bytes(dir: &Dir, name: &str) -> io::Result<Option<(Vec<u8>, Head)>> {
    const FIRST_READ: usize = 512;
    let file = dir.open_file(name)?;
    let file_len = file.stat()?.len;
    let mut bytes = vec![0u8; FIRST_READ.min(usize::try_from(file_len).unwrap_or(FIRST_READ))];
    let filled = platform::fill(&file, &mut bytes, 0)?;
    bytes.truncate(filled);
    let Ok(head) = format::decode_head(&bytes, file_len) else {
        return Ok(None);
    };
    let key_end = HEADER_LEN + head.key_len;
    if bytes.len() < key_end {
        let from = bytes.len();
        bytes.resize(key_end, 0);
        let filled = platform::fill(&file, &mut bytes, from)?;
        bytes.truncate(filled);
    }
    if bytes.len() < key_end {
        return Ok(None); // shrank under us: not a whole entry any more
    }
    bytes.truncate(key_end);
    bytes.drain(..HEADER_LEN);
    Ok(Some((bytes, head)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{Expiry, Options};

    fn numbered_listing(store: &FileStore) -> Vec<NumberedKeyPage> {
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.list_keys_numbered(cursor).expect("list");
            cursor = page.cursor;
            pages.push(page);
            if cursor.is_none() {
                return pages;
            }
        }
    }

    #[test]
    fn numbered_pages_cover_every_live_key_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path(), Options::default()).expect("open");
        let live: BTreeSet<String> = (0..700).map(|i| format!("key-{i}")).collect();
        for key in &live {
            store.insert(key, b"v", Expiry::Never).expect("insert");
        }
        for i in 0..50 {
            let key = format!("expired-{i}");
            store
                .insert(
                    &key,
                    b"v",
                    Expiry::At(
                        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1),
                    ),
                )
                .expect("insert");
        }
        let pages = numbered_listing(&store);
        assert_eq!(pages.len(), 3, "700 keys in pages of {PAGE_SIZE}");
        let mut seen = BTreeSet::new();
        for page in &pages {
            assert!(page.keys.len() <= PAGE_SIZE);
            for key in &page.keys {
                assert!(seen.insert(key.clone()), "{key} listed twice");
            }
        }
        assert_eq!(seen, live);
        let numbers: Vec<u64> = pages.iter().filter_map(|page| page.cursor).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "cursors ascend");
    }

    #[test]
    fn a_numbered_cursor_resumes_after_its_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path(), Options::default()).expect("open");
        for i in 0..10 {
            store
                .insert(&format!("k{i}"), b"v", Expiry::Never)
                .expect("insert");
        }
        let mut by_number: Vec<(u64, String)> = (0..10)
            .map(|i| format!("k{i}"))
            .map(|key| (KeyHash::of(&key).order_prefix(), key))
            .collect();
        by_number.sort();
        let (third, _) = by_number[2];
        let page = store.list_keys_numbered(Some(third)).expect("list");
        let rest: Vec<String> = by_number[3..].iter().map(|(_, key)| key.clone()).collect();
        assert_eq!(page.keys, rest);
        assert_eq!(page.cursor, None);
        let none = store.list_keys_numbered(Some(u64::MAX)).expect("list");
        assert_eq!(none, NumberedKeyPage::default());
    }
}
