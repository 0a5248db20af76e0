#!/usr/bin/env python3
"""Two wasmbox builds side by side on what WASI-NN users feel, rounds interleaved
(docs/benchmarks.md, "The inference backend in its own process"): used to price moving tract
out of `wasmbox` into the `wasmbox-nn` process.

Per round, for each build:
  serve     requests/s and p99 of the http-classify guest (digits model granted once, a fresh
            instance per request), `hey -z SECONDS -c 4`, POST one 256-byte image
  one-shot  wall time of `wasmbox run` classifying 100 digits with the model granted: process
            start, model load (and, out of process, starting the backend), 100 inferences
  cnn       p50 of 30 inferences of light_squeezenet (1x3x224x224 f32, from the `onnx` wheel),
            timed inside the component guest around the whole wasi:nn call
Medians over the rounds, and B/A ratios.

Usage: bench/nn_builds.py A_WASMBOX B_WASMBOX [--rounds N] [--seconds S] [--squeezenet MODEL[:INPUT]]
(light_squeezenet.onnx is in the `onnx` wheel under backend/test/data/light/; its input is data_0)
The guests come from the newest test-programs build (cargo test or cargo build does it).
"""
import argparse, glob, os, re, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, free_port, wait_up  # noqa: E402

DIGITS = os.path.join(ROOT, "crates/nn/testdata/digits")


def guest_paths():
    consts = max(glob.glob(os.path.join(ROOT, "target/*/build/wasmbox-test-programs-*/out/guests.rs")),
                 key=os.path.getmtime)
    return {line.split(":")[0].replace("pub const ", "").strip(): line.split('"')[1]
            for line in open(consts) if line.startswith("pub const")}


def serve(exe, guest, image, seconds, env):
    port = free_port()
    server = subprocess.Popen([exe, "serve", "--listen", f"127.0.0.1:{port}", "--nn-model",
                               f"digits={DIGITS}/digits.onnx", guest],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["hey", "-n", "200", "-c", "4", "-m", "POST", "-D", image, url],
                       check=True, capture_output=True)
        out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", "4", "-m", "POST", "-D", image, url],
                             check=True, capture_output=True, text=True).stdout
    finally:
        server.terminate()
        server.wait()
    statuses = re.findall(r"^\s+\[(\d{3})\]\s+\d+ responses", out, re.M)
    if statuses != ["200"]:
        sys.exit(f"serve answered errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000
    return rps, p99


def one_shot(exe, guest, env):
    cmd = [exe, "run", "--nn-model", f"digits={DIGITS}/digits.onnx", "-v", f"{DIGITS}:/data:ro", guest,
           "classify", "digits", "/data/test-images.f32"]
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0 or len(p.stdout.splitlines()) != 100:
        sys.exit(f"one-shot run failed ({p.returncode}): {p.stderr}")
    return elapsed * 1000


def cnn(exe, guest, model, env):
    path, _, input_name = model.partition(":")
    p = subprocess.run([exe, "run", "--nn-model", f"sq={path}", guest, "bench", "sq", "30", input_name or "data_0",
                        "1,3,224,224"], env=env, capture_output=True, text=True)
    m = re.search(r"p50_us (\d+)", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"cnn run failed ({p.returncode}): {p.stdout} {p.stderr}")
    return int(m.group(1)) / 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--one-shots", type=int, default=10)
    ap.add_argument("--squeezenet")
    args = ap.parse_args()
    g = guest_paths()
    work = tempfile.mkdtemp()
    image = os.path.join(work, "image.bin")
    with open(image, "wb") as f:
        f.write(open(os.path.join(DIGITS, "test-images.f32"), "rb").read()[:256])
    builds = {"A": args.a, "B": args.b}
    env = dict(os.environ, WASMBOX_HOME=os.path.join(work, "home"))
    env.pop("WASMBOX_NN_BACKEND", None)
    # Warm the compile cache: no round pays for compiling a guest.
    for exe in builds.values():
        one_shot(exe, g["NN_MODULE"], env)
        if args.squeezenet:
            cnn(exe, g["NN_COMPONENT"], args.squeezenet, env)
    res = {k: {"rps": [], "p99": [], "oneshot": [], "cnn": []} for k in builds}
    for r in range(args.rounds):
        for k, exe in builds.items():
            rps, p99 = serve(exe, g["HTTP_CLASSIFY_COMPONENT"], image, args.seconds, env)
            res[k]["rps"].append(rps)
            res[k]["p99"].append(p99)
            res[k]["oneshot"].append(statistics.median(one_shot(exe, g["NN_MODULE"], env)
                                                       for _ in range(args.one_shots)))
            if args.squeezenet:
                res[k]["cnn"].append(cnn(exe, g["NN_COMPONENT"], args.squeezenet, env))
        print(f"round {r + 1}: " + "  ".join(f"{k} {res[k]['rps'][-1]:.0f} req/s {res[k]['oneshot'][-1]:.1f} ms"
                                             for k in builds), file=sys.stderr)
    med = {k: {m: statistics.median(v) if v else None for m, v in res[k].items()} for k in builds}
    print(f"A = {args.a}\nB = {args.b}\nmedians of {args.rounds} interleaved rounds")
    rows = [("serve classify req/s (hey -c 4)", "rps", "{:.0f}"), ("serve p99 ms", "p99", "{:.2f}"),
            ("one-shot run, 100 digits, ms", "oneshot", "{:.1f}"), ("squeezenet p50 ms (component)", "cnn", "{:.2f}")]
    print(f"{'':34} {'A':>10} {'B':>10} {'B/A':>7}")
    for name, key, fmt in rows:
        a, b = med["A"][key], med["B"][key]
        if a is None:
            continue
        print(f"{name:34} {fmt.format(a):>10} {fmt.format(b):>10} {b / a:6.2f}x")


if __name__ == "__main__":
    main()
