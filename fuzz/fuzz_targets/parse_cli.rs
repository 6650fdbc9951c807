//! Fuzzes the command-line parsers (durations, whole command lines; arguments
//! are separated by U+001F in the input).
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|input: &str| properties::parse_cli(input));
