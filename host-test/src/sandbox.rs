//! What every component of this crate runs in: the engine (with the pooling
//! allocator when configured), WASI linked synchronously, and a store per
//! instance with one preopened directory, blocking file I/O on the calling
//! thread, and a memory limit.

use std::path::Path;

use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::host_keyvalue::{self, KeyValueStore};
use crate::precompiled::{self, Loaded};
use crate::{HostConfig, HostError};

/// Per-instance host state: WASI context, resource table, limits.
pub(crate) struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limits: StoreLimits,
    /// The store behind the `wasi:keyvalue` imports, for a guest linked to one.
    pub(crate) key_value: Option<Box<dyn KeyValueStore>>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A component compiled (or loaded precompiled) and pre-instantiated, linked
/// with WASI: what every runtime of this crate is built on. `P` is the
/// pre-instantiated form (bindgen's typed one, or wasmtime's own).
pub(crate) struct Prepared<P> {
    pub engine: Engine,
    pub pre: P,
    pub config: HostConfig,
    pub loaded: Loaded,
}

impl<P> Prepared<P> {
    /// Prepares `config.component`, typing the pre-instantiated component
    /// with `typed` (which may fail as `E` does).
    pub(crate) fn new<E: From<HostError>>(
        config: HostConfig,
        typed: impl FnOnce(InstancePre<HostState>) -> Result<P, E>,
    ) -> Result<Self, E> {
        Self::with_imports(config, Imports::Wasi, typed)
    }

    /// As [`Prepared::new`], linked with `imports`.
    pub(crate) fn with_imports<E: From<HostError>>(
        config: HostConfig,
        imports: Imports,
        typed: impl FnOnce(InstancePre<HostState>) -> Result<P, E>,
    ) -> Result<Self, E> {
        let (engine, pre, loaded) = prepare(&config, imports)?;
        Ok(Self {
            engine,
            pre: typed(pre)?,
            config,
            loaded,
        })
    }

    /// A store for a fresh instance: `host_dir` preopened at `guest_dir`, with
    /// these environment variables.
    pub(crate) fn store(
        &self,
        host_dir: &Path,
        guest_dir: &str,
        env: &[(&str, &str)],
    ) -> Result<Store<HostState>, HostError> {
        new_store(&self.engine, &self.config, host_dir, guest_dir, env)
    }

    /// A store for a fresh instance with no directory, whose `wasi:keyvalue`
    /// imports are served by `key_value`.
    pub(crate) fn store_on(&self, key_value: Box<dyn KeyValueStore>) -> Store<HostState> {
        let mut store = store_of(&self.engine, &self.config, WasiCtxBuilder::new());
        store.data_mut().key_value = Some(key_value);
        store
    }
}

impl<P> std::fmt::Debug for Prepared<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("config", &self.config)
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

/// Bytes of an instance's linear memory kept resident between instances.
const KEEP_RESIDENT: usize = 2 << 20;

/// What a component is linked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Imports {
    /// WASI alone.
    Wasi,
    /// WASI, and `wasi:keyvalue@0.2.0-draft` served by the host
    /// ([`crate::host_keyvalue`]).
    WasiAndKeyValue,
}

/// Compiles (or loads precompiled) `config.component` and pre-instantiates
/// it, linked with `imports`.
fn prepare(
    config: &HostConfig,
    imports: Imports,
) -> Result<(Engine, InstancePre<HostState>, Loaded), HostError> {
    let engine = Engine::new(&engine_config(config)).map_err(HostError::Runtime)?;
    let (component, loaded) = precompiled::load(
        &engine,
        &config.component,
        config.precompiled_dir.as_deref(),
    )?;
    let mut linker = Linker::<HostState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(HostError::Runtime)?;
    if imports == Imports::WasiAndKeyValue {
        host_keyvalue::imports::add_to_linker(&mut linker).map_err(HostError::Runtime)?;
    }
    let pre = linker
        .instantiate_pre(&component)
        .map_err(HostError::Runtime)?;
    Ok((engine, pre, loaded))
}

/// A store for one instance: `host_dir` (created if missing) preopened at
/// `guest_dir`, these environment variables, the configured memory limit.
pub(crate) fn new_store(
    engine: &Engine,
    config: &HostConfig,
    host_dir: &Path,
    guest_dir: &str,
    env: &[(&str, &str)],
) -> Result<Store<HostState>, HostError> {
    let mut wasi = WasiCtxBuilder::new();
    // Must come before `preopened_dir`: the preopen captures the setting.
    wasi.allow_blocking_current_thread(true);
    // An existing directory (the common case) costs one `open`; a missing
    // one is created first.
    if wasi
        .preopened_dir(host_dir, guest_dir, FsPerms::ReadWrite)
        .is_err()
    {
        create_private_dir(host_dir).map_err(|e| {
            HostError::Runtime(wasmtime::format_err!(
                "failed to create `{}`: {e}",
                host_dir.display()
            ))
        })?;
        wasi.preopened_dir(host_dir, guest_dir, FsPerms::ReadWrite)
            .map_err(HostError::Runtime)?;
    }
    for (name, value) in env {
        wasi.env(name, value);
    }
    if on_read_only_file_system(host_dir) {
        wasi.env(filecache::READ_ONLY_MEDIA_VARIABLE, "1");
    }
    Ok(store_of(engine, config, wasi))
}

/// A store whose WASI context `wasi` builds, with the configured memory limit.
fn store_of(engine: &Engine, config: &HostConfig, mut wasi: WasiCtxBuilder) -> Store<HostState> {
    let state = HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new()
            .memory_size(config.memory_limit)
            .build(),
        key_value: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    store
}

/// The engine settings: the pooling allocator when `config` asks for a pool.
fn engine_config(config: &HostConfig) -> Config {
    let mut engine = Config::new();
    if let Some(instances) = config.pooled_instances {
        let mut pool = PoolingAllocationConfig::default();
        // One component instance of the cache holds a handful of core instances
        // (the program and the canonical-ABI shims), one memory and a few tables.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .max_memory_size(config.memory_limit)
            // Keep the pages an instance touched resident for the next one,
            // resetting them in place rather than handing them back to the
            // kernel: the cache component's first call touches its stack (the
            // first MiB), its data and its first heap pages, and faulting
            // ten of them in again costs a fresh instance more than the rest
            // of its first call. With `pagemap_scan` (Linux 6.7+) only the
            // pages an instance dirtied are reset.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(1 << 16);
        engine.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    engine
}

/// Creates `dir` and its missing parents, private to the user (`0700` on
/// Unix): a component cannot set file modes, so the directory it works in is
/// what keeps other users out.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Whether `dir` lies on a file system mounted read-only (`statvfs`), which
/// wasmtime-wasi cannot tell the component: it reports `EROFS` as `io`.
#[cfg(unix)]
fn on_read_only_file_system(dir: &Path) -> bool {
    rustix::fs::statvfs(dir)
        .is_ok_and(|stat| stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Whether `dir` lies on a file system mounted read-only: not asked off Unix.
#[cfg(not(unix))]
fn on_read_only_file_system(_dir: &Path) -> bool {
    false
}
