#!/usr/bin/env bash
# Installs containerd-shim-wasmbox-v1 on a node and registers the runtime handler `wasmbox`
# (runtime type io.containerd.wasmbox.v1) with containerd's CRI plugin. Idempotent.
#
#   sudo scripts/install-shim.sh [PATH-TO-SHIM]     (default: target/release/containerd-shim-wasmbox-v1)
#
# Environment: CONTAINERD_CONFIG (default /etc/containerd/config.toml), PREFIX (default
# /usr/local/bin), NO_RESTART=1 to leave containerd running as it is.
set -euo pipefail

shim="${1:-target/release/containerd-shim-wasmbox-v1}"
config="${CONTAINERD_CONFIG:-/etc/containerd/config.toml}"
prefix="${PREFIX:-/usr/local/bin}"

if [ ! -x "$shim" ]; then
    echo "install-shim: $shim is not an executable; build it with: cargo build --release -p wasmbox-shim" >&2
    exit 1
fi
install -D -m 0755 "$shim" "$prefix/containerd-shim-wasmbox-v1"
echo "installed $prefix/containerd-shim-wasmbox-v1"

mkdir -p "$(dirname "$config")"
[ -f "$config" ] || printf 'version = 2\n' > "$config"
if grep -q 'runtimes.wasmbox\]' "$config"; then
    echo "$config already has the wasmbox runtime"
else
    # containerd 2.x (config version 3) moved the CRI runtime settings to another plugin.
    if grep -Eq '^version *= *3' "$config"; then
        runtimes='plugins."io.containerd.cri.v1.runtime".containerd.runtimes'
    else
        runtimes='plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
    fi
    section="$runtimes.wasmbox"
    # A `runtimes` table in the file replaces containerd's built-in one, which holds runc: with
    # only wasmbox in it, the CRI plugin refuses to load ("no corresponding runtime configured
    # ... runc") and the node runs no pods at all. So runc is written too, unless already there.
    if ! grep -q 'runtimes.runc\]' "$config"; then
        cat >> "$config" <<TOML

# containerd's default runtime, restated: a runtimes table replaces the built-in one
[$runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
TOML
        echo "kept the runc runtime in $config"
    fi
    cat >> "$config" <<TOML

# wasmbox: Wasm pods (RuntimeClass handler "wasmbox"); see docs/kubernetes.md
[$section]
  runtime_type = "io.containerd.wasmbox.v1"
  pod_annotations = ["wasmbox.dev/*"]
  container_annotations = ["wasmbox.dev/*"]
TOML
    echo "added the wasmbox runtime to $config"
fi

if [ "${NO_RESTART:-0}" != 1 ] && command -v systemctl >/dev/null && systemctl is-active --quiet containerd; then
    systemctl restart containerd
    echo "restarted containerd"
fi
