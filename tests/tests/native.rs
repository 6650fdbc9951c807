//! The conformance suite against the native `filecache` crate.

use filecache_conformance::backends::Native;

filecache_conformance::conformance_suite!(Native);

/// Every `pub fn` case in `src/cases.rs` is in the suite's list, so none is
/// silently left out of a backend.
#[test]
fn every_defined_case_is_listed() {
    let source = include_str!("../src/cases.rs");
    let defined: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("pub fn "))
        .filter_map(|rest| rest.split('<').next())
        .collect();
    assert!(defined.len() >= 20, "found only {} cases", defined.len());
    for case in &defined {
        assert!(
            filecache_conformance::CASE_NAMES.contains(case),
            "case `{case}` is defined but not listed in define_suite!"
        );
    }
    assert_eq!(defined.len(), filecache_conformance::CASE_NAMES.len());
}
