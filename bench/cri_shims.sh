#!/usr/bin/env bash
# CRI side by side (issue 20): wasmbox's containerd shim and runwasi's containerd-shim-wasmtime-v1
# on one private containerd 1.7, pods driven through CRI as kubelet drives them. Reports pod
# start → first output (cold, warm), N pods at once, and PSS/RSS per pod. Needs root.
#
#   sudo bench/cri_shims.sh RUNWASI_CHECKOUT [--rounds 5] [--warm 5] [--pods 50]
#
# RUNWASI_CHECKOUT: a checkout of the containerd/runwasi repository (not part of wasmbox; the
# recorded run used commit eb9967aa). It is copied to ~/.cache/wasmbox-bench/runwasi-build and
# only its wasmtime shim is built there, with this machine's stable toolchain (the checkout pins
# another), after dropping the workspace members that need git dependencies or C engines
# (wamr, wasmedge, wasmer) and its benchmark crates.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RUNWASI_CHECKOUT [--rounds N] [--warm N] [--pods N]" >&2; exit 2; }
checkout="$1"; shift
[ -f "$checkout/crates/containerd-shim-wasmtime/Cargo.toml" ] || {
    echo "error: $checkout is not a runwasi checkout (no crates/containerd-shim-wasmtime)" >&2; exit 2; }
cd "$(dirname "$0")/.."
build="$HOME/.cache/wasmbox-bench/runwasi-build"
mkdir -p "$build"
# Copy the sources (not a target dir), keeping an earlier build's target/.
tar -C "$checkout" --exclude=./target --exclude=./.git -cf - . | tar -C "$build" -xf -
python3 - "$build/Cargo.toml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
for member in ("crates/containerd-shim-wamr", "crates/containerd-shim-wasmedge", "crates/containerd-shim-wasmer",
               "crates/stress-test", "benches/containerd-shim-benchmarks"):
    text = text.replace(f'    "{member}",\n', "")
open(path, "w").write(text)
PY
(cd "$build" && RUSTUP_TOOLCHAIN=stable CARGO_INCREMENTAL=0 cargo build --release -p containerd-shim-wasmtime)
dir="$(./scripts/deps.sh | tail -1)"
WASMBOX_CONTAINERD_DIR="$dir" cargo bench -p wasmbox-shim --bench cri_shims -- \
    --runwasi "$build/target/release/containerd-shim-wasmtime-v1" "$@"
