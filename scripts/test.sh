#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need on a fresh machine
# (scripts/deps.sh), builds the edge binaries for the emulated CPUs (scripts/edge-build.sh),
# then runs every test in the workspace. The containerd shim tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."

WASMBOX_CONTAINERD_DIR="$(./scripts/deps.sh | tail -n 1)"
export WASMBOX_CONTAINERD_DIR

# The edge wasmbox for the emulated devices of tests/edge.rs (profile edge-test: the edge code
# without its size tuning), built while the tests build: on a fresh machine both are long and
# neither keeps two cores busy all the time (docs/benchmarks.md, "CI time").
# In a session of its own, so that stopping it (the test build failed, or ^C) stops its cargo
# and compilers too, not just the script.
WASMBOX_EDGE_PROFILE=edge-test setsid -w ./scripts/edge-build.sh aarch64 riscv64gc >/dev/null &
edge=$!
trap 'kill -- -"$edge" 2>/dev/null || true' EXIT
cargo test --workspace --locked --no-run "$@"
wait "$edge"
trap - EXIT

cargo test --workspace --locked "$@"
