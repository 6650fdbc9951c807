//! The main job: runs the filecache component inside this wasmtime host against a
//! local directory, then reads the same entries natively, to show both share one
//! cache. `cargo run -p filecache-host --bin filecache-demo -- [DIR]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use filecache::{Expiry, FileStore, Options};
use filecache_host::precompiled::Loaded;
use filecache_host::{CacheRuntime, HostConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "demo-cache".into()),
    );
    let runtime = CacheRuntime::new(HostConfig::default())?;
    match runtime.loaded() {
        Loaded::Compiled { took, stored, .. } => println!(
            "compiled the component in {took:.2?}{}",
            stored.as_ref().map_or(String::new(), |path| format!(
                " (kept in {} for the next start)",
                path.display()
            ))
        ),
        Loaded::Precompiled { took, from } => println!(
            "loaded the precompiled component in {took:.2?} (from {})",
            from.display()
        ),
    }

    let mut component = runtime.open(&dir, &Options::default())?;
    println!(
        "opened `{}` inside a wasm instance (preopened at /cache)",
        dir.display()
    );
    component.insert("greeting", b"hello from wasm", Expiry::Never)?;
    component.insert(
        "short-lived",
        b"gone in 300 ms",
        Expiry::After(Duration::from_millis(300)),
    )?;
    for i in 0..100 {
        component.insert(
            &format!("page:{i}"),
            format!("<p>page {i}</p>").as_bytes(),
            Expiry::After(Duration::from_secs(3600)),
        )?;
    }
    let started = Instant::now();
    let rounds = 1000;
    for i in 0..rounds {
        component.get(&format!("page:{}", i % 100))?;
    }
    println!(
        "component get: {:.1} µs/op",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );

    let native = FileStore::open(&dir, Options::default())?;
    let read_back = native.get("greeting")?.map(String::from_utf8).transpose()?;
    println!("native read of the component's entry: {read_back:?}");
    native.insert("from-native", b"hello from native", Expiry::Never)?;
    let from_native = component
        .get("from-native")?
        .map(String::from_utf8)
        .transpose()?;
    println!("component read of the native entry: {from_native:?}");

    std::thread::sleep(Duration::from_millis(350));
    println!(
        "after 350 ms, short-lived is present: {}",
        component.contains_key("short-lived")?
    );
    let stats = component.stats()?;
    println!(
        "entries {}, bytes {}, hits {}, misses {}, expired removed {}",
        stats.entries, stats.bytes, stats.hits, stats.misses, stats.expired_removed
    );
    Ok(())
}
