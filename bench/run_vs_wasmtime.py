#!/usr/bin/env python3
"""Whole-process `run` latency: wasmbox vs `wasmtime run` 48.0.8, interleaved in one run.

Usage: bench/run_vs_wasmtime.py [--rounds N]
Builds release wasmbox and the test guests, installs wasmtime-cli 48.0.8 once into
~/.cache/wasmbox-bench (about 15 min on 2 cores), then for each scenario runs both tools
alternately (order shuffled per round) and prints medians, p90 and the ratio of medians.
Scenarios: module and component, each warm-cached (.wasm with each tool's compile cache)
and precompiled (each tool's own AOT output with --allow-precompiled).
"""
import argparse, os, random, shutil, statistics, subprocess, tempfile, time

from benchlib import WASMBOX, guests, sh, timed, wasmtime_bin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    wasmtime = wasmtime_bin()
    paths = guests()
    module, component = paths["PROBE_MODULE"], paths["PROBE_COMPONENT"]
    wasmbox = WASMBOX
    work = tempfile.mkdtemp(prefix="wasmbox-bench-")
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"), XDG_CACHE_HOME=os.path.join(work, "xdg"))
    env.pop("WASMBOX_LOG", None)
    scenarios = []
    for kind, wasm in [("module", module), ("component", component)]:
        wb_aot, wt_aot = os.path.join(work, f"{kind}.wbx"), os.path.join(work, f"{kind}.cwasm")
        sh(wasmbox, "compile", wasm, "-o", wb_aot, env=env, stderr=subprocess.DEVNULL)
        sh(wasmtime, "compile", wasm, "-o", wt_aot, env=env)
        scenarios.append((f"{kind}, cached .wasm",
                          [wasmbox, "run", wasm, "hello"], [wasmtime, "run", wasm, "hello"]))
        scenarios.append((f"{kind}, precompiled",
                          [wasmbox, "run", "--allow-precompiled", wb_aot, "hello"],
                          [wasmtime, "run", "--allow-precompiled", wt_aot, "hello"]))
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.rounds} interleaved rounds per scenario")
    print(f"# wasmbox {subprocess.run([wasmbox, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{subprocess.run([wasmtime, '--version'], capture_output=True, text=True).stdout.strip()}")
    print("| scenario | wasmbox median | wasmtime median | wasmbox p90 | wasmtime p90 | ratio (wasmbox/wasmtime) |")
    print("|---|---|---|---|---|---|")
    for name, wb, wt in scenarios:
        for cmd in (wb, wt):  # warm both caches and the page cache
            for _ in range(3):
                timed(cmd, env, b"hello")
        samples = {"wb": [], "wt": []}
        for _ in range(args.rounds):
            order = [("wb", wb), ("wt", wt)]
            random.shuffle(order)
            for key, cmd in order:
                samples[key].append(timed(cmd, env, b"hello"))
        med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        p90 = {k: sorted(v)[int(len(v) * 0.9)] * 1e3 for k, v in samples.items()}
        print(f"| {name} | {med['wb']:.2f} ms | {med['wt']:.2f} ms | {p90['wb']:.2f} ms | {p90['wt']:.2f} ms "
              f"| {med['wb'] / med['wt']:.2f}x |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
