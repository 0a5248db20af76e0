#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need on a fresh machine, then
# runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Guests are built for both WASI targets by crates/test-programs/build.rs.
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null

# Image tests run a real registry (CNCF distribution) and make htpasswd files for its auth.
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null
fi

cargo test --workspace --locked "$@"
