#!/usr/bin/env python3
"""Whole-process `run` latency: wasmbox vs `wasmtime run` 48.0.8, interleaved in one run.

Usage: bench/run_vs_wasmtime.py [--rounds N] [--wasmbox PATH]
Builds release wasmbox and the test guests, installs wasmtime-cli 48.0.8 once into
~/.cache/wasmbox-bench (about 15 min on 2 cores), then for each scenario runs both tools
alternately (order shuffled per round) and prints medians, p90 and the ratio of medians.
Scenarios: process start alone (`-V`), then module and component, each warm-cached (.wasm
with each tool's compile cache) and precompiled (each tool's own AOT output with
--allow-precompiled). `--wasmbox` measures another build of wasmbox (e.g. the stripped
install artifact of scripts/release-build.sh, which is what users start). The last line
compares wasmbox's process start with a static native Rust hello (issue 17 asks <= 2x).
"""
import argparse, json, os, random, shutil, statistics, subprocess, tempfile, time

from benchlib import WASMBOX, guests, sh, timed, wasmtime_bin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--wasmbox", default=WASMBOX, help="the wasmbox binary to measure (default: release build)")
    args = ap.parse_args()
    wasmtime = wasmtime_bin()
    wasmbox = os.path.abspath(args.wasmbox)
    paths = guests(build_wasmbox=wasmbox == os.path.abspath(WASMBOX))
    module, component = paths["PROBE_MODULE"], paths["PROBE_COMPONENT"]
    work = tempfile.mkdtemp(prefix="wasmbox-bench-")
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"), XDG_CACHE_HOME=os.path.join(work, "xdg"))
    env.pop("WASMBOX_LOG", None)
    # The native reference for a process start: a static Rust hello.
    native = os.path.join(work, "hello-static")
    with open(native + ".rs", "w") as f:
        f.write('fn main() { println!("hello"); }\n')
    sh("rustc", "-O", "-C", "target-feature=+crt-static", native + ".rs", "-o", native)
    scenarios = [("process start (-V)", [wasmbox, "-V"], [wasmtime, "-V"])]
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
    version = subprocess.run([wasmbox, "version", "--json"], capture_output=True, text=True, check=True).stdout
    features = ", ".join(json.loads(version).get("features", []))
    print(f"# {wasmbox} ({os.path.getsize(wasmbox) / 1e6:.1f} MB, features: {features}), "
          f"{subprocess.run([wasmtime, '--version'], capture_output=True, text=True).stdout.strip()}")
    print("| scenario | wasmbox median | wasmtime median | wasmbox p90 | wasmtime p90 | ratio (wasmbox/wasmtime) |")
    print("|---|---|---|---|---|---|")
    start = {}
    for name, wb, wt in scenarios:
        expect = None if wb[-1] == "-V" else b"hello"
        cmds = [("wb", wb), ("wt", wt)] + ([("native", [native])] if expect is None else [])
        for _, cmd in cmds:  # warm both caches and the page cache
            for _ in range(3):
                timed(cmd, env, expect)
        samples = {key: [] for key, _ in cmds}
        for _ in range(args.rounds):
            random.shuffle(cmds)
            for key, cmd in cmds:
                samples[key].append(timed(cmd, env, expect))
        med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        p90 = {k: sorted(v)[int(len(v) * 0.9)] * 1e3 for k, v in samples.items()}
        print(f"| {name} | {med['wb']:.2f} ms | {med['wt']:.2f} ms | {p90['wb']:.2f} ms | {p90['wt']:.2f} ms "
              f"| {med['wb'] / med['wt']:.2f}x |")
        if "native" in med:
            start = med
    print(f"# process start: wasmbox -V {start['wb']:.2f} ms vs static native hello {start['native']:.2f} ms "
          f"= {start['wb'] / start['native']:.2f}x (interleaved, medians)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
