//! The properties the fuzz targets check, shared with the regression test that
//! replays the seed corpus and every kept crash input (`tests/tests/fuzz_regressions.rs`).
//! Each function panics when its property does not hold.

use filecache::cli::{self, Invocation, Span, parse_span, parse_time};
use filecache::testing as format;

/// Any bytes decode to an entry or a `DecodeError`, never a panic; a decoded
/// entry re-encodes to the very same bytes; the cheap header check agrees with
/// the full decode; lock and census decoders never panic either.
pub fn decode_entry(bytes: &[u8]) {
    let head = format::decode_head(bytes, bytes.len() as u64);
    if let Ok(entry) = format::decode(bytes) {
        assert!(head.is_ok(), "decode accepted what decode_head refused");
        let again = format::encode_as(entry.version, entry.expires_at, entry.key, entry.value);
        assert_eq!(again, bytes, "a decoded entry re-encodes byte for byte");
    }
    let _ = format::lock_owner(bytes);
    if let Some(record) = format::decode_census(bytes) {
        assert_eq!(format::encode_census(&record)[..], bytes[..]);
    }
}

/// The duration and time parsers and the whole command-line parser never
/// panic; every duration accepted has a number in it (or is `never`); every
/// plan accepted names a directory and has options that validate.
pub fn parse_cli(input: &str) {
    match parse_span(input) {
        Ok(Span::After(_)) => assert!(input.bytes().any(|b| b.is_ascii_digit())),
        Ok(Span::Never) => assert_eq!(input, "never"),
        Err(_) => {}
    }
    let _ = parse_time(input);
    let args: Vec<String> = input.split('\u{1f}').map(str::to_owned).collect();
    if let Ok(Invocation::Run(plan)) = cli::plan(&args) {
        assert!(!plan.dir.is_empty());
        assert!(plan.options.validate().is_ok());
    }
}
