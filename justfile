# filecache recipes. `just` alone lists them.

# Release wasm builds without debug info (keeping symbol names), as host-test/build.rs builds them.
lean := "CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo"

# List the recipes.
default:
    @just --list

# Build the native crates and the wasm components into target/components/ (without debug info, as shipped).
build:
    cargo build --workspace
    {{lean}} cargo build --release --target wasm32-wasip2 -p filecache --lib --features component --target-dir target/wasm-component
    {{lean}} cargo build --release --target wasm32-wasip2 -p filecache --lib --features keyvalue --target-dir target/wasm-keyvalue
    {{lean}} cargo build --release --target wasm32-wasip2 -p filecache --bin filecache-cli --target-dir target/wasm-cli
    mkdir -p target/components
    cp target/wasm-component/wasm32-wasip2/release/filecache.wasm target/components/filecache.wasm
    cp target/wasm-keyvalue/wasm32-wasip2/release/filecache.wasm target/components/filecache-keyvalue.wasm
    cp target/wasm-cli/wasm32-wasip2/release/filecache-cli.wasm target/components/filecache-cli.wasm
    @ls -l target/components

# The main job: run the component in the wasmtime host against ./demo-cache.
demo dir="demo-cache":
    cargo run -p filecache-host --bin filecache-demo -- {{dir}}

# Run every test (the command .ci/run calls).
test:
    cargo test --workspace

# Formatting, lints and docs, as CI checks them (native, wasm32-wasip2, and a Windows build check).
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
    rustup target add x86_64-pc-windows-gnu
    cargo check -p filecache --features cot --target x86_64-pc-windows-gnu
    cargo clippy --release --target wasm32-wasip2 -p filecache --lib --bins --features component --target-dir target/wasm-lint -- -D warnings
    cargo clippy --release --target wasm32-wasip2 -p filecache --lib --features keyvalue --target-dir target/wasm-lint -- -D warnings
    cargo clippy --release --target wasm32-wasip2 -p filecache-plugin-example -p filecache-kv-plugin-example --lib --target-dir target/wasm-lint -- -D warnings

# The torture tests at full strength: more processes, instances, operations and kills.
torture:
    FILECACHE_TORTURE=long cargo test --release -p filecache-conformance --test torture -- --nocapture --test-threads 1

# The long bounded fill from a cold start, `runs` times (each drops the page cache first: needs root).
torture-cold runs="10":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo test --release -p filecache-conformance --test torture --no-run
    for i in $(seq 1 {{runs}}); do
        FILECACHE_TORTURE=long FILECACHE_REQUIRE_COLD=1 cargo test --release -p filecache-conformance --test torture cold_start -- --nocapture 2>&1 | grep "bounded fill"
    done

# Fuzz the entry decoder and the command-line parsers, `secs` seconds each (cargo-fuzz).
fuzz secs="600":
    cargo fuzz --version || cargo install cargo-fuzz
    mkdir -p fuzz/corpus/decode_entry fuzz/corpus/parse_cli
    # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O decode_entry fuzz/corpus/decode_entry fuzz/seeds/decode_entry -- -max_total_time={{secs}}
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O parse_cli fuzz/corpus/parse_cli fuzz/seeds/parse_cli -- -max_total_time={{secs}}
    @echo "crash inputs, if any, are in fuzz/artifacts/: copy them to tests/fuzz-regressions/<target>/"

# The benchmark suite on a tmpfs (stable figures); tables, JSON and a chart land in target/bench/tmpfs/.
bench:
    cargo run --release -p filecache-bench -- --dir /dev/shm/filecache-bench --out target/bench/tmpfs

# The benchmark suite on the disk under target/ (its figures move with the file system's state: see README).
bench-disk:
    cargo run --release -p filecache-bench -- --dir target/bench/caches --out target/bench/disk

# Python peers (diskcache, Django FileBasedCache) against a Python raw floor, in a venv this recipe makes.
bench-python:
    python3 -m venv target/bench/venv
    target/bench/venv/bin/pip install --quiet diskcache django
    mkdir -p target/bench/python
    BENCH_DIR=/dev/shm target/bench/venv/bin/python bench/python/bench.py target/bench/python/results.json | tee target/bench/python/results.md

# The command-line component under the real wasmtime CLI: `just cli size`, `just cli get KEY`.
cli *args: build
    mkdir -p demo-cache
    wasmtime run --dir ./demo-cache::/data target/components/filecache-cli.wasm --dir /data {{args}}

# The Cot example app: serves a page computed once and then cached in ./cot-cache (http://127.0.0.1:8000).
cot:
    cargo run -p filecache-cot-example

# The wasi:keyvalue component in the wasmtime host: counts visits in the bucket `demo` under ./kv-data.
keyvalue root="kv-data":
    cargo run -p filecache-host --example keyvalue -- {{root}}

# The plugin example composed with the cache by `wac plug`, run twice under the wasmtime CLI (miss, then hit).
plugin path="/hello": build
    wac --version || cargo install wac-cli --locked
    {{lean}} cargo build --release --target wasm32-wasip2 -p filecache-plugin-example --target-dir target/wasm-plugin
    cp target/wasm-plugin/wasm32-wasip2/release/filecache_plugin_example.wasm target/components/plugin.wasm
    wac plug target/components/plugin.wasm --plug target/components/filecache.wasm -o target/components/plugin-composed.wasm
    mkdir -p plugin-cache
    wasmtime run --dir ./plugin-cache::/cache --invoke 'render("{{path}}")' target/components/plugin-composed.wasm
    wasmtime run --dir ./plugin-cache::/cache --invoke 'render("{{path}}")' target/components/plugin-composed.wasm

# The visit-counter plugin (written against wasi:keyvalue@0.2.0-draft) composed with the keyvalue component by `wac plug`, run under the wasmtime CLI on ./kv-data.
kv-plugin page="/hello": build
    wac --version || cargo install wac-cli --locked
    {{lean}} cargo build --release --target wasm32-wasip2 -p filecache-kv-plugin-example --target-dir target/wasm-plugin
    cp target/wasm-plugin/wasm32-wasip2/release/filecache_kv_plugin_example.wasm target/components/kv-plugin.wasm
    wac plug target/components/kv-plugin.wasm --plug target/components/filecache-keyvalue.wasm -o target/components/kv-plugin-composed.wasm
    mkdir -p kv-data
    wasmtime run --dir ./kv-data::/kv --env FILECACHE_KEYVALUE_ROOT=/kv --invoke 'visit("{{page}}")' target/components/kv-plugin-composed.wasm
    wasmtime run --dir ./kv-data::/kv --env FILECACHE_KEYVALUE_ROOT=/kv --invoke 'report()' target/components/kv-plugin-composed.wasm

# The same visit-counter plugin, unchanged, on a Redis server many machines can share (the bare plugin; filecache-host serves its wasi:keyvalue imports from Redis).
kv-redis url="redis://127.0.0.1:6379/" page="/hello":
    cargo run -p filecache-host --features redis --example visits -- redis {{url}} {{page}}

# The conformance suite in the second host: the component transpiled by jco, on Node.js (npm installs jco).
jco:
    npm ci --prefix tests/jco --no-audit --no-fund
    FILECACHE_REQUIRE_JCO=1 cargo test -p filecache-conformance --test jco
    node tests/jco/shim-bugs.mjs

# The conformance suite in the third host: the component in wasmtime-py (pip installs it).
wasmtime-py:
    python3 -m pip install --quiet 'wasmtime>=50,<51'
    FILECACHE_REQUIRE_WASMTIME_PY=1 cargo test -p filecache-conformance --test wasmtime_py

# A cache shared over two sshfs mounts of one directory (a private sshd; needs root, FUSE, sshfs and openssh-server).
network-fs:
    FILECACHE_REQUIRE_SSHFS=1 cargo test -p filecache-conformance --test network_fs -- --nocapture

# The native crate's tests and the native conformance suite built for Windows and run under Wine (Debian: wine64, gcc-mingw-w64-x86-64).
wine:
    #!/usr/bin/env bash
    set -euo pipefail
    rustup target add x86_64-pc-windows-gnu
    export WINEPREFIX="$PWD/target/wine/prefix" WINEDEBUG=-all
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/usr/lib/wine/wine64
    mkdir -p target/wine
    "$CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER" cmd /c exit || true
    # Wine 8 lacks bcryptprimitives.dll, which Rust's standard library needs.
    x86_64-w64-mingw32-gcc -shared -O2 -o target/wine/bcryptprimitives.dll tests/wine/bcryptprimitives.c tests/wine/bcryptprimitives.def -ladvapi32
    cp target/wine/bcryptprimitives.dll "$WINEPREFIX/drive_c/windows/system32/"
    cargo test --target x86_64-pc-windows-gnu --target-dir target/windows -p filecache --features cot
    cargo test --target x86_64-pc-windows-gnu --target-dir target/windows -p filecache-conformance --test native

# Run CI exactly as it runs on a fresh clone.
ci:
    bash .ci/run
