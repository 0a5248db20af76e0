#!/usr/bin/env bash
# Builds the edge wasmbox (docs/edge.md) for each architecture named: x86_64, aarch64, riscv64gc
# (default: all three). Cross builds use Debian's cross toolchains (installed by scripts/deps.sh).
# Prints one line per build: ARCH PATH, the binary at PATH being target/<triple>/edge/wasmbox.
#
# The `edge` profile is release tuned for size (Cargo.toml). On top of it, panic = abort and
# no unwind tables: a device's wasmbox has no use for unwinding its own frames (wasmtime
# unwinds Wasm frames by frame pointers), and they are a tenth of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

arches=("$@")
[ "${#arches[@]}" -gt 0 ] || arches=(x86_64 aarch64 riscv64gc)

export CARGO_PROFILE_EDGE_PANIC=abort
export RUSTFLAGS="${WASMBOX_EDGE_RUSTFLAGS:--C force-unwind-tables=no}"
# SQLite without what the container database never uses (full-text search, R-trees, JSON SQL
# functions, statistics tables): about 0.4 MB of a device's flash.
export LIBSQLITE3_FLAGS="-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS -USQLITE_ENABLE_FTS5
  -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_STAT4 -USQLITE_SOUNDEX
  -USQLITE_ENABLE_JSON1 -DSQLITE_OMIT_JSON -DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE"
# aarch64/riscv64 cross compilers and linkers (C code: SQLite, ring, wasmtime's helpers).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER=riscv64-linux-gnu-gcc
export CC_riscv64gc_unknown_linux_gnu=riscv64-linux-gnu-gcc
export AR_riscv64gc_unknown_linux_gnu=riscv64-linux-gnu-ar

for arch in "${arches[@]}"; do
    case "$arch" in
        x86_64 | aarch64 | riscv64gc) triple="$arch-unknown-linux-gnu" ;;
        *) echo "edge-build: unknown architecture '$arch' (x86_64, aarch64, riscv64gc)" >&2; exit 2 ;;
    esac
    # --target even for this machine: RUSTFLAGS then apply to wasmbox, not to build scripts.
    cargo build --locked --quiet --profile edge --no-default-features --features edge --target "$triple" >&2
    echo "$arch $PWD/target/$triple/edge/wasmbox"
done
