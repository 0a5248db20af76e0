#!/usr/bin/env python3
"""`wasmbox serve` vs `wasmtime serve` 48.0.8 on the same component, same load generator, same
concurrency, interleaved rounds in one run of this script.

Usage: bench/serve_vs_wasmtime.py [--guest hello|python] [--load wrk|hey] [--connections C]
                                  [--keep-resident SIZE,...] [--compare BINARY] [--floor] [--rounds N] [--seconds S]

--guest python is the heavyweight case: a CPython HTTP handler (bench/py-http/app.py) built by
the pinned componentize-py. Each --keep-resident size is one wasmbox server (0: memory is
given back after every request, the default). Per server it reports req/s and p50/p99 latency
(medians over rounds), minor page faults and TLB shootdowns per request (the server's
/proc/PID/stat; the machine's /proc/interrupts TLB line, so keep the machine otherwise idle),
and RSS after the load; then the req/s and p99 ratios against wasmtime. --compare adds another
wasmbox build (e.g. the one before a change) as one more server in the same rounds.

It also reports CPU time per request of each server and of the load generator: on a small
machine both share the cores, so the client's own cost bounds the ratio any server can reach
(printed as the ceiling: the peer's server + client CPU per request over the client's alone).

--floor adds one more server: crates/http/examples/floor_hello.rs, serve's HTTP stack (the same
runtimes, hyper settings and worker count) answering `hello world` with no Wasm at all. Its
ratio against wasmtime bounds what any Wasm server on that stack can reach here.
"""
import argparse, os, random, re, resource, statistics, subprocess, sys, tempfile, time

from benchlib import ROOT, WASMBOX, free_port, guests, mem_kib, python_component, sh, wait_up, wasmtime_bin


def minflt(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tlb_shootdowns():
    for line in open("/proc/interrupts"):
        if line.strip().startswith("TLB:"):
            return sum(int(x) for x in line.split()[1:] if x.isdigit())
    return 0


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def wrk(url, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        sys.exit(f"errors in a benchmark run:\n{out}")
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), to_ms(lat["50"]), to_ms(lat["99"]),
            int(re.search(r"(\d+) requests in", out).group(1)))


def hey(url, seconds, connections):
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(connections), url],
                         capture_output=True, text=True, check=True).stdout
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    if set(codes) != {"200"} or "Error distribution" in out:
        sys.exit(f"errors in a benchmark run:\n{out}")
    lat = dict(re.findall(r"(50|99)%% in ([\d.]+) secs".replace("%%", "%"), out))
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), float(lat["50"]) * 1000,
            float(lat["99"]) * 1000, int(codes["200"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", choices=["hello", "python"], default="hello")
    ap.add_argument("--load", choices=["wrk", "hey"], default="wrk")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--keep-resident", default="16M", help="comma-separated sizes, one wasmbox server each (default: serve's own default)")
    ap.add_argument("--compare", metavar="BINARY",
                    help="another wasmbox build, one more server at the last --keep-resident size (e.g. before a change)")
    ap.add_argument("--floor", action="store_true", help="add serve's HTTP stack with no Wasm (the floor)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    wasmtime = wasmtime_bin()
    built = guests()
    guest = built["HTTP_HELLO_COMPONENT"] if args.guest == "hello" else python_component()
    load = wrk if args.load == "wrk" else hey
    home = tempfile.mkdtemp(prefix="wasmbox-bench-serve-")
    env = dict(os.environ, WASMBOX_HOME=home)
    # Fill wasmbox's compile cache first, so every wasmbox server starts from it and their RSS
    # compares (a server that compiled keeps the compiler's heap). `--compiler cranelift`
    # listens only once the optimized code is ready (and cached): with the default tiering the
    # server would answer at once on baseline code and be killed before the cache is filled.
    port = free_port()
    warm = subprocess.Popen([WASMBOX, "serve", "--compiler", "cranelift", "--listen", f"127.0.0.1:{port}", guest], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port, timeout=120)
    warm.kill()
    warm.wait()
    commands = {}
    for size in args.keep_resident.split(","):
        commands[f"wasmbox serve --keep-resident {size}"] = lambda port, size=size: [
            WASMBOX, "serve", "--keep-resident", size, "--listen", f"127.0.0.1:{port}", guest]
    if args.compare:
        size = args.keep_resident.split(",")[-1]
        commands[f"{args.compare} serve --keep-resident {size}"] = lambda port, size=size: [
            args.compare, "serve", "--keep-resident", size, "--listen", f"127.0.0.1:{port}", guest]
    if args.floor:
        sh("cargo", "build", "--release", "--quiet", "--locked", "-p", "wasmbox-http", "--example", "floor_hello", cwd=ROOT)
        floor = os.path.join(ROOT, "target/release/examples/floor_hello")
        commands["floor: serve's HTTP stack, no Wasm"] = lambda port: [floor, f"127.0.0.1:{port}"]
    commands["wasmtime serve -S cli"] = lambda port: [wasmtime, "serve", "-S", "cli", "--addr", f"127.0.0.1:{port}", guest]
    ports = {name: free_port() for name in commands}
    servers = {}
    results = {name: [] for name in commands}
    try:
        for name, command in commands.items():
            servers[name] = subprocess.Popen(command(ports[name]), env=env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
            wait_up(ports[name], timeout=120)  # the python component compiles first
            load(f"http://127.0.0.1:{ports[name]}/", 2, args.connections)  # warm up
        rss_idle = {name: mem_kib(p.pid) for name, p in servers.items()}
        for _ in range(args.rounds):
            order = list(commands)
            random.shuffle(order)
            for name in order:
                pid = servers[name].pid
                faults, tlb, cpu, client = minflt(pid), tlb_shootdowns(), cpu_seconds(pid), children_cpu_seconds()
                rps, p50, p99, total = load(f"http://127.0.0.1:{ports[name]}/", args.seconds, args.connections)
                faults, tlb = (minflt(pid) - faults) / total, (tlb_shootdowns() - tlb) / total
                cpu, client = (cpu_seconds(pid) - cpu) / total * 1e6, (children_cpu_seconds() - client) / total * 1e6
                results[name].append((rps, p50, p99, faults, tlb, cpu, client))
        rss_after = {name: mem_kib(p.pid) for name, p in servers.items()}
    finally:
        for p in servers.values():
            p.kill()
            p.wait()
    med = {name: [statistics.median(r[i] for r in rows) for i in range(7)] for name, rows in results.items()}
    what = "hello component (guests/src/bin/http-hello.rs)" if args.guest == "hello" else \
        f"componentize-py HTTP handler (bench/py-http/app.py, {os.path.getsize(guest) / 1e6:.1f} MB)"
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.load} -c{args.connections} "
          f"{args.seconds}s x {args.rounds} interleaved rounds, {what}")
    print("| server | req/s | p50 | p99 | minor faults/req | TLB shootdowns/req | server CPU/req | client CPU/req | RSS idle | RSS after load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in commands:
        rps, p50, p99, faults, tlb, cpu, client = med[name]
        print(f"| {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {faults:.1f} | {tlb:.2f} | {cpu:.1f} µs | {client:.1f} µs | "
              f"{rss_idle[name] / 1024:.0f} MiB | {rss_after[name] / 1024:.0f} MiB |")
    peer = med["wasmtime serve -S cli"]
    print()
    for name in commands:
        if name != "wasmtime serve -S cli":
            print(f"{name}: req/s {med[name][0] / peer[0]:.2f}x wasmtime, p99 {med[name][2] / peer[2]:.2f}x")
    client = statistics.median(m[6] for m in med.values())
    print(f"ceiling with this client on these cores (a server costing nothing): "
          f"{(peer[5] + peer[6]) / client:.2f}x wasmtime ({args.load} {client:.1f} µs/req, wasmtime serve {peer[5]:.1f} µs/req)")


if __name__ == "__main__":
    main()
