//! Fuzzes the entry decoder: any bytes decode to an entry or a `DecodeError`,
//! never a panic; a decoded entry re-encodes to the very same bytes; the cheap
//! header check agrees with the full decode.
#![no_main]

use filecache::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let head = format::decode_head(bytes, bytes.len() as u64);
    match format::decode(bytes) {
        Ok(entry) => {
            assert!(head.is_ok(), "decode accepted what decode_head refused");
            let again = format::encode(entry.expires_at, entry.key, entry.value);
            assert_eq!(again, bytes, "a decoded entry re-encodes byte for byte");
        }
        Err(_) => {}
    }
    let _ = format::lock_owner(bytes);
});
