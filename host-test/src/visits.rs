//! Runs the keyvalue plugin example (`examples/kv-plugin`, world
//! `filecache:visits/visits`), which is written against
//! `wasi:keyvalue@0.2.0-draft` alone, either way it can be run:
//!
//! - composed with filecache's keyvalue component
//!   ([`crate::artifacts::KV_PLUGIN_COMPOSED`]): it imports only WASI and keeps
//!   its buckets in a preopened directory ([`VisitsRuntime::new`]);
//! - bare ([`crate::artifacts::KV_PLUGIN_COMPONENT`]), its `wasi:keyvalue`
//!   imports served by a store the host chooses, such as Redis
//!   ([`VisitsRuntime::on_host_store`], [`crate::host_keyvalue`]).

use std::path::Path;

use wasmtime::Store;

use crate::host_keyvalue::KeyValueStore;
use crate::keyvalue::GUEST_ROOT;
use crate::sandbox::{HostState, Imports, Prepared};
use crate::{HostConfig, HostError};

/// The generated bindings, kept private.
mod generated {
    wasmtime::component::bindgen!({
        path: ["../wit", "../examples/kv-plugin/wit"],
        world: "filecache:visits/visits",
    });
}

/// The compiled, pre-instantiated plugin.
#[derive(Debug)]
pub struct VisitsRuntime(Prepared<generated::VisitsPre<HostState>>);

impl VisitsRuntime {
    /// Compiles the composed plugin (see [`HostConfig::kv_plugin`]) and links
    /// it with WASI.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if it cannot be read, compiled or linked.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        Prepared::new(config, |pre| {
            generated::VisitsPre::new(pre).map_err(HostError::Runtime)
        })
        .map(Self)
    }

    /// Compiles the bare plugin (`config.component`, e.g.
    /// [`crate::artifacts::KV_PLUGIN_COMPONENT`]) and links it with WASI and
    /// host-served `wasi:keyvalue` ([`VisitsRuntime::instantiate_on`]).
    ///
    /// # Errors
    /// [`HostError::Runtime`] if it cannot be read, compiled or linked.
    pub fn on_host_store(config: HostConfig) -> Result<Self, HostError> {
        Prepared::with_imports(config, Imports::WasiAndKeyValue, |pre| {
            generated::VisitsPre::new(pre).map_err(HostError::Runtime)
        })
        .map(Self)
    }

    /// A fresh instance of a plugin made by [`VisitsRuntime::on_host_store`],
    /// whose buckets are in `store`.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the instance cannot be made.
    pub fn instantiate_on(
        &self,
        store: Box<dyn KeyValueStore>,
    ) -> Result<VisitsInstance, HostError> {
        self.start(self.0.store_on(store))
    }

    /// A fresh instance of a composed plugin, keeping its buckets in `root`
    /// (created if missing).
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the instance cannot be made.
    pub fn instantiate(&self, root: &Path) -> Result<VisitsInstance, HostError> {
        let env = [("FILECACHE_KEYVALUE_ROOT", GUEST_ROOT)];
        self.start(self.0.store(root, GUEST_ROOT, &env)?)
    }

    /// Instantiates the plugin in `store`.
    fn start(&self, mut store: Store<HostState>) -> Result<VisitsInstance, HostError> {
        let plugin = self
            .0
            .pre
            .instantiate(&mut store)
            .map_err(HostError::Runtime)?;
        Ok(VisitsInstance { store, plugin })
    }
}

/// One instance of the plugin.
pub struct VisitsInstance {
    store: Store<HostState>,
    plugin: generated::Visits,
}

impl std::fmt::Debug for VisitsInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitsInstance").finish_non_exhaustive()
    }
}

impl VisitsInstance {
    /// `visit(page)`: the page's visits so far, or what the store said.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the guest traps.
    pub fn visit(&mut self, page: &str) -> Result<Result<u64, String>, HostError> {
        self.plugin
            .call_visit(&mut self.store, page)
            .map_err(HostError::Runtime)
    }

    /// `report()`: every page and its count, sorted by page.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the guest traps.
    pub fn report(&mut self) -> Result<Result<Vec<(String, u64)>, String>, HostError> {
        self.plugin
            .call_report(&mut self.store)
            .map_err(HostError::Runtime)
    }
}
