//! The native store and the component share one directory at the same time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use filecache::{Expiry, FileStore, Options};
use filecache_conformance::backends::runtime;
use filecache_conformance::values::{check_stamped, stamped};

#[test]
fn value_written_natively_reads_back_through_the_component() {
    let dir = tempfile::tempdir().expect("temp dir");
    let native = FileStore::open(dir.path(), Options::default()).expect("open native");
    let binary: Vec<u8> = (0..=255).collect();
    native
        .insert("native-key", &binary, Expiry::Never)
        .expect("insert");
    native
        .insert("soon-gone", b"v", Expiry::After(Duration::from_millis(200)))
        .expect("insert");
    let mut component = runtime()
        .open(dir.path(), &Options::default())
        .expect("open component");
    assert_eq!(component.get("native-key").expect("get"), Some(binary));
    assert!(component.contains_key("soon-gone").expect("contains"));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        component.get("soon-gone").expect("get"),
        None,
        "expiry agrees across backends"
    );
    assert_eq!(component.approx_size().expect("size"), 1);
}

#[test]
fn value_written_by_the_component_reads_back_natively() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut component = runtime()
        .open(dir.path(), &Options::default())
        .expect("open component");
    component
        .insert("wasm-key", "ünïcode value".as_bytes(), Expiry::Never)
        .expect("insert");
    component
        .insert("empty", b"", Expiry::Never)
        .expect("insert");
    let native = FileStore::open(dir.path(), Options::default()).expect("open native");
    assert_eq!(
        native.get("wasm-key").expect("get"),
        Some("ünïcode value".as_bytes().to_vec())
    );
    assert_eq!(native.get("empty").expect("get"), Some(Vec::new()));
    native.remove("wasm-key").expect("remove");
    assert_eq!(component.get("wasm-key").expect("get"), None);
    component.clear().expect("clear");
    assert_eq!(native.approx_size().expect("size"), 0);
}

/// Native threads and wasm instances write one key at once while both kinds read:
/// every read is a whole value some writer wrote.
#[test]
fn native_threads_and_wasm_instances_share_a_key_without_tearing() {
    const WRITES: u64 = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let native = FileStore::open(dir.path(), Options::default()).expect("open native");
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut writers = Vec::new();
        for writer in 0..4u64 {
            let native = &native;
            writers.push(scope.spawn(move || {
                for seq in 0..WRITES {
                    let value = stamped(writer, seq, 100 + (seq as usize * 37) % 3000);
                    native
                        .insert("shared", &value, Expiry::Never)
                        .expect("native insert");
                }
            }));
        }
        for writer in 4..8u64 {
            let mut component = runtime()
                .open(dir.path(), &Options::default())
                .expect("open component");
            writers.push(scope.spawn(move || {
                for seq in 0..WRITES {
                    let value = stamped(writer, seq, 100 + (seq as usize * 53) % 3000);
                    component
                        .insert("shared", &value, Expiry::Never)
                        .expect("component insert");
                }
            }));
        }
        let done = &done;
        let native = &native;
        scope.spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Some(value) = native.get("shared").expect("native get") {
                    assert!(
                        check_stamped(&value).is_some(),
                        "native reader saw a torn value"
                    );
                }
            }
        });
        let mut component = runtime()
            .open(dir.path(), &Options::default())
            .expect("open component");
        scope.spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Some(value) = component.get("shared").expect("component get") {
                    assert!(
                        check_stamped(&value).is_some(),
                        "component reader saw a torn value"
                    );
                }
            }
        });
        for writer in writers {
            writer.join().expect("writer");
        }
        done.store(true, Ordering::Release);
    });
    let last = native.get("shared").expect("get").expect("present");
    assert_eq!(check_stamped(&last).map(|(_, seq)| seq), Some(WRITES - 1));
}
