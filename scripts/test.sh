#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need on a fresh machine
# (scripts/deps.sh), builds the edge binaries for the emulated CPUs (scripts/edge-build.sh),
# then runs every test in the workspace. The containerd shim tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."

WASMBOX_CONTAINERD_DIR="$(./scripts/deps.sh | tail -n 1)"
export WASMBOX_CONTAINERD_DIR

# The edge wasmbox for the emulated devices of tests/edge.rs.
./scripts/edge-build.sh aarch64 riscv64gc >/dev/null

cargo test --workspace --locked "$@"
