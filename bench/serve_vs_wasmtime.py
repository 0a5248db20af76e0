#!/usr/bin/env python3
"""`wasmbox serve` vs `wasmtime serve` 48.0.8 on the same hello component, same load generator
(wrk from Debian), same concurrency, interleaved rounds in one run of this script.

Usage: bench/serve_vs_wasmtime.py [--rounds N] [--seconds S] [--connections C]
Reports req/s and wrk's p50/p99 latency (medians over rounds), the req/s ratio, and minor page
faults per request of each server process (from /proc/PID/stat).
"""
import argparse, os, random, re, statistics, subprocess, sys, tempfile, time

from benchlib import WASMBOX, free_port, guests, wait_up, wasmtime_bin




def minflt(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def wrk(port, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"non-2xx responses in a benchmark run:\n{out}")
    return rps, to_ms(lat["50"]), to_ms(lat["99"]), total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    wasmtime = wasmtime_bin()
    guest = guests()["HTTP_HELLO_COMPONENT"]
    home = tempfile.mkdtemp(prefix="wasmbox-bench-serve-")
    ports = {"wasmbox": free_port(), "wasmtime": free_port()}
    env = dict(os.environ, WASMBOX_HOME=home)
    servers = {
        "wasmbox": subprocess.Popen([WASMBOX, "serve", "--listen",
                                     f"127.0.0.1:{ports['wasmbox']}", guest], env=env,
                                    stderr=subprocess.DEVNULL),
        "wasmtime": subprocess.Popen([wasmtime, "serve", "-S", "cli", "--addr", f"127.0.0.1:{ports['wasmtime']}", guest],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    try:
        for name, port in ports.items():
            wait_up(port)
            wrk(port, 2, args.connections)  # warm up
        results = {name: [] for name in ports}
        for _ in range(args.rounds):
            order = list(ports)
            random.shuffle(order)
            for name in order:
                before = minflt(servers[name].pid)
                rps, p50, p99, total = wrk(ports[name], args.seconds, args.connections)
                faults = (minflt(servers[name].pid) - before) / max(total, 1)
                results[name].append((rps, p50, p99, faults))
    finally:
        for p in servers.values():
            p.kill()
            p.wait()
    med = {name: [statistics.median(r[i] for r in rows) for i in range(4)] for name, rows in results.items()}
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, wrk -t1 -c{args.connections} -d{args.seconds}s, "
          f"{args.rounds} interleaved rounds, hello component (guests/src/bin/http-hello.rs)")
    print("| server | req/s | p50 | p99 | minor faults/request |")
    print("|---|---|---|---|---|")
    for name in ("wasmbox", "wasmtime"):
        rps, p50, p99, faults = med[name]
        label = "wasmbox serve" if name == "wasmbox" else "wasmtime serve -S cli"
        print(f"| {label} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {faults:.1f} |")
    print(f"\nreq/s ratio (wasmbox/wasmtime): {med['wasmbox'][0] / med['wasmtime'][0]:.2f}x; "
          f"p99 ratio: {med['wasmbox'][2] / med['wasmtime'][2]:.2f}x")


if __name__ == "__main__":
    main()
