//! The conformance suite against the filecache component in a second,
//! independent host: transpiled to JavaScript by jco and run on Node.js with
//! jco's WASI shim, one Node process per open cache (see `src/jco.rs`).

use filecache_conformance::jco::Jco;

filecache_conformance::conformance_suite!(Jco);
