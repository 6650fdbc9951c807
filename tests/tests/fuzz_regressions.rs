//! Replays the fuzz seed corpus (`fuzz/seeds/`) and every crash input kept from
//! fuzzing (`tests/fuzz-regressions/`) through the fuzz targets' properties, so
//! the plain test command guards them without cargo-fuzz.

use std::fs;
use std::path::Path;

#[path = "../../fuzz/properties.rs"]
mod properties;

/// The inputs kept for one target.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for dir in [
        root.join("fuzz").join("seeds").join(target),
        root.join("tests").join("fuzz-regressions").join(target),
    ] {
        for entry in fs::read_dir(&dir).expect("input directory").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                found.push((name, fs::read(entry.path()).expect("read input")));
            }
        }
    }
    found
}

#[test]
fn decode_entry_inputs_keep_their_properties() {
    let inputs = inputs("decode_entry");
    assert!(!inputs.is_empty(), "the seed corpus is there");
    for (_, bytes) in inputs {
        properties::decode_entry(&bytes);
    }
}

#[test]
fn decode_entry_seeds_include_valid_entries() {
    let valid = inputs("decode_entry")
        .iter()
        .filter(|(_, bytes)| filecache::testing::decode(bytes).is_ok())
        .count();
    assert!(
        valid >= 3,
        "seeds reach past the checksum ({valid} valid entries)"
    );
}

#[test]
fn parse_cli_inputs_keep_their_properties() {
    let inputs = inputs("parse_cli");
    assert!(!inputs.is_empty(), "the seed corpus is there");
    for (name, bytes) in inputs {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            properties::parse_cli(text);
        } else {
            panic!("parse_cli input {name} is not UTF-8 (the target only takes text)");
        }
    }
}
