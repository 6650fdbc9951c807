//! The keyvalue plugin example (`examples/kv-plugin`), written against
//! `wasi:keyvalue@0.2.0-draft` alone, composed with filecache's keyvalue
//! component: run in filecache-host and under the real `wasmtime` CLI. Its
//! counters are ordinary cache entries in the bucket's directory.

use std::path::Path;
use std::process::Command;

use filecache::{Expiry, FileStore, Options};
use filecache_host::HostConfig;
use filecache_host::artifacts::{KV_PLUGIN_COMPONENT, KV_PLUGIN_COMPOSED};
use filecache_host::visits::VisitsRuntime;

fn bucket_on_disk(root: &Path) -> FileStore {
    FileStore::open(root.join("visits"), Options::default()).expect("open natively")
}

#[test]
fn visits_are_counted_across_instances_and_reported() {
    let root = tempfile::tempdir().expect("temp dir");
    let runtime = VisitsRuntime::new(HostConfig::kv_plugin()).expect("load the composed plugin");
    let mut first = runtime.instantiate(root.path()).expect("instantiate");
    let mut second = runtime.instantiate(root.path()).expect("instantiate");
    assert_eq!(first.visit("/home").expect("call"), Ok(1));
    assert_eq!(second.visit("/home").expect("call"), Ok(2));
    assert_eq!(second.visit("/about").expect("call"), Ok(1));
    let native = bucket_on_disk(root.path());
    assert_eq!(
        native.get("visits:/home").expect("get"),
        Some(b"2".to_vec())
    );
    native
        .insert("not-a-counter", b"x", Expiry::Never)
        .expect("insert");
    assert_eq!(
        first.report().expect("call"),
        Ok(vec![("/about".to_owned(), 1), ("/home".to_owned(), 2)])
    );
    native
        .insert("visits:/broken", b"many", Expiry::Never)
        .expect("insert");
    let report = first.report().expect("call");
    assert!(
        matches!(&report, Err(message) if message.contains("visits:/broken")),
        "{report:?}"
    );
    assert!(
        first.visit("/broken").expect("call").is_err(),
        "text is not counted"
    );
}

#[test]
fn the_bare_plugin_needs_a_keyvalue_store() {
    let config = HostConfig {
        component: KV_PLUGIN_COMPONENT.into(),
        ..HostConfig::default()
    };
    let error = VisitsRuntime::new(config).expect_err("links with WASI alone");
    let message = format!("{error:#}");
    assert!(
        message.contains("wasi:keyvalue/store@0.2.0-draft"),
        "{message}"
    );
}

#[test]
fn visits_are_counted_under_the_wasmtime_cli() {
    let Some(wasmtime) =
        filecache_conformance::tools::wasmtime("the keyvalue plugin under the CLI")
    else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let visit = || {
        let out = Command::new(&wasmtime)
            .arg("run")
            .arg("--dir")
            .arg(format!("{}::/kv", root.path().display()))
            .args(["--env", "FILECACHE_KEYVALUE_ROOT=/kv"])
            .args(["--invoke", "visit(\"/cli\")", KV_PLUGIN_COMPOSED])
            .output()
            .expect("run wasmtime");
        assert!(
            out.status.success(),
            "wasmtime run --invoke failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    };
    assert_eq!(visit(), "ok(1)");
    assert_eq!(visit(), "ok(2)");
    assert_eq!(
        bucket_on_disk(root.path()).get("visits:/cli").expect("get"),
        Some(b"2".to_vec())
    );
}
