"""Helpers the benchmark scripts share: building, finding the guests, the peer wasmtime, ports."""
import glob, os, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASMTIME_VERSION = "48.0.8"
CACHE = os.path.expanduser("~/.cache/wasmbox-bench")
WASMBOX = os.path.join(ROOT, "target/release/wasmbox")


def sh(*cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def wasmtime_bin():
    """wasmtime-cli 48.0.8, installed once into ~/.cache/wasmbox-bench (about 15 min on 2 cores)."""
    root = os.path.join(CACHE, f"wasmtime-{WASMTIME_VERSION}")
    exe = os.path.join(root, "bin", "wasmtime")
    if not os.path.exists(exe):
        print(f"installing wasmtime-cli {WASMTIME_VERSION} into {root} (one time)", file=sys.stderr)
        sh("cargo", "install", "wasmtime-cli", "--version", WASMTIME_VERSION, "--locked", "--root", root)
    return exe


def guests():
    """Builds release wasmbox and the test guests; returns {CONSTANT_NAME: path}."""
    sh("cargo", "build", "--release", "--quiet", "-p", "wasmbox", "-p", "wasmbox-test-programs", cwd=ROOT)
    consts = max(glob.glob(os.path.join(ROOT, "target/release/build/wasmbox-test-programs-*/out/guests.rs")),
                 key=os.path.getmtime)
    paths = {}
    for line in open(consts):
        name = line.split(":")[0].replace("pub const ", "").strip()
        paths[name] = line.split('"')[1]
    return paths


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_up(port):
    """Waits (up to ~10 s) until something accepts connections on 127.0.0.1:port."""
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on {port} did not come up")


def timed(cmd, env, expect=None):
    """Wall time of one command; exits the script if it fails or `expect` is not in stdout."""
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0 or (expect and expect not in p.stdout):
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{p.stderr.decode()}")
    return elapsed


def start_registry(work):
    """Debian's docker-registry on a free loopback port, storing under `work`; returns
    (process, "127.0.0.1:PORT") once it accepts connections."""
    port = free_port()
    addr = f"127.0.0.1:{port}"
    with open(os.path.join(work, "config.yml"), "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                f"http:\n  addr: {addr}\n")
    registry = subprocess.Popen(["docker-registry", "serve", os.path.join(work, "config.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port)
    return registry, addr


def mem_kib(pid, field="VmRSS"):
    """A process's VmRSS (or another /proc status field, or Pss) in KiB."""
    if field == "Pss":
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
