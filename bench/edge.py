#!/usr/bin/env python3
"""The edge build (docs/edge.md): its stripped size per architecture, the idle RSS of its daemon,
and, on an emulated aarch64 device, starting cross-compiled code against compiling on the device.

- size: `scripts/edge-build.sh` for each architecture (profile `edge`, panic=abort, stripped).
- idle RSS: VmRSS of `wasmbox daemon` 5 s after start with no containers (x86_64, native: under
  qemu-user the emulator's own memory would be counted), edge build and full release build.
- device start (with --device-start): the probe module under qemu-aarch64, `run` of the
  precompiled file with the aarch64 edge build vs `run --no-cache` of the .wasm (compiling on
  the device) with a full aarch64 build of wasmbox (built here once: ~15 min on 2 cores).

- host-code speed (with --compare BINARY, x86_64): the edge build against another build of it
  (e.g. one with opt-level "s"), interleaved: process start (`-V`), `run` of the precompiled
  probe `hello`, and a Pulley compute loop (the interpreter is host code, so it feels the
  profile's optimization level directly).

Usage: bench/edge.py [--arches x86_64,aarch64,riscv64gc] [--device-start] [--rounds N]
                     [--compare BINARY]
"""
import argparse, os, random, statistics, subprocess, tempfile, time

from benchlib import ROOT, WASMBOX, guests, mem_kib, sh, timed
from pulley import COMPUTE

CROSS_ENV = {
    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER": "aarch64-linux-gnu-gcc",
    "CC_aarch64_unknown_linux_gnu": "aarch64-linux-gnu-gcc",
    "AR_aarch64_unknown_linux_gnu": "aarch64-linux-gnu-ar",
}
QEMU_AARCH64 = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]


def edge_binaries(arches):
    out = subprocess.run([os.path.join(ROOT, "scripts/edge-build.sh"), *arches], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(line.split(" ", 1) for line in out.strip().splitlines())


def idle_rss_kib(binary):
    home = tempfile.mkdtemp(prefix="wasmbox-bench-edge-home-")
    daemon = subprocess.Popen([binary, "daemon"], env=dict(os.environ, WASMBOX_HOME=home),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        return mem_kib(daemon.pid)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def device_start(edge_aarch64, rounds):
    """Precompiled start (edge build) vs compiling on the device (full build), both emulated."""
    env = dict(os.environ, **CROSS_ENV)
    sh("cargo", "build", "--release", "--quiet", "--locked", "--target", "aarch64-unknown-linux-gnu",
       "-p", "wasmbox", cwd=ROOT, env=env)
    full = os.path.join(ROOT, "target/aarch64-unknown-linux-gnu/release/wasmbox")
    probe = guests()["PROBE_MODULE"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-edge-")
    cwasm = os.path.join(work, "probe-aarch64.cwasm")
    sh(WASMBOX, "compile", "--target", "aarch64", probe, "-o", cwasm, stderr=subprocess.DEVNULL)
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"))
    cmds = {
        "precompiled (edge build)": QEMU_AARCH64 + [edge_aarch64, "run", "--allow-precompiled", cwasm, "hello"],
        "compile on device (full build)": QEMU_AARCH64 + [full, "run", "--no-cache", probe, "hello"],
    }
    times = {k: [] for k in cmds}
    for _ in range(rounds):
        for k in random.sample(list(cmds), len(cmds)):
            times[k].append(timed(cmds[k], env, expect=b"hello from a wasmbox guest"))
    return {k: statistics.median(v) for k, v in times.items()}


# bench/pulley.py's compute guest, shorter: every round runs it once per build.
PULLEY_COMPUTE = COMPUTE.replace("ITERATIONS", "5000000")


def compare(edge, other, rounds):
    """Medians of the same edge commands run by `edge` and `other`, interleaved."""
    probe = guests()["PROBE_MODULE"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-edge-cmp-")
    native, pulley, compute = (os.path.join(work, n) for n in ("probe.cwasm", "compute.cwasm", "compute.wat"))
    with open(compute, "w") as f:
        f.write(PULLEY_COMPUTE)
    sh(WASMBOX, "compile", "--target", "x86_64", probe, "-o", native, stderr=subprocess.DEVNULL)
    sh(WASMBOX, "compile", "--target", "pulley64", compute, "-o", pulley, stderr=subprocess.DEVNULL)
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"))
    scenarios = {
        "process start (`-V`)": (["-V"], None, 10),
        "`run` precompiled hello": (["run", "--allow-precompiled", native, "hello"], b"hello from a wasmbox guest", 10),
        "Pulley compute (5M iterations)": (["run", "--engine", "pulley", "--allow-precompiled", pulley], None, 1),
    }
    print(f"| {rounds} rounds, interleaved, medians | edge build | {os.path.basename(other)} | ratio |")
    print("|---|---|---|---|")
    for name, (args, expect, per_round) in scenarios.items():
        times = {edge: [], other: []}
        for _ in range(rounds * per_round):
            for b in random.sample([edge, other], 2):
                times[b].append(timed([b, *args], env, expect=expect))
        a, b = statistics.median(times[edge]), statistics.median(times[other])
        print(f"| {name} | {a * 1000:.2f} ms | {b * 1000:.2f} ms | {a / b:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arches", default="x86_64,aarch64,riscv64gc")
    ap.add_argument("--device-start", action="store_true")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--compare", metavar="BINARY")
    args = ap.parse_args()
    binaries = edge_binaries(args.arches.split(","))
    if args.compare:
        compare(binaries["x86_64"], args.compare, args.rounds)
        return
    print("| edge build | stripped size |")
    print("|---|---|")
    for arch, path in binaries.items():
        size = os.path.getsize(path)
        print(f"| {arch} | {size / 1e6:.2f} MB ({size} bytes) |")
    if "x86_64" in binaries:
        sh("cargo", "build", "--release", "--quiet", "--locked", "-p", "wasmbox", cwd=ROOT)
        print()
        print("| daemon, idle, no containers (x86_64) | VmRSS after 5 s |")
        print("|---|---|")
        print(f"| edge build | {idle_rss_kib(binaries['x86_64']) / 1024:.1f} MiB |")
        print(f"| full release build | {idle_rss_kib(WASMBOX) / 1024:.1f} MiB |")
    if args.device_start and "aarch64" in binaries:
        medians = device_start(binaries["aarch64"], args.rounds)
        print()
        print("| start on an emulated aarch64 device (qemu-user) | median |")
        print("|---|---|")
        for k, v in medians.items():
            print(f"| {k} | {v * 1000:.0f} ms |")
        pre, comp = medians["precompiled (edge build)"], medians["compile on device (full build)"]
        print(f"compile on device / precompiled: {comp / pre:.1f}x ({args.rounds} rounds, interleaved)")


if __name__ == "__main__":
    main()
