#!/usr/bin/env bash
# The wasmbox binary to install (docs/benchmarks.md, "Binary start-up cost"): profile `dist`
# (release without debug info, stripped) for this machine's triple. Prints its path; the WASI-NN
# backend `wasmbox-nn` is built next to it and must be installed in the same directory.
#
#   --no-pie   link a position-dependent executable (-C relocation-model=static): no
#              relocations for the loader to apply at start, which makes every start ~1 ms
#              faster (2.3 → 1.3 ms for `wasmbox -V` here) but gives up address-space
#              randomisation of wasmbox's own code and data, a defence against exploits of
#              host bugs by hostile guests. Off by default for that reason.
#   --static   --no-pie, and glibc linked in (-C target-feature=+crt-static): no dynamic
#              loader either (no symbol binding, no shared libraries to map), which brings a
#              start to ~1.4x a static native hello (docs/benchmarks.md). The same loss of
#              randomisation as --no-pie; and name lookups rely on glibc's built-in sources
#              (/etc/hosts and DNS): NSS modules of the host (mDNS, nss-resolve, LDAP) load
#              only where its glibc is the very version this was built with.
#
# RUSTFLAGS apply to the target only (cargo is given --target), so build scripts and
# proc-macros, which must stay position-independent, are unaffected.
set -euo pipefail
cd "$(dirname "$0")/.."

flags="${RUSTFLAGS:-}"
case "${1:-}" in
    --no-pie) flags="$flags -C relocation-model=static" ;;
    --static) flags="$flags -C relocation-model=static -C target-feature=+crt-static" ;;
    "") ;;
    *) echo "usage: scripts/release-build.sh [--no-pie | --static]" >&2; exit 2 ;;
esac
triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="$flags" cargo build --locked --profile dist -p wasmbox --target "$triple" >&2
echo "target/$triple/dist/wasmbox"
