#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need on a fresh machine
# (scripts/deps.sh), then runs every test in the workspace. The containerd shim tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."

WASMBOX_CONTAINERD_DIR="$(./scripts/deps.sh | tail -n 1)"
export WASMBOX_CONTAINERD_DIR

cargo test --workspace --locked "$@"
