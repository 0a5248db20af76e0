#!/usr/bin/env python3
"""First starts of a never-seen component (issue 17, target 3): wasmbox vs wasmtime 48.0.8, no
cache on either side, interleaved in one run.

Usage: bench/first_start.py [--rounds N] [--steady-seconds S]
Components: componentize-py builds of bench/py-cli/app.py (wasi:cli/command) and
bench/py-http/app.py (wasi:http/proxy), each a whole CPython (~18 MB).
- run: launch to exit. wasmtime: `wasmtime run -C cache=n`; wasmbox: `run` with an empty
  WASMBOX_HOME (default `--compiler auto`: Winch code now, Cranelift's in the background) and,
  for reference, `--compiler cranelift` (the behaviour before tiering).
- serve: launch to the first 200 response. wasmtime: `serve -S cli -C cache=n`; wasmbox: `serve`
  with an empty home, the same two compilers.
After every wasmbox start the background compile is let finish before the next sample, so
no sample pays for another's. Last, steady state: req/s (`hey -c 16`) of a tiered server once it
serves optimized code vs a `--compiler cranelift` server, alternating.
"""
import argparse, os, random, re, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.request

from benchlib import WASMBOX, free_port, python_component, wasmtime_bin


def fresh_env(work):
    home = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, WASMBOX_HOME=home, XDG_CACHE_HOME=os.path.join(home, "xdg"))
    env.pop("WASMBOX_LOG", None)
    return env


def settle(env):
    """Waits for a tiered run's background compile (its pending Wasm disappears when done)."""
    pending = os.path.join(env["WASMBOX_HOME"], "cache", "pending")
    deadline = time.time() + 300
    while os.path.isdir(pending) and os.listdir(pending):
        if time.time() > deadline:
            sys.exit("the background compile did not finish")
        time.sleep(0.05)


def run_once(cmd, env):
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0 or b"hello from componentize-py" not in p.stdout:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()}")
    settle(env)
    return elapsed


def first_response(cmd, env, port):
    """Seconds from launch to the first 200 from the server; returns (seconds, process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Drain stderr (access log lines would fill the pipe and stall the server), noting the
    # tiered server's switch to optimized code (WASMBOX_LOG=info).
    proc.optimized = threading.Event()

    def drain():
        for line in proc.stderr:
            if b"serving optimized code" in line:
                proc.optimized.set()

    threading.Thread(target=drain, daemon=True).start()
    while True:
        if proc.poll() is not None:
            sys.exit(f"server exited: {' '.join(cmd)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as r:
                if r.status == 200:
                    return time.perf_counter() - start, proc
        except OSError:
            time.sleep(0.005)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_once(kind, cmd_for, env):
    port = free_port()
    elapsed, proc = first_response(cmd_for(port), env, port)
    if kind == "wasmbox auto":
        wait_optimized(proc)
    stop(proc)
    return elapsed


def wait_optimized(proc):
    """Waits until the tiered server serves optimized code."""
    if not proc.optimized.wait(300):
        sys.exit("the server did not switch to optimized code")


def hey(url, seconds):
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", "16", url], capture_output=True, text=True,
                         check=True).stdout
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    if set(codes) != {"200"}:
        sys.exit(f"errors in a benchmark run:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def table(title, samples, peer):
    print(f"\n{title}\n")
    print("| tool | median | min | max | ratio to wasmtime (medians) |")
    print("|---|---|---|---|---|")
    for name, v in samples.items():
        med = statistics.median(v)
        print(f"| {name} | {med:.2f} s | {min(v):.2f} s | {max(v):.2f} s | "
              f"{med / statistics.median(samples[peer]):.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steady-seconds", type=int, default=5)
    args = ap.parse_args()
    wasmtime = wasmtime_bin()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "wasmbox"], check=True)
    cli = python_component("py-cli", "wasi:cli/command@0.2.12")
    http = python_component("py-http", "wasi:http/proxy@0.2.12")
    work = tempfile.mkdtemp(prefix="wasmbox-first-")
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.rounds} interleaved rounds, no caches")
    print(f"# {subprocess.run([WASMBOX, '-V'], capture_output=True, text=True).stdout.strip()}, "
          f"{subprocess.run([wasmtime, '--version'], capture_output=True, text=True).stdout.strip()}")

    runs = {
        "wasmtime run -C cache=n": [wasmtime, "run", "-C", "cache=n", cli],
        "wasmbox run": [WASMBOX, "run", cli],
        "wasmbox run --compiler cranelift": [WASMBOX, "run", "--compiler", "cranelift", cli],
    }
    samples = {k: [] for k in runs}
    for _ in range(args.rounds):
        order = list(runs.items())
        random.shuffle(order)
        for name, cmd in order:
            samples[name].append(run_once(cmd, fresh_env(work)))
    table(f"run of {os.path.basename(cli)} ({os.path.getsize(cli) >> 20} MiB), launch to exit",
          samples, "wasmtime run -C cache=n")

    servers = {
        "wasmtime serve -C cache=n": lambda p: [wasmtime, "serve", "-S", "cli", "-C", "cache=n",
                                                "--addr", f"127.0.0.1:{p}", http],
        "wasmbox auto": lambda p: [WASMBOX, "serve", "--listen", f"127.0.0.1:{p}", http],
        "wasmbox --compiler cranelift": lambda p: [WASMBOX, "serve", "--compiler", "cranelift",
                                                   "--listen", f"127.0.0.1:{p}", http],
    }
    samples = {k: [] for k in servers}
    for _ in range(args.rounds):
        order = list(servers.items())
        random.shuffle(order)
        for name, cmd_for in order:
            env = fresh_env(work)
            env["WASMBOX_LOG"] = "info"
            samples[name].append(serve_once(name, cmd_for, env))
    table(f"serve of {os.path.basename(http)} ({os.path.getsize(http) >> 20} MiB), launch to first 200",
          samples, "wasmtime serve -C cache=n")

    # Steady state: the tiered server after its switch vs a Cranelift-only one.
    rates = {"wasmbox auto, after the switch": [], "wasmbox --compiler cranelift": []}
    procs = {}
    for name, compiler in [("wasmbox auto, after the switch", "auto"), ("wasmbox --compiler cranelift", "cranelift")]:
        env = fresh_env(work)
        env["WASMBOX_LOG"] = "info"
        port = free_port()
        _, proc = first_response([WASMBOX, "serve", "--compiler", compiler, "--listen", f"127.0.0.1:{port}", http],
                                 env, port)
        if compiler == "auto":
            wait_optimized(proc)
        procs[name] = (proc, port)
    for name, (_, port) in procs.items():
        hey(f"http://127.0.0.1:{port}/", 2)  # warm-up
    for _ in range(args.rounds):
        order = list(procs.items())
        random.shuffle(order)
        for name, (_, port) in order:
            rates[name].append(hey(f"http://127.0.0.1:{port}/", args.steady_seconds))
    for proc, _ in procs.values():
        stop(proc)
    print(f"\nsteady state, hey -c 16 for {args.steady_seconds} s, {args.rounds} interleaved rounds (order shuffled)\n")
    print("| server | median req/s | min | max |")
    print("|---|---|---|---|")
    for name, v in rates.items():
        print(f"| {name} | {statistics.median(v):.0f} | {min(v):.0f} | {max(v):.0f} |")
    ratio = statistics.median(rates["wasmbox auto, after the switch"]) / statistics.median(
        rates["wasmbox --compiler cranelift"])
    print(f"\nratio (tiered after the switch / Cranelift only): {ratio:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
