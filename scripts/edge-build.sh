#!/usr/bin/env bash
# Builds the edge wasmbox (docs/edge.md) for each architecture named: x86_64, aarch64, riscv64gc
# (default: all three). Cross builds use Debian's cross toolchains (installed by scripts/deps.sh).
# Prints one line per build: ARCH PATH, the binary at PATH being target/<triple>/<profile>/wasmbox.
# The profile is `edge` (what devices install); WASMBOX_EDGE_PROFILE=edge-test builds the same
# code without the size tuning, for the tests (scripts/test.sh).
#
# The `edge` profile is release tuned for size (Cargo.toml). On top of it:
# - panic = abort, and no unwind tables: a device's wasmbox never unwinds its own frames
#   (wasmtime walks Wasm frames by frame pointers; a panic aborts). rustc still emits CFI for
#   std's code and for every function with an abort-on-unwind pad, so after linking without
#   `.eh_frame_hdr` the `.eh_frame` section is removed with objcopy: 13 % of the binary. A
#   panic then prints its message and aborts as before; RUST_BACKTRACE prints no frames.
# - on x86_64, relative relocations packed (DT_RELR): 0.7 MB less, ASLR kept; needs glibc >=
#   2.36 on the device (Debian 12, Ubuntu 23.04), which refuses the binary with a clear loader
#   error. Debian 12's aarch64 and riscv64 linkers (binutils 2.40) cannot pack them yet.
set -euo pipefail
cd "$(dirname "$0")/.."

arches=("$@")
[ "${#arches[@]}" -gt 0 ] || arches=(x86_64 aarch64 riscv64gc)

profile="${WASMBOX_EDGE_PROFILE:-edge}"
case "$profile" in
    edge | edge-test) ;;
    *) echo "edge-build: unknown profile '$profile' (edge, edge-test)" >&2; exit 2 ;;
esac
export CARGO_PROFILE_EDGE_PANIC=abort CARGO_PROFILE_EDGE_TEST_PANIC=abort
rustflags="${WASMBOX_EDGE_RUSTFLAGS:--C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr}"
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
        x86_64) triple=x86_64-unknown-linux-gnu objcopy=objcopy relr="-C link-arg=-Wl,-z,pack-relative-relocs" ;;
        aarch64) triple=aarch64-unknown-linux-gnu objcopy=aarch64-linux-gnu-objcopy relr="" ;;
        riscv64gc) triple=riscv64gc-unknown-linux-gnu objcopy=riscv64-linux-gnu-objcopy relr="" ;;
        *) echo "edge-build: unknown architecture '$arch' (x86_64, aarch64, riscv64gc)" >&2; exit 2 ;;
    esac
    # --target even for this machine: RUSTFLAGS then apply to wasmbox, not to build scripts.
    RUSTFLAGS="$rustflags $relr" \
        cargo build --locked --quiet --profile "$profile" --no-default-features --features edge --target "$triple" >&2
    binary="$PWD/target/$triple/$profile/wasmbox"
    # Into a new file and renamed: cargo hard-links the binary to its copy under deps/.
    "$objcopy" --remove-section=.eh_frame "$binary" "$binary.tmp"
    mv "$binary.tmp" "$binary"
    echo "$arch $binary"
done
