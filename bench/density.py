#!/usr/bin/env python3
"""Density: how many idle containers one daemon holds, and how fast it starts them.

For N in --counts (default 100, 1000, 10000): a fresh daemon (own WASMBOX_HOME) starts N
containers of an idle guest (crates/test-programs/wat/idle.wat: one long WASI clock poll) through
its API from --clients parallel connections; we report starts/s, the daemon's RSS growth per
container, and the latency of `ps` (the API call, and the whole `wasmbox ps -q` command).

The peer: N separate `wasmtime run` processes of the same guest (--peer-counts), RSS and PSS
per process (PSS splits shared pages such as the binary's code fairly between processes).

    python3 bench/density.py [--counts 100,1000,10000] [--peer-counts 100,500] [--clients 8] [--wasmbox PATH]

--wasmbox measures another build of wasmbox (e.g. the one before a change) instead of building
the release one.
"""
import argparse, http.client, json, os, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, WASMBOX, guests, mem_kib, wasmtime_bin  # noqa: E402

IDLE = os.path.join(ROOT, "crates/test-programs/wat/idle.wat")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("wasmbox")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"content-type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]}")
    return json.loads(data)


def daemon_run(n, clients):
    home = tempfile.mkdtemp(prefix="wasmbox-density-")
    env = dict(os.environ, WASMBOX_HOME=home)
    log = open(os.path.join(home, "bench-daemon.log"), "w")
    daemon = subprocess.Popen([WASMBOX, "daemon"], env=env, stderr=log, stdout=log)
    sock = os.path.join(home, "wasmbox.sock")
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        # One container through the CLI stores the guest's Wasm; the rest reuse its spec.
        first = subprocess.run([WASMBOX, "run", "-d", IDLE], env=env, capture_output=True, text=True, check=True)
        spec = json.loads(subprocess.run([WASMBOX, "inspect", "--json", first.stdout.strip()], env=env,
                                         capture_output=True, text=True, check=True).stdout)["spec"]
        spec["name"] = None
        body = json.dumps(spec)
        time.sleep(0.5)
        base = mem_kib(daemon.pid)
        per_client = [(n - 1) // clients + (1 if i < (n - 1) % clients else 0) for i in range(clients)]

        def worker(count):
            conn = UnixHTTP(sock)
            for _ in range(count):
                call(conn, "POST", "/v1/containers", body)
            conn.close()

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(c,)) for c in per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        time.sleep(1.0)
        conn = UnixHTTP(sock)
        running = len(call(conn, "GET", "/v1/containers"))
        if running != n:
            sys.exit(f"expected {n} running containers, the daemon lists {running}")
        rss = mem_kib(daemon.pid)
        api = []
        for _ in range(5):
            t0 = time.perf_counter()
            call(conn, "GET", "/v1/containers")
            api.append(time.perf_counter() - t0)
        cli = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([WASMBOX, "ps", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
            cli.append(time.perf_counter() - t0)
        return {
            "n": n,
            "starts_per_s": (n - 1) / elapsed,
            "rss_total_mib": rss / 1024,
            "rss_per_container_kib": (rss - base) / (n - 1),
            "ps_api_ms": statistics.median(api) * 1000,
            "ps_cli_ms": statistics.median(cli) * 1000,
        }
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        subprocess.run(["rm", "-rf", home])


def peer_run(n, wasmtime):
    procs = [subprocess.Popen([wasmtime, "run", IDLE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        time.sleep(2.0 + n / 200)
        alive = [p for p in procs if p.poll() is None]
        if len(alive) != n:
            sys.exit(f"only {len(alive)} of {n} wasmtime processes are alive")
        rss = sum(mem_kib(p.pid) for p in procs) / n
        pss = sum(mem_kib(p.pid, "Pss") for p in procs) / n
        return {"n": n, "rss_per_process_kib": rss, "pss_per_process_kib": pss}
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--peer-counts", default="100,500")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--wasmbox", help="the wasmbox binary to measure (default: build the release one)")
    args = ap.parse_args()
    global WASMBOX
    if args.wasmbox:
        WASMBOX = os.path.abspath(args.wasmbox)
    else:
        guests()  # builds release wasmbox
    print(f"# density, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
    print("| containers | starts/s | daemon RSS | RSS per container | ps (API) | ps (CLI) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in args.counts.split(",") if x]:
        r = daemon_run(n, args.clients)
        print(f"| {n} | {r['starts_per_s']:.0f} | {r['rss_total_mib']:.0f} MiB | {r['rss_per_container_kib']:.1f} KiB "
              f"| {r['ps_api_ms']:.1f} ms | {r['ps_cli_ms']:.1f} ms |", flush=True)
    if args.peer_counts:
        wasmtime = wasmtime_bin()
        print("\n| wasmtime run processes | RSS per process | PSS per process |")
        print("|---:|---:|---:|")
        for n in [int(x) for x in args.peer_counts.split(",") if x]:
            r = peer_run(n, wasmtime)
            print(f"| {n} | {r['rss_per_process_kib'] / 1024:.1f} MiB | {r['pss_per_process_kib'] / 1024:.1f} MiB |",
                  flush=True)


if __name__ == "__main__":
    main()
