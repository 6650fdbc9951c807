//! Runs the plugin example composed with the cache ([`crate::artifacts::PLUGIN_COMPOSED`]):
//! one component that imports only WASI and exports `render: func(path:
//! string) -> string`, with a directory preopened at `/cache`.

use std::path::Path;

use wasmtime::Store;
use wasmtime::component::{InstancePre, TypedFunc};

use crate::sandbox::{HostState, Prepared};
use crate::{GUEST_CACHE_DIR, HostConfig, HostError};

/// The compiled, pre-instantiated composed plugin.
#[derive(Debug)]
pub struct PluginRuntime(Prepared<InstancePre<HostState>>);

impl PluginRuntime {
    /// Compiles the component (see [`HostConfig::plugin`]) and links it with WASI.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if it cannot be read, compiled or linked.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        Prepared::new(config, Ok::<_, HostError>).map(Self)
    }

    /// A fresh instance with `host_dir` preopened at [`GUEST_CACHE_DIR`].
    ///
    /// # Errors
    /// [`HostError::Runtime`] if instantiation fails or `render` is missing.
    pub fn instantiate(&self, host_dir: &Path) -> Result<PluginInstance, HostError> {
        let mut store = self.0.store(host_dir, GUEST_CACHE_DIR, &[])?;
        let instance = self
            .0
            .pre
            .instantiate(&mut store)
            .map_err(HostError::Runtime)?;
        let render = instance
            .get_typed_func::<(String,), (String,)>(&mut store, "render")
            .map_err(HostError::Runtime)?;
        Ok(PluginInstance { store, render })
    }
}

/// One instance of the composed plugin.
pub struct PluginInstance {
    store: Store<HostState>,
    render: TypedFunc<(String,), (String,)>,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance").finish_non_exhaustive()
    }
}

impl PluginInstance {
    /// Calls `render(path)`.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the guest traps.
    pub fn render(&mut self, path: &str) -> Result<String, HostError> {
        let (page,) = self
            .render
            .call(&mut self.store, (path.to_owned(),))
            .map_err(HostError::Runtime)?;
        Ok(page)
    }
}
