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


COMPONENTIZE_PY_VERSION = "0.25.1"


def python_component(app="py-http", world="wasi:http/proxy@0.2.12"):
    """bench/<app>/app.py built by componentize-py (pinned, installed once into a virtualenv under
    ~/.cache/wasmbox-bench) for `world` of the WASI 0.2 WIT that wasmtime-wasi-http 48 implements;
    rebuilt only when app.py changes. Returns the component's path."""
    import hashlib, json
    venv = os.path.join(CACHE, f"componentize-py-{COMPONENTIZE_PY_VERSION}")
    tool = os.path.join(venv, "bin", "componentize-py")
    if not os.path.exists(tool):
        sh(sys.executable, "-m", "venv", venv)
        sh(os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
           f"componentize-py=={COMPONENTIZE_PY_VERSION}")
    src = os.path.join(ROOT, "bench", app)
    digest = hashlib.sha256(open(os.path.join(src, "app.py"), "rb").read()).hexdigest()[:16]
    out = os.path.join(CACHE, f"{app}-{COMPONENTIZE_PY_VERSION}-{digest}.wasm")
    if not os.path.exists(out):
        meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"], cwd=ROOT,
                                         capture_output=True, check=True).stdout)
        wit = next(os.path.join(os.path.dirname(p["manifest_path"]), "wit") for p in meta["packages"]
                   if p["name"] == "wasmtime-wasi-http")
        sh(tool, "-q", "-d", wit, "-w", world, "componentize", "app", "-o", out + ".tmp", cwd=src)
        os.rename(out + ".tmp", out)
    return out


def guests(build_wasmbox=True):
    """Builds release wasmbox (unless told not to: a script measuring another build) and the
    test guests; returns {CONSTANT_NAME: path}."""
    packages = ["-p", "wasmbox", "-p", "wasmbox-test-programs"] if build_wasmbox else ["-p", "wasmbox-test-programs"]
    sh("cargo", "build", "--release", "--quiet", *packages, cwd=ROOT)
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


def wait_up(port, timeout=10):
    """Waits (up to about `timeout` seconds) until something accepts connections on 127.0.0.1:port."""
    for _ in range(timeout * 20):
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
