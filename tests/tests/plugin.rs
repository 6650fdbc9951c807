//! The plugin example composed with the cache component: run in filecache-host,
//! and under the real `wasmtime` CLI with `--invoke`. The second call for a page
//! is served from the cache — visible in the page's comment (hit, and the
//! instance's cache statistics) and on disk.

use std::path::Path;
use std::process::Command;

use filecache::{FileStore, Options};
use filecache_host::HostConfig;
use filecache_host::artifacts::{CACHE_COMPONENT, PLUGIN_COMPONENT, PLUGIN_COMPOSED};
use filecache_host::plugin::PluginRuntime;

fn keys_on_disk(dir: &Path) -> Vec<String> {
    let store = FileStore::open(dir, Options::default()).expect("open natively");
    let mut keys: Vec<String> = store.keys().map(|key| key.expect("key")).collect();
    keys.sort();
    keys
}

#[test]
fn the_second_call_is_served_from_the_cache_in_the_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = PluginRuntime::new(HostConfig::plugin()).expect("load the composed plugin");
    let mut plugin = runtime.instantiate(dir.path()).expect("instantiate");
    let first = plugin.render("/reports").expect("render");
    assert!(first.contains("primes below"), "{first}");
    assert!(
        first.ends_with("<!-- cache: miss; hits=0 misses=1 -->"),
        "{first}"
    );
    let second = plugin.render("/reports").expect("render");
    assert!(
        second.ends_with("<!-- cache: hit; hits=1 misses=1 -->"),
        "{second}"
    );
    assert_eq!(first.lines().next(), second.lines().next(), "the same page");
    assert_eq!(keys_on_disk(dir.path()), ["page:/reports"]);
    let mut another = runtime.instantiate(dir.path()).expect("instantiate");
    let third = another.render("/reports").expect("render");
    assert!(
        third.ends_with("<!-- cache: hit; hits=1 misses=0 -->"),
        "a fresh instance reads what the first stored: {third}"
    );
}

fn wasmtime() -> Option<String> {
    filecache_conformance::tools::wasmtime("the plugin under the wasmtime CLI")
}

fn invoke(wasmtime: &str, component: &str, dir: &Path, path: &str) -> String {
    let out = Command::new(wasmtime)
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::/cache", dir.display()))
        .arg("--invoke")
        .arg(format!("render({path:?})"))
        .arg(component)
        .output()
        .expect("run wasmtime");
    assert!(
        out.status.success(),
        "wasmtime run --invoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn the_second_invocation_is_served_from_the_cache_under_the_wasmtime_cli() {
    let Some(wasmtime) = wasmtime() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let first = invoke(&wasmtime, PLUGIN_COMPOSED, dir.path(), "/cli");
    assert!(first.contains("cache: miss; hits=0 misses=1"), "{first}");
    let second = invoke(&wasmtime, PLUGIN_COMPOSED, dir.path(), "/cli");
    assert!(second.contains("cache: hit; hits=1 misses=0"), "{second}");
    assert_eq!(keys_on_disk(dir.path()), ["page:/cli"]);
}

#[test]
fn wac_plug_composes_the_same_plugin() {
    let wac = std::env::var("WAC").unwrap_or_else(|_| "wac".into());
    if !filecache_conformance::tools::runs(&wac) {
        eprintln!(
            "\n*** SKIPPED: `wac plug` comparison: no `{wac}` (`just plugin` installs wac-cli; \
             the tests compose with wac's library in host-test/build.rs) ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let composed = dir.path().join("composed.wasm");
    let status = Command::new(&wac)
        .args(["plug", PLUGIN_COMPONENT, "--plug", CACHE_COMPONENT, "-o"])
        .arg(&composed)
        .status()
        .expect("run wac");
    assert!(status.success());
    let config = HostConfig {
        component: composed,
        ..HostConfig::default()
    };
    let runtime = PluginRuntime::new(config).expect("load wac's composition");
    let cache = dir.path().join("cache");
    let mut plugin = runtime.instantiate(&cache).expect("instantiate");
    plugin.render("/wac").expect("render");
    assert!(
        plugin
            .render("/wac")
            .expect("render")
            .contains("cache: hit")
    );
}
