//! `wasi:keyvalue` past one machine: the keyvalue conformance suite against
//! the host-served store on Redis (each case starts its own `redis-server` on
//! 127.0.0.1 and stops it after), and the visit-counter plugin — the same
//! `kv-plugin.wasm` that `tests/kv_plugin.rs` runs composed with filecache —
//! with its imports served by Redis.

use filecache_conformance::keyvalue::redis::Redis;
use filecache_conformance::redis_server::{self, RedisServer};
use filecache_host::HostConfig;
use filecache_host::artifacts::KV_PLUGIN_COMPONENT;
use filecache_host::host_keyvalue::{KeyValueStore, RedisStore};
use filecache_host::visits::VisitsRuntime;

filecache_conformance::keyvalue_suite!(Redis);

fn server() -> Option<RedisServer> {
    match redis_server::unavailable() {
        Some(reason) => {
            eprintln!("\n*** SKIPPED: the plugin on Redis: {reason} ***\n");
            None
        }
        None => Some(RedisServer::start()),
    }
}

#[test]
fn the_same_plugin_counts_visits_in_redis_from_several_instances() {
    let Some(server) = server() else { return };
    let config = HostConfig {
        component: KV_PLUGIN_COMPONENT.into(),
        ..HostConfig::default()
    };
    let runtime = VisitsRuntime::on_host_store(config).expect("load the bare plugin");
    let connect = || -> Box<dyn KeyValueStore> {
        Box::new(RedisStore::connect(&server.url(), "app").expect("connect"))
    };
    let mut first = runtime.instantiate_on(connect()).expect("instantiate");
    let mut second = runtime.instantiate_on(connect()).expect("instantiate");
    assert_eq!(first.visit("/home").expect("call"), Ok(1));
    assert_eq!(second.visit("/home").expect("call"), Ok(2));
    assert_eq!(second.visit("/about").expect("call"), Ok(1));
    let mut redis = RedisStore::connect(&server.url(), "app").expect("connect");
    assert_eq!(
        redis.get("visits", "visits:/home").expect("get"),
        Some(b"2".to_vec()),
        "the counter is a Redis key"
    );
    for page in 0..300 {
        redis
            .set("visits", &format!("visits:/p{page:03}"), b"7")
            .expect("set");
    }
    let report = first.report().expect("call").expect("report");
    assert_eq!(report.len(), 302, "every counter, over several SCAN pages");
    assert!(report.contains(&("/home".to_owned(), 2)));
    assert!(report.contains(&("/p299".to_owned(), 7)));
    redis.set("visits", "visits:/broken", b"many").expect("set");
    let refused = first.visit("/broken").expect("call");
    assert!(
        matches!(&refused, Err(message) if message.contains("not an integer")),
        "{refused:?}"
    );
}

#[test]
fn concurrent_plugin_instances_lose_no_visit() {
    const EACH: u64 = 40;
    let Some(server) = server() else { return };
    let config = HostConfig {
        component: KV_PLUGIN_COMPONENT.into(),
        ..HostConfig::default()
    };
    let runtime = VisitsRuntime::on_host_store(config).expect("load the bare plugin");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let store = RedisStore::connect(&server.url(), "app").expect("connect");
            let mut plugin = runtime
                .instantiate_on(Box::new(store))
                .expect("instantiate");
            scope.spawn(move || {
                for _ in 0..EACH {
                    plugin.visit("/hot").expect("call").expect("visit");
                }
            });
        }
    });
    let mut redis = RedisStore::connect(&server.url(), "app").expect("connect");
    assert_eq!(
        redis.get("visits", "visits:/hot").expect("get"),
        Some((4 * EACH).to_string().into_bytes())
    );
}
