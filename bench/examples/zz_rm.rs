use filecache::{Expiry, FileStore, Options};
fn main() {
    let dir = std::path::PathBuf::from("/dev/shm/zzrm");
    let _ = std::fs::remove_dir_all(&dir);
    let opts = || Options {
        max_entries: Some(1000),
        ..Options::default()
    };
    {
        let s = FileStore::open(&dir, opts()).expect("o");
        for i in 0..1000 {
            s.insert(&format!("old {i}"), b"value", Expiry::Never)
                .expect("i");
        }
    }
    println!(
        "census after fill: {:?}",
        filecache::testing::census(&dir).map(|c| (c.entries, c.reservations.len()))
    );
    let s = FileStore::open(&dir, opts()).expect("o");
    s.remove("old 0").expect("r");
    println!(
        "census after remove: {:?}",
        filecache::testing::census(&dir).map(|c| (c.entries, c.reservations.len()))
    );
    std::mem::forget(s);
}
