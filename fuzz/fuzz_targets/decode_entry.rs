//! Fuzzes the on-disk decoders (entries, lock files, the census file).
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| properties::decode_entry(bytes));
