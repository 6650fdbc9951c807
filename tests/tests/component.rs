//! The conformance suite against the filecache component, run in the wasmtime
//! host (`filecache-host`), one instance per open cache.

use filecache_conformance::backends::Component;

filecache_conformance::conformance_suite!(Component);
