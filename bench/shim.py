#!/usr/bin/env python3
"""containerd shim: `ctr run --rm` start-to-exit time of a hello image, cold and precompiled,
and the shim's peak RSS.

A private containerd (Debian 13's 1.7, as scripts/deps.sh fetches it; own root, state and socket
in a temp dir) with the release `containerd-shim-wasmbox-v1` first on its PATH. The hello image
is the probe guest (crates/test-programs) in runwasi's layout (OCI config `architecture: wasm`,
the module as a `...wasm.component.layer.v0+wasm` layer), imported with `ctr images import`.

- cold: each run uses an image no task has used (the module plus a distinct custom section),
  so the shim compiles it and stores the precompiled layer;
- precompiled: the same image again, after one warm-up run.

The shim's peak RSS is what containerd logs when a shim exits ("Shim peak memory usage was:
peak resident set N kB"), one line per task. Needs root.

    sudo python3 bench/shim.py [--runs 10]
"""
import argparse, hashlib, io, json, os, re, statistics, subprocess, sys, tarfile, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, guests, sh  # noqa: E402

RUNTIME = "io.containerd.wasmbox.v1"
SHIM = os.path.join(ROOT, "target/release/containerd-shim-wasmbox-v1")


def custom_section(tag):
    name = b"bench"
    payload = bytes([len(name)]) + name + tag.encode()
    return b"\x00" + bytes([len(payload)]) + payload


def image_tar(wasm, ref):
    """An OCI image layout tar (runwasi layout) holding `wasm`, tagged `ref`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        def blob(data):
            digest = hashlib.sha256(data).hexdigest()
            info = tarfile.TarInfo(f"blobs/sha256/{digest}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            return f"sha256:{digest}"
        layer = blob(wasm)
        config = json.dumps({"architecture": "wasm", "os": "wasip1", "config": {"Entrypoint": ["/app.wasm"]},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
                        "digest": layer, "size": len(wasm)}]}).encode()
        m = blob(manifest)
        index = json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()
        for name, data in (("index.json", index), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (containerd, youki's namespaces and cgroups)")
    probe = guests()["PROBE_MODULE"]
    sh("cargo", "build", "--release", "--quiet", "-p", "wasmbox-shim", cwd=ROOT)
    ctd_dir = subprocess.run([os.path.join(ROOT, "scripts/deps.sh")], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.strip().splitlines()[-1]
    containerd, ctr_bin = os.path.join(ctd_dir, "containerd"), os.path.join(ctd_dir, "ctr")
    version = subprocess.run([containerd, "--version"], stdout=subprocess.PIPE, text=True).stdout.split()[2]

    work = tempfile.mkdtemp(prefix="wbx-bench-ctd")
    os.makedirs(f"{work}/bin")
    os.symlink(SHIM, f"{work}/bin/containerd-shim-wasmbox-v1")
    sock = f"{work}/containerd.sock"
    with open(f"{work}/config.toml", "w") as f:
        f.write(f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n[grpc]\n  address = "{sock}"\n'
                f'[ttrpc]\n  address = "{sock}.ttrpc"\n[metrics]\n  address = ""\n'
                '[plugins."io.containerd.grpc.v1.cri"]\n  disable_tcp_service = true\n')
    log = open(f"{work}/containerd.log", "w")
    env = dict(os.environ, PATH=f"{work}/bin:" + os.environ["PATH"])
    daemon = subprocess.Popen([containerd, "--config", f"{work}/config.toml"], stdout=log, stderr=log, env=env)
    ctr = lambda *a, **kw: subprocess.run([ctr_bin, "--address", sock, *a], **kw)  # noqa: E731
    try:
        for _ in range(100):
            if ctr("version", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        wasm = open(probe, "rb").read()
        refs = [f"bench.local/hello:cold{i}" for i in range(args.runs)] + ["bench.local/hello:warm"]
        for ref in refs:
            data = image_tar(wasm + custom_section(ref), ref)
            ctr("images", "import", "-", input=data, check=True, stdout=subprocess.DEVNULL)

        def run(ref, n):
            start = time.perf_counter()
            p = ctr("run", "--rm", "--runtime", RUNTIME, ref, f"bench-{os.getpid()}-{n}", "/app.wasm", "hello",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - start
            if p.returncode != 0 or b"hello from a wasmbox guest" not in p.stdout:
                sys.exit(f"run failed: {p.stderr.decode()}")
            return elapsed

        cold = [run(ref, i) for i, ref in enumerate(refs[:-1])]
        run(refs[-1], "warmup")
        warm = [run(refs[-1], f"w{i}") for i in range(args.runs)]
        # One long-running task (a guest idling in a WASI clock poll): the RSS of every process
        # of it (the shim, its zygote, the container's process running the Wasm).
        idle_ref = "bench.local/idle:1"
        ctr("images", "import", "-", input=image_tar(wasm, idle_ref), check=True, stdout=subprocess.DEVNULL)
        tid = f"bench-{os.getpid()}-idle"
        ctr("run", "-d", "--runtime", RUNTIME, idle_ref, tid, "/app.wasm", "sleep", "60000", check=True,
            stdout=subprocess.DEVNULL)
        time.sleep(2)
        shim_exe = os.path.realpath(SHIM)
        procs = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == shim_exe:
                    status = open(f"/proc/{pid}/status").read()
                    rollup = open(f"/proc/{pid}/smaps_rollup").read()
                    procs[pid] = (int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)),
                                  int(re.search(r"Pss:\s+(\d+) kB", rollup).group(1)))
            except (OSError, AttributeError):
                pass
        ctr("task", "kill", "-s", "SIGKILL", tid)
        time.sleep(1)
        ctr("task", "delete", tid)
        ctr("containers", "delete", tid)
        log.flush()
        text = open(f"{work}/containerd.log").read()
        shim_rss = [int(k) for k in re.findall(r"Shim peak memory usage was: peak resident set (\d+) kB", text)]
        zygote_rss = [int(k) for k in re.findall(r"Zygote peak memory usage was: peak resident set (\d+) kB", text)]
        compiles = text.count("precompiled layer sha256:")
    finally:
        daemon.terminate()
        daemon.wait()

    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"  # noqa: E731
    print(f"date: {time.strftime('%Y-%m-%d')}  containerd {version}  runs: {args.runs} each  guest: {os.path.basename(probe)} ({len(wasm)} bytes)")
    print(f"cold (compile + store precompiled layer): {ms(cold)}")
    print(f"precompiled:                              {ms(warm)}")
    print(f"cold / precompiled: {statistics.median(cold) / statistics.median(warm):.1f}x   compiles seen: {compiles} (expected {args.runs + 2}: each cold image, the warm one, the idle one)")
    rss = sorted((r for r, _ in procs.values()), reverse=True)
    pss = sum(p for _, p in procs.values())
    print(f"one running task: {len(procs)} processes, RSS {sum(rss) / 1024:.1f} MiB summed "
          f"({', '.join(f'{v / 1024:.1f}' for v in rss)}), PSS {pss / 1024:.1f} MiB (shared pages counted once)")
    if shim_rss:
        print(f"shim peak RSS per task: median {statistics.median(shim_rss) / 1024:.1f} MiB "
              f"(max {max(shim_rss) / 1024:.1f}); zygote: median {statistics.median(zygote_rss) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
