#!/usr/bin/env python3
"""Pulley (Wasmtime's portable interpreter) vs native code: `wasmbox run --engine pulley|native`
of a compute guest (an integer loop with memory traffic, compile cache warm), interleaved in
random order; reports medians and the ratio. Also the one-shot `hello` start for both.

Usage: bench/pulley.py [--rounds N] [--iterations N]
"""
import argparse, os, random, statistics, tempfile

from benchlib import WASMBOX, guests, sh, timed

COMPUTE = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32) (local $acc i32)
    (loop $l
      (i32.store (i32.and (local.get $i) (i32.const 0xfffc))
                 (i32.add (local.get $acc) (i32.load (i32.and (i32.mul (local.get $i) (i32.const 7)) (i32.const 0xfffc)))))
      (local.set $acc (i32.xor (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ITERATIONS))))
    (call $exit (i32.and (local.get $acc) (i32.const 0))))
)"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=50_000_000)
    args = ap.parse_args()
    probe = guests()["PROBE_MODULE"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-pulley-")
    compute = os.path.join(work, "compute.wat")
    with open(compute, "w") as f:
        f.write(COMPUTE.replace("ITERATIONS", str(args.iterations)))
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"))
    results = {}
    for label, cmd, rounds in (("compute", [compute], args.rounds), ("hello", [probe, "hello"], 10 * args.rounds)):
        for engine in ("native", "pulley"):  # warm each engine's compile cache
            sh(WASMBOX, "run", "--engine", engine, *cmd, env=env, stdout=open(os.devnull, "w"))
        times = {"native": [], "pulley": []}
        for _ in range(rounds):
            for engine in random.sample(["native", "pulley"], 2):
                times[engine].append(timed([WASMBOX, "run", "--engine", engine, *cmd], env))
        results[label] = times
    print("| guest | native (median) | pulley (median) | pulley / native |")
    print("|---|---|---|---|")
    for label, times in results.items():
        n, p = statistics.median(times["native"]), statistics.median(times["pulley"])
        print(f"| {label} | {n * 1000:.1f} ms | {p * 1000:.1f} ms | {p / n:.1f}x |")
    print(f"compute: {args.iterations} loop iterations; rounds: compute {args.rounds}, hello {10 * args.rounds}")


if __name__ == "__main__":
    main()
