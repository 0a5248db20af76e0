#!/usr/bin/env python3
"""Image benchmark: push and pull of a ~5 MB component image through a local registry, and
`wasmbox run REF` with the image not present, cold (nothing cached) and warm (compile cache
kept), plus image sizes next to the same program as a static Linux binary in a scratch image.

Usage: bench/images.py [--rounds N]   (needs Debian's docker-registry; scripts/test.sh installs it)
"""
import argparse, gzip, io, os, shutil, statistics, subprocess, tarfile, tempfile, time

from benchlib import ROOT, WASMBOX, guests, sh, start_registry, timed


def leb128(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def padded(wasm, total):
    """The component plus a custom section of incompressible bytes, `total` bytes in all."""
    name = b"wasmbox-bench-padding"
    pad = total - len(wasm) - len(name) - 16
    body = leb128(len(name)) + name + os.urandom(pad)
    return wasm + b"\x00" + leb128(len(body)) + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    component = guests()["PROBE_COMPONENT"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-images-")
    registry, addr = start_registry(work)
    try:
        app = os.path.join(work, "probe5m.wasm")
        with open(app, "wb") as f:
            f.write(padded(open(component, "rb").read(), 5 << 20))
        env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"))
        push, pull, cold, warm = [], [], [], []
        for i in range(args.rounds):
            ref = f"{addr}/bench/probe{i}:1"
            sh(WASMBOX, "build", "-t", ref, app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            push.append(timed([WASMBOX, "push", "-q", ref], env))  # a new repository: every blob uploads
            fresh = dict(env, WASMBOX_HOME=os.path.join(work, f"pull{i}"))
            pull.append(timed([WASMBOX, "pull", "-q", ref], fresh))
            cold_env = dict(env, WASMBOX_HOME=os.path.join(work, f"cold{i}"))
            cold.append(timed([WASMBOX, "run", "-q", ref, "hello"], cold_env, b"hello"))
            shutil.rmtree(os.path.join(work, f"cold{i}", "images"))  # image gone, compile cache kept
            warm.append(timed([WASMBOX, "run", "-q", ref, "hello"], cold_env, b"hello"))
    finally:
        registry.kill()
        registry.wait()

    # Sizes: the Wasm image as stored (uncompressed layers) and gzipped, vs the same program as a
    # static x86_64 Linux binary in a scratch image (one tar+gzip layer).
    sizes_env = dict(env, WASMBOX_HOME=os.path.join(work, "sizes"))
    sh(WASMBOX, "build", "-t", "sizes", component, env=sizes_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blobs = os.path.join(work, "sizes", "images", "blobs", "sha256")
    wasm_image = sum(os.path.getsize(os.path.join(blobs, b)) for b in os.listdir(blobs))
    # Only the probe: other guests (the WASI-NN one) import functions no native libc has.
    sh("cargo", "build", "--release", "--quiet", "--manifest-path", "crates/test-programs/guests/Cargo.toml",
       "--bin", "probe", "--target", "x86_64-unknown-linux-gnu", "--target-dir", os.path.join(work, "native"), cwd=ROOT,
       env=dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static"))
    native = os.path.join(work, "native/x86_64-unknown-linux-gnu/release/probe")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as t:
        t.add(native, arcname="probe")
    component_size = os.path.getsize(component)
    gz_component = len(gzip.compress(open(component, "rb").read()))

    ms = lambda xs: f"{statistics.median(xs) * 1e3:.0f} ms"
    p90 = lambda xs: f"{sorted(xs)[int(len(xs) * 0.9)] * 1e3:.0f} ms"
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.rounds} rounds, 5 MiB component image, registry on loopback")
    print("| step | median | p90 |")
    print("|---|---|---|")
    for name, xs in [("push (all blobs new)", push), ("pull (empty store)", pull),
                     ("run REF, not present, cold (pull + compile + run)", cold),
                     ("run REF, not present, warm compile cache (pull + run)", warm)]:
        print(f"| {name} | {ms(xs)} | {p90(xs)} |")
    print()
    print("| artifact | bytes |")
    print("|---|---|")
    print(f"| probe component (.wasm, release) | {component_size} |")
    print(f"| its wasmbox image (layer + config + manifest, uncompressed) | {wasm_image} |")
    print(f"| probe component gzipped (what a registry would store if compressed) | {gz_component} |")
    print(f"| same program, static x86_64 Linux binary | {os.path.getsize(native)} |")
    print(f"| its scratch image layer (tar+gzip) | {len(layer.getvalue())} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
