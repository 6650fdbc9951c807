//! A plugin written against `wasi:keyvalue@0.2.0-draft` only: it counts page
//! visits (`visit(page)`, an atomic increment) and reports them (`report()`,
//! every key page by page, then one `get-many`). It runs unchanged wherever
//! that draft is served: composed with `filecache-keyvalue.wasm` into one
//! component on a local directory (`host-test/build.rs`, or `wac plug`), or
//! linked by a host to another store. The key scheme is plain Rust, tested
//! natively.
#![cfg_attr(target_family = "wasm", allow(unsafe_code))]

/// The bucket the counters live in.
pub const BUCKET: &str = "visits";
/// What every counter's key starts with (other keys in the bucket are not reported).
const PREFIX: &str = "visits:";

/// The key of `page`'s counter.
pub fn counter_key(page: &str) -> String {
    format!("{PREFIX}{page}")
}

/// The page a counter's key counts, if `key` is a counter's.
pub fn page_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)
}

/// A stored counter: decimal text of a `u64`.
///
/// # Errors
/// A message naming the key if the value is not such a number.
pub fn parse_count(key: &str, value: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{key} holds no count"))
}

#[cfg(target_family = "wasm")]
mod component {
    use wasi::keyvalue0_2_0_draft::store::{self, Bucket, Error};
    use wasi::keyvalue0_2_0_draft::{atomics, batch};

    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "filecache:visits/visits",
        generate_all,
    });

    struct Plugin;

    fn describe(error: Error) -> String {
        match error {
            Error::NoSuchStore => "no such store".into(),
            Error::AccessDenied => "access denied".into(),
            Error::Other(message) => message,
        }
    }

    fn bucket() -> Result<Bucket, String> {
        store::open(super::BUCKET).map_err(describe)
    }

    impl Guest for Plugin {
        fn visit(page: String) -> Result<u64, String> {
            atomics::increment(&bucket()?, &super::counter_key(&page), 1).map_err(describe)
        }

        fn report() -> Result<Vec<(String, u64)>, String> {
            let bucket = bucket()?;
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor).map_err(describe)?;
                keys.extend(
                    page.keys
                        .into_iter()
                        .filter(|k| super::page_of(k).is_some()),
                );
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let mut counts = batch::get_many(&bucket, &keys)
                .map_err(describe)?
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    let count = super::parse_count(&key, &value)?;
                    let page = super::page_of(&key).unwrap_or(&key).to_owned();
                    Ok((page, count))
                })
                .collect::<Result<Vec<_>, String>>()?;
            counts.sort();
            Ok(counts)
        }
    }

    export!(Plugin);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_keyed_by_page_and_hold_decimal_counts() {
        assert_eq!(counter_key("/a"), "visits:/a");
        assert_eq!(page_of(&counter_key("/a/b")), Some("/a/b"));
        assert_eq!(page_of("other"), None);
        assert_eq!(parse_count("k", b"42"), Ok(42));
        assert_eq!(parse_count("k", b"-1"), Err("k holds no count".to_owned()));
        assert!(parse_count("k", b"\xff").is_err());
    }
}
