//! Repeats one operation many times, for profilers (`strace -c`, `perf`,
//! `valgrind --tool=callgrind`): `cargo run --release -p filecache-host
//! --example profile -- component|native get|insert|open|instantiate|request [COUNT]`
//! (`FC_VALUE_SIZE`: bytes per value, default 100; `FC_DIR`: where the cache goes).

use std::time::Instant;

use filecache::{Expiry, FileStore, Options};
use filecache_host::{CacheRuntime, HostConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args.first().map_or("component", String::as_str);
    let op = args.get(1).map_or("get", String::as_str);
    let count: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let value_size: usize = std::env::var("FC_VALUE_SIZE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let dir = std::env::var_os("FC_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from)
        .join("filecache-profile");
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options::default();
    let native = FileStore::open(&dir, options.clone()).expect("open");
    for i in 0..100 {
        native
            .insert(&format!("key {i}"), &vec![7u8; value_size], Expiry::Never)
            .expect("insert");
    }
    let bounded = FileStore::open(
        &dir,
        Options {
            max_entries: Some(10_000_000),
            ..options.clone()
        },
    )
    .expect("open bounded");
    let runtime = CacheRuntime::new(HostConfig::default()).expect("runtime");
    let mut component = runtime.open(&dir, &options).expect("open component");
    let started = Instant::now();
    for i in 0..count {
        let key = format!("key {}", i % 100);
        match (backend, op) {
            ("component", "get") => drop(component.get(&key).expect("get")),
            ("native", "get") => drop(native.get(&key).expect("get")),
            ("component", "insert") => component
                .insert(&key, &[1u8; 100], Expiry::Never)
                .expect("insert"),
            ("native", "insert") => native
                .insert(&key, &[1u8; 100], Expiry::Never)
                .expect("insert"),
            ("native", "insert-new") => native
                .insert(&format!("new {i}"), &[1u8; 100], Expiry::Never)
                .expect("insert"),
            ("bounded", "insert-new") => bounded
                .insert(&format!("new {i}"), &[1u8; 100], Expiry::Never)
                .expect("insert"),
            ("component", "open-invalid") => {
                let bad = Options {
                    max_entries: Some(0),
                    ..Options::default()
                };
                assert!(
                    runtime
                        .instantiate(&dir)
                        .expect("instantiate")
                        .open(&bad)
                        .is_err()
                );
            }
            ("component", "instantiate") => drop(runtime.instantiate(&dir).expect("instantiate")),
            ("component", "request") => {
                let mut cache = runtime.open(&dir, &options).expect("open");
                drop(cache.get(&key).expect("get"));
            }
            ("component", "open") => {
                let t = Instant::now();
                let cache = runtime.open(&dir, &options).expect("open");
                let opened = t.elapsed();
                drop(cache);
                if std::env::var_os("FC_TIMING").is_some() && i % 500 == 0 {
                    eprintln!("open {opened:?} drop {:?}", t.elapsed() - opened);
                }
            }
            other => panic!("unknown {other:?}"),
        }
    }
    println!(
        "{backend} {op}: {:.2} µs/op",
        started.elapsed().as_secs_f64() * 1e6 / count as f64
    );
}
