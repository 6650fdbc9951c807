//! The conformance suite against the filecache component in a third host:
//! wasmtime-py, the Python embedding of wasmtime, one Python process per open
//! cache (see `src/wasmtime_py.rs`).

use filecache_conformance::wasmtime_py::WasmtimePy;

filecache_conformance::conformance_suite!(WasmtimePy);
