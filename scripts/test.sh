#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need on a fresh machine, then
# runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Guests are built for both WASI targets by crates/test-programs/build.rs.
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null

cargo test --workspace --locked "$@"
