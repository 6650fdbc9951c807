# filecache recipes. `just` alone lists them.

# List the recipes.
default:
    @just --list

# Build the native crates and both wasm components (filecache.wasm, filecache-cli.wasm).
build:
    cargo build --workspace
    cargo build --release --target wasm32-wasip2 -p filecache --lib --features component --target-dir target/wasm-component
    cargo build --release --target wasm32-wasip2 -p filecache --bin filecache-cli --target-dir target/wasm-cli
    @echo "components: target/wasm-component/wasm32-wasip2/release/filecache.wasm target/wasm-cli/wasm32-wasip2/release/filecache-cli.wasm"

# The main job: run the component in the wasmtime host against ./demo-cache.
demo dir="demo-cache":
    cargo run -p filecache-host --bin filecache-demo -- {{dir}}

# Run every test (the command .ci/run calls).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The command-line component under the real wasmtime CLI: `just cli size`, `just cli get KEY`.
cli *args: build
    mkdir -p demo-cache
    wasmtime run --dir ./demo-cache::/data target/wasm-cli/wasm32-wasip2/release/filecache-cli.wasm --dir /data {{args}}

# Run CI exactly as it runs on a fresh clone.
ci:
    bash .ci/run
