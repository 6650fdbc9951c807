//! The visit-counter plugin (`examples/kv-plugin`, written against
//! `wasi:keyvalue@0.2.0-draft`) on either store, unchanged:
//!
//! ```sh
//! cargo run -p filecache-host --features redis --example visits -- dir kv-data /hello
//! cargo run -p filecache-host --features redis --example visits -- redis redis://127.0.0.1:6379/ /hello
//! ```
//!
//! `dir ROOT`: composed with filecache's keyvalue component, buckets under
//! ROOT on this machine. `redis URL`: the bare plugin, its `wasi:keyvalue`
//! imports served by the Redis server at URL, which any number of machines
//! can share. Each run counts one visit of the page and prints the report.

use filecache_host::HostConfig;
use filecache_host::artifacts::KV_PLUGIN_COMPONENT;
use filecache_host::host_keyvalue::RedisStore;
use filecache_host::visits::{VisitsInstance, VisitsRuntime};

const USAGE: &str = "usage: visits (dir ROOT | redis URL) [PAGE]";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(place)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let page = args.get(2).map_or("/hello", String::as_str);
    let mut plugin: VisitsInstance = match kind.as_str() {
        "dir" => VisitsRuntime::new(HostConfig::kv_plugin())?.instantiate(place.as_ref())?,
        "redis" => {
            let config = HostConfig {
                component: KV_PLUGIN_COMPONENT.into(),
                ..HostConfig::default()
            };
            let store = RedisStore::connect(place, "visits-example")?;
            VisitsRuntime::on_host_store(config)?.instantiate_on(Box::new(store))?
        }
        _ => return Err(USAGE.into()),
    };
    let visits = plugin.visit(page)??;
    println!("{page}: {visits} visit(s)");
    for (page, count) in plugin.report()?? {
        println!("  {page}\t{count}");
    }
    Ok(())
}
