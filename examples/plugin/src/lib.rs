//! A plugin: a guest component that imports `filecache:cache/store` and exports
//! `render(path) -> string`, a slow page renderer memoized in the cache. Built
//! for `wasm32-wasip2` and composed with `filecache.wasm` into one component
//! (by `host-test/build.rs` with wac's library, or `just plugin` with `wac
//! plug`). The rendering itself is plain Rust and is tested natively.
#![cfg_attr(target_family = "wasm", allow(unsafe_code))]

/// Where the plugin opens its cache (the host preopens it).
pub const CACHE_DIR: &str = "/cache";
/// How long a rendered page is kept, in milliseconds.
pub const PAGE_TTL_MS: u64 = 60_000;

/// The key a page is cached under.
pub fn page_key(path: &str) -> String {
    format!("page:{path}")
}

/// A page that takes a while to compute: how many primes are below a bound
/// that depends on the path.
pub fn render_page(path: &str) -> String {
    let bound = 50_000 + 1_000 * (path.len() as u32 % 50);
    let count = (2u32..bound)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count();
    format!("<h1>{path}</h1><p>{count} primes below {bound}.</p>")
}

/// The page with the comment that says where it came from.
pub fn annotate(page: &str, hit: bool, hits: u64, misses: u64) -> String {
    let source = if hit { "hit" } else { "miss" };
    format!("{page}\n<!-- cache: {source}; hits={hits} misses={misses} -->")
}

#[cfg(target_family = "wasm")]
mod component {
    use std::cell::OnceCell;

    use filecache::cache::store::Cache;
    use filecache::cache::types::{Expiry, Options};

    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "filecache:plugin/memo",
        generate_all,
    });

    struct Plugin;

    thread_local! {
        /// The cache, opened at the first call and kept by the instance.
        static CACHE: OnceCell<Cache> = const { OnceCell::new() };
    }

    fn options() -> Options {
        Options {
            durable: None,
            max_key_bytes: None,
            max_value_bytes: None,
            lease_ms: None,
            lock_timeout_ms: None,
            max_entries: Some(10_000),
            max_bytes: None,
            group_shared: None,
        }
    }

    impl Guest for Plugin {
        fn render(path: String) -> String {
            CACHE.with(|cell| {
                let cache = match cell.get() {
                    Some(cache) => cache,
                    None => match Cache::open(super::CACHE_DIR, options()) {
                        Ok(cache) => cell.get_or_init(|| cache),
                        Err(e) => return format!("<p>cache unavailable: {e:?}</p>"),
                    },
                };
                let key = super::page_key(&path);
                let cached = cache.get(&key).ok().flatten();
                let (page, hit) = match cached.and_then(|bytes| String::from_utf8(bytes).ok()) {
                    Some(page) => (page, true),
                    None => {
                        let page = super::render_page(&path);
                        let expiry = Expiry::After(super::PAGE_TTL_MS);
                        // A page that cannot be stored is still served.
                        let _ = cache.insert(&key, page.as_bytes(), expiry);
                        (page, false)
                    }
                };
                let (hits, misses) = cache.stats().map_or((0, 0), |s| (s.hits, s.misses));
                super::annotate(&page, hit, hits, misses)
            })
        }
    }

    export!(Plugin);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_deterministic_and_annotated() {
        assert_eq!(render_page("/a"), render_page("/a"));
        assert!(render_page("/").contains("primes below"));
        assert!(annotate("p", true, 1, 0).ends_with("<!-- cache: hit; hits=1 misses=0 -->"));
        assert_eq!(page_key("/x"), "page:/x");
    }
}
