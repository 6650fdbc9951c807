//! The `wasi:keyvalue` component in the wasmtime host, on a local directory:
//! `cargo run -p filecache-host --example keyvalue -- [ROOT]` (or `just keyvalue`).
//! Each run counts one more visit in the bucket `demo` under ROOT (default
//! `./kv-data`), then lists the bucket's keys.

use filecache_host::HostConfig;
use filecache_host::keyvalue::{KeyValueRuntime, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args().nth(1).unwrap_or_else(|| "kv-data".into());
    let runtime = KeyValueRuntime::new(HostConfig::keyvalue())?;
    let mut instance = runtime.instantiate(root.as_ref())?;
    let bucket = instance.open(Version::Draft2, "demo")?;
    let visits = instance.increment(&bucket, "visits", 1)?;
    instance.set(&bucket, "greeting", b"hello from wasi:keyvalue")?;
    let greeting = instance.get(&bucket, "greeting")?.unwrap_or_default();
    println!("visits = {visits}");
    println!("greeting = {}", String::from_utf8_lossy(&greeting));
    let (keys, _cursor) = instance.list_keys(&bucket, None)?;
    println!("keys in bucket `demo` ({root}/demo): {keys:?}");
    Ok(())
}
